"""Editing a tensor shown on the Tensors or Data tab: the dialog for one cell or the whole tensor (a weight,
the inputs or the targets), the generator dialog, and the typed text made into a value. The app applies the
value to the session (with undo) and redraws."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui_nn import engine

from ..screens.dialogs import GeneratorModal, TextEditModal
from .tensors import ints_if_whole, num_text

if TYPE_CHECKING:
    from torch import Tensor

    from tui_nn.engine import Session

Apply = Callable[[str], "str | None"]


def weight_dialog(name: str, p: Tensor, index: tuple[int, ...] | None, apply: Callable[..., str | None],
                  what: str) -> TextEditModal | None:
    """A weight's editor: one cell (`what` "cell", at `index`) or every value; apply(index, text)."""
    if what == "cell":
        if index is None:
            return None
        current = num_text(p.detach()[index] if index else p.detach())
        return TextEditModal(f"{name}[{', '.join(str(i) for i in index)}]",
                             f"A new value for this weight (now {current}). Refused if not a finite number.",
                             current, lambda text: apply(index, text))
    return TextEditModal(f"{name}: all values, shape {list(p.shape)}",
                         "Paste or type the whole tensor: rows by newline or ';', numbers by space or comma, or a "
                         "nested list as PyTorch prints it. A wrong shape, a non-number or a NaN is refused.",
                         engine.tensor_text(p.detach()), lambda text: apply(None, text), multiline=True)


def data_dialog(session: Session, which: str, what: str, index: tuple[int, ...] | None,
                apply: Callable[..., str | None], generate: Callable[..., str | None]
                ) -> tuple[TextEditModal | GeneratorModal | None, str]:
    """The inputs' or targets' editor (a cell, every value, or a generator; apply(index, text), generate(kind,
    shape, low, high)) and a warning to show first ("" : none)."""
    tensor = session.inputs if which == "inputs" else session.targets
    if what == "generator":
        src = getattr(session.preset.data, which)
        kind = src.kind if isinstance(src, engine.GeneratorSpec) else "randn"
        shape = tuple(tensor.shape) if tensor is not None else tuple(session.spec.input_shape)
        return GeneratorModal(f"Generate the {which}", kind, shape, generate), ""
    if tensor is None:
        warning = f"There are no {which} to edit: G sets a generator, or v types them."
        if what == "all":
            return TextEditModal(f"{which}", "Type the values: one row per sample.", "",
                                 lambda text: apply(None, text), multiline=True), warning
        return None, warning
    if what == "cell":
        if index is None:
            return None, ""
        current = num_text(tensor[index] if index else tensor)
        return TextEditModal(f"{which}[{', '.join(str(i) for i in index)}]", f"A new value (now {current}).",
                             current, lambda text: apply(index, text)), ""
    return TextEditModal(f"{which}: all values, shape {list(tensor.shape)}",
                         "One row per sample: rows by newline or ';', numbers by space or comma, or a nested list. "
                         "The sample shape must stay the model's input shape.",
                         engine.tensor_text(tensor.detach().cpu()), lambda text: apply(None, text),
                         multiline=True), ""


def parse_value(text: str, index: tuple[int, ...] | None, whole: str) -> tuple[Any, str]:
    """(the value typed, "") or (None, the refusal): one number for one cell (`whole` says how to type them
    all), or a nested list of numbers."""
    try:
        value = engine.parse_tensor_text(text)
    except engine.WeightError as err:
        return None, err.message
    if index is not None and isinstance(value, list):
        return None, f"type one number for one cell ({whole})"
    return value, ""


def data_value(session: Session, which: str, index: tuple[int, ...] | None, value: Any) -> list[Any]:
    """The whole inputs or targets with `value` typed for them, or for one cell of them; targets of a
    classification loss as class indices where the numbers are whole."""
    if index is not None:
        tensor = session.inputs if which == "inputs" else session.targets
        full = engine.tensor_to_list(tensor.detach().cpu())
        if not index:
            full = value
        else:
            cell = full
            for i in index[:-1]:
                cell = cell[i]
            cell[index[-1]] = value
        value = full
    if not isinstance(value, list):
        value = [value]
    if which == "targets" and engine.LOSSES[session.training.loss.type].kind == "classification":
        value = ints_if_whole(value)
    return value


def refusal(err: Exception) -> str:
    """A refused data edit as one line."""
    if isinstance(err, engine.EngineError):
        return err.message + (f" ({err.hint})" if err.hint else "")
    return str(err)


def check_generator(kind: str, low: int, high: int) -> str:
    return f"high ({high}) must be greater than low ({low})" if kind == "randint" and high <= low else ""
