"""A shape mismatch turned into a value the UI can show: PyTorch's own CPU words, a plain-language hint and a concrete fix."""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import INPUT_FIX, INSERT, REMOVE, Fix, ShapeError
from ..model.build import build_layer
from ..model.catalogue import CATALOGUE, full_args, pair, softmax_dim
from ..spec import LayerSpec, ModelSpec
from ..text import fmt_shape
from .rules import output_shape

CPU_RERUN_MAX_ELEMENTS = 2_000_000  # re-run a failing layer on the CPU for torch's CPU wording below this

CPU_RERUN_MAX_PARAMS = 10_000_000  # ... and only a layer with at most this many parameters (counted on meta)

META_WORDS_ONLY: ContextVar[bool] = ContextVar("META_WORDS_ONLY", default=False)  # set while fixes are verified:
# a trial's error is only a reason to drop a candidate, so no layer is built and re-run on the CPU for its words



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
        dim = softmax_dim(a["dim"], n)
        return n >= 2 and -n <= dim < n and dim % n != 0
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
    if META_WORDS_ONLY.get():
        return meta_text
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
        n = len(in_shape)
        dim = softmax_dim(full_args(CATALOGUE[spec.type], spec.args)["dim"], n)
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
    origin: str = ""  # the last layer before it that is not element-wise ("Conv2d" for Conv2d -> ReLU)


_SPATIAL = frozenset({"Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm2d"})


def _next(path: str) -> str:
    """The path of the place after `path` in the same list ("3" -> "4", "3.1" -> "3.2")."""
    head, _, last = path.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)



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
        flat = math.prod(in_shape[1:])
        flatten: Fix | None = None
        if nd > 2:  # one fix in two steps: the Linear is at the next place once the Flatten is in
            then = () if flat == want else (Fix(index if "." in path else index + 1, "in_features", flat,
                                                f"set in_features = {flat}", path=_next(path)),)
            flatten = Fix(index, INSERT, "Flatten", f"insert a Flatten layer before layer {path}"
                          + (f", then set in_features = {flat}" if then else ""), then=then)
        if flatten is not None and (flat == want or src.origin in _SPATIAL):
            hint = (f"Linear acts on the last dimension only, and its input {fmt_shape(in_shape)} from "
                    f"{_source_text(src)} still has {nd} dimensions; flatten it first "
                    f"({' x '.join(str(d) for d in in_shape[1:])} = {flat} features).")
            fix = flatten
            extra.append(Fix(index, "in_features", got, f"or set in_features = {got} (Linear on the last dimension)"))
        elif got != want:
            hint = (f"Linear was built for in_features = {want}, but receives {got} features from "
                    f"{_source_text(src)}.")
            fix = Fix(index, "in_features", got, f"set in_features = {got}")
            if flatten is not None:
                extra.append(replace(flatten, text="or " + flatten.text))
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
            extra.append(Fix(index, REMOVE, None, f"or remove layer {path} ({t})"))
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
        if f.layer == index and "." not in path:
            return replace(f, path=path)
        return None if "." in path else f  # inside a Residual block another layer's index is ambiguous

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
    rules.py knows the layer, else on the meta device."""
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
