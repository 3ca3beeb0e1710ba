"""Data edited as text: the session's inputs and targets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import EditError
from ..model.argtext import value_text
from ..spec import GeneratorSpec, ModelSpec

if TYPE_CHECKING:
    import torch


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

    from ..training.session import tensor_to_list

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
    from ..training.session import tensor_to_list

    value = tensor_to_list(t)
    if t.dim() <= 2:
        return data_text(value)
    return repr(value)


__all__ = ['set_data', 'data_text', 'tensor_text']
