"""Learning-rate schedules: torch's own schedulers, stepped once per training step.

`[training] scheduler = { type = "StepLR", step_size = 10, gamma = 0.5 }` multiplies the learning
rate by 0.5 every 10 steps. The scheduler belongs to the optimizer it was made with: whenever the
session makes a fresh optimizer (reset, a new optimizer, a rebuilt model) the schedule starts again.
"""

from __future__ import annotations

from typing import Any

from ..errors import EngineError, PresetError
from ..model.catalogue import FLOAT, INT, INT_LIST, ArgSpec, _a
from ..spec import CallSpec
from .objectives import Objective

SCHEDULERS: dict[str, Objective] = {o.name: o for o in [
    Objective("StepLR", "lr *= gamma every step_size steps",
              (ArgSpec("step_size", INT, None, required=True, min=1, max=2**31 - 1,
                       doc="steps between two decays"),
               _a("gamma", FLOAT, 0.1, min=0.0, doc="factor applied at each decay")),
              "torch.optim.lr_scheduler.StepLR"),
    Objective("ExponentialLR", "lr *= gamma every step",
              (ArgSpec("gamma", FLOAT, None, required=True, min=0.0, doc="factor applied every step"),),
              "torch.optim.lr_scheduler.ExponentialLR"),
    Objective("CosineAnnealingLR", "lr follows half a cosine from its start value down to eta_min over T_max steps",
              (ArgSpec("T_max", INT, None, required=True, min=1, max=2**31 - 1,
                       doc="steps of the half cosine (then it rises again)"),
               _a("eta_min", FLOAT, 0.0, min=0.0, doc="the lowest learning rate")),
              "torch.optim.lr_scheduler.CosineAnnealingLR"),
    Objective("MultiStepLR", "lr *= gamma at each milestone step",
              (ArgSpec("milestones", INT_LIST, None, required=True, min=1, max=2**31 - 1,
                       doc="the steps at which the lr decays, e.g. [30, 80]"),
               _a("gamma", FLOAT, 0.1, min=0.0, doc="factor applied at each milestone")),
              "torch.optim.lr_scheduler.MultiStepLR"),
    Objective("LinearLR", "a linear warm-up: lr x start_factor rising to lr x end_factor over total_iters steps",
              (_a("start_factor", FLOAT, 1 / 3, min=0.0, max=1.0, min_open=True,
                  doc="the first step's factor of the lr, in (0, 1]"),
               _a("end_factor", FLOAT, 1.0, min=0.0, max=1.0, doc="the factor reached after total_iters steps"),
               _a("total_iters", INT, 5, min=1, max=2**31 - 1, doc="steps of the ramp")),
              "torch.optim.lr_scheduler.LinearLR"),
    Objective("CosineAnnealingWarmRestarts", "half cosines down to eta_min, restarting after T_0, T_0*T_mult, ... steps",
              (ArgSpec("T_0", INT, None, required=True, min=1, max=2**31 - 1, doc="steps of the first cosine"),
               _a("T_mult", INT, 1, min=1, max=2**31 - 1, doc="each cosine is T_mult times longer than the last"),
               _a("eta_min", FLOAT, 0.0, min=0.0, doc="the lowest learning rate")),
              "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts"),
]}


def check_required(spec: CallSpec, field: str, source: str) -> None:
    """A scheduler table must give every required argument (torch has no default for them)."""
    for arg in SCHEDULERS[spec.type].args:
        if arg.required and arg.name not in spec.args:
            raise PresetError(f"{spec.type} needs \"{arg.name}\" ({arg.doc})", source=source,
                              field=f"{field}.{arg.name}")


def make_scheduler(spec: CallSpec | None, optimizer: torch.optim.Optimizer) -> Any:
    """The torch scheduler for `spec` on `optimizer`, or None."""
    if spec is None:
        return None
    if spec.type not in SCHEDULERS:
        raise EngineError(f"unknown scheduler \"{spec.type}\"; expected one of: {', '.join(SCHEDULERS)}")
    obj = SCHEDULERS[spec.type]
    missing = [a.name for a in obj.args if a.required and a.name not in spec.args]
    if missing:
        raise EngineError(f"{spec.type} needs {', '.join(missing)}")
    return obj.cls(optimizer, **spec.args)


def set_scheduler(session: Any, spec: CallSpec | None) -> None:
    """Use a new schedule (None: constant learning rate). Restarts the schedule from the optimizer's base lr."""
    if spec is not None:
        check_required(spec, "training.scheduler", "<input>")
    session.training.scheduler = spec
    session.optimizer = session.new_optimizer()


def current_lr(session: Any) -> list[float]:
    """The learning rate of each parameter group of the session's optimizer, now."""
    if session.optimizer is None:
        return []
    return [float(g["lr"]) for g in session.optimizer.param_groups]


__all__ = ["SCHEDULERS", "make_scheduler", "set_scheduler", "current_lr", "check_required"]
