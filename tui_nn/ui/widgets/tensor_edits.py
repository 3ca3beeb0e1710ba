"""Editing a tensor shown on the Tensors or Data tab: the dialog for one cell or the whole tensor (a weight,
the inputs or the targets), the generator dialog, and the typed text made into a value; `TensorEdits` applies
the value to the session (with undo) through the app's `EditHost` interface (ui/host.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from tui_nn import engine

from ..screens.dialogs import GeneratorModal, TextEditModal
from .tensor_entries import ints_if_whole, num_text

if TYPE_CHECKING:
    from torch import Tensor

    from tui_nn.engine import Session

    from ..host import EditHost

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


class TensorEdits:
    """The Tensors and Data tabs' editors applied: a weight, the inputs or the targets (a cell, every value, or a
    generator), each refused while a run is under way and followed by the host's redraw."""

    def __init__(self, host: EditHost) -> None:
        self.host = host

    @property
    def session(self) -> Session:
        assert self.host.session is not None  # the editors open only once a session is open
        return self.host.session

    def edit_param(self, name: str, what: str, index: tuple[int, ...] | None) -> None:
        """A weight's editor ("cell" at `index`, or every value)."""
        if self.host.refuse("edit weights"):
            return
        dialog = weight_dialog(name, self.session.get_param(name), index, partial(self.set_weight, name), what)
        if dialog is not None:
            self.host.push_screen(dialog)

    def edit_data(self, which: str, what: str, index: tuple[int, ...] | None) -> None:
        """The inputs' or targets' editor: a cell, every value, or a generator."""
        if self.host.refuse("edit the data"):
            return
        dialog, warning = data_dialog(self.session, which, what, index, partial(self.set_data_text, which),
                                      partial(self.set_generator, which))
        if warning:
            self.host.notify(warning, severity="warning")
        if dialog is not None:
            self.host.push_screen(dialog)

    def edit_tensor(self, text: str, index: tuple[int, ...] | None, whole: str,
                    apply: Callable[[Any], None], errors: tuple[type[Exception], ...],
                    explain: Callable[[Exception], str] | None = None, undo_label: str | None = None) -> str | None:
        """Parse the text typed for a tensor (or one cell) and apply it; the reason for a refusal, or None."""
        reason = self.host.busy_reason()
        if reason:
            return reason
        value, refused = parse_value(text, index, whole)
        if refused:
            return refused
        undo_stack = self.host.undo_stack
        if undo_label is not None and undo_stack is not None:
            undo_stack.push(engine.snapshot(self.session, undo_label))
        try:
            apply(value)
        except errors as err:
            if undo_label is not None and undo_stack is not None:
                undo_stack.done.pop()
            return (explain or refusal)(err)
        self.host.changed()
        return None

    def set_weight(self, name: str, index: tuple[int, ...] | None, text: str) -> str | None:
        """Parse and set a weight (or one cell); returns the reason for a refusal, or None."""
        return self.edit_tensor(text, index, "v pastes the whole tensor",
                                lambda value: self.session.set_param(name, value, index), (engine.WeightError,),
                                explain=lambda err: getattr(err, "message", str(err)), undo_label=f"edit {name}")

    def set_data_text(self, which: str, index: tuple[int, ...] | None, text: str) -> str | None:
        s = self.session
        return self.edit_tensor(text, index, "v edits all values",
                                lambda value: engine.set_data(s, **{which: data_value(s, which, index, value)}),
                                (engine.EngineError, RuntimeError, ValueError, TypeError))

    def set_generator(self, which: str, kind: str, shape: tuple[int, ...], low: int, high: int) -> str | None:
        reason = self.host.busy_reason() or check_generator(kind, low, high)
        if reason:
            return reason
        try:
            engine.set_data(self.session, **{which: engine.GeneratorSpec(kind, tuple(shape), low, high)})
        except (engine.EngineError, RuntimeError, ValueError, TypeError) as err:
            return refusal(err)
        self.host.changed()
        return None
