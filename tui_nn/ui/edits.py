"""Model-spec edits the app offers (add, remove, move, duplicate, set arguments, apply a fix), an undo
stack, and small adapters over the engine. Pure data manipulation: no training logic, no widgets.

This module imports the engine (and so torch); the app imports it only after the first frame.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_nn.engine.catalogue import CATALOGUE, full_args
from tui_nn.engine.errors import INPUT_FIX, INSERT, REMOVE, EngineError, Fix, ShapeError
from tui_nn.engine.preset import check_arg
from tui_nn.engine.spec import CallSpec, DataSpec, GeneratorSpec, LayerSpec, ModelSpec, Preset, TrainingSpec

if TYPE_CHECKING:  # this module is imported before torch has loaded (the layer table's preview)
    import torch

    from tui_nn.engine.shapes import LayerShape, ShapeReport

UNDO_DEPTH = 50
UNDO_WEIGHT_LIMIT = 5_000_000  # undo entries keep a copy of the weights for models up to this many numbers


class EditError(EngineError):
    """An edit that cannot be made (shown to the user, nothing changes)."""


# ---------------------------------------------------------------------------------------------
# paths: "3" is a top-level layer, "3.1" the second layer of the Residual block at 3


def flat_layers(layers: list[LayerSpec], prefix: str = "", depth: int = 0) -> list[tuple[str, int, LayerSpec]]:
    out: list[tuple[str, int, LayerSpec]] = []
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        out.append((path, depth, spec))
        if spec.type == "Residual":
            out.extend(flat_layers(spec.layers, f"{path}.", depth + 1))
    return out


def module_path(path: str) -> str:
    """Report path "3.1" -> module path in the built nn.Sequential "3.body.1"."""
    return ".body.".join(path.split("."))


def layer_path_of_param(name: str) -> str:
    """Parameter name "3.body.1.weight" -> report path "3.1"."""
    parts = name.split(".")[:-1]
    return ".".join(p for p in parts if p != "body")


def _container(model: ModelSpec, path: str) -> tuple[list[LayerSpec], int]:
    parts = [int(p) for p in path.split(".")]
    layers = model.layers
    for p in parts[:-1]:
        if not 0 <= p < len(layers) or layers[p].type != "Residual":
            raise EditError(f"no layer {path}")
        layers = layers[p].layers
    idx = parts[-1]
    return layers, idx


def get_layer(model: ModelSpec, path: str) -> LayerSpec:
    layers, idx = _container(model, path)
    if not 0 <= idx < len(layers):
        raise EditError(f"no layer {path}")
    return layers[idx]


def _sibling(path: str, idx: int) -> str:
    head = path.rsplit(".", 1)[0] + "." if "." in path else ""
    return f"{head}{idx}"


def sibling(path: str, delta: int) -> str:
    """The path `delta` places after `path` in the same list."""
    head, _, last = path.rpartition(".")
    return f"{head}.{int(last) + delta}" if head else str(int(last) + delta)


def carry_weights(session: Any, old_modules: dict[str, Any], carry: dict[str, str]) -> None:
    """After a rebuild: give the layers at the new paths the weights of the old layers (same shapes only)."""
    new_modules = dict(session.model.named_modules())
    for new_path, old_path in carry.items():
        src = old_modules.get(module_path(old_path))
        dst = new_modules.get(module_path(new_path))
        if src is None or dst is None or src is dst:
            continue
        try:
            dst.load_state_dict(src.state_dict())
        except (RuntimeError, KeyError):
            continue  # different layers (shapes): keep the rebuilt weights


def insert_layer(model: ModelSpec, path: str | None, spec: LayerSpec, *, after: bool = True) -> str:
    """Insert `spec` after (or before) the layer at `path` (None: at the end). Returns the new path."""
    if path is None:
        model.layers.append(spec)
        return str(len(model.layers) - 1)
    layers, idx = _container(model, path)
    pos = min(idx + 1 if after else idx, len(layers))
    layers.insert(pos, spec)
    return _sibling(path, pos)


def remove_layer(model: ModelSpec, path: str) -> str | None:
    layers, idx = _container(model, path)
    if not 0 <= idx < len(layers):
        raise EditError(f"no layer {path}")
    del layers[idx]
    if not layers:
        return path.rsplit(".", 1)[0] if "." in path else None
    return _sibling(path, min(idx, len(layers) - 1))


def duplicate_layer(model: ModelSpec, path: str) -> str:
    layers, idx = _container(model, path)
    layers.insert(idx + 1, layers[idx].copy())
    return _sibling(path, idx + 1)


def move_layer(model: ModelSpec, path: str, delta: int) -> str:
    layers, idx = _container(model, path)
    new = idx + delta
    if not 0 <= new < len(layers):
        raise EditError("already at the top" if delta < 0 else "already at the bottom")
    layers[idx], layers[new] = layers[new], layers[idx]
    return _sibling(path, new)


def set_args(model: ModelSpec, path: str, args: dict[str, Any]) -> None:
    """Replace a layer's arguments. Hand-set parameters are dropped when the arguments change (their
    shapes may no longer fit)."""
    spec = get_layer(model, path)
    if spec.args != args:
        spec.args = dict(args)
        spec.params = {}


def fix_target(error: ShapeError, fix: Fix) -> str | None:
    """The layer path a fix applies to. The engine gives top-level indices; for a layer inside a Residual
    block the error's own path is the one meant."""
    if fix.layer == INPUT_FIX:
        return None
    if error.path and "." in error.path and fix.layer == error.layer and fix.arg != REMOVE:
        return error.path
    return str(fix.layer)


def apply_fix(model: ModelSpec, error: ShapeError, fix: Fix) -> str | None:
    """Apply a shape fix to `model` in place; returns the path to select afterwards."""
    if fix.layer == INPUT_FIX:
        model.input_shape = tuple(int(v) for v in fix.value)
        return None
    target = fix_target(error, fix)
    assert target is not None
    if fix.arg == INSERT:
        return insert_layer(model, target, default_layer(str(fix.value)), after=False)
    if fix.arg == REMOVE:
        if error.path and "." in error.path:
            raise EditError("this fix removes a layer inside a Residual block; remove it by hand (x)")
        return remove_layer(model, target)
    spec = get_layer(model, target)
    args = dict(spec.args)
    lt = CATALOGUE[spec.type]
    argspec = lt.arg(fix.arg)
    value = fix.value
    if argspec is not None:
        value = check_arg(argspec, value, fix.arg)
    args[fix.arg] = value
    set_args(model, target, args)
    return target


# ---------------------------------------------------------------------------------------------
# new layers with arguments guessed from the shape where they go


def default_layer(type_name: str, in_shape: tuple[int, ...] | None = None) -> LayerSpec:
    """A layer of `type_name` whose required arguments fit an input of `in_shape` where possible."""
    lt = CATALOGUE[type_name]
    args: dict[str, Any] = {}
    shape = tuple(in_shape) if in_shape else ()
    last = shape[-1] if shape else 8
    chan = shape[1] if len(shape) >= 2 else last
    for a in lt.args:
        if not a.required:
            continue
        if a.name == "in_features":
            args[a.name] = last
        elif a.name == "out_features":
            args[a.name] = last
        elif a.name == "in_channels":
            args[a.name] = chan
        elif a.name == "out_channels":
            args[a.name] = 8
        elif a.name == "num_features":
            args[a.name] = chan
        elif a.name == "normalized_shape":
            args[a.name] = last
        elif a.name == "kernel_size":
            args[a.name] = 3 if type_name.startswith("Conv") else 2
        elif a.name == "output_size":
            args[a.name] = 1
        else:
            args[a.name] = a.default if a.default is not None else 1
    if type_name == "Softmax" or type_name == "LogSoftmax":
        args["dim"] = -1
    spec = LayerSpec(type=type_name, args=args)
    if type_name == "Residual":
        spec.layers = [LayerSpec("Identity")]
    return spec


def shape_at(report: ShapeReport, model: ModelSpec, path: str | None, *, after: bool = True) -> tuple[int, ...]:
    """The tensor shape flowing into a layer inserted after (or before) `path`."""
    rows = {r.path: r for r in report.layers}
    if path is None:
        top = [r for r in report.layers if r.depth == 0]
        if top and top[-1].output_shape is not None:
            return top[-1].output_shape
        return tuple(report.input_shape)
    row = rows.get(path)
    if row is None:
        return tuple(report.input_shape)
    if after:
        return row.output_shape or row.input_shape
    return row.input_shape


# ---------------------------------------------------------------------------------------------
# argument text <-> values


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_value(argspec: Any, text: str) -> Any:
    """Turn typed text into a Python value for `argspec` (then validated with check_arg)."""
    from tui_nn.engine.catalogue import BOOL, CHOICE, FLOAT, INT, INTS, OPT_FLOAT, OPT_INT, PADDING

    t = text.strip()
    kind = argspec.kind
    if kind == BOOL:
        low = t.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise EditError("expected true or false")
    if kind == CHOICE:
        return t
    if kind in (INT, OPT_INT):
        return _int(t)
    if kind in (FLOAT, OPT_FLOAT):
        return _float(t)
    if kind in (INTS, PADDING):
        if kind == PADDING and t.strip("'\"") in argspec.choices:
            return t.strip("'\"")
        items = _items(t)
        if len(items) == 1:
            return _int(items[0])
        return [_int(x) for x in items]
    if kind == "float_pair":
        return [_float(x) for x in _items(t)]
    return t  # pragma: no cover - unknown kinds are validated by check_arg


def _items(t: str) -> list[str]:
    inner = t.strip()
    if inner[:1] in "[(" and inner[-1:] in "])":
        inner = inner[1:-1]
    items = [x for x in inner.replace(",", " ").split() if x]
    if not items:
        raise EditError("expected a value")
    return items


_INT_EXP = re.compile(r"[+-]?\d+(?:\.\d*)?[eE]\+?\d{1,2}")


def _int(t: str) -> int:
    """An integer; exponent notation that names one (1e3, 2.5e4: how step counts are often written) too."""
    t = t.strip()
    try:
        return int(t)
    except ValueError:
        pass
    if _INT_EXP.fullmatch(t):
        value = Decimal(t)
        if value == value.to_integral_value():
            return int(value)
        raise EditError(f"{t!r} is not an integer ({value.normalize():f})")
    raise EditError(f"{t!r} is not an integer") from None


def _float(t: str) -> float:
    try:
        v = float(t.strip())
    except ValueError:
        raise EditError(f"{t.strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise EditError("NaN or Inf is not allowed")
    return v


def validate_field(argspec: Any, text: str) -> tuple[Any, str | None, bool]:
    """(value, error, omitted): empty text means the default (omitted), unless the argument is required."""
    from tui_nn.engine.errors import PresetError

    if not text.strip():
        if argspec.required:
            return None, "required", False
        return argspec.default, None, True
    try:
        value = parse_value(argspec, text)
        value = check_arg(argspec, value, argspec.name)
    except EditError as err:
        return None, err.message, False
    except PresetError as err:
        return None, err.detail, False
    return value, None, False


def args_from_values(argspecs: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Arguments that differ from defaults (required ones always kept)."""
    out: dict[str, Any] = {}
    for a in argspecs:
        if a.name not in values:
            continue
        v = values[a.name]
        if a.required or v != a.default:
            out[a.name] = v
    return out


# ---------------------------------------------------------------------------------------------
# what the layer rows show


def call_text(spec: LayerSpec) -> str:
    """'Linear(3, 4)', 'Conv2d(1, 8, 3, padding=1)', 'Softmax(dim=1)': like the PyTorch call."""
    lt = CATALOGUE.get(spec.type)
    if lt is None:
        return spec.type
    parts: list[str] = []
    for a in lt.args:
        if a.name not in spec.args:
            continue
        v = spec.args[a.name]
        if not a.required and v == a.default:
            continue  # written out in the preset, but the default anyway
        text = f"'{v}'" if isinstance(v, str) else value_text(v) if not isinstance(v, list) else \
            "(" + ", ".join(str(x) for x in v) + ")"
        parts.append(text if a.required else f"{a.name}={text}")
    for k, v in spec.args.items():
        if lt.arg(k) is None:
            parts.append(f"{k}={value_text(v)}")
    return f"{spec.type}({', '.join(parts)})"


def fmt_count(n: int) -> str:
    return f"{n:,}"


# ---------------------------------------------------------------------------------------------
# undo


@dataclass
class Snapshot:
    label: str
    model: ModelSpec
    weights: dict[str, torch.Tensor] | None


@dataclass
class UndoStack:
    done: list[Snapshot] = field(default_factory=list)
    undone: list[Snapshot] = field(default_factory=list)

    def push(self, snap: Snapshot) -> None:
        self.done.append(snap)
        del self.done[:-UNDO_DEPTH]
        self.undone.clear()

    def clear(self) -> None:
        self.done.clear()
        self.undone.clear()


def snapshot(session: Any, label: str) -> Snapshot:
    model = session.spec.copy()
    total = sum(p.numel() for p in session.model.parameters())
    weights = None
    if total <= UNDO_WEIGHT_LIMIT:
        weights = {n: p.detach().to("cpu", copy=True) for n, p in session.model.named_parameters()}
    return Snapshot(label, model, weights)


def restore(session: Any, snap: Snapshot) -> None:
    """Rebuild the session's model from a snapshot and put its weights back (optimizer starts afresh)."""
    session.rebuild(snap.model.copy())
    if snap.weights is not None:
        params = dict(session.model.named_parameters())
        import torch

        with torch.no_grad():
            for name, value in snap.weights.items():
                p = params.get(name)
                if p is not None and tuple(p.shape) == tuple(value.shape):
                    p.copy_(value.to(p.device, p.dtype))


# ---------------------------------------------------------------------------------------------
# data (the engine has no "replace the data, keep the weights" call; this is the adapter)


def sample_shape(model: ModelSpec) -> tuple[int, ...]:
    return tuple(model.input_shape[1:])


def tensor_shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, GeneratorSpec):
        return tuple(value.shape)
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


def set_data(session: Any, inputs: Any = ..., targets: Any = ...) -> None:
    """Replace the inputs and/or the targets (inline lists or GeneratorSpec), keeping the weights and the
    history. The sample shape must match the model's input shape; targets are checked against the loss
    (a mismatch is kept as session.data_error, as the engine does)."""
    import copy

    from tui_nn.engine.session import tensor_to_list

    data = copy.copy(session.preset.data)
    if getattr(data, "dataset", None) is not None or getattr(data, "csv", None) is not None:
        # a data set or a CSV file gives both; editing one of them makes both inline
        if inputs is ...:
            inputs = tensor_to_list(session.inputs.detach().cpu())
        if targets is ... and session.targets is not None:
            t = session.targets.detach().cpu()
            targets = t.tolist() if not t.is_floating_point() else tensor_to_list(t)
        data.dataset = None
        data.csv = None
    if (inputs is not ... and targets is ... and not isinstance(data.targets, list) and session.targets is not None
            and isinstance(inputs, list) and len(inputs) == int(session.targets.shape[0])):
        # targets drawn from the seed come after the inputs in the same random stream: inline inputs would
        # shift them, so the targets on screen are kept as inline values (same sample count only)
        t = session.targets.detach().cpu()
        targets = t.tolist() if not t.is_floating_point() else tensor_to_list(t)
    if inputs is not ...:
        data.inputs = inputs
    if targets is not ...:
        data.targets = targets
    if inputs is not ... and inputs is not None:
        shape = tensor_shape(inputs)
        want = sample_shape(session.spec)
        if len(shape) < 1 or tuple(shape[1:]) != want:
            raise EditError(f"inputs of shape {list(shape)} do not fit the model input shape "
                            f"{list(session.spec.input_shape)}: each sample (row) must have shape {list(want)}",
                            hint="change the model's input shape on the Layers tab (key I) first")
        if shape[0] < 1:
            raise EditError("the inputs need at least one sample")
    session.set_data(data)


def data_text(value: Any) -> str:
    """Inline data as rows of numbers (what the text editor starts with)."""
    if value is None or isinstance(value, GeneratorSpec):
        return ""
    if not isinstance(value, list):
        return value_text(value)
    if value and all(not isinstance(v, list) for v in value):
        return "  ".join(_num(v) for v in value)
    if value and all(isinstance(v, list) and all(not isinstance(x, list) for x in v) for v in value):
        return "\n".join("  ".join(_num(x) for x in row) for row in value)
    return repr(value)


def _num(v: Any) -> str:
    return repr(v)


def tensor_text(t: torch.Tensor) -> str:
    """A tensor as editable text: rows of numbers (2-D and less), nested lists beyond."""
    from tui_nn.engine.session import tensor_to_list

    value = tensor_to_list(t)
    if t.dim() <= 2:
        return data_text(value)
    return repr(value)


def scratch_preset() -> Preset:
    """What `tui-nn` without a preset opens: a small network to start from."""
    layers = [LayerSpec("Linear", {"in_features": 4, "out_features": 8}), LayerSpec("ReLU"),
              LayerSpec("Linear", {"in_features": 8, "out_features": 1})]
    return Preset(name="scratch", model=ModelSpec((16, 4), layers),
                  description="A small network to start from: 16 random samples of 4 features, one output.\n"
                              "Press o to open a lab preset, a to add a layer, r to train.",
                  data=DataSpec(GeneratorSpec("randn", (16, 4)), None),
                  training=TrainingSpec(loss=CallSpec("MSELoss"), optimizer=CallSpec("SGD", {"lr": 0.05}),
                                        steps=200))


def first_error_row(report: ShapeReport) -> LayerShape | None:
    if report.error is None:
        return None
    for row in report.layers:
        if row.path == (report.error.path or str(report.error.layer)):
            return row
    return None


__all__ = ["EditError", "flat_layers", "sibling", "carry_weights", "module_path", "layer_path_of_param", "get_layer",
           "insert_layer", "remove_layer", "duplicate_layer", "move_layer", "set_args", "apply_fix", "fix_target",
           "default_layer", "shape_at", "value_text", "parse_value", "validate_field", "args_from_values", "call_text",
           "UndoStack", "Snapshot", "snapshot", "restore", "set_data", "data_text", "tensor_text", "scratch_preset",
           "full_args", "first_error_row"]
