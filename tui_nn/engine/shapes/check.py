"""Shape checking before anything is allocated.

Every layer is built on PyTorch's meta device (shapes only, no memory) and its output shape found by
arithmetic where that is certain (rules.py), else by running it there. A mismatch comes
back as a `ShapeError` value: the layer, PyTorch's own message as a CPU run prints it, a
plain-language hint, and a concrete fix the UI can apply with one key. Conv and pool rows carry
their output-size arithmetic. A memory estimate (parameters, gradients, optimizer state,
activations) is checked against a budget before the real model is built.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import Fix, MemoryBudgetError, ShapeError, shown
from ..model.build import build_layer, construction_problem
from ..model.catalogue import CATALOGUE, full_args, softmax_dim
from ..spec import BLOCKS, LayerSpec, ModelSpec
from ..text import _bytes_text, fmt_bytes, fmt_shape
from .budget import optimizer_slots
from .diagnosis import _cpu_message, _explicit_check, _first_line, _known_error, _Produced, diagnose
from .fixes import TargetCheck, settle
from .report import BYTES_PER_ELEMENT, LayerShape, ShapeReport, ShapeWarning
from .rules import SAME_SHAPE, broadcast, conv_arithmetic, output_shape, param_count

MAX_ELEMENTS = 2**60  # a float32 tensor of more elements has more bytes than torch's sizes can hold


# ---------------------------------------------------------------------------------------------


def check_model(model: ModelSpec, input_shape: tuple[int, ...] | None = None, *,
                optimizer: str | None = None, optimizer_args: dict[str, Any] | None = None,
                verify: bool = True, target_check: TargetCheck | None = None) -> ShapeReport:
    """Shapes, parameter counts and the first error of a model, on the meta device. With `verify`, the error's
    fixes are only those that, applied to a copy, make the whole network valid (fixes.py), the loss on the
    targets included where `target_check` is given (fixes.target_check)."""
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
    buffers = report.buffer_bytes
    if report.error is not None:  # the layers after the error are not walked, but the model still builds them
        all_params, all_trainable = _spec_params(model)
        params, trainable = max(params, all_params), max(trainable, all_trainable)
        buffers = max(buffers, _spec_buffers(model))
    mem = report.memory
    mem.buffers = buffers  # bytes, each buffer in its own dtype (num_batches_tracked is int64: 8 B)
    mem.parameters = params * BYTES_PER_ELEMENT
    mem.gradients = trainable * BYTES_PER_ELEMENT
    mem.optimizer_state = trainable * BYTES_PER_ELEMENT * optimizer_slots(optimizer, optimizer_args or {})
    mem.activations = activations * BYTES_PER_ELEMENT
    out = report.output_shape if report.error is None else None
    mem.targets = (math.prod(out) if out is not None else math.prod(shape)) * BYTES_PER_ELEMENT
    if verify and report.error is not None:
        report.error = settle(model, shape, report.error, check_model, target_check)
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


def _buffer_bytes(module: torch.nn.Module) -> int:
    """Bytes of every buffer of `module`, each in its own dtype (running_mean/var float32, num_batches_tracked int64)."""
    return sum(b.numel() * b.element_size() for b in module.buffers())


def _spec_buffers(model: ModelSpec) -> int:
    """Buffer bytes (BatchNorm's running statistics and step count) of every top-level layer of the spec,
    whatever the shapes; a layer too large for torch to describe counts 0 here (its parameters refuse it)."""
    total = 0
    for spec in model.layers:
        try:
            with torch.device("meta"):
                total += _buffer_bytes(build_layer(spec))
        except Exception:  # noqa: BLE001 - bad arguments or sizes: the walk or the parameter count reports them
            pass
    return total


def _spec_params(model: ModelSpec) -> tuple[int, int]:
    """(parameters, trainable parameters) of every layer of the spec, whatever the shapes."""
    from ..model.build import iter_specs

    total = trainable = 0
    for _, spec in iter_specs(model.layers):
        if spec.type in BLOCKS:
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
          report: ShapeReport, src: _Produced, activations: int, first: int = 0) -> tuple[torch.Tensor, int]:
    for i, spec in enumerate(layers, first):
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
            hint, fix = construction_problem(spec, err, top, path)
            report.error = ShapeError(top, spec.type, f"{spec.type} cannot be built: {shown(_first_line(err), 300)}",
                                      hint=hint, fix=fix, input_shape=in_shape, path=path)
            report.layers.append(LayerShape(top, path, spec.type, in_shape, None, 0, 0, depth=depth))
            return x, activations
        n_params = sum(p.numel() for p in module.parameters())
        n_train = 0 if spec.frozen else n_params
        row = LayerShape(top, path, spec.type, in_shape, None, n_params, n_train,
                         conv_arithmetic(spec, in_shape), depth)
        report.layers.append(row)
        if depth == 0:  # a Residual's buffers include its children's: counted once, at the top
            report.buffer_bytes += _buffer_bytes(module)
        if spec.type in ("Concat", "Sequential"):
            out, activations = _walk_block(model, spec, x, path, depth, report, src, activations)
            if out is None:
                return x, activations
            row.output_shape = tuple(out.shape)
            src = _Produced(top, spec.type, tuple(out.shape), path=path)
            x = out
            continue
        if spec.type == "Residual":
            y, activations = _walk(model, spec.layers, x, f"{path}.", depth + 1, report, src, activations)
            if report.error is not None:
                return x, activations
            identity = in_shape
            if spec.shortcut:  # the projection shortcut, on the block's input
                sc, activations = _walk(model, spec.shortcut, x, f"{path}.shortcut.", depth + 1, report, src,
                                        activations)
                if report.error is not None:
                    return x, activations
                identity = tuple(sc.shape)
            mismatch = _add_mismatch(identity, tuple(y.shape))
            if mismatch is None:
                out = torch.empty(broadcast(identity, tuple(y.shape)) or identity, device="meta")  # x + y
            else:
                what = (f"its shortcut's output {fmt_shape(identity)}" if spec.shortcut else
                        f"its input {fmt_shape(in_shape)}")
                keep = ("the shortcut and the body must give the same shape (a 1x1 conv with the body's stride and "
                        "out_channels)" if spec.shortcut else "the body must keep the shape")
                report.error = ShapeError(top, "Residual", mismatch,
                                          hint=f"a Residual block adds {what} to its body's "
                                               f"output {fmt_shape(tuple(y.shape))}; {keep}.",
                                          input_shape=in_shape, path=path)
                return x, activations
            row.output_shape = tuple(out.shape)
            activations += out.numel()
            src = _Produced(top, "Residual", tuple(out.shape), path=path)
            x = out
            continue
        problem = _explicit_check(spec, in_shape) or _known_error(spec, in_shape)
        fast = output_shape(spec, in_shape) if problem is None else None
        if fast is not None:  # arithmetic (rules.py): no meta kernel, so no torch._dynamo import
            y = _meta_tensor(fast, f"the output of layer {path} ({spec.type})")
        elif problem is None:
            try:
                y = module(x)
            except Exception as err:  # noqa: BLE001 - torch raises RuntimeError/IndexError/ValueError
                problem = shown(_cpu_message(spec, in_shape, err, n_params), 1000)  # torch's words, bounded
        if problem is not None:
            report.error = diagnose(top, path, spec, in_shape, problem, src, model if depth == 0 else None)
            return x, activations
        row.output_shape = tuple(y.shape)
        activations += y.numel()
        warning = _torch_warning(spec, top, path, in_shape)
        if warning is not None:
            report.warnings.append(warning)
        flat = None
        if spec.type == "Flatten":
            a = full_args(CATALOGUE["Flatten"], spec.args)
            sd = a["start_dim"] % len(in_shape) if in_shape else 0
            ed = a["end_dim"] % len(in_shape) if in_shape else 0
            flat = in_shape[sd:ed + 1]
        origin = src.origin or src.type if spec.type in SAME_SHAPE else spec.type
        src = _Produced(top, spec.type, tuple(y.shape), flat, path=path, origin=origin)
        x = y
    return x, activations


CAT_CPU_MAX_ELEMENTS = 2_000_000  # a failed torch.cat is re-run on the CPU for its words below this many elements


def _walk_block(model: ModelSpec, spec: LayerSpec, x: torch.Tensor, path: str, depth: int, report: ShapeReport,
                src: _Produced, activations: int) -> tuple[torch.Tensor | None, int]:
    """A Sequential block's layers in order, or a Concat block's branches each on `x` and then torch.cat: the
    output (None after an error, which is in `report`: inside a branch at the branch's layer path)."""
    top = int(path.split(".")[0])
    if spec.type == "Sequential":
        y, activations = _walk(model, spec.layers, x, f"{path}.", depth + 1, report, src, activations)
        return (None if report.error is not None else y), activations
    outs = []
    for i, branch in enumerate(spec.layers):
        y, activations = _walk(model, [branch], x, f"{path}.", depth + 1, report, src, activations, first=i)
        if report.error is not None:
            return None, activations
        outs.append(y)
    dim = full_args(CATALOGUE["Concat"], spec.args)["dim"]
    try:
        out = torch.cat(outs, dim=dim)
    except Exception as err:  # noqa: BLE001 - torch's refusal is a value: in its CPU words where affordable
        shapes = [tuple(t.shape) for t in outs]
        message = _cat_message(shapes, dim) or shown(_first_line(err), 1000)
        listed = ", ".join(f"branch {path}.{i} {fmt_shape(s)}" for i, s in enumerate(shapes))
        hint = (f"a Concat block joins its branches' outputs along dim {dim}: every other dimension must agree "
                f"({listed or 'no branches'})." if shapes else "a Concat block needs at least one branch (layers).")
        report.error = ShapeError(top, "Concat", message, hint=hint, input_shape=tuple(x.shape), path=path)
        return None, activations
    activations += out.numel()
    return out, activations


def _cat_message(shapes: list[tuple[int, ...]], dim: int) -> str | None:
    """torch.cat's CPU message for outputs of these shapes (it checks them before allocating: run on stride-0
    views of one zero), or None when too large to try or when the CPU accepts it."""
    if sum(math.prod(s) for s in shapes) > CAT_CPU_MAX_ELEMENTS:
        return None
    try:
        torch.cat([torch.zeros(()).expand(s) for s in shapes], dim=dim)
    except Exception as err:  # noqa: BLE001 - the words are what we want
        return shown(_first_line(err), 1000)
    return None


def _torch_warning(spec: LayerSpec, top: int, path: str, in_shape: tuple[int, ...]) -> ShapeWarning | None:
    """torch's warning for a layer that works: Softmax/LogSoftmax without dim (the dim torch picks, named)."""
    if spec.type not in ("Softmax", "LogSoftmax") or spec.args.get("dim") is not None:
        return None
    n = len(in_shape)
    dim = softmax_dim(None, n)
    name = "softmax" if spec.type == "Softmax" else "log_softmax"
    batch = " (the batch dimension: each feature sums to 1 over the samples)" if dim == 0 and n >= 2 else ""
    hint = (f"without dim, torch picks dim = {dim} for this {n}-D input {fmt_shape(in_shape)}{batch} (dim 0 for 0-, "
            f"1- and 3-D input, dim 1 otherwise); write dim = {dim} to keep that, or dim = -1 for the last dimension")
    return ShapeWarning(top, path, spec.type, f"Implicit dimension choice for {name} has been deprecated. Change "
                        "the call to include dim=X as an argument.", hint, Fix(top, "dim", dim, f"set dim = {dim}",
                                                                               path=path))


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


__all__ = ['check_model', 'conv_arithmetic', 'fmt_shape', 'fmt_bytes']
