"""The child process of test_oversized.py: builds each preset it is given under an address-space cap and says,
per case, what happened. Run as `python -m tests.robustness.oversized_child CAP_BYTES`; each line on stdin is a JSON
list of preset texts, answered by one JSON line on stdout (one torch import serves every batch).

Per case: "built" (the parameter count, the bytes really held by parameters, buffers and data, the budget and the
estimate), "refused" (a MemoryBudgetError: the bytes needed, the budget, and whether it came from the allocator
failing, i.e. after an allocation was attempted), "error" (another EngineError) or "crash" (anything else, with
the traceback). The peak resident memory of each case is measured (VmHWM, reset before each case): a refusal
before allocation leaves it flat.
"""

from __future__ import annotations

import gc
import json
import math
import re
import resource
import sys
import traceback


def _status(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        m = re.search(rf"^{key}:\s+(\d+)", fh.read(), re.M)
    return int(m.group(1)) * 1024 if m else 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    cap = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.training.session import Session

    # warm up: the first use of each layer type imports code (tens of MB) that is not the model's memory
    for layer in ('type = "Linear"\nin_features = 4\nout_features = 2', 'type = "Conv1d"\nin_channels = 4\n'
                  'out_channels = 2\nkernel_size = 1', 'type = "Conv2d"\nin_channels = 4\nout_channels = 2\n'
                  'kernel_size = 1', 'type = "BatchNorm1d"\nnum_features = 4', 'type = "BatchNorm2d"\n'
                  'num_features = 4', 'type = "LayerNorm"\nnormalized_shape = [3, 3]', 'type = "ReLU"'):
        shape = "[2, 4, 3, 3]" if "2d" in layer else "[2, 4, 3]" if ("1d" in layer or "Norm" in layer) else "[2, 4]"
        try:
            Session(loads_preset(f"[model]\ninput_shape = {shape}\n[[model.layers]]\n{layer}\n"))
        except EngineError:
            pass
    for line in sys.stdin:
        print(json.dumps([one(text) for text in json.loads(line)]), flush=True)


def one(text: str) -> dict:
    from tui_nn.engine.errors import EngineError, MemoryBudgetError
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.shapes.budget import default_budget
    from tui_nn.engine.training.session import Session

    calls: list[int] = []  # Session._check's calls: the first is on the planned input shape, the second after the
    # inputs are generated; the element count of the inputs it is given
    real_check = Session._check

    def counting_check(self, spec, inputs_shape):  # noqa: ANN001, ANN202
        calls.append(math.prod(inputs_shape))
        return real_check(self, spec, inputs_shape)

    Session._check = counting_check
    gc.collect()
    peak_ok = _reset_peak()
    rss0 = _status("VmRSS")
    rec: dict = {"budget_before": default_budget("cpu")}
    try:
        s = Session(loads_preset(text, "oversized.toml"))
        held = sum(t.numel() * t.element_size() for t in list(s.model.parameters()) + list(s.model.buffers()))
        for t in (s.inputs, s.targets, s.test_inputs, s.test_targets):
            if t is not None:
                held += t.numel() * t.element_size()
        rec.update(kind="built", params=sum(p.numel() for p in s.model.parameters()),
                   buffers=sum(b.numel() for b in s.model.buffers()), held_bytes=held,
                   estimate=s.report.memory.total, shape_error=s.report.error is not None)
        del s
    except MemoryBudgetError as err:
        rec.update(kind="refused", needed=err.needed_bytes, budget=err.budget_bytes, message=err.message[:300],
                   after_allocation=err.message.startswith("not enough memory to build"),
                   at_check=len(calls), inputs_bytes=4 * calls[-1] if calls else 0)
    except EngineError as err:
        rec.update(kind="error", type=type(err).__name__, message=str(err)[:300])
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails the test
        rec.update(kind="crash", type=type(err).__name__, message=str(err)[:300],
                   traceback=traceback.format_exc()[-3000:])
    finally:
        Session._check = real_check
    gc.collect()
    rec["peak_growth"] = (_status("VmHWM") - rss0) if peak_ok else None
    return rec


if __name__ == "__main__":
    main()
