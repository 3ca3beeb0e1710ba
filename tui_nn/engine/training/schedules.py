"""Learning-rate schedules: torch's own schedulers, stepped once per training step (or, with
`step_every = "epoch"`, once at the end of each epoch).

`[training] scheduler = { type = "StepLR", step_size = 10, gamma = 0.5 }` multiplies the learning
rate by 0.5 every 10 steps. The scheduler belongs to the optimizer it was made with: whenever the
session makes a fresh optimizer (reset, a new optimizer, a rebuilt model) the schedule starts again.
ReduceLROnPlateau is stepped with a loss: the test split's (eval mode) when there is one, else the
training loss of the step the scheduler is stepped at. OneCycleLR cannot be stepped past total_steps:
a run that would is stopped before that step with an error.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from ..errors import EngineError, PresetError, brief, did_you_mean, quote, shown
from ..model.args import check_arg
from ..model.catalogue import (
    BOOL,
    CHOICE,
    FLOAT,
    INT,
    INT_LIST,
    SCHEDULE_LIST,
    ArgSpec,
    _a,
)
from ..spec import CallSpec
from .objectives import Objective, make_optimizer

STEP_EVERY = _a("step_every", CHOICE, "step", choices=("step", "epoch"),
                doc='when the scheduler steps: after every training "step", or at the end of each "epoch" '
                    '(a full batch: every step)')

_SCHEDULERS: list[Objective] = [
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
    Objective("OneCycleLR", "the 1cycle policy: lr rises to max_lr, then anneals far below its start, over total_steps",
              (ArgSpec("max_lr", FLOAT, None, required=True, min=0.0, doc="the highest learning rate of the cycle"),
               ArgSpec("total_steps", INT, None, required=True, min=1, max=2**31 - 1,
                       doc="scheduler steps in the cycle (it cannot be stepped past them)"),
               _a("pct_start", FLOAT, 0.3, min=0.0, max=1.0, doc="the fraction of the cycle spent raising the lr"),
               _a("anneal_strategy", CHOICE, "cos", choices=("cos", "linear"), doc="the annealing curve"),
               _a("cycle_momentum", BOOL, True,
                  doc="cycle the momentum (or Adam's beta1) inversely to the lr: the optimizer needs one"),
               _a("base_momentum", FLOAT, 0.85, min=0.0, doc="the lowest momentum of the cycle"),
               _a("max_momentum", FLOAT, 0.95, min=0.0, doc="the highest momentum of the cycle"),
               _a("div_factor", FLOAT, 25.0, min=0.0, min_open=True, doc="the first lr is max_lr / div_factor"),
               _a("final_div_factor", FLOAT, 1e4, min=0.0, min_open=True,
                  doc="the last lr is the first lr / final_div_factor"),
               _a("three_phase", BOOL, False, doc="a third phase annihilates the lr (fast.ai's schedule has two)")),
              "torch.optim.lr_scheduler.OneCycleLR"),
    Objective("ReduceLROnPlateau", "lr *= factor once the loss has not improved for patience scheduler steps "
                                   "(the test split's loss when there is one, else the training loss)",
              (_a("mode", CHOICE, "min", choices=("min", "max"), doc='"min": a lower loss is an improvement'),
               _a("factor", FLOAT, 0.1, min=0.0, max=1.0, max_open=True, doc="factor applied at each reduction, < 1"),
               _a("patience", INT, 10, min=0, max=2**31 - 1, doc="scheduler steps without improvement tolerated"),
               _a("threshold", FLOAT, 1e-4, min=0.0, doc="the least change that counts as an improvement"),
               _a("threshold_mode", CHOICE, "rel", choices=("rel", "abs"), doc="threshold relative or absolute"),
               _a("cooldown", INT, 0, min=0, max=2**31 - 1, doc="scheduler steps to wait after a reduction"),
               _a("min_lr", FLOAT, 0.0, min=0.0, doc="the lowest learning rate"),
               _a("eps", FLOAT, 1e-8, min=0.0, doc="a reduction smaller than this is skipped")),
              "torch.optim.lr_scheduler.ReduceLROnPlateau"),
    Objective("SequentialLR", "schedules one after another: the next one takes over at each milestone step",
              (ArgSpec("schedulers", SCHEDULE_LIST, None, required=True,
                       doc='the schedules in order, e.g. [ { type = "LinearLR", total_iters = 5 }, '
                           '{ type = "CosineAnnealingLR", T_max = 95 } ]'),
               ArgSpec("milestones", INT_LIST, None, required=True, min=1, max=2**31 - 1,
                       doc="the scheduler steps at which the next schedule takes over: one fewer than schedulers")),
              "torch.optim.lr_scheduler.SequentialLR"),
]
# not inside a SequentialLR, and why
NOT_NESTED = {
    "SequentialLR": "a SequentialLR cannot be nested inside another here: list its schedules in one",
    "ReduceLROnPlateau": "torch's SequentialLR does not support ReduceLROnPlateau (its step needs the loss)",
    "OneCycleLR": "OneCycleLR's end (it cannot be stepped past total_steps) is checked only as the whole schedule",
}
# every schedule takes step_every (ours, not torch's: it is never passed to the scheduler)
SCHEDULERS: dict[str, Objective] = {o.name: Objective(o.name, o.doc, o.args + (STEP_EVERY,), o.impl)
                                    for o in _SCHEDULERS}


def torch_kwargs(spec: CallSpec) -> dict[str, Any]:
    """The keyword arguments torch's scheduler gets: the table's, without step_every."""
    return {k: v for k, v in spec.args.items() if k != STEP_EVERY.name}


def step_every(spec: CallSpec | None) -> str:
    """"step" or "epoch": when the scheduler of `spec` steps."""
    return "step" if spec is None else str(spec.args.get(STEP_EVERY.name, "step"))


def needs_momentum(spec: CallSpec) -> bool:
    """Whether the schedule needs an optimizer with a momentum or betas (OneCycleLR's cycle_momentum)."""
    return spec.type == "OneCycleLR" and bool(spec.args.get("cycle_momentum", True))


def check_required(spec: CallSpec, field: str, source: str) -> None:
    """A scheduler table must give every required argument (torch has no default for them); SequentialLR's
    schedules are checked here, each as a table of its own (their arguments validated in place)."""
    for arg in SCHEDULERS[spec.type].args:
        if arg.required and arg.name not in spec.args:
            raise PresetError(f"{spec.type} needs \"{arg.name}\" ({arg.doc})", source=source,
                              field=f"{field}.{arg.name}")
    if spec.type == "SequentialLR":
        spec.args["schedulers"] = [_inner(v, f"{field}.schedulers[{i}]", source)
                                   for i, v in enumerate(spec.args["schedulers"])]
        milestones = spec.args["milestones"]
        if len(milestones) != len(spec.args["schedulers"]) - 1:
            raise PresetError(f"SequentialLR needs one fewer milestone than schedules: {len(spec.args['schedulers'])} "
                              f"schedules, {len(milestones)} milestones", source=source, field=f"{field}.milestones")
        if any(b <= a for a, b in pairwise(milestones)):
            raise PresetError(f"SequentialLR's milestones must be increasing; got {milestones}", source=source,
                              field=f"{field}.milestones")


def _inner(value: Any, field: str, source: str) -> dict[str, Any]:
    """One schedule of a SequentialLR: a table with a type, validated; returned as the table a file holds."""
    if not isinstance(value, dict):
        raise PresetError(f"expected a schedule table with \"type\"; got {brief(value)}", source=source, field=field)
    name = value.get("type")
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise PresetError(f"expected a schedule name, one of: {', '.join(n for n in SCHEDULERS if n not in NOT_NESTED)}"
                          f"; got {brief(name)}{did_you_mean(name, SCHEDULERS) if isinstance(name, str) else ''}",
                          source=source, field=f"{field}.type")
    if name in NOT_NESTED:
        raise PresetError(f"{name} cannot be inside a SequentialLR: {NOT_NESTED[name]}", source=source,
                          field=f"{field}.type")
    obj = SCHEDULERS[name]
    out: dict[str, Any] = {"type": name}
    for key, v in value.items():
        if key == "type":
            continue
        if key == STEP_EVERY.name:
            raise PresetError("step_every belongs to the SequentialLR, which steps the schedule inside it",
                              source=source, field=f"{field}.{key}")
        arg = obj.arg(key) if isinstance(key, str) else None
        if arg is None:
            names = [a.name for a in obj.args if a.name != STEP_EVERY.name]
            raise PresetError(f"unknown argument {quote(str(key))} for {name}"
                              f"{did_you_mean(str(key), names)}; expected one of: {', '.join(names)}",
                              source=source, field=f"{field}.{shown(str(key), 60)}")
        out[key] = check_arg(arg, v, f"{field}.{key}", source)
    check_required(CallSpec(name, {k: v for k, v in out.items() if k != "type"}), field, source)
    return out


def make_scheduler(spec: CallSpec | None, optimizer: torch.optim.Optimizer) -> Any:
    """The torch scheduler for `spec` on `optimizer`, or None; what torch refuses raises EngineError."""
    if spec is None:
        return None
    if spec.type not in SCHEDULERS:
        raise EngineError(f"unknown scheduler \"{spec.type}\"; expected one of: {', '.join(SCHEDULERS)}")
    obj = SCHEDULERS[spec.type]
    missing = [a.name for a in obj.args if a.required and a.name not in spec.args]
    if missing:
        raise EngineError(f"{spec.type} needs {', '.join(missing)}")
    if needs_momentum(spec) and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise EngineError(f"training.scheduler.cycle_momentum: OneCycleLR cycles the momentum, but "
                          f"{type(optimizer).__name__} has neither momentum nor betas",
                          hint="set cycle_momentum = false, or use an optimizer with momentum (SGD, RMSprop) or "
                               "betas (Adam and its kin)")
    try:
        if spec.type == "SequentialLR":  # the schedules made in order on the one optimizer, as torch's docs do
            inner = [SCHEDULERS[t["type"]].cls(optimizer, **{k: v for k, v in t.items() if k != "type"})
                     for t in spec.args["schedulers"]]
            return obj.cls(optimizer, schedulers=inner, milestones=list(spec.args["milestones"]))
        return obj.cls(optimizer, **torch_kwargs(spec))
    except (ValueError, TypeError, KeyError, ZeroDivisionError, OverflowError) as err:
        raise EngineError(f"scheduler {spec.type} cannot be made: {shown(str(err) or type(err).__name__, 500)}",
                          hint="check the scheduler's arguments") from None


def set_scheduler(session: Any, spec: CallSpec | None) -> None:
    """Use a new schedule (None: constant learning rate). Restarts the schedule from the optimizer's base lr."""
    if spec is not None:
        check_required(spec, "training.scheduler", "<input>")
        params = list(session.model.parameters())
        if params:  # what torch refuses (OneCycleLR's cycle_momentum) is refused before anything changes
            o = session.training.optimizer
            make_scheduler(spec, make_optimizer(o.type, params, o.args))
    session.training.scheduler = spec
    session.optimizer = session.new_optimizer()


def current_lr(session: Any) -> list[float]:
    """The learning rate of each parameter group of the session's optimizer, now."""
    if session.optimizer is None:
        return []
    return [float(g["lr"]) for g in session.optimizer.param_groups]


__all__ = ["SCHEDULERS", "make_scheduler", "set_scheduler", "current_lr", "check_required", "torch_kwargs",
           "step_every", "needs_momentum", "STEP_EVERY"]
