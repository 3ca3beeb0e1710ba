"""Fault injection for the trainer process (test-only; nothing in tui_nn/ knows about it).

test_training_faults.py puts this folder on PYTHONPATH and sets TUI_NN_TEST_FAULT before the app starts its trainer
process; that process imports this module at start-up (Python imports `sitecustomize` from sys.path), so the
faults happen where the app really trains. The plan is a comma-separated list of "N:WHERE:KIND": the N-th
training forward pass of the model in this process (1-based, counting the passes of failed steps too) fails at
WHERE (forward, backward, or optimizer: before the update) with KIND (raise: a RuntimeError; oom: a simulated
torch.cuda.OutOfMemoryError). Every other step is untouched.
"""

from __future__ import annotations

import os

_PLAN = os.environ.get("TUI_NN_TEST_FAULT", "")


def _install(plan: str) -> None:
    import torch
    from torch import nn
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    faults = {}
    for item in plan.split(","):
        n, where, kind = item.split(":")
        faults[int(n)] = (where, kind)
    state: dict = {"forwards": 0, "now": None}  # now: the (where, kind) of the step under way, if it is to fail

    def error(kind: str) -> BaseException:
        if kind == "oom":
            return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB "
                                               "total capacity; 70.00 GiB already allocated) [injected]")
        return RuntimeError("injected fault in the trainer process")

    def counting(module: nn.Module, args: tuple) -> None:  # a training forward pass of the whole model
        if not isinstance(module, nn.Sequential) or not module.training or not torch.is_grad_enabled():
            return
        if not args or not isinstance(args[0], torch.Tensor) or args[0].device.type == "meta":
            return
        state["forwards"] += 1
        state["now"] = faults.get(state["forwards"])
        if state["now"] is not None and state["now"][0] == "forward":
            kind, state["now"] = state["now"][1], None
            raise error(kind)

    def output(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        now = state["now"]
        if now is not None and now[0] == "backward" and isinstance(module, nn.Sequential) and out.requires_grad:
            state["now"] = None

            def grad(_g: torch.Tensor) -> None:
                raise error(now[1])

            out.register_hook(grad)  # raises inside loss.backward()

    def before_step(_opt: torch.optim.Optimizer, _args: tuple, _kwargs: dict) -> None:
        now = state["now"]
        if now is not None and now[0] == "optimizer":
            state["now"] = None
            raise error(now[1])

    nn.modules.module.register_module_forward_pre_hook(counting)
    nn.modules.module.register_module_forward_hook(output)
    register_optimizer_step_pre_hook(before_step)


if _PLAN:
    _install(_PLAN)
