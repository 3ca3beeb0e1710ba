"""Losses and optimizers the playground offers, with their validated arguments."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from ..errors import EngineError, brief, quote, shown
from ..model.catalogue import (
    BOOL,
    CHOICE,
    FLOAT,
    FLOATS,
    INT,
    OPT_INT,
    ArgSpec,
    _a,
    resolve,
)


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

_WEIGHT = _a("weight", FLOATS, None, min=0.0,
             doc="one weight per class (a list as long as the output's classes): torch's weight tensor")

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
               _a("ignore_index", INT, -100), _WEIGHT), "torch.nn.CrossEntropyLoss", "classification"),
    Objective("NLLLoss", "negative log-likelihood of the target class, from log-probabilities",
              (_RED, _a("ignore_index", INT, -100), _WEIGHT), "torch.nn.NLLLoss", "classification"),
    Objective("BCELoss", "binary cross-entropy on probabilities in [0, 1]", (_RED,), "torch.nn.BCELoss", "binary"),
    Objective("BCEWithLogitsLoss", "sigmoid + binary cross-entropy, numerically stable",
              (_RED, _a("pos_weight", FLOATS, None, min=0.0,
                        doc="weight of the positive examples, one per output column (torch's pos_weight tensor)")),
              "torch.nn.BCEWithLogitsLoss", "binary"),
    Objective("KLDivLoss", "Kullback-Leibler divergence: output log-probabilities against a target distribution",
              (_a("reduction", CHOICE, "mean", choices=("mean", "batchmean", "sum"),
                  doc='"batchmean" is the mathematical KL divergence (torch warns about "mean")',
                  refused=_RED.refused),
               _a("log_target", BOOL, False, doc="the target is given as log-probabilities too")),
              "torch.nn.KLDivLoss"),
    Objective("HingeEmbeddingLoss", "targets of 1 or -1: x where 1, max(0, margin - x) where -1",
              (_RED, _a("margin", FLOAT, 1.0)), "torch.nn.HingeEmbeddingLoss"),
]}

# Losses of torch.nn left out, and why: their call is not loss(output, target). GaussianNLLLoss needs a variance
# input beside the output, MarginRankingLoss and CosineEmbeddingLoss two inputs and a target.
NOT_OFFERED = {
    "GaussianNLLLoss": "it takes loss(output, target, var): a variance beside the output, which a network of "
                       "one output cannot give here",
    "MarginRankingLoss": "it takes loss(x1, x2, y): two inputs to rank and a target",
    "CosineEmbeddingLoss": "it takes loss(x1, x2, y): two inputs to compare and a target",
}


def torch_args(obj: Objective, args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments torch's class gets: a list of class weights becomes a float32 tensor."""
    out = dict(args)
    import torch  # here, not above: the tables are read before torch is imported (the preview, the CLI)

    for a in obj.args:
        if a.kind == FLOATS and out.get(a.name) is not None:
            out[a.name] = torch.tensor(out[a.name], dtype=torch.float32)
    return out


_LR = ArgSpec("lr", FLOAT, 0.01, min=0.0, doc="learning rate")
_WD = _a("weight_decay", FLOAT, 0.0, min=0.0, doc="L2 penalty")
_EPS = _a("eps", FLOAT, 1e-8, min=0.0, doc="added to the denominator for stability")
_BETAS = _a("betas", "float_pair", [0.9, 0.999], min=0.0, max=1.0, max_open=True,
            doc="decay of the two moments, each in [0, 1)")
_DECOUPLED = _a("decoupled_weight_decay", BOOL, False, doc="weight decay as AdamW applies it")

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
    Objective("Adadelta", "per-weight steps from moving averages of squared gradients and squared updates",
              (ArgSpec("lr", FLOAT, 1.0, min=0.0, doc="learning rate (scales the update)"),
               _a("rho", FLOAT, 0.9, min=0.0, max=1.0, doc="decay of the moving averages"),
               _a("eps", FLOAT, 1e-6, min=0.0, doc="added to the denominator for stability"), _WD),
              "torch.optim.Adadelta"),
    Objective("NAdam", "Adam with Nesterov momentum",
              (ArgSpec("lr", FLOAT, 0.002, min=0.0, doc="learning rate"), _BETAS, _EPS, _WD,
               _a("momentum_decay", FLOAT, 0.004, min=0.0, doc="decay of the momentum schedule"), _DECOUPLED),
              "torch.optim.NAdam"),
    Objective("RAdam", "Adam with the variance of the adaptive lr rectified in early steps",
              (ArgSpec("lr", FLOAT, 0.001, min=0.0, doc="learning rate"), _BETAS, _EPS, _WD, _DECOUPLED),
              "torch.optim.RAdam"),
    Objective("Adamax", "Adam with the infinity norm in place of the second moment",
              (ArgSpec("lr", FLOAT, 0.002, min=0.0, doc="learning rate"), _BETAS, _EPS, _WD),
              "torch.optim.Adamax"),
    Objective("LBFGS", "quasi-Newton steps from a history of gradients; each step evaluates the loss up to "
                       "max_eval times (the trainer passes torch's closure)",
              (ArgSpec("lr", FLOAT, 1.0, min=0.0, doc="learning rate (scales each step)"),
               _a("max_iter", INT, 20, min=1, max=2**31 - 1, doc="iterations per optimizer step"),
               _a("max_eval", OPT_INT, None, min=1, max=2**31 - 1,
                  doc="loss evaluations per optimizer step at most (omitted: max_iter * 5 / 4)"),
               _a("tolerance_grad", FLOAT, 1e-7, min=0.0, doc="stop once the gradient's largest entry is below"),
               _a("tolerance_change", FLOAT, 1e-9, min=0.0, doc="stop once the loss or step changes less"),
               _a("history_size", INT, 100, min=1, max=2**31 - 1, doc="updates kept to estimate the curvature"),
               _a("line_search_fn", CHOICE, "none", choices=("none", "strong_wolfe"),
                  doc='"strong_wolfe": a line search (torch\'s only one); "none": fixed steps of lr')),
              "torch.optim.LBFGS"),
]}

# an optimizer argument whose word in a file stands for torch's None (TOML has no null)
_NONE_WORDS = {("LBFGS", "line_search_fn"): "none"}


def optimizer_kwargs(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments torch's optimizer class gets: lists as tuples, "none" words as None."""
    return {k: (None if _NONE_WORDS.get((name, k)) == v else tuple(v) if isinstance(v, list) else v)
            for k, v in args.items()}


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
        return obj.cls(**torch_args(obj, args))
    except (ValueError, TypeError, RuntimeError, OverflowError) as err:
        raise EngineError(f"loss {name} cannot be made: {shown(str(err), 500)}",
                          hint="check the loss's arguments") from None


_VALID_OPTIMIZERS: set[tuple[Any, ...]] = set()  # (name, arguments) already checked


def make_optimizer(name: str, params: Any, args: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer; arguments torch refuses raise EngineError (never a bare ValueError/TypeError)."""
    obj = OPTIMIZERS.get(name)
    if obj is None:
        raise EngineError(f"unknown optimizer {quote(name)}", hint=f"one of: {', '.join(OPTIMIZERS)}")
    kw = optimizer_kwargs(name, args)
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
