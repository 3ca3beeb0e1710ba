"""Losses and optimizers the playground offers, with their validated arguments."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..errors import EngineError, brief, quote, shown
from ..model.catalogue import BOOL, CHOICE, FLOAT, INT, ArgSpec, _a, resolve


@dataclass(frozen=True)
class Objective:
    name: str
    doc: str
    args: tuple[ArgSpec, ...]
    impl: str  # the torch class, "torch.optim.Adam": imported on first use (`cls`), not with the catalogue
    kind: str = "regression"  # for losses: "regression", "classification", "binary"

    @property
    def cls(self) -> Any:
        return resolve(self.impl)

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


_RED = _a("reduction", CHOICE, "mean", choices=("mean", "sum"), doc="how per-element losses are combined",
         refused=(("none", 'reduction = "none" gives one loss value per element, but training needs the loss as '
                           'one number (a scalar) to take the gradient of',
                   'use "mean" (the average, the usual choice) or "sum"'),))

LOSSES: dict[str, Objective] = {o.name: o for o in [
    Objective("MSELoss", "mean of (output - target)^2", (_RED,), "torch.nn.MSELoss"),
    Objective("L1Loss", "mean of |output - target|", (_RED,), "torch.nn.L1Loss"),
    Objective("SmoothL1Loss", "L1 for large errors, squared below beta", (_RED, _a("beta", FLOAT, 1.0, min=0.0)),
              "torch.nn.SmoothL1Loss"),
    Objective("HuberLoss", "squared below delta, linear above",
              (_RED, _a("delta", FLOAT, 1.0, min=0.0, min_open=True, doc="where squared turns linear (> 0)")),
              "torch.nn.HuberLoss"),
    Objective("CrossEntropyLoss", "log-softmax of the scores + negative log-likelihood of the target class",
              (_RED, _a("label_smoothing", FLOAT, 0.0, min=0.0, max=1.0),
               _a("ignore_index", INT, -100)), "torch.nn.CrossEntropyLoss", "classification"),
    Objective("NLLLoss", "negative log-likelihood of the target class, from log-probabilities",
              (_RED, _a("ignore_index", INT, -100)), "torch.nn.NLLLoss", "classification"),
    Objective("BCELoss", "binary cross-entropy on probabilities in [0, 1]", (_RED,), "torch.nn.BCELoss", "binary"),
    Objective("BCEWithLogitsLoss", "sigmoid + binary cross-entropy, numerically stable", (_RED,),
              "torch.nn.BCEWithLogitsLoss", "binary"),
]}

_LR = ArgSpec("lr", FLOAT, 0.01, min=0.0, doc="learning rate")
_WD = _a("weight_decay", FLOAT, 0.0, min=0.0, doc="L2 penalty")
_EPS = _a("eps", FLOAT, 1e-8, min=0.0, doc="added to the denominator for stability")
_BETAS = _a("betas", "float_pair", [0.9, 0.999], min=0.0, max=1.0, max_open=True,
            doc="decay of the two moments, each in [0, 1)")

OPTIMIZERS: dict[str, Objective] = {o.name: o for o in [
    Objective("SGD", "w -= lr * g (with optional momentum)",
              (_LR, _a("momentum", FLOAT, 0.0, min=0.0, doc="fraction of the last update kept"),
               _a("dampening", FLOAT, 0.0, min=0.0, max=1.0, doc="damping of momentum"),
               _WD, _a("nesterov", BOOL, False, doc="Nesterov momentum (needs momentum > 0, dampening 0)")),
              "torch.optim.SGD"),
    Objective("Adagrad", "per-weight lr scaled by the root of the summed squared gradients",
              (ArgSpec("lr", FLOAT, 0.01, min=0.0, doc="learning rate"),
               _a("lr_decay", FLOAT, 0.0, min=0.0), _WD,
               _a("initial_accumulator_value", FLOAT, 0.0, min=0.0), _a("eps", FLOAT, 1e-10, min=0.0)),
              "torch.optim.Adagrad"),
    Objective("RMSprop", "per-weight lr scaled by a moving average of squared gradients",
              (_LR, _a("alpha", FLOAT, 0.99, min=0.0, max=1.0, doc="smoothing constant"), _EPS, _WD,
               _a("momentum", FLOAT, 0.0, min=0.0), _a("centered", BOOL, False)), "torch.optim.RMSprop"),
    Objective("Adam", "momentum (first moment) + RMSprop (second moment), bias-corrected",
              (ArgSpec("lr", FLOAT, 0.001, min=0.0, doc="learning rate"),
               _BETAS,
               _EPS, _WD, _a("amsgrad", BOOL, False)), "torch.optim.Adam"),
    Objective("AdamW", "Adam with decoupled weight decay",
              (ArgSpec("lr", FLOAT, 0.001, min=0.0, doc="learning rate"),
               _BETAS,
               _EPS, _a("weight_decay", FLOAT, 0.01, min=0.0), _a("amsgrad", BOOL, False)), "torch.optim.AdamW"),
]}


def check_combination(name: str, args: dict[str, Any]) -> tuple[str, str, str] | None:
    """(argument, message, hint) for optimizer arguments that are each valid but invalid together, else None.

    Each argument's own bounds are checked against its ArgSpec (`preset.check_arg`); this is what torch
    refuses on top of those."""
    if name == "SGD" and args.get("nesterov"):
        momentum = float(args.get("momentum", 0.0))
        dampening = float(args.get("dampening", 0.0))
        if momentum <= 0:
            return ("nesterov", f"Nesterov momentum needs momentum > 0 (momentum is {momentum:g})",
                    "set momentum (0.9 is usual), or nesterov = false")
        if dampening != 0:
            return ("nesterov", f"Nesterov momentum needs dampening = 0 (dampening is {dampening:g})",
                    "set dampening = 0, or nesterov = false")
    return None


def _arg_problem(obj: Objective, args: dict[str, Any]) -> tuple[str, str, str] | None:
    """The first argument outside its bounds (for values that did not come through a preset)."""
    for key, value in args.items():
        spec = obj.arg(key)
        if spec is None:
            names = ", ".join(a.name for a in obj.args)
            return key, f"{obj.name} has no argument {quote(key)}", f"its arguments: {names}"
        for refused, reason, hint in spec.refused:
            if isinstance(value, str) and value == refused:
                return key, reason, hint
        if spec.kind == CHOICE and value not in spec.choices:
            return key, f"{key} must be one of {', '.join(spec.choices)}; got {brief(value)}", spec.doc
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if isinstance(v, int) and spec.kind == INT and not -2**63 <= v < 2**63:  # torch holds int64
                return key, f"{key} is out of range: a 64-bit integer at most; got {brief(v)}", spec.doc
            if isinstance(v, int) and abs(v) > sys.float_info.max:  # no float holds it
                return key, f"{key} is out of range; got {brief(v)}", spec.doc
            if spec.min is not None and (v <= spec.min if spec.min_open else v < spec.min):
                op = ">" if spec.min_open else ">="
                return key, f"{key} must be {op} {spec.min:g}; got {brief(v)}", spec.doc
            if spec.max is not None and (v >= spec.max if spec.max_open else v > spec.max):
                op = "<" if spec.max_open else "<="
                return key, f"{key} must be {op} {spec.max:g}; got {brief(v)}", spec.doc
    return None


def _refuse(what: str, name: str, problem: tuple[str, str, str]) -> EngineError:
    key, message, hint = problem
    return EngineError(f"{what} {name}: {message}", hint=hint)


def make_loss(name: str, args: dict[str, Any]) -> nn.Module:
    """The loss module; arguments torch refuses raise EngineError (never a bare ValueError/TypeError)."""
    obj = LOSSES.get(name)
    if obj is None:
        raise EngineError(f"unknown loss {quote(name)}", hint=f"one of: {', '.join(LOSSES)}")
    problem = _arg_problem(obj, args)
    if problem is not None:
        raise _refuse("loss", name, problem)
    try:
        return obj.cls(**args)
    except (ValueError, TypeError, RuntimeError, OverflowError) as err:
        raise EngineError(f"loss {name} cannot be made: {shown(str(err), 500)}",
                          hint="check the loss's arguments") from None


_VALID_OPTIMIZERS: set[tuple[Any, ...]] = set()  # (name, arguments) already checked


def make_optimizer(name: str, params: Any, args: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer; arguments torch refuses raise EngineError (never a bare ValueError/TypeError)."""
    obj = OPTIMIZERS.get(name)
    if obj is None:
        raise EngineError(f"unknown optimizer {quote(name)}", hint=f"one of: {', '.join(OPTIMIZERS)}")
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}
    try:
        key: Any = (name, tuple(sorted(kw.items())))
        hash(key)
    except TypeError:  # an unhashable value: checked every time (and refused below)
        key = None
    if key is None or key not in _VALID_OPTIMIZERS:  # checked once: lab 004 makes a new optimizer every step
        problem = _arg_problem(obj, args) or check_combination(name, args)
        if problem is not None:
            raise _refuse("optimizer", name, problem)
        if key is not None and len(_VALID_OPTIMIZERS) < 256:
            _VALID_OPTIMIZERS.add(key)
    try:
        return obj.cls(params, **kw)
    except (ValueError, TypeError, OverflowError) as err:
        raise EngineError(f"optimizer {name} cannot be made: {shown(str(err), 500)}",
                          hint="check the optimizer's arguments") from None
