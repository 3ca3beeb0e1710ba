"""What the Tensors tab lists: one `TensorEntry` per tensor (the data, the parameters, each layer's output
from the forward trace, the output, the optimizer's state, the gradients), and a tensor's element as text.

No Textual here; torch is reached through the session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tui_nn import engine

if TYPE_CHECKING:
    from torch import Tensor

    from tui_nn.engine import Session



@dataclass
class TensorEntry:
    """One tensor the viewer can show."""

    key: str  # "param:0.weight", "grad:0.weight", "trace:1", "input", "targets", "output", "probs"
    label: str
    tensor: Any  # torch.Tensor, or None (with `note` saying why)
    kind: str = "trace"  # "param", "grad", "trace", "data", "output"
    editable: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def num_text(t: Tensor) -> str:
    """One element as the shortest text that reads back to the same value in its dtype."""
    value = t.detach().cpu().item()
    if isinstance(value, float) and str(t.dtype) == "torch.float32":
        return str(np.float32(value))
    return repr(value)


def ints_if_whole(value: Any) -> Any:
    """Typed numbers as class indices where they are whole (targets of a classification loss)."""
    if isinstance(value, list):
        return [ints_if_whole(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def forward_trace(session: Session) -> tuple[list[tuple[str, Tensor]], str]:
    """Each layer's output for the Tensors tab, and what failed ("" when the forward pass ran): a forward
    that fails is shown, not raised."""
    try:
        return session.trace(), ""
    except Exception as err:  # noqa: BLE001
        return [("input", session.inputs)], str(err)


def tensor_entries(s: Session, trace: list[tuple[str, Tensor]] | None, *, running: bool) -> list[TensorEntry | str]:
    """The Tensors tab's list: the data, the parameters, the forward trace (None: while a run is under way),
    the output and its probabilities, the optimizer's state and the gradients, under their headings."""
    editable = not running
    out: list[TensorEntry | str] = ["Data"]
    out.append(TensorEntry("input", "input", s.inputs, kind="data", editable=False, note=""))
    if s.targets is not None:
        out.append(TensorEntry("targets", "targets", s.targets, kind="data"))
    out.append("Parameters")
    params = s.named_parameters()
    for name, p in params:
        out.append(TensorEntry(f"param:{name}", name, p, kind="param", editable=editable,
                               note="" if p.requires_grad else "frozen"))
    if not params:
        out.append(TensorEntry("param:none", "(no parameters)", None, note="this model has no parameters"))
    out.append("Forward trace")
    note_live = " (as of the last stop)" if running else ""
    if trace is None:
        out.append(TensorEntry("trace:later", "(when the run stops)", None,
                               note="each layer's output is computed when the run stops or pauses"))
    for label, t in (trace or [])[1:]:
        idx = label.split(" ", 1)[0]
        out.append(TensorEntry(f"trace:{idx}", f"→ {label}", t, kind="trace", note=note_live.strip()))
    err = s.report.error
    if err is not None:
        out.append(TensorEntry("trace:stop", f"✗ stops at {err.path or err.layer}", None,
                               note=f"the forward pass stops at layer {err.path or err.layer}: {err.message}"))
    elif trace:
        final = trace[-1][1]
        out.append(TensorEntry("output", "output", final, kind="output", note=note_live.strip()))
        last = s.spec.layers[-1].type if s.spec.layers else ""
        kind = engine.LOSSES[s.training.loss.type].kind
        if final.dim() >= 1 and final.is_floating_point():
            if last == "LogSoftmax":
                out.append(TensorEntry("probs", "exp(output)", final.exp(), kind="output",
                                       note="probabilities"))
            elif kind == "classification" and last != "Softmax" and final.dim() >= 2:
                out.append(TensorEntry("probs", "softmax(output)", final.softmax(dim=1), kind="output",
                                       note="probabilities"))
            elif kind == "binary" and last != "Sigmoid":
                out.append(TensorEntry("probs", "sigmoid(output)", final.sigmoid(), kind="output",
                                       note="probabilities"))
    try:
        opt_state = engine.optimizer_state(s) if not running else []
    except Exception:  # noqa: BLE001 - nothing to show
        opt_state = []
    if opt_state:
        out.append(f"Optimizer ({s.training.optimizer.type})")
        for label, t in opt_state:
            out.append(TensorEntry(f"opt:{label}", label, t, kind="trace"))
    out.append("Gradients")
    grads = [(n, p.grad) for n, p in params if p.grad is not None]
    for name, g in grads:
        out.append(TensorEntry(f"grad:{name}", f"∇ {name}", g, kind="grad"))
    input_grad = getattr(s, "input_grad", None)
    if input_grad is not None and not running:
        out.append(TensorEntry("grad:input", "∇ input", input_grad, kind="grad",
                               note="d loss / d input, from the last g"))
    if not grads and input_grad is None:
        out.append(TensorEntry("grad:none", "(none yet)", None,
                               note="no gradients yet: train a step (n) or press g to run one backward pass"))
    return out
