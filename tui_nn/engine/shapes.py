"""Shape checking before anything is allocated.

Every layer is built on PyTorch's meta device (shapes only, no memory) and its output shape found by
arithmetic where that is certain (shape_rules.py), else by running it there. A mismatch comes
back as a `ShapeError` value: the layer, PyTorch's own message as a CPU run prints it, a
plain-language hint, and a concrete fix the UI can apply with one key. Conv and pool rows carry
their output-size arithmetic. A memory estimate (parameters, gradients, optimizer state,
activations) is checked against a budget before the real model is built.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .catalogue import CATALOGUE, full_args, pair
from .errors import INPUT_FIX, INSERT, REMOVE, EngineError, Fix, MemoryBudgetError, ShapeError, sci, shown
from .model import build_layer
from .shape_rules import broadcast, output_shape, param_count
from .spec import LayerSpec, ModelSpec

CPU_RERUN_MAX_ELEMENTS = 2_000_000  # re-run a failing layer on the CPU for torch's CPU wording below this
CPU_RERUN_MAX_PARAMS = 10_000_000  # ... and only a layer with at most this many parameters (counted on meta)
BYTES_PER_ELEMENT = 4  # float32
MAX_ELEMENTS = 2**60  # a float32 tensor of more elements has more bytes than torch's sizes can hold


@dataclass
class LayerShape:
    index: int  # top-level index
    path: str  # "3" or "3.1" inside a Residual block
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    params: int
    trainable: int
    detail: str = ""  # output-size arithmetic for conv/pool layers
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "path": self.path, "type": self.type, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape) if self.output_shape is not None else None,
                "params": self.params, "trainable": self.trainable, "detail": self.detail}


@dataclass
class MemoryEstimate:
    parameters: int = 0
    gradients: int = 0
    optimizer_state: int = 0
    activations: int = 0  # the input and every layer's output
    targets: int = 0  # at most one value per output element
    buffers: int = 0  # running statistics (BatchNorm's running_mean/var)

    @property
    def total(self) -> int:
        return (self.parameters + self.gradients + self.optimizer_state + self.activations + self.targets
                + self.buffers)

    def describe(self) -> str:
        buffers = f", buffers {fmt_bytes(self.buffers)}" if self.buffers else ""
        return (f"{fmt_bytes(self.total)} (parameters {fmt_bytes(self.parameters)}, gradients "
                f"{fmt_bytes(self.gradients)}, optimizer state {fmt_bytes(self.optimizer_state)}, activations "
                f"{fmt_bytes(self.activations)}, targets {fmt_bytes(self.targets)}{buffers})")


@dataclass
class ShapeReport:
    input_shape: tuple[int, ...]
    layers: list[LayerShape] = field(default_factory=list)
    error: ShapeError | None = None
    memory: MemoryEstimate = field(default_factory=MemoryEstimate)
    buffers: int = 0  # buffer elements of the top-level layers walked

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_params(self) -> int:
        return sum(ly.params for ly in self.layers if ly.depth == 0)

    @property
    def trainable_params(self) -> int:
        return sum(ly.trainable for ly in self.layers if ly.depth == 0)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        top = [ly for ly in self.layers if ly.depth == 0]
        if self.error is not None:
            return None
        return top[-1].output_shape if top else self.input_shape


def fmt_bytes(n: float) -> str:
    """Bytes in the largest unit below 1024 of it, up to PB; a need of a million PB or more as "6.81e+9332
    bytes" (a product of huge sizes can have thousands of digits: neither str() nor float() takes it)."""
    if abs(n) >= 10**6 * 1024**5:
        return f"{sci(n) if isinstance(n, int) else f'{n:.3g}'} bytes"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def _bytes_text(n: int) -> str:
    """"123456 bytes (120.6 KB)": the exact count and its size; a count of more than 39 digits only as
    fmt_bytes writes it ("6.81e+9332 bytes": such a count can have thousands of digits)."""
    return f"{n} bytes ({fmt_bytes(n)})" if n.bit_length() <= 128 else fmt_bytes(n)


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def _times(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


# ---------------------------------------------------------------------------------------------


def conv_arithmetic(spec: LayerSpec, in_shape: tuple[int, ...]) -> str:
    """The output-size arithmetic ((in + 2p - d(k-1) - 1)/s + 1) of a conv or pool layer, per dimension."""
    t = spec.type
    if t not in ("Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d"):
        return ""
    dims = 1 if t == "Conv1d" else 2
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
    names = ("L",) if dims == 1 else ("H", "W")
    parts = []
    for i, name in enumerate(names):
        n = in_shape[len(in_shape) - dims + i]
        kk = k[i] if d[i] == 1 else f"{d[i]}*({k[i]}-1)+1"
        num = n + 2 * p[i] - d[i] * (k[i] - 1) - 1
        out = num // s[i] + 1 if num >= 0 else 0
        if a.get("ceil_mode") and num >= 0:
            out = -(-num // s[i]) + 1
        parts.append(f"{name}: ({n} + 2*{p[i]} - {kk})/{s[i]} + 1 = {out}")
    return "; ".join(parts)


def _batched(spec: LayerSpec, in_shape: tuple[int, ...]) -> bool:
    """Whether dimension 0 of `in_shape` is the batch for this layer (its contract: (N, C, H, W) for Conv2d,
    (C, H, W) being unbatched), so that a re-run with a smaller batch fails the same way."""
    n = len(in_shape)
    t = spec.type
    if t == "Residual" or t not in CATALOGUE:
        return False
    a = full_args(CATALOGUE[t], spec.args)
    if t == "Conv1d":
        return n == 3
    if t in ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d"):
        return n == 4
    if t == "BatchNorm1d":
        return n in (2, 3)
    if t == "LayerNorm":
        ns = a["normalized_shape"]
        return n > (len(ns) if isinstance(ns, list) else 1)
    if t == "Flatten":
        return n >= 2 and -n <= a["start_dim"] < n and -n <= a["end_dim"] < n and a["start_dim"] % n >= 1
    if t in ("Softmax", "LogSoftmax"):
        return n >= 2 and -n <= a["dim"] < n and a["dim"] % n != 0
    return n >= 2  # Linear and the element-wise layers: (N, *)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _run_cpu(module: torch.nn.Module, shape: tuple[int, ...]) -> str | None:
    """Torch's CPU message for running `module` on zeros of `shape`; None when it runs."""
    try:
        with torch.no_grad():
            module(torch.zeros(shape))
    except Exception as err:  # noqa: BLE001 - we want torch's own words, whatever they are
        return _first_line(err)
    return None


def _with_batch(message: str, small: tuple[int, ...], real: tuple[int, ...]) -> str:
    """`message` of a run on `small` (a smaller batch) as the run on `real` words it: the input shape
    [1, 3, 128, 128] (or (1, 3, 128, 128)) becomes the real one."""
    for fmt in (lambda sh: "[" + ", ".join(map(str, sh)) + "]", lambda sh: "(" + ", ".join(map(str, sh)) + ")"):
        message = message.replace(fmt(small), fmt(real))
    return message


def _cpu_message(spec: LayerSpec, in_shape: tuple[int, ...], meta_err: BaseException,
                 n_params: int | None = None) -> str:
    """PyTorch's message as a CPU run words it (the meta device words some errors differently).

    Nothing big is allocated: the parameter count is taken on the meta device (`n_params`, or counted
    here) before the layer is built on the CPU, and the layer is re-run with a batch of 1 and of 2 (for
    a batched input), the input shape in torch's text then put back to the real one; the two runs must
    agree once fixed up (BatchNorm's "more than 1 value per channel" would not), else the full input is
    re-run when it is small, else the meta device's words are kept."""
    text = str(meta_err).strip()
    meta_text = text.splitlines()[0] if text else type(meta_err).__name__
    if spec.type == "Linear" and "same reduction dim" in text and len(in_shape) >= 1:
        a = full_args(CATALOGUE["Linear"], spec.args)
        rows = math.prod(in_shape[:-1]) if len(in_shape) > 1 else 1
        return (f"mat1 and mat2 shapes cannot be multiplied ({rows}x{in_shape[-1]} and "
                f"{a['in_features']}x{a['out_features']})")
    if n_params is None:
        try:
            with torch.device("meta"):
                n_params = sum(p.numel() for p in build_layer(spec).parameters())
        except Exception:  # noqa: BLE001 - a layer that cannot be described is not re-run
            return meta_text
    if n_params > CPU_RERUN_MAX_PARAMS:
        return meta_text
    n = in_shape[0] if in_shape else 1
    reduced = _batched(spec, in_shape) and n > 1
    sample = math.prod(in_shape[1:]) if in_shape else 1
    if not (reduced and 2 * sample <= CPU_RERUN_MAX_ELEMENTS) and math.prod(in_shape) > CPU_RERUN_MAX_ELEMENTS:
        return meta_text
    try:
        with torch.random.fork_rng(devices=[]), torch.device("cpu"):  # building draws from the global RNG
            module = build_layer(spec)
            if reduced and 2 * sample <= CPU_RERUN_MAX_ELEMENTS:
                shapes = [(b,) + tuple(in_shape[1:]) for b in (1, min(n, 2))]
                msgs = [_run_cpu(module, sh) for sh in shapes]
                fixed = {_with_batch(m, sh, in_shape) for m, sh in zip(msgs, shapes) if m is not None}
                if None not in msgs and len(fixed) == 1:
                    return fixed.pop()
            if math.prod(in_shape) <= CPU_RERUN_MAX_ELEMENTS:
                return _run_cpu(module, in_shape) or meta_text
    except Exception:  # noqa: BLE001 - building failed on the CPU: keep the meta words
        pass
    return meta_text


def _known_error(spec: LayerSpec, in_shape: tuple[int, ...]) -> str | None:
    """Errors whose CPU wording is known without running anything (so no meta kernel, and no torch._dynamo
    import, for the classic shape error): Linear on a (.., K) input that is not (.., in_features)."""
    if spec.type == "Linear" and len(in_shape) >= 2:
        a = full_args(CATALOGUE["Linear"], spec.args)
        if in_shape[-1] != a["in_features"]:
            return (f"mat1 and mat2 shapes cannot be multiplied ({math.prod(in_shape[:-1])}x{in_shape[-1]} and "
                    f"{a['in_features']}x{a['out_features']})")
    return None


def _explicit_check(spec: LayerSpec, in_shape: tuple[int, ...]) -> str | None:
    """Errors the meta device does not raise (softmax dim range)."""
    if spec.type in ("Softmax", "LogSoftmax"):
        dim = full_args(CATALOGUE[spec.type], spec.args)["dim"]
        n = len(in_shape)
        if not -n <= dim < n:
            return f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
    return None


@dataclass
class _Produced:
    """Where the current tensor came from (for hints)."""

    index: int  # -1: the model's input
    type: str
    shape: tuple[int, ...]
    flatten_of: tuple[int, ...] | None = None  # shape that a Flatten flattened
    path: str = ""  # the producing layer's own path ("0.1" inside a Residual block); "" = str(index)


def _source_text(src: _Produced) -> str:
    if src.index < 0:
        return f"the model input {fmt_shape(src.shape)}"
    where = src.path or str(src.index)
    if src.flatten_of is not None:
        dims = src.flatten_of
        return (f"layer {where} (Flatten), which flattens {' x '.join(str(d) for d in dims)} = "
                f"{math.prod(dims)}")
    return f"layer {where} ({src.type}), which outputs {fmt_shape(src.shape)}"


def diagnose(index: int, path: str, spec: LayerSpec, in_shape: tuple[int, ...], message: str, src: _Produced,
             model: ModelSpec | None = None) -> ShapeError:
    """Turn a failure into a hint and a concrete fix."""
    t = spec.type
    a = full_args(CATALOGUE[t], spec.args) if t in CATALOGUE and t != "Residual" else {}
    hint = f"layer {path} ({t}) received {fmt_shape(in_shape)} from {_source_text(src)}."
    fix: Fix | None = None
    extra: list[Fix] = []
    nd = len(in_shape)
    if t == "Linear" and nd >= 1:
        got = in_shape[-1]
        want = a["in_features"]
        if nd > 2 and src.index >= 0 and src.type in ("Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d",
                                                        "AdaptiveAvgPool2d", "BatchNorm2d"):
            hint = (f"Linear acts on the last dimension only, and its input {fmt_shape(in_shape)} from "
                    f"{_source_text(src)} still has {nd} dimensions; flatten it first "
                    f"({' x '.join(str(d) for d in in_shape[1:])} = {math.prod(in_shape[1:])} features).")
            fix = Fix(index, INSERT, "Flatten", f"insert a Flatten layer before layer {index}")
            extra.append(Fix(index, "in_features", math.prod(in_shape[1:]),
                             f"then set in_features = {math.prod(in_shape[1:])}"))
        elif got != want:
            hint = (f"Linear was built for in_features = {want}, but receives {got} features from "
                    f"{_source_text(src)}.")
            fix = Fix(index, "in_features", got, f"set in_features = {got}")
            if model is not None:
                alt = _input_for(model, index, want)
                if alt is not None:
                    extra.append(Fix(INPUT_FIX, "input_shape", list(alt),
                                     f"or use an input of shape {fmt_shape(alt)}, the size this layer was built for"))
    elif t in ("Conv1d", "Conv2d"):
        dims = 1 if t == "Conv1d" else 2
        if nd not in (dims + 1, dims + 2):
            want_s = "(N, C, L) or (C, L)" if dims == 1 else "(N, C, H, W) or (C, H, W)"
            hint = f"{t} expects {want_s}, but receives {fmt_shape(in_shape)} from {_source_text(src)}."
            if src.type == "Flatten" and src.index >= 0:
                fix = Fix(src.index, REMOVE, None, f"remove the Flatten at layer {src.index}")
        else:
            c = in_shape[-dims - 1]
            if c != a["in_channels"]:
                hint = (f"{t} was built for in_channels = {a['in_channels']}, but its input has {c} channels "
                        f"(dimension {nd - dims - 1} of {fmt_shape(in_shape)}, from {_source_text(src)}).")
                fix = Fix(index, "in_channels", c, f"set in_channels = {c}")
            else:
                fix, hint = _kernel_fix(index, t, a, in_shape, dims, src) or (None, hint)
    elif t in ("MaxPool2d", "AvgPool2d") and nd in (3, 4):
        res = _kernel_fix(index, t, a, in_shape, 2, src)
        if res:
            fix, hint = res
    elif t in ("BatchNorm1d", "BatchNorm2d") and nd >= 2:
        want_nd = (2, 3) if t == "BatchNorm1d" else (4,)
        if nd not in want_nd:
            hint = f"{t} expects {' or '.join(f'{n}-D' for n in want_nd)} input, but receives {fmt_shape(in_shape)}."
        elif in_shape[1] != a["num_features"]:
            hint = (f"{t} was built for num_features = {a['num_features']}, but its input has {in_shape[1]} "
                    f"channels (dimension 1 of {fmt_shape(in_shape)}, from {_source_text(src)}).")
            fix = Fix(index, "num_features", in_shape[1], f"set num_features = {in_shape[1]}")
    elif t == "LayerNorm":
        ns = a["normalized_shape"]
        k = len(ns) if isinstance(ns, list) else 1
        if nd >= k:
            trail = list(in_shape[-k:])
            value: Any = trail[0] if k == 1 else trail
            hint = (f"LayerNorm normalises the last {k} dimension(s), which must be {ns}, but the input is "
                    f"{fmt_shape(in_shape)} from {_source_text(src)}.")
            fix = Fix(index, "normalized_shape", value, f"set normalized_shape = {value}")
    elif t == "PReLU" and nd >= 2:
        hint = f"PReLU with num_parameters = {a['num_parameters']} needs that many channels (dimension 1), " \
               f"but the input {fmt_shape(in_shape)} has {in_shape[1]}."
        fix = Fix(index, "num_parameters", in_shape[1], f"set num_parameters = {in_shape[1]}")
    elif t in ("Softmax", "LogSoftmax", "Flatten"):
        hint = f"the input {fmt_shape(in_shape)} has {nd} dimensions (valid dims: {-nd}..{nd - 1})."
        if t != "Flatten":
            fix = Fix(index, "dim", -1, "set dim = -1 (the last dimension)")
        else:
            fix = Fix(index, "start_dim", 1, "set start_dim = 1")
    elif t == "Residual":
        hint = (f"a Residual block adds its input {fmt_shape(in_shape)} to its body's output, so the body must "
                f"keep the shape.")
    def located(f: Fix | None) -> Fix | None:
        if f is None or f.layer == INPUT_FIX:
            return f
        if f.layer == index and f.arg != REMOVE:
            return replace(f, path=path)
        return f if "." not in path else None  # inside a Residual block another layer's index is ambiguous

    fixes = [g for g in (located(f) for f in extra) if g is not None]
    return ShapeError(layer=index, type=t, message=message, hint=hint, fix=located(fix), input_shape=in_shape,
                      path=path, extra_fixes=tuple(fixes))


def _kernel_fix(index: int, t: str, a: dict[str, Any], in_shape: tuple[int, ...], dims: int,
                src: _Produced) -> tuple[Fix | None, str] | None:
    k = pair(a["kernel_size"], dims)
    pad = a.get("padding", 0)
    if isinstance(pad, str):
        return None
    p = pair(pad, dims)
    d = pair(a.get("dilation", 1), dims)
    sizes = in_shape[-dims:]
    bad = [i for i in range(dims) if sizes[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1 < 0]
    if not bad:
        return None
    fit = [min(k[i], (sizes[i] + 2 * p[i] - 1) // d[i] + 1) for i in range(dims)]
    fit_value: Any = fit[0] if (dims == 1 or len(set(fit)) == 1) else fit
    padded = " x ".join(str(sizes[i] + 2 * p[i]) for i in range(dims))
    kernel = " x ".join(map(str, k))
    if any(di != 1 for di in d):  # a dilated kernel spans d*(k-1)+1 input elements
        span = " x ".join(str(d[i] * (k[i] - 1) + 1) for i in range(dims))
        dil = a.get("dilation", 1)
        kernel = f"{kernel} with dilation {dil} spans {span} (dilation*(kernel_size-1)+1), which is"
    else:
        kernel += " is"
    hint = (f"the kernel {kernel} larger than the padded input {padded} (input "
            f"{fmt_shape(in_shape)} from {_source_text(src)}, padding {pad}).")
    if min(fit) < 1:
        return None, hint
    return Fix(index, "kernel_size", fit_value, f"set kernel_size = {fit_value}"), hint


def _input_for(model: ModelSpec, index: int, want: int) -> tuple[int, ...] | None:
    """An input shape (same batch and channels, square spatial size) for which layer `index` gets `want`
    features, searched outward from the current size. None when the input has no spatial dims."""
    shape = tuple(model.input_shape)
    if len(shape) < 3:
        return None
    base = shape[2]
    tried = 0
    for delta in range(0, 257):
        for s in {base + delta, base - delta}:
            if s < 1:
                continue
            tried += 1
            cand = shape[:2] + (s,) * (len(shape) - 2)
            out = _prefix_shape(model.layers[:index], cand)
            if out is not None and len(out) >= 1 and out[-1] == want:
                return cand
    return None


# ---------------------------------------------------------------------------------------------


def _prefix_shape(layers: list[LayerSpec], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The output shape of `layers` for `shape` (None when one of them refuses it): by arithmetic where
    shape_rules.py knows the layer, else on the meta device."""
    x: torch.Tensor | None = None
    for spec in layers:
        fast = None if spec.type == "Residual" else output_shape(spec, shape)
        if fast is not None:
            shape, x = fast, None
            continue
        try:
            if x is None:
                x = torch.empty(shape, device="meta")
            with torch.device("meta"):
                x = build_layer(spec)(x)
        except Exception:  # noqa: BLE001 - a shape the layer refuses
            return None
        shape = tuple(x.shape)
    return shape


def check_model(model: ModelSpec, input_shape: tuple[int, ...] | None = None, *,
                optimizer: str | None = None, optimizer_args: dict[str, Any] | None = None) -> ShapeReport:
    """Shapes, parameter counts and the first error of a model, on the meta device."""
    shape = tuple(input_shape if input_shape is not None else model.input_shape)
    report = ShapeReport(input_shape=shape)
    # an input torch cannot describe is refused; the bytes named are the input's and the parameters' together
    big = math.prod(shape) >= MAX_ELEMENTS
    x = _meta_tensor(shape, "the input", also_params=_spec_params(model)[0] if big else 0)
    activations = math.prod(shape)
    src = _Produced(-1, "input", shape)
    x, activations = _walk(model, model.layers, x, "", 0, report, src, activations)
    params = report.total_params
    trainable = report.trainable_params
    buffers = report.buffers
    if report.error is not None:  # the layers after the error are not walked, but the model still builds them
        all_params, all_trainable = _spec_params(model)
        params, trainable = max(params, all_params), max(trainable, all_trainable)
        buffers = max(buffers, _spec_buffers(model))
    mem = report.memory
    mem.buffers = buffers * BYTES_PER_ELEMENT
    mem.parameters = params * BYTES_PER_ELEMENT
    mem.gradients = trainable * BYTES_PER_ELEMENT
    mem.optimizer_state = trainable * BYTES_PER_ELEMENT * optimizer_slots(optimizer, optimizer_args or {})
    mem.activations = activations * BYTES_PER_ELEMENT
    out = report.output_shape if report.error is None else None
    mem.targets = (math.prod(out) if out is not None else math.prod(shape)) * BYTES_PER_ELEMENT
    return report


def _meta_tensor(shape: tuple[int, ...], what: str, also_params: int = 0) -> torch.Tensor:
    """A meta tensor of `shape`; one too large for torch to describe is refused with the bytes it needs (plus
    `also_params` parameters' bytes, the model's, when it is the input: the number is the model's need)."""
    n = math.prod(shape)
    if n >= MAX_ELEMENTS:
        need = n * BYTES_PER_ELEMENT
        message = (f"{what} of shape {list(shape)} needs {_bytes_text(need)}, more than PyTorch can index")
        if also_params:
            pbytes = also_params * BYTES_PER_ELEMENT
            need += pbytes
            message += (f", and the layers' parameters at least {_bytes_text(pbytes)} more: at least "
                        f"{_bytes_text(need)} in all")
        raise MemoryBudgetError(f"{message}; nothing was allocated", needed_bytes=need, budget_bytes=0,
                                hint="use a smaller batch or smaller layers")
    try:
        return torch.empty(shape, device="meta")
    except RuntimeError as err:  # "Storage size calculation overflowed" and the like
        need = n * BYTES_PER_ELEMENT
        raise MemoryBudgetError(f"{what} of shape {list(shape)} cannot be described by PyTorch "
                                f"({shown(_first_line(err), 300)}); it needs {_bytes_text(need)}",
                                needed_bytes=need, budget_bytes=0,
                                hint="use a smaller batch or smaller layers") from None


def _spec_buffers(model: ModelSpec) -> int:
    """Buffer elements (BatchNorm's running statistics) of every top-level layer of the spec, whatever the
    shapes; a layer too large for torch to describe counts 0 here (its parameters refuse it)."""
    total = 0
    for spec in model.layers:
        try:
            with torch.device("meta"):
                total += sum(b.numel() for b in build_layer(spec).buffers())
        except Exception:  # noqa: BLE001 - bad arguments or sizes: the walk or the parameter count reports them
            pass
    return total


def _spec_params(model: ModelSpec) -> tuple[int, int]:
    """(parameters, trainable parameters) of every layer of the spec, whatever the shapes."""
    from .model import iter_specs

    total = trainable = 0
    for _, spec in iter_specs(model.layers):
        if spec.type == "Residual":
            continue
        try:
            with torch.device("meta"):
                n = sum(p.numel() for p in build_layer(spec).parameters())
        except Exception:  # noqa: BLE001 - too large to describe, or bad arguments: count it exactly if we can
            n = _exact_param_count(spec)
            n = 0 if n == 2**63 else n
        total += n
        trainable += 0 if spec.frozen else n
    return total, trainable


def _walk(model: ModelSpec, layers: list[LayerSpec], x: torch.Tensor, prefix: str, depth: int,
          report: ShapeReport, src: _Produced, activations: int) -> tuple[torch.Tensor, int]:
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        top = int(path.split(".")[0])
        in_shape = tuple(x.shape)
        try:
            with torch.device("meta"):
                module = build_layer(spec)
        except Exception as err:  # noqa: BLE001 - bad arguments are a value for the UI
            if "overflow" in str(err).lower():
                need = _exact_param_count(spec) * BYTES_PER_ELEMENT
                raise MemoryBudgetError(
                    f"layer {path} ({spec.type}) needs at least {_bytes_text(need)} for its parameters, "
                    f"more than PyTorch can index; it was not built", needed_bytes=need, budget_bytes=0,
                    hint="make the layer smaller") from None
            report.error = ShapeError(top, spec.type, f"{spec.type} cannot be built: {shown(_first_line(err), 300)}",
                                      hint="check the layer's arguments.", input_shape=in_shape, path=path)
            report.layers.append(LayerShape(top, path, spec.type, in_shape, None, 0, 0, depth=depth))
            return x, activations
        n_params = sum(p.numel() for p in module.parameters())
        n_train = 0 if spec.frozen else n_params
        row = LayerShape(top, path, spec.type, in_shape, None, n_params, n_train,
                         conv_arithmetic(spec, in_shape), depth)
        report.layers.append(row)
        if depth == 0:  # a Residual's buffers include its children's: counted once, at the top
            report.buffers += sum(b.numel() for b in module.buffers())
        if spec.type == "Residual":
            y, activations = _walk(model, spec.layers, x, f"{path}.", depth + 1, report, src, activations)
            if report.error is not None:
                return x, activations
            mismatch = _add_mismatch(in_shape, tuple(y.shape))
            if mismatch is None:
                out = torch.empty(broadcast(in_shape, tuple(y.shape)) or in_shape, device="meta")  # x + y
            else:
                report.error = ShapeError(top, "Residual", mismatch,
                                          hint=f"a Residual block adds its input {fmt_shape(in_shape)} to its body's "
                                               f"output {fmt_shape(tuple(y.shape))}; the body must keep the shape.",
                                          input_shape=in_shape, path=path)
                return x, activations
            row.output_shape = tuple(out.shape)
            activations += out.numel()
            src = _Produced(top, "Residual", tuple(out.shape), path=path)
            x = out
            continue
        problem = _explicit_check(spec, in_shape) or _known_error(spec, in_shape)
        fast = output_shape(spec, in_shape) if problem is None else None
        if fast is not None:  # arithmetic (shape_rules.py): no meta kernel, so no torch._dynamo import
            y = _meta_tensor(fast, f"the output of layer {path} ({spec.type})")
        elif problem is None:
            try:
                y = module(x)
            except Exception as err:  # noqa: BLE001 - torch raises RuntimeError/IndexError/ValueError
                problem = _cpu_message(spec, in_shape, err, n_params)
        if problem is not None:
            report.error = diagnose(top, path, spec, in_shape, problem, src, model if depth == 0 else None)
            return x, activations
        row.output_shape = tuple(y.shape)
        activations += y.numel()
        flat = None
        if spec.type == "Flatten":
            a = full_args(CATALOGUE["Flatten"], spec.args)
            sd = a["start_dim"] % len(in_shape) if in_shape else 0
            ed = a["end_dim"] % len(in_shape) if in_shape else 0
            flat = in_shape[sd:ed + 1]
        src = _Produced(top, spec.type, tuple(y.shape), flat, path=path)
        x = y
    return x, activations


def _exact_param_count(spec: LayerSpec) -> int:
    """Parameter count in Python integers (no overflow), for sizes torch cannot even describe; 2**63 when
    arithmetic cannot tell (shape_rules.param_count)."""
    n = param_count(spec)
    return 2**63 if n is None else n


def _add_mismatch(a: tuple[int, ...], b: tuple[int, ...]) -> str | None:
    """CPU PyTorch's message for `a + b` when the shapes do not broadcast (the meta device words it differently)."""
    n = max(len(a), len(b))
    for k in range(1, n + 1):
        da = a[-k] if k <= len(a) else 1
        db = b[-k] if k <= len(b) else 1
        if da != db and da != 1 and db != 1:
            return (f"The size of tensor a ({da}) must match the size of tensor b ({db}) at non-singleton "
                    f"dimension {n - k}")
    return None


def optimizer_slots(name: str | None, args: dict[str, Any]) -> int:
    """How many parameter-sized state tensors an optimizer keeps."""
    if name in ("Adam", "AdamW"):
        return 3 if args.get("amsgrad") else 2
    if name == "SGD":
        return 1 if args.get("momentum", 0.0) else 0
    if name == "RMSprop":
        return 1 + (1 if args.get("momentum", 0.0) else 0) + (1 if args.get("centered") else 0)
    if name == "Adagrad":
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# memory budget


def available_bytes(device: str = "cpu") -> int:
    """Memory the device can give now: on the host the least of MemAvailable, the cgroup's room and the
    address-space limit's room (so a capped process is not killed); free memory on a CUDA device."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    limits: list[int] = []
    meminfo = _read_kv("/proc/meminfo")
    if "MemAvailable" in meminfo:
        limits.append(meminfo["MemAvailable"] * 1024)
    try:
        cg_max = open("/sys/fs/cgroup/memory.max", encoding="ascii").read().strip()
        cg_cur = int(open("/sys/fs/cgroup/memory.current", encoding="ascii").read().strip())
        if cg_max != "max":
            limits.append(int(cg_max) - cg_cur)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            status = _read_kv("/proc/self/status")
            limits.append(soft - status.get("VmSize", 0) * 1024)
    except (ImportError, OSError, ValueError):  # pragma: no cover - non-POSIX
        pass
    if not limits:  # pragma: no cover - no /proc
        return 8 * 1024**3
    return max(0, min(limits))


def _read_kv(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[key] = int(parts[0])
    except OSError:
        pass
    return out


BUDGET_ENV = "TUI_NN_MEMORY_BUDGET"


def default_budget(device: str = "cpu") -> int:
    """The memory budget in bytes: TUI_NN_MEMORY_BUDGET when set (a positive number of bytes, such as
    2000000000 or 2e9), else 80% of what the device can give now. A value that is not such a number is an
    EngineError, not silently ignored."""
    env = os.environ.get(BUDGET_ENV)
    if env is not None and env.strip():
        try:
            value = float(env.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 1:
            raise EngineError(f"{BUDGET_ENV}={env.strip()[:40]!r} is not a memory budget: expected a positive "
                              f"number of bytes",
                              hint=f"set {BUDGET_ENV} to bytes, e.g. 2000000000 or 2e9, or unset it to use 80% of "
                                   f"the free memory")
        return int(value)
    return int(available_bytes(device) * 0.8)


def check_memory(report: ShapeReport, device: str = "cpu", budget: int | None = None) -> None:
    """Refuse (MemoryBudgetError) a model whose estimate exceeds the budget, before anything is allocated."""
    budget = default_budget(device) if budget is None else budget
    need = report.memory.total
    if need > budget:
        exact = f"{need} bytes: " if need.bit_length() <= 128 else ""  # (10^9332 bytes: not written out)
        raise MemoryBudgetError(
            f"this model needs about {fmt_bytes(need)} ({exact}{report.memory.describe()}) but the memory "
            f"budget on {device} is {fmt_bytes(budget)}; it was not built",
            needed_bytes=need, budget_bytes=budget,
            hint="make the layers smaller, use a smaller batch, or set TUI_NN_MEMORY_BUDGET (bytes)")


def summary_table(report: ShapeReport, *, details: bool = False) -> str:
    """A torchinfo-style table: layer, output shape, parameters, trainable; totals. With `details`, a conv or
    pool row is followed by a line with its output-size arithmetic ((in + 2p - d(k-1) - 1)/s + 1)."""
    rows = [("Layer", "Input", "Output", "Params", "Trainable")]
    notes: dict[int, str] = {}
    for ly in report.layers:
        name = ("  " * ly.depth) + f"{ly.path} {ly.type}"
        rows.append((name, fmt_shape(ly.input_shape), fmt_shape(ly.output_shape), f"{ly.params:,}",
                     f"{ly.trainable:,}"))
        if details and ly.detail:
            notes[len(rows) - 1] = ("  " * ly.depth) + "    " + ly.detail
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j in notes:
            lines.append(notes[j])
        if j == 0:
            lines.append("-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    lines.append(f"Total params: {report.total_params:,}")
    lines.append(f"Trainable params: {report.trainable_params:,}")
    lines.append(f"Non-trainable params: {report.total_params - report.trainable_params:,}")
    lines.append(f"Estimated memory: {report.memory.describe()}")
    return "\n".join(lines)


__all__ = ["check_model", "ShapeReport", "LayerShape", "MemoryEstimate", "check_memory", "summary_table",
           "conv_arithmetic", "fmt_shape", "fmt_bytes", "INPUT_FIX", "INSERT", "REMOVE", "available_bytes",
           "default_budget", "optimizer_slots"]
