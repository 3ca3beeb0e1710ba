"""The memory budget: what a device can give, and the refusal of a model that needs more, before anything is allocated."""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from ..errors import EngineError, MemoryBudgetError
from ..text import fmt_bytes
from .report import ShapeReport


def optimizer_slots(name: str | None, args: dict[str, Any]) -> int:
    """How many parameter-sized state tensors an optimizer keeps."""
    if name in ("Adam", "AdamW"):
        return 3 if args.get("amsgrad") else 2
    if name == "SGD":
        return 1 if args.get("momentum", 0.0) else 0
    if name == "RMSprop":
        return 1 + (1 if args.get("momentum", 0.0) else 0) + (1 if args.get("centered") else 0)
    if name == "Adagrad":
        return 1
    if name in ("Adadelta", "NAdam", "RAdam", "Adamax"):  # two running averages each (square_avg/acc_delta,
        return 2  # exp_avg/exp_avg_sq, exp_avg/exp_inf)
    if name == "LBFGS":  # up to history_size pairs of flat vectors (old_dirs, old_stps), the direction d and the
        return 2 * int(args.get("history_size", 100)) + 2  # previous flat gradient: an upper bound
    return 0



# ---------------------------------------------------------------------------------------------
# memory budget


def available_bytes(device: str = "cpu") -> int:
    """Memory the device can give now: on the host the least of MemAvailable, the cgroup's room and the
    address-space limit's room (so a capped process is not killed); free memory on a CUDA device."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    limits: list[int] = []
    meminfo = _read_kv("/proc/meminfo")
    if "MemAvailable" in meminfo:
        limits.append(meminfo["MemAvailable"] * 1024)
    try:
        cg_max = open("/sys/fs/cgroup/memory.max", encoding="ascii").read().strip()
        cg_cur = int(open("/sys/fs/cgroup/memory.current", encoding="ascii").read().strip())
        if cg_max != "max":
            limits.append(int(cg_max) - cg_cur)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            status = _read_kv("/proc/self/status")
            limits.append(soft - status.get("VmSize", 0) * 1024)
    except (ImportError, OSError, ValueError):  # pragma: no cover - non-POSIX
        pass
    if not limits:  # pragma: no cover - no /proc
        return 8 * 1024**3
    return max(0, min(limits))



def _read_kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0])
    except OSError:
        pass
    return out



BUDGET_ENV = "TUI_NN_MEMORY_BUDGET"



def default_budget(device: str = "cpu") -> int:
    """The memory budget in bytes: TUI_NN_MEMORY_BUDGET when set (a positive number of bytes, such as
    2000000000 or 2e9), else 80% of what the device can give now. A value that is not such a number is an
    EngineError, not silently ignored."""
    env = os.environ.get(BUDGET_ENV)
    if env is not None and env.strip():
        try:
            value = float(env.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 1:
            raise EngineError(f"{BUDGET_ENV}={env.strip()[:40]!r} is not a memory budget: expected a positive "
                              f"number of bytes",
                              hint=f"set {BUDGET_ENV} to bytes, e.g. 2000000000 or 2e9, or unset it to use 80% of "
                                   f"the free memory")
        return int(value)
    return int(available_bytes(device) * 0.8)



def check_memory(report: ShapeReport, device: str = "cpu", budget: int | None = None) -> None:
    """Refuse (MemoryBudgetError) a model whose estimate exceeds the budget, before anything is allocated."""
    budget = default_budget(device) if budget is None else budget
    need = report.memory.total
    if need > budget:
        exact = f"{need} bytes: " if need.bit_length() <= 128 else ""  # (10^9332 bytes: not written out)
        raise MemoryBudgetError(
            f"this model needs about {fmt_bytes(need)} ({exact}{report.memory.describe()}) but the memory "
            f"budget on {device} is {fmt_bytes(budget)}; it was not built",
            needed_bytes=need, budget_bytes=budget,
            hint="make the layers smaller, use a smaller batch, or set TUI_NN_MEMORY_BUDGET (bytes)")


__all__ = ['check_memory', 'available_bytes', 'default_budget', 'optimizer_slots']
