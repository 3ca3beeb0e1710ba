"""What the keys of the layer table (tab 1) ask for, before the app applies it: the forms for a new or an
edited layer, the fix to apply, the model input shape typed in. The app rebuilds the model in a worker."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from tui_nn import engine

from ..screens.dialogs import TextEditModal
from ..screens.layer_form import LayerFormScreen, preview_text

if TYPE_CHECKING:
    from tui_nn.engine import Fix, LayerSpec, Session, ShapeError


def where(path: str | None) -> str:
    return f"after layer {path}" if path is not None else "at the end"


def add_form(session: Session, type_name: str, path: str | None, new: LayerSpec) -> LayerFormScreen:
    """The arguments of a new layer of `type_name` after `path`, with the model's shapes previewed."""
    return LayerFormScreen(f"Add {type_name} {where(path)}", type_name, new.args,
                           partial(preview_text, session, path, type_name, True))


def edit_form(session: Session, path: str, spec: LayerSpec) -> LayerFormScreen:
    return LayerFormScreen(f"Layer {path}: {spec.type}", spec.type, spec.args,
                           partial(preview_text, session, path, spec.type, False))


def not_editable(spec: LayerSpec) -> tuple[str, str]:
    """(why the layer has no arguments to edit, the notice's severity), or ("", "")."""
    if spec.type == "Residual":
        return "A Residual block has no arguments: edit the layers inside it.", "warning"
    if not engine.CATALOGUE[spec.type].args:
        return f"{spec.type} has no arguments.", "information"
    return "", ""


def fix_to_apply(err: ShapeError | None, alternative: bool) -> Fix | None:
    """The shape error's fix (f), or its alternative (F: changing the model input shape first)."""
    if err is None:
        return None
    fixes = [err.fix] if not alternative else list(err.extra_fixes)
    if alternative:
        fixes = [f for f in err.extra_fixes if f.layer == engine.INPUT_FIX] or fixes
    return fixes[0] if fixes else None


def has_parameters(session: Session, module_path: str) -> bool:
    module = dict(session.model.named_modules()).get(module_path)
    return module is not None and any(True for _ in module.parameters())


def parse_input_shape(text: str) -> tuple[int, ...] | str:
    """The model input shape typed in ("1, 3" or "[8, 1, 28, 28]"), or the refusal."""
    try:
        shape = tuple(int(x) for x in text.replace("[", " ").replace("]", " ").replace(",", " ").split())
    except ValueError:
        return "whole numbers, e.g. 1, 3 (batch, features) or 8, 1, 28, 28"
    if not shape or any(v < 1 for v in shape) or len(shape) > 8:
        return "one to eight positive sizes, the first counting samples"
    return shape


def input_shape_dialog(current: tuple[int, ...], apply: Callable[[tuple[int, ...]], Any]) -> TextEditModal:
    """I: the model input shape; apply(shape) when it is valid and new."""

    def typed(text: str) -> str | None:
        shape = parse_input_shape(text)
        if isinstance(shape, str):
            return shape
        if shape != tuple(current):
            apply(shape)
        return None

    return TextEditModal("Model input shape", "Sizes separated by commas; the first counts samples (the batch).\n"
                         "Changing the sample shape replaces inline data with random data.",
                         ", ".join(str(v) for v in current), typed)
