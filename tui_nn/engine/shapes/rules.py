"""Output shapes of the common layers by arithmetic, for inputs they certainly accept.

The shape check (check.py) runs every layer on PyTorch's meta device, which is exact but costs a second
the first time: torch's Python meta kernels are wrapped in `torch._disable_dynamo`, which imports
`torch._dynamo` on first use. Opening a preset should not wait for that. So for the layers of the
catalogue whose output shape is plain arithmetic, and only when the input is one the layer certainly
accepts, `output_shape` gives the shape without running anything; for anything else (a mismatch, an
unusual argument, a type not listed here) it returns None and the layer runs on the meta device as
before, which also words the error. tests/engine/test_shape_rules.py checks these rules against the meta
device over random layers and inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from ..model.catalogue import CATALOGUE, full_args, pair, softmax_dim
from ..spec import DataSpec, GeneratorSpec, LayerSpec, ModelSpec, Preset

Shape = tuple[int, ...]

SAME_SHAPE = frozenset({"ReLU", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Mish", "Softplus", "Sigmoid",
                        "Tanh", "Identity", "Dropout", "Pow", "ReLU6", "Hardsigmoid", "Hardswish", "LogSigmoid",
                        "Softsign", "Tanhshrink"})


def _dims(shape: Shape, dim: int) -> int | None:
    """`dim` as a non-negative index into `shape`, or None when out of range."""
    n = len(shape)
    return dim % n if n and -n <= dim < n else None


def _linear(a: dict[str, Any], s: Shape) -> Shape | None:
    if len(s) >= 1 and s[-1] == a["in_features"]:
        return s[:-1] + (a["out_features"],)
    return None


def _window(size: int, k: int, st: int, p: int, d: int) -> int | None:
    """floor((size + 2p - d(k-1) - 1) / s) + 1, when at least 1."""
    num = size + 2 * p - d * (k - 1) - 1
    return num // st + 1 if num >= 0 else None


def _conv(dims: int) -> Callable[[dict[str, Any], Shape], Shape | None]:
    def rule(a: dict[str, Any], s: Shape) -> Shape | None:
        if len(s) not in (dims + 1, dims + 2) or isinstance(a["padding"], str) or a["padding_mode"] != "zeros":
            return None
        groups = a["groups"]
        if s[-dims - 1] != a["in_channels"] or a["in_channels"] % groups or a["out_channels"] % groups:
            return None
        k, st, p, d = (pair(a[key], dims) for key in ("kernel_size", "stride", "padding", "dilation"))
        if len({len(k), len(st), len(p), len(d)}) != 1 or len(k) != dims:
            return None
        out = [_window(s[-dims + i], k[i], st[i], p[i], d[i]) for i in range(dims)]
        if any(o is None for o in out):
            return None
        return s[:-dims - 1] + (a["out_channels"],) + tuple(out)  # type: ignore[arg-type]
    return rule


def _pool_n(dims: int) -> Callable[[dict[str, Any], Shape], Shape | None]:
    def rule(a: dict[str, Any], s: Shape) -> Shape | None:
        if len(s) not in (dims + 1, dims + 2) or a.get("ceil_mode"):
            return None
        k = pair(a["kernel_size"], dims)
        st = pair(a["stride"] if a.get("stride") is not None else a["kernel_size"], dims)
        p = pair(a["padding"], dims)
        d = pair(a.get("dilation", 1), dims)
        if any(len(t) != dims for t in (k, st, p, d)) or any(p[i] * 2 > k[i] for i in range(dims)):
            return None  # torch: padding at most half the kernel
        out = [_window(s[-dims + i], k[i], st[i], p[i], d[i]) for i in range(dims)]
        if any(o is None for o in out):
            return None
        return s[:-dims] + tuple(out)  # type: ignore[arg-type]
    return rule


_pool = _pool_n(2)


def _avgpool3d(a: dict[str, Any], s: Shape) -> Shape | None:
    """AvgPool3d also refuses an input smaller than the kernel before padding ("input image (T: .. H: .. W: ..)
    smaller than kernel size")."""
    k = pair(a["kernel_size"], 3)
    if len(s) < 3 or len(k) != 3 or any(s[-3 + i] < k[i] for i in range(3)):
        return None
    return _pool_n(3)(a, s)


def _adaptive_n(dims: int) -> Callable[[dict[str, Any], Shape], Shape | None]:
    def rule(a: dict[str, Any], s: Shape) -> Shape | None:
        size = a["output_size"]
        out = pair(size, dims) if size is not None else None
        if out is None or len(out) != dims or len(s) not in (dims + 1, dims + 2) or min(s[-dims:]) < 1:
            return None
        return s[:-dims] + out
    return rule


_adaptive = _adaptive_n(2)


def _hardtanh(a: dict[str, Any], s: Shape) -> Shape | None:
    return s if a["max_val"] > a["min_val"] else None


def _dropout1d(a: dict[str, Any], s: Shape) -> Shape | None:
    return s if len(s) in (2, 3) else None  # else torch: "Dropout1d: Expected 2D or 3D input, ..."


def _lrn(a: dict[str, Any], s: Shape) -> Shape | None:
    return s if len(s) >= 3 and s[0] * s[1] > 0 else None  # else "Expected 3D or higher dimensionality input"


def _flatten(a: dict[str, Any], s: Shape) -> Shape | None:
    sd, ed = _dims(s, a["start_dim"]), _dims(s, a["end_dim"])
    if sd is None or ed is None or sd > ed:
        return None
    return s[:sd] + (math.prod(s[sd:ed + 1]),) + s[ed + 1:]


def _batchnorm(dims: tuple[int, ...]) -> Callable[[dict[str, Any], Shape], Shape | None]:
    def rule(a: dict[str, Any], s: Shape) -> Shape | None:
        if len(s) not in dims or s[1] != a["num_features"]:
            return None
        if s[0] * math.prod(s[2:]) <= 1:  # "Expected more than 1 value per channel when training": meta says it
            return None
        return s
    return rule


def _layernorm(a: dict[str, Any], s: Shape) -> Shape | None:
    ns = a["normalized_shape"]
    ns = tuple(ns) if isinstance(ns, (list, tuple)) else (ns,)
    return s if 0 < len(ns) <= len(s) and tuple(s[-len(ns):]) == ns else None


def _softmax(a: dict[str, Any], s: Shape) -> Shape | None:
    return s if _dims(s, softmax_dim(a["dim"], len(s))) is not None else None


def _prelu(a: dict[str, Any], s: Shape) -> Shape | None:
    return s if a["num_parameters"] == 1 else None


RULES: dict[str, Callable[[dict[str, Any], Shape], Shape | None]] = {
    "Linear": _linear,
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "MaxPool2d": _pool,
    "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": _adaptive,
    "Flatten": _flatten,
    "BatchNorm1d": _batchnorm((2, 3)),
    "BatchNorm2d": _batchnorm((4,)),
    "Conv3d": _conv(3),
    "MaxPool3d": _pool_n(3),
    "AvgPool3d": _avgpool3d,
    "AdaptiveMaxPool1d": _adaptive_n(1),
    "AdaptiveMaxPool2d": _adaptive_n(2),
    "BatchNorm3d": _batchnorm((5,)),
    "Hardtanh": _hardtanh,
    "Dropout1d": _dropout1d,
    "LocalResponseNorm": _lrn,
    "LayerNorm": _layernorm,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "PReLU": _prelu,
}


def output_shape(spec: LayerSpec, in_shape: Shape) -> Shape | None:
    """The layer's output shape for `in_shape` when arithmetic alone says it for certain, else None."""
    if any(v < 0 for v in in_shape):
        return None
    if spec.type in SAME_SHAPE:
        return tuple(in_shape)
    rule = RULES.get(spec.type)
    if rule is None or spec.type not in CATALOGUE:
        return None
    try:
        return rule(full_args(CATALOGUE[spec.type], spec.args), tuple(in_shape))
    except (KeyError, TypeError, ValueError):  # arguments of an unexpected form: let the meta device decide
        return None


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """The shape of `a + b` (numpy/torch broadcasting), or None when they do not broadcast."""
    n = max(len(a), len(b))
    out = []
    for k in range(n, 0, -1):
        da = a[-k] if k <= len(a) else 1
        db = b[-k] if k <= len(b) else 1
        if da != db and 1 not in (da, db):
            return None
        out.append(db if da == 1 else da)
    return tuple(out)


def conv_arithmetic(spec: LayerSpec, in_shape: tuple[int, ...]) -> str:
    """The output-size arithmetic ((in + 2p - d(k-1) - 1)/s + 1) of a conv or pool layer, per dimension."""
    t = spec.type
    if t not in ("Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "Conv3d", "MaxPool3d", "AvgPool3d"):
        return ""
    dims = 1 if t == "Conv1d" else 3 if t.endswith("3d") else 2
    if len(in_shape) < dims + 1:
        return ""
    a = full_args(CATALOGUE[t], spec.args)
    k = pair(a["kernel_size"], dims)
    s = pair(a["stride"] if a.get("stride") is not None else a["kernel_size"], dims)
    pad = a.get("padding", 0)
    if isinstance(pad, str):
        return f"padding='{pad}'"
    p = pair(pad, dims)
    d = pair(a.get("dilation", 1), dims)
    names = ("L",) if dims == 1 else ("D", "H", "W") if dims == 3 else ("H", "W")
    parts = []
    for i, name in enumerate(names):
        n = in_shape[len(in_shape) - dims + i]
        kk = k[i] if d[i] == 1 else f"{d[i]}*({k[i]}-1)+1"
        num = n + 2 * p[i] - d[i] * (k[i] - 1) - 1
        out = num // s[i] + 1 if num >= 0 else 0
        if a.get("ceil_mode") and num >= 0:  # torch's pooling_output_shape: round up, then drop a last window
            out = -(-num // s[i]) + 1  # that would start in the right padding
            text = f"{name}: ceil(({n} + 2*{p[i]} - {kk})/{s[i]}) + 1 = {out}"
            if (out - 1) * s[i] >= n + p[i]:
                text += (f" - 1 = {out - 1} (the last window would start at {out - 1}*{s[i]} = {(out - 1) * s[i]}, "
                         f"in the right padding: torch drops it)")
            parts.append(text)
            continue
        parts.append(f"{name}: ({n} + 2*{p[i]} - {kk})/{s[i]} + 1 = {out}")
    return "; ".join(parts)


__all__ = ["output_shape", "broadcast", "RULES", "SAME_SHAPE"]


# ---------------------------------------------------------------------------------------------
# the preview: a preset's layers before torch has loaded


def param_count(spec: LayerSpec) -> int | None:
    """The layer's parameter count by arithmetic, or None where only building it would tell."""
    lt = CATALOGUE.get(spec.type)
    if lt is None:
        return None
    if not lt.params:
        return 0
    try:
        a = full_args(lt, spec.args)
        if spec.type == "Linear":
            return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)
        if spec.type in ("Conv1d", "Conv2d", "Conv3d"):
            k = math.prod(pair(a["kernel_size"], {"Conv1d": 1, "Conv2d": 2, "Conv3d": 3}[spec.type]))
            out = a["out_channels"]
            return out * (a["in_channels"] // a["groups"]) * k + (out if a["bias"] else 0)
        if spec.type in ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"):
            return 2 * a["num_features"] if a["affine"] else 0
        if spec.type == "LayerNorm":
            n = math.prod(pair(a["normalized_shape"], 1))
            return n * (1 + bool(a.get("bias", True))) if a["elementwise_affine"] else 0
        if spec.type == "PReLU":
            return a["num_parameters"]
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _block(walk: Callable[..., Shape | None], spec: LayerSpec, prefix: str, depth: int,
           shape: Shape | None) -> Shape | None:
    """A block's rows (walked) and its output shape where arithmetic is certain of it."""
    if spec.type == "Sequential":
        return walk(spec.layers, prefix, depth + 1, shape)
    if spec.type == "Concat":
        outs = [walk([branch], prefix, depth + 1, shape, i) for i, branch in enumerate(spec.layers)]
        return None if shape is None or not outs or None in outs else _cat(outs, spec.args.get("dim", 1))
    body = walk(spec.layers, prefix, depth + 1, shape)
    identity = walk(spec.shortcut, f"{prefix}shortcut.", depth + 1, shape) if spec.shortcut else shape
    if shape is None or body is None or identity is None or broadcast(identity, body) != identity:
        return None
    return identity


def _cat(shapes: list[Shape], dim: int) -> Shape | None:
    """The shape of torch.cat of tensors of these shapes along `dim`, when they certainly join."""
    first = shapes[0]
    d = _dims(first, dim)
    if d is None or any(len(s) != len(first) or s[:d] + s[d + 1:] != first[:d] + first[d + 1:] for s in shapes):
        return None
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1:]


@dataclass
class PreviewRow:
    path: str
    depth: int
    spec: LayerSpec
    input_shape: Shape | None  # None: not known before torch has checked an earlier layer
    output_shape: Shape | None
    params: int | None


def planned_input_shape(data: DataSpec, input_shape: Shape) -> Shape | None:
    """The inputs' shape, known before anything is generated (None for data sets and CSV files)."""
    if getattr(data, "dataset", None) is not None or getattr(data, "csv", None) is not None:
        return None
    if data.inputs is None:
        return tuple(input_shape)
    if isinstance(data.inputs, GeneratorSpec):
        return tuple(data.inputs.shape)
    from ..model.args import check_numbers

    return check_numbers(data.inputs, "data.inputs")


def preview_input_shape(preset: Preset) -> Shape | None:
    """The inputs' shape as the session will make them, or None when they come from a data set or CSV table
    (which the preview did not read)."""
    if "data tables" in preset.pending:
        return None
    return planned_input_shape(preset.data, preset.model.input_shape)


def preview(model: ModelSpec, input_shape: Shape | None) -> list[PreviewRow]:
    """Every layer (Residual bodies flattened, as the layer table shows them) with the shapes and parameter
    counts arithmetic gives for certain. After the first layer it cannot tell (an unusual layer, or a mismatch,
    which only the real check words), the shapes are None; all of them when `input_shape` is (inputs from a data
    table: `preview_input_shape`). Used to show a preset while torch loads; the session's
    shape check replaces it."""
    rows: list[PreviewRow] = []

    def walk(layers: list[LayerSpec], prefix: str, depth: int, shape: Shape | None, first: int = 0) -> Shape | None:
        for i, spec in enumerate(layers, first):
            row = PreviewRow(f"{prefix}{i}", depth, spec, shape, None, param_count(spec))
            rows.append(row)
            if spec.type in ("Residual", "Concat", "Sequential"):
                start = len(rows)
                out = _block(walk, spec, f"{row.path}.", depth, shape)
                counts = [r.params for r in rows[start:] if r.depth == depth + 1]
                row.params = None if None in counts else sum(counts)
            else:
                out = output_shape(spec, shape) if shape is not None else None
            row.output_shape = out
            shape = out
        return shape

    walk(model.layers, "", 0, None if input_shape is None else tuple(input_shape))
    return rows
