"""Model-spec edits the app offers (add, remove, move, duplicate, set arguments, apply a fix), an undo
stack, and small adapters over the engine. Pure data manipulation: no training logic, no widgets.

This module imports the engine (and so torch); the app imports it only after the first frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import INPUT_FIX, INSERT, REMOVE, EditError, Fix, ShapeError
from ..spec import CallSpec, DataSpec, GeneratorSpec, LayerSpec, ModelSpec, Preset, TrainingSpec
from .args import check_arg
from .catalogue import CATALOGUE
from .paths import _container, _sibling, get_layer

if TYPE_CHECKING:
    from ..shapes.report import LayerShape, ShapeReport


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
    """Apply a shape fix to `model` in place, its `then` steps included; returns the path to select afterwards."""
    selected = _apply_step(model, error, fix, fix_target(error, fix))
    for step in fix.then:
        selected = _apply_step(model, error, step, None if step.layer == INPUT_FIX else step.path or str(step.layer))
    return selected


def _apply_step(model: ModelSpec, error: ShapeError, fix: Fix, target: str | None) -> str | None:
    if fix.layer == INPUT_FIX:
        model.input_shape = tuple(int(v) for v in fix.value)
        return None
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
    if type_name in ("Residual", "Concat", "Sequential"):
        spec.layers = [LayerSpec("Identity")]  # a block to fill: it passes its input on as it is
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


__all__ = ['EditError', 'insert_layer', 'remove_layer', 'duplicate_layer', 'move_layer', 'set_args', 'apply_fix', 'fix_target', 'default_layer', 'shape_at', 'scratch_preset', 'first_error_row']
