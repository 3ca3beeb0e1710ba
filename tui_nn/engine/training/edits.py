"""Data edited as text: the session's inputs and targets (session operations, so they live with the Session)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from ..data.tensors import tensor_to_list
from ..errors import DataError, EditError
from ..model.argtext import value_text
from ..spec import GeneratorSpec

if TYPE_CHECKING:
    import torch

    from .session import Session


# ---------------------------------------------------------------------------------------------
# data (the engine has no "replace the data, keep the weights" call; this is the adapter)


def set_data(session: Session, inputs: Any = ..., targets: Any = ...) -> None:
    """Replace the inputs and/or the targets (inline lists or GeneratorSpec), keeping the weights and the
    history. The sample shape must match the model's input shape; targets are checked against the loss
    (a mismatch is kept as session.data_error, as the engine does)."""
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
        try:  # the session's own shape check, with the app's hint
            session.check_data_shape(data, hint="change the model's input shape on the Layers tab (key I) first")
        except DataError as err:
            raise EditError(err.message, hint=err.hint) from None
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
    value = tensor_to_list(t)
    if t.dim() <= 2:
        return data_text(value)
    return repr(value)


__all__ = ['set_data', 'data_text', 'tensor_text']
