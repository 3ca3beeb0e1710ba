"""The layer catalogue: every layer type the playground offers, its constructor arguments
(type, default, bounds, one-line explanation) and its parameters.

The UI generates its forms from this table; the preset loader validates against it; the builder
constructs `torch.nn` modules from it. Argument names are torch's own, so a PyTorch user writes
them from memory.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max: larger numbers become inf in float32

# Argument kinds
INT = "int"
FLOAT = "float"
BOOL = "bool"
INTS = "int_or_tuple"  # an int, or a list of `dims` ints
CHOICE = "choice"  # one of `choices` (strings)
PADDING = "padding"  # int, list of ints, or "same"/"valid"
OPT_INT = "optional_int"  # int or omitted (None)
OPT_FLOAT = "optional_float"
FLOATS = "float_list"  # a list of numbers (a loss's class weights), passed to torch as a float32 tensor
INT_LIST = "int_list"  # a list of integers (MultiStepLR's milestones)
SCHEDULE_LIST = "schedule_list"  # a list of schedule tables (SequentialLR's schedulers), checked by schedules.py
MAX_SCHEDULES = 16  # tables in a SCHEDULE_LIST at most
MAX_LIST = 65_536  # entries of a FLOATS or INT_LIST argument at most


@dataclass(frozen=True)
class ArgSpec:
    name: str
    kind: str
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    dims: int = 1  # for INTS/PADDING: the tuple length torch accepts
    doc: str = ""
    min_open: bool = False  # the bound itself is excluded: value > min (not >=)
    max_open: bool = False  # value < max (not <=)
    float32: bool = False  # a constant the layer applies to float32 values: what float32 cannot hold is refused
    refused: tuple[tuple[str, str, str], ...] = ()  # (value, reason, hint): a value torch takes that cannot work
    none_as: str = ""  # the word a file writes for torch's None (TOML has no null): BatchNorm momentum "cumulative"

    def describe(self) -> str:
        parts = [self.kind]
        if self.required:
            parts.append("required")
        else:
            parts.append(f"default {self.default!r}")
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            left = "(" if self.min_open else "["
            right = ")" if self.max_open else "]"
            parts.append(f"in {left}{lo}, {hi}{right}")
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        return "; ".join(parts)


@dataclass(frozen=True)
class LayerType:
    name: str
    doc: str
    category: str  # "layer", "activation", "block"
    args: tuple[ArgSpec, ...] = ()
    params: tuple[str, ...] = ()  # names of learnable parameters (the hand-settable ones)
    ignored_args: tuple[str, ...] = ()  # accepted for compatibility, not passed on
    impl: str | None = None  # the module class, "torch.nn.Linear": imported when first built (`cls`)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> Any:
        return None if self.impl is None else resolve(self.impl)

    def arg(self, name: str) -> ArgSpec | None:
        for a in self.args:
            if a.name == name:
                return a
        return None

    @property
    def arg_names(self) -> list[str]:
        return [a.name for a in self.args]


def _a(name: str, kind: str, default: Any = None, **kw: Any) -> ArgSpec:
    return ArgSpec(name, kind, default, **kw)


def _feat(name: str, doc: str) -> ArgSpec:
    return ArgSpec(name, INT, None, required=True, min=1, max=MAX_SIZE, doc=doc)


MAX_SIZE = 10**12  # features/channels: larger sizes are refused by the memory budget, with the bytes needed
_BIAS = _a("bias", BOOL, True, doc="learn an additive bias")
_INPLACE = ("inplace",)


def _conv(dims: int) -> tuple[ArgSpec, ...]:
    return (
        _feat("in_channels", "channels of the input"),
        _feat("out_channels", "channels produced (number of filters)"),
        ArgSpec("kernel_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=dims, doc="size of each filter"),
        _a("stride", INTS, 1, min=1, max=2**31 - 1, dims=dims, doc="step of the filter over the input"),
        _a("padding", PADDING, 0, min=0, max=2**31 - 1, dims=dims, choices=("same", "valid"),
           doc="zeros added on each side (or 'same'/'valid')"),
        _a("dilation", INTS, 1, min=1, max=2**31 - 1, dims=dims, doc="spacing between kernel elements"),
        _a("groups", INT, 1, min=1, max=2**31 - 1, doc="blocked connections from input to output channels"),
        _BIAS,
        _a("padding_mode", CHOICE, "zeros", choices=("zeros", "reflect", "replicate", "circular"),
           doc="how the padding is filled"),
    )


def _norm(dims_doc: str) -> tuple[ArgSpec, ...]:
    return (
        _feat("num_features", f"channels C of the {dims_doc} input"),
        _a("eps", FLOAT, 1e-5, min=0.0, doc="added to the variance for stability", float32=True),
        _a("momentum", OPT_FLOAT, 0.1, min=0.0, max=1.0, none_as="cumulative",
           doc="running-statistics update rate; \"cumulative\" is torch's None: a cumulative moving average"),
        _a("affine", BOOL, True, doc="learn a scale (weight) and shift (bias)"),
        _a("track_running_stats", BOOL, True, doc="keep running mean/variance for eval mode"),
    )


_ACT_DIM = _a("dim", OPT_INT, None, min=-8, max=8,
              doc="dimension that sums to 1 (omitted: torch's implicit choice, dim 0 for 0-, 1- and 3-D input, "
                  "else 1, with its deprecation warning)")


def softmax_dim(dim: int | None, ndim: int) -> int:
    """The dim Softmax/LogSoftmax(dim) reduce over for an input of `ndim` dimensions: `dim` itself, or for None
    torch.nn.functional._get_softmax_dim's implicit choice (0 for 0-, 1- and 3-D input, else 1)."""
    if dim is not None:
        return dim
    return 0 if ndim in (0, 1, 3) else 1

_TYPES: list[LayerType] = [
    LayerType("Linear", "Fully connected: y = x A^T + b", "layer",
              (_feat("in_features", "size of each input sample (last dimension)"),
               _feat("out_features", "size of each output sample"), _BIAS),
              ("weight", "bias"), impl="torch.nn.Linear"),
    LayerType("Conv1d", "1-D convolution over (N, C, L)", "layer", _conv(1), ("weight", "bias"),
              impl="torch.nn.Conv1d"),
    LayerType("Conv2d", "2-D convolution over (N, C, H, W)", "layer", _conv(2), ("weight", "bias"),
              impl="torch.nn.Conv2d"),
    LayerType("MaxPool2d", "2-D max pooling: the largest value in each window", "layer",
              (ArgSpec("kernel_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=2, doc="window size"),
               _a("stride", INTS, None, min=1, max=2**31 - 1, dims=2, doc="window step (default: kernel_size)"),
               _a("padding", INTS, 0, min=0, max=2**31 - 1, dims=2, doc="implicit -inf padding on each side"),
               _a("dilation", INTS, 1, min=1, max=2**31 - 1, dims=2, doc="spacing between window elements"),
               _a("ceil_mode", BOOL, False, doc="round the output size up instead of down")),
              impl="torch.nn.MaxPool2d"),
    LayerType("AvgPool2d", "2-D average pooling: the mean of each window", "layer",
              (ArgSpec("kernel_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=2, doc="window size"),
               _a("stride", INTS, None, min=1, max=2**31 - 1, dims=2, doc="window step (default: kernel_size)"),
               _a("padding", INTS, 0, min=0, max=2**31 - 1, dims=2, doc="implicit zero padding on each side"),
               _a("ceil_mode", BOOL, False, doc="round the output size up instead of down"),
               _a("count_include_pad", BOOL, True, doc="count padding zeros in the mean")),
              impl="torch.nn.AvgPool2d"),
    LayerType("Conv3d", "3-D convolution over (N, C, D, H, W)", "layer", _conv(3), ("weight", "bias"),
              impl="torch.nn.Conv3d"),
    LayerType("MaxPool3d", "3-D max pooling: the largest value in each window", "layer",
              (ArgSpec("kernel_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=3, doc="window size"),
               _a("stride", INTS, None, min=1, max=2**31 - 1, dims=3, doc="window step (default: kernel_size)"),
               _a("padding", INTS, 0, min=0, max=2**31 - 1, dims=3, doc="implicit -inf padding on each side"),
               _a("dilation", INTS, 1, min=1, max=2**31 - 1, dims=3, doc="spacing between window elements"),
               _a("ceil_mode", BOOL, False, doc="round the output size up instead of down")),
              impl="torch.nn.MaxPool3d"),
    LayerType("AvgPool3d", "3-D average pooling: the mean of each window", "layer",
              (ArgSpec("kernel_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=3, doc="window size"),
               _a("stride", INTS, None, min=1, max=2**31 - 1, dims=3, doc="window step (default: kernel_size)"),
               _a("padding", INTS, 0, min=0, max=2**31 - 1, dims=3, doc="implicit zero padding on each side"),
               _a("ceil_mode", BOOL, False, doc="round the output size up instead of down"),
               _a("count_include_pad", BOOL, True, doc="count padding zeros in the mean")),
              impl="torch.nn.AvgPool3d"),
    LayerType("AdaptiveMaxPool1d", "Max pooling to a fixed output length L, over (N, C, L)", "layer",
              (ArgSpec("output_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=1,
                       doc="target output length"),), impl="torch.nn.AdaptiveMaxPool1d"),
    LayerType("AdaptiveMaxPool2d", "Max pooling to a fixed output size (H, W)", "layer",
              (ArgSpec("output_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=2,
                       doc="target output size"),), impl="torch.nn.AdaptiveMaxPool2d"),
    LayerType("AdaptiveAvgPool2d", "Average pooling to a fixed output size (H, W)", "layer",
              (ArgSpec("output_size", INTS, None, required=True, min=1, max=2**31 - 1, dims=2,
                       doc="target output size"),), impl="torch.nn.AdaptiveAvgPool2d"),
    LayerType("Flatten", "Flattens dimensions start_dim..end_dim into one", "layer",
              (_a("start_dim", INT, 1, min=-8, max=8, doc="first dimension to flatten"),
               _a("end_dim", INT, -1, min=-8, max=8, doc="last dimension to flatten")), impl="torch.nn.Flatten"),
    LayerType("Dropout", "Zeroes each element with probability p while training (scales the rest by 1/(1-p))",
              "layer", (_a("p", FLOAT, 0.5, min=0.0, max=1.0, doc="probability of an element being zeroed"),),
              ignored_args=_INPLACE, impl="torch.nn.Dropout"),
    LayerType("Dropout1d", "Zeroes whole channels of (N, C, L) with probability p while training (scales the "
              "rest by 1/(1-p))", "layer",
              (_a("p", FLOAT, 0.5, min=0.0, max=1.0, doc="probability of a channel being zeroed"),),
              ignored_args=_INPLACE, impl="torch.nn.Dropout1d"),
    LayerType("BatchNorm1d", "Normalises each feature over the batch, (N, C) or (N, C, L)", "layer",
              _norm("(N, C) or (N, C, L)"), ("weight", "bias"), impl="torch.nn.BatchNorm1d"),
    LayerType("BatchNorm2d", "Normalises each channel over the batch, (N, C, H, W)", "layer",
              _norm("(N, C, H, W)"), ("weight", "bias"), impl="torch.nn.BatchNorm2d"),
    LayerType("BatchNorm3d", "Normalises each channel over the batch, (N, C, D, H, W)", "layer",
              _norm("(N, C, D, H, W)"), ("weight", "bias"), impl="torch.nn.BatchNorm3d"),
    LayerType("LocalResponseNorm", "Normalises each element by its neighbours across channels (AlexNet), "
              "(N, C, *)", "layer",
              (_a("size", INT, None, required=True, min=1, max=2**31 - 1, doc="neighbouring channels used"),
               _a("alpha", FLOAT, 1e-4, doc="multiplicative factor", float32=True),
               _a("beta", FLOAT, 0.75, doc="exponent", float32=True),
               _a("k", FLOAT, 1.0, doc="additive factor", float32=True)), impl="torch.nn.LocalResponseNorm"),
    LayerType("LayerNorm", "Normalises over the last dimensions of each sample", "layer",
              (ArgSpec("normalized_shape", INTS, None, required=True, min=1, max=2**31 - 1, dims=0,
                       doc="the trailing shape to normalise over (int or list)"),
               _a("eps", FLOAT, 1e-5, min=0.0, doc="added to the variance for stability", float32=True),
               _a("elementwise_affine", BOOL, True, doc="learn a per-element scale and shift"),
               _a("bias", BOOL, True, doc="learn the shift (with elementwise_affine)")),
              ("weight", "bias"), impl="torch.nn.LayerNorm"),
    LayerType("Identity", "Passes its input through unchanged", "layer", impl="torch.nn.Identity"),
    # activations
    LayerType("ReLU", "max(0, x)", "activation", ignored_args=_INPLACE, impl="torch.nn.ReLU"),
    LayerType("LeakyReLU", "x if x > 0 else negative_slope * x", "activation",
              (_a("negative_slope", FLOAT, 0.01, doc="slope for x < 0", float32=True),), ignored_args=_INPLACE,
              impl="torch.nn.LeakyReLU"),
    LayerType("PReLU", "LeakyReLU with a learned slope a", "activation",
              (_a("num_parameters", INT, 1, min=1, max=2**31 - 1, doc="1, or the number of input channels"),
               _a("init", FLOAT, 0.25, doc="initial slope", float32=True)), ("weight",), impl="torch.nn.PReLU"),
    LayerType("ELU", "x if x > 0 else alpha * (exp(x) - 1)", "activation",
              (_a("alpha", FLOAT, 1.0, doc="value approached for large negative x", float32=True),),
              ignored_args=_INPLACE, impl="torch.nn.ELU"),
    LayerType("SELU", "scale * ELU(x, alpha) with fixed self-normalising constants", "activation",
              ignored_args=_INPLACE, impl="torch.nn.SELU"),
    LayerType("GELU", "x * Phi(x), Phi the standard normal CDF", "activation",
              (_a("approximate", CHOICE, "none", choices=("none", "tanh"), doc="exact or tanh approximation"),),
              impl="torch.nn.GELU"),
    LayerType("SiLU", "x * sigmoid(x) (swish)", "activation", ignored_args=_INPLACE, impl="torch.nn.SiLU"),
    LayerType("Mish", "x * tanh(softplus(x))", "activation", ignored_args=_INPLACE, impl="torch.nn.Mish"),
    LayerType("Softplus", "log(1 + exp(beta * x)) / beta", "activation",
              (_a("beta", FLOAT, 1.0, doc="sharpness", float32=True),
               _a("threshold", FLOAT, 20.0, doc="above beta*x > threshold it is linear", float32=True)),
              impl="torch.nn.Softplus"),
    LayerType("Sigmoid", "1 / (1 + exp(-x)), squashes to (0, 1)", "activation", impl="torch.nn.Sigmoid"),
    LayerType("Tanh", "tanh(x), squashes to (-1, 1)", "activation", impl="torch.nn.Tanh"),
    LayerType("ReLU6", "min(max(0, x), 6)", "activation", ignored_args=_INPLACE, impl="torch.nn.ReLU6"),
    LayerType("Hardtanh", "x clamped to [min_val, max_val]", "activation",
              (_a("min_val", FLOAT, -1.0, doc="lower end of the linear region", float32=True),
               _a("max_val", FLOAT, 1.0, doc="upper end of the linear region (greater than min_val)",
                  float32=True)), ignored_args=_INPLACE, impl="torch.nn.Hardtanh"),
    LayerType("Hardsigmoid", "0 for x <= -3, 1 for x >= 3, else x/6 + 1/2", "activation", ignored_args=_INPLACE,
              impl="torch.nn.Hardsigmoid"),
    LayerType("Hardswish", "x * Hardsigmoid(x) (MobileNetV3)", "activation", ignored_args=_INPLACE,
              impl="torch.nn.Hardswish"),
    LayerType("LogSigmoid", "log(1 / (1 + exp(-x)))", "activation", impl="torch.nn.LogSigmoid"),
    LayerType("Softsign", "x / (1 + |x|)", "activation", impl="torch.nn.Softsign"),
    LayerType("Tanhshrink", "x - tanh(x)", "activation", impl="torch.nn.Tanhshrink"),
    LayerType("Softmax", "exp(x_i) / sum_j exp(x_j) along dim: probabilities that sum to 1", "activation",
              (_ACT_DIM,), impl="torch.nn.Softmax"),
    LayerType("LogSoftmax", "log(Softmax(x)) along dim, computed stably", "activation", (_ACT_DIM,),
              impl="torch.nn.LogSoftmax"),
    LayerType("Pow", "x ** exponent, element-wise (torch.pow; no torch.nn class: a one-line module)",
              "activation", (_a("exponent", FLOAT, 2.0, min=-1e6, max=1e6, doc="the power"),),
              impl="tui_nn.engine.model.modules.Pow"),
    LayerType("Residual", "A block of layers whose output is added to its input, x + f(x), or to its projection "
              "shortcut's output (shortcut = [layers]), shortcut(x) + f(x)", "block"),
    LayerType("Concat", "Parallel branches on the same input, their outputs concatenated along dim: "
              "torch.cat([b(x) for b in layers], dim)", "block",
              (_a("dim", INT, 1, min=-8, max=8, doc="the dimension the branches' outputs are joined along"),)),
    LayerType("Sequential", "Layers applied in order (a Concat branch of several layers): torch.nn.Sequential",
              "block"),
]

CATALOGUE: dict[str, LayerType] = {t.name: t for t in _TYPES}

LAYER_KEYS = ("type", "frozen", "init")  # keys every layer entry may carry besides its args/params


@lru_cache(maxsize=None)
def resolve(path: str) -> Any:
    """The class named by a dotted path ("torch.nn.Linear"), imported on first use: the catalogue itself does not
    import torch, so a preset is read and its shapes shown before torch has loaded (docs/performance.md)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def layer_type(name: str) -> LayerType:
    return CATALOGUE[name]


def torch_kwargs(lt: LayerType, args: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments passed to the torch constructor (tuples for list values)."""
    out: dict[str, Any] = {}
    for name in lt.extra.get("always", ()):  # an argument whose default here differs from torch's
        out[name] = lt.arg(name).default  # type: ignore[union-attr]
    for name, value in args.items():
        if name in lt.ignored_args:
            continue
        if isinstance(value, list):
            value = tuple(value)
        spec = lt.arg(name)
        if spec is not None and spec.none_as and value == spec.none_as:
            value = None  # momentum = "cumulative" is torch's momentum=None
        out[name] = value
    return out


def full_args(lt: LayerType, args: dict[str, Any]) -> dict[str, Any]:
    """Every argument with its effective value (defaults filled in)."""
    out = {a.name: a.default for a in lt.args}
    out.update({k: v for k, v in args.items() if k not in lt.ignored_args})
    return out


def pair(value: Any, dims: int = 2) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * dims
