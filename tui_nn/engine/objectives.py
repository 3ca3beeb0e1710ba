"""Losses and optimizers the playground offers, with their validated arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .catalogue import BOOL, CHOICE, FLOAT, INT, ArgSpec, _a


@dataclass(frozen=True)
class Objective:
    name: str
    doc: str
    args: tuple[ArgSpec, ...]
    cls: type
    kind: str = "regression"  # for losses: "regression", "classification", "binary"

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


_RED = _a("reduction", CHOICE, "mean", choices=("mean", "sum", "none"), doc="how per-element losses are combined")

LOSSES: dict[str, Objective] = {o.name: o for o in [
    Objective("MSELoss", "mean of (output - target)^2", (_RED,), nn.MSELoss),
    Objective("L1Loss", "mean of |output - target|", (_RED,), nn.L1Loss),
    Objective("SmoothL1Loss", "L1 for large errors, squared below beta", (_RED, _a("beta", FLOAT, 1.0, min=0.0)),
              nn.SmoothL1Loss),
    Objective("HuberLoss", "squared below delta, linear above", (_RED, _a("delta", FLOAT, 1.0, min=0.0)),
              nn.HuberLoss),
    Objective("CrossEntropyLoss", "log-softmax of the scores + negative log-likelihood of the target class",
              (_RED, _a("label_smoothing", FLOAT, 0.0, min=0.0, max=1.0),
               _a("ignore_index", INT, -100)), nn.CrossEntropyLoss, "classification"),
    Objective("NLLLoss", "negative log-likelihood of the target class, from log-probabilities",
              (_RED, _a("ignore_index", INT, -100)), nn.NLLLoss, "classification"),
    Objective("BCELoss", "binary cross-entropy on probabilities in [0, 1]", (_RED,), nn.BCELoss, "binary"),
    Objective("BCEWithLogitsLoss", "sigmoid + binary cross-entropy, numerically stable", (_RED,),
              nn.BCEWithLogitsLoss, "binary"),
]}

_LR = ArgSpec("lr", FLOAT, 0.01, min=0.0, doc="learning rate")
_WD = _a("weight_decay", FLOAT, 0.0, min=0.0, doc="L2 penalty")
_EPS = _a("eps", FLOAT, 1e-8, min=0.0, doc="added to the denominator for stability")

OPTIMIZERS: dict[str, Objective] = {o.name: o for o in [
    Objective("SGD", "w -= lr * g (with optional momentum)",
              (_LR, _a("momentum", FLOAT, 0.0, min=0.0, doc="fraction of the last update kept"),
               _a("dampening", FLOAT, 0.0, min=0.0, max=1.0, doc="damping of momentum"),
               _WD, _a("nesterov", BOOL, False, doc="Nesterov momentum (needs momentum > 0, dampening 0)")),
              torch.optim.SGD),
    Objective("Adagrad", "per-weight lr scaled by the root of the summed squared gradients",
              (ArgSpec("lr", FLOAT, 0.01, min=0.0, doc="learning rate"),
               _a("lr_decay", FLOAT, 0.0, min=0.0), _WD,
               _a("initial_accumulator_value", FLOAT, 0.0, min=0.0), _a("eps", FLOAT, 1e-10, min=0.0)),
              torch.optim.Adagrad),
    Objective("RMSprop", "per-weight lr scaled by a moving average of squared gradients",
              (_LR, _a("alpha", FLOAT, 0.99, min=0.0, max=1.0, doc="smoothing constant"), _EPS, _WD,
               _a("momentum", FLOAT, 0.0, min=0.0), _a("centered", BOOL, False)), torch.optim.RMSprop),
    Objective("Adam", "momentum (first moment) + RMSprop (second moment), bias-corrected",
              (ArgSpec("lr", FLOAT, 0.001, min=0.0, doc="learning rate"),
               _a("betas", "float_pair", [0.9, 0.999], min=0.0, max=1.0, doc="decay of the two moments"),
               _EPS, _WD, _a("amsgrad", BOOL, False)), torch.optim.Adam),
    Objective("AdamW", "Adam with decoupled weight decay",
              (ArgSpec("lr", FLOAT, 0.001, min=0.0, doc="learning rate"),
               _a("betas", "float_pair", [0.9, 0.999], min=0.0, max=1.0, doc="decay of the two moments"),
               _EPS, _a("weight_decay", FLOAT, 0.01, min=0.0), _a("amsgrad", BOOL, False)), torch.optim.AdamW),
]}

def make_loss(name: str, args: dict[str, Any]) -> nn.Module:
    return LOSSES[name].cls(**args)


def make_optimizer(name: str, params: Any, args: dict[str, Any]) -> torch.optim.Optimizer:
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}
    return OPTIMIZERS[name].cls(params, **kw)
