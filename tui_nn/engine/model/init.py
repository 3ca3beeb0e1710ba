"""Initialisation schemes: each one a `torch.nn.init` function, with torch's argument names and defaults.

A layer's `init` names a scheme (`init = "kaiming_uniform"`) or is a table (`{ scheme = "kaiming_normal",
mode = "fan_out", nonlinearity = "relu" }`). The scheme is applied to the layer's `weight`, exactly as
`nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")` after the model is built;
the bias keeps the initialisation its constructor gave it (what that one line of PyTorch leaves), unless
the table says `bias = <number>`: then `nn.init.constant_(layer.bias, <number>)` follows. On a Residual
block the scheme is applied to every layer of its body that has a weight, in order. "default" is no
initialisation at all: the weights the layers' constructors drew (in a preset it changes nothing; applied
to a built layer in the app, it redraws weight and bias with the layer's own `reset_parameters()`).

This module does not import torch (presets are read before torch loads): the table and the checks that
need only numbers and shapes are here; model/build.py applies the calls and files/export.py writes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .catalogue import CHOICE, FLOAT, FLOAT32_MAX, ArgSpec

NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")  # nn.init.calculate_gain's


@dataclass(frozen=True)
class InitScheme:
    name: str
    fn: str | None  # the torch.nn.init function ("kaiming_uniform_"); None for "default"
    args: tuple[ArgSpec, ...]
    doc: str
    fan: bool = False  # torch computes fan_in/fan_out (or a QR): the weight needs at least 2 dimensions

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


def _f(name: str, default: Any, doc: str, **kw: Any) -> ArgSpec:
    return ArgSpec(name, FLOAT, default, doc=doc, float32=True, **kw)


_GAIN = _f("gain", 1.0, "scaling factor (nn.init.calculate_gain(nonlinearity) gives the recommended one)", min=0.0)
_KAIMING = (_f("a", 0.0, "negative slope of the rectifier after this layer (used with leaky_relu)"),
            ArgSpec("mode", CHOICE, "fan_in", choices=("fan_in", "fan_out"),
                    doc="fan_in keeps the forward pass's variance, fan_out the backward pass's"),
            ArgSpec("nonlinearity", CHOICE, "leaky_relu", choices=NONLINEARITIES,
                    doc="the function after this layer: its gain (relu: sqrt(2)) scales the weights"))

_SCHEMES = (
    InitScheme("default", None, (), "the layer's own initialisation, as its constructor draws it (no redraw)"),
    InitScheme("zeros", "zeros_", (), "nn.init.zeros_: all 0"),
    InitScheme("ones", "ones_", (), "nn.init.ones_: all 1"),
    InitScheme("constant", "constant_", (_f("val", None, "the value to fill with", required=True),),
               "nn.init.constant_: all val"),
    InitScheme("uniform", "uniform_", (_f("a", 0.0, "lower bound"), _f("b", 1.0, "upper bound")),
               "nn.init.uniform_: U(a, b)"),
    InitScheme("normal", "normal_", (_f("mean", 0.0, "mean"), _f("std", 1.0, "standard deviation", min=0.0)),
               "nn.init.normal_: N(mean, std^2)"),
    InitScheme("trunc_normal", "trunc_normal_",
               (_f("mean", 0.0, "mean"), _f("std", 1.0, "standard deviation", min=0.0, min_open=True),
                _f("a", -2.0, "minimum cutoff value"), _f("b", 2.0, "maximum cutoff value")),
               "nn.init.trunc_normal_: N(mean, std^2), values outside [a, b] redrawn"),
    InitScheme("xavier_uniform", "xavier_uniform_", (_GAIN,),
               "nn.init.xavier_uniform_ (Glorot): U(-g, g), g = gain * sqrt(6 / (fan_in + fan_out))", fan=True),
    InitScheme("xavier_normal", "xavier_normal_", (_GAIN,),
               "nn.init.xavier_normal_ (Glorot): N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))", fan=True),
    InitScheme("kaiming_uniform", "kaiming_uniform_", _KAIMING,
               "nn.init.kaiming_uniform_ (He): U(-g, g), g = gain * sqrt(3 / fan_mode)", fan=True),
    InitScheme("kaiming_normal", "kaiming_normal_", _KAIMING,
               "nn.init.kaiming_normal_ (He): N(0, std^2), std = gain / sqrt(fan_mode)", fan=True),
    InitScheme("orthogonal", "orthogonal_", (_f("gain", 1.0, "scaling factor"),),
               "nn.init.orthogonal_: a (semi-)orthogonal matrix times gain", fan=True),
)

SCHEMES: dict[str, InitScheme] = {s.name: s for s in _SCHEMES}
INIT_SCHEMES = tuple(SCHEMES)
BIAS = _f("bias", None, "sets the bias with nn.init.constant_ (without it the bias keeps its default)")
ALIASES = {("constant", "value"): "val"}  # the name tui-nn used before torch's own (`val`), still read


def keys(scheme: str) -> list[str]:
    """The keys an init table of `scheme` may hold besides `scheme`."""
    return [a.name for a in SCHEMES[scheme].args] + ["bias"]


def table_problem(table: dict[str, Any]) -> tuple[str, str, str] | None:
    """(key, message, hint) for arguments torch refuses (or cannot finish with) together, else None. The
    values are already of the right kinds and bounds one by one."""
    scheme = table["scheme"]
    if scheme == "uniform":
        a, b = table.get("a", 0.0), table.get("b", 1.0)
        if a > b:
            return ("b" if "b" in table else "a", f"init \"uniform\" draws from [a, b), so a must be <= b; got "
                    f"a = {a:g}, b = {b:g}", "swap a and b" if "a" in table and "b" in table else
                    "b defaults to 1 and a to 0: set both")
        if b - a > FLOAT32_MAX:
            return "b", f"init \"uniform\": the range b - a = {b - a:g} is too large for float32", ""
    if scheme == "normal":
        mean, std = table.get("mean", 0.0), table.get("std", 1.0)
        if abs(mean) + _NORMAL_REACH * std > FLOAT32_MAX:
            return ("std" if "std" in table else "mean", f"init \"normal\" with mean {mean:g} and std {std:g} would "
                    f"draw values too large for float32 (some would become inf)",
                    f"keep |mean| + {_NORMAL_REACH:g} std below {FLOAT32_MAX:.4g}")
    if scheme == "trunc_normal":
        return _trunc_normal_problem(table)
    return None


_NORMAL_REACH = 10.0  # a normal draw lies beyond 10 std with probability about 1.5e-23: the values' reach


MIN_ACCEPTANCE = 0.01  # trunc_normal_ redraws rejected values until none is left: at most 100 draws a value


def _trunc_normal_problem(table: dict[str, Any]) -> tuple[str, str, str] | None:
    mean, std = table.get("mean", 0.0), table.get("std", 1.0)
    a, b = table.get("a", -2.0), table.get("b", 2.0)
    if a > b:
        return ("b" if "b" in table else "a", f"init \"trunc_normal\" keeps values in [a, b], so a must be <= b; "
                f"got a = {a:g}, b = {b:g}", "swap a and b" if "a" in table and "b" in table else
                "a defaults to -2 and b to 2: set both")
    if mean < a - 2 * std or mean > b + 2 * std:
        return ("mean", f"init \"trunc_normal\": the mean {mean:g} is more than 2 std from [{a:g}, {b:g}], where "
                "torch warns that the distribution of values may be incorrect",
                "put the mean inside [a, b] (or within 2 std of it), or widen std")
    rate = _trunc_normal_acceptance(mean, std, a, b)
    if rate < MIN_ACCEPTANCE:
        return ("b" if "b" in table else "a",
                f"init \"trunc_normal\" would draw about {1 / rate:.3g} candidates for each value it keeps (it "
                f"redraws every value outside [{a:g}, {b:g}] until none is left): at most "
                f"{1 / MIN_ACCEPTANCE:g} are allowed", "bring [a, b] closer to the mean, or widen std")
    return None


def _q(z: float) -> float:
    """P(Z > z) for a standard normal Z, accurate in the upper tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _trunc_normal_acceptance(mean: float, std: float, a: float, b: float) -> float:
    """The share of candidates torch 2.13's `nn.init.trunc_normal_` keeps (its two samplers: normal draws
    rejected outside [a, b] when the interval holds more than 30 % of the mass, else uniform draws on [a, b]
    rejected against the density's peak there). The mean is within 2 std of [a, b] (checked before)."""
    za, zb = (a - mean) / std, (b - mean) / std
    p = (1.0 + math.erf(zb / math.sqrt(2.0))) / 2.0 - (1.0 + math.erf(za / math.sqrt(2.0))) / 2.0  # torch's p
    if p > 0.3:
        return p
    if b - a <= 1e-6 * std:  # the density is flat over the interval: almost every candidate is kept
        return 1.0
    if za >= 0:
        mass = _q(za) - _q(zb)
    elif zb <= 0:
        mass = _q(-zb) - _q(-za)
    else:
        mass = 1.0 - _q(-za) - _q(zb)
    zmode = min(max(0.0, za), zb)  # the density's peak on [a, b], in std units from the mean
    return min(1.0, std * math.sqrt(2 * math.pi) * mass * math.exp(0.5 * zmode * zmode) / (b - a))


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of `shape`, as nn.init._calculate_fan_in_and_fan_out computes them."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float) -> float:
    """nn.init.calculate_gain, in plain Python (for the size check before anything is built)."""
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + param ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    return 1.0


def weight_problem(table: dict[str, Any], layer: str, shape: tuple[int, ...] | None,
                   has_bias: bool) -> tuple[str, str, str] | None:
    """(key, message, hint) when `table`'s scheme cannot be applied to a weight of `shape` (None: the layer has
    no weight) of the layer `layer` ("BatchNorm1d", "layer 2.1 (Linear)"), or its bias key to a layer without
    a bias; else None."""
    scheme = SCHEMES[table["scheme"]]
    if "bias" in table and not has_bias:
        return "bias", f"{layer} has no bias to set", "remove bias from the init table (or give the layer a bias)"
    if scheme.fn is None:
        return None
    if shape is None:
        return ("scheme", f"{layer} has no weight to initialise",
                "set init on a layer with a weight (Linear, Conv, a norm layer with affine parameters)")
    if scheme.fan and len(shape) < 2:
        return ("scheme", f"{scheme.name} needs a weight of at least 2 dimensions (torch computes fan_in and "
                f"fan_out from it); {layer}'s weight has shape {list(shape)}",
                "use normal, uniform, trunc_normal or constant for this layer")
    if scheme.name in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
        fan_in, fan_out = fans(shape)
        if scheme.name.startswith("xavier"):
            std = table.get("gain", 1.0) * math.sqrt(2.0 / float(fan_in + fan_out))
        else:
            gain = calculate_gain(table.get("nonlinearity", "leaky_relu"), table.get("a", 0.0))
            std = gain / math.sqrt(fan_in if table.get("mode", "fan_in") == "fan_in" else fan_out)
        if (_NORMAL_REACH if scheme.name.endswith("normal") else 2 * math.sqrt(3.0)) * std > FLOAT32_MAX:
            return ("gain" if scheme.name.startswith("xavier") else "a",
                    f"{scheme.name} would draw weights with std {std:.4g}: too large for float32 (some would "
                    "become inf)", "")
    return None


def init_calls(table: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The torch.nn.init calls a scheme makes on one layer, in order: (tensor name, function, keyword arguments
    as the user gave them). "default" makes none for the weight."""
    scheme = SCHEMES[table["scheme"]]
    calls: list[tuple[str, str, dict[str, Any]]] = []
    if scheme.fn is not None:
        calls.append(("weight", scheme.fn, {a.name: table[a.name] for a in scheme.args if a.name in table}))
    if "bias" in table:
        calls.append(("bias", "constant_", {"val": table["bias"]}))
    return calls


__all__ = ["ALIASES", "BIAS", "INIT_SCHEMES", "NONLINEARITIES", "SCHEMES", "InitScheme", "init_calls", "keys",
           "table_problem", "weight_problem"]
