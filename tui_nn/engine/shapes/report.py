"""What a shape check finds: one row per layer, the memory estimate, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Fix, ShapeError
from ..text import fmt_bytes

BYTES_PER_ELEMENT = 4  # float32



@dataclass
class LayerShape:
    index: int  # top-level index
    path: str  # "3" or "3.1" inside a Residual block
    type: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    params: int
    trainable: int
    detail: str = ""  # output-size arithmetic for conv/pool layers
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "path": self.path, "type": self.type, "input_shape": list(self.input_shape),
                "output_shape": list(self.output_shape) if self.output_shape is not None else None,
                "params": self.params, "trainable": self.trainable, "detail": self.detail}



@dataclass(frozen=True)
class ShapeWarning:
    """What torch would warn about at a layer that works (Softmax without dim): torch's words, a hint that says
    what happens, and a fix that makes it explicit."""

    index: int  # top-level index
    path: str
    type: str
    message: str
    hint: str = ""
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.index, "path": self.path, "type": self.type, "message": self.message,
                "hint": self.hint or None, "fix": self.fix.text if self.fix else None}

    def __str__(self) -> str:
        text = f"layer {self.path} ({self.type}): {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.fix:
            text += f"\n  fix: {self.fix.text}"
        return text



@dataclass
class MemoryEstimate:
    parameters: int = 0
    gradients: int = 0
    optimizer_state: int = 0
    activations: int = 0  # the input and every layer's output
    targets: int = 0  # at most one value per output element
    buffers: int = 0  # running statistics (BatchNorm's running_mean/var float32, num_batches_tracked int64)

    @property
    def total(self) -> int:
        return (self.parameters + self.gradients + self.optimizer_state + self.activations + self.targets
                + self.buffers)

    def describe(self) -> str:
        buffers = f", buffers {fmt_bytes(self.buffers)}" if self.buffers else ""
        return (f"{fmt_bytes(self.total)} (parameters {fmt_bytes(self.parameters)}, gradients "
                f"{fmt_bytes(self.gradients)}, optimizer state {fmt_bytes(self.optimizer_state)}, activations "
                f"{fmt_bytes(self.activations)}, targets {fmt_bytes(self.targets)}{buffers})")



@dataclass
class ShapeReport:
    input_shape: tuple[int, ...]
    layers: list[LayerShape] = field(default_factory=list)
    error: ShapeError | None = None
    memory: MemoryEstimate = field(default_factory=MemoryEstimate)
    buffer_bytes: int = 0  # buffer bytes (each in its dtype) of the top-level layers walked
    warnings: list[ShapeWarning] = field(default_factory=list)  # layers that work, where torch warns

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_params(self) -> int:
        return sum(ly.params for ly in self.layers if ly.depth == 0)

    @property
    def trainable_params(self) -> int:
        return sum(ly.trainable for ly in self.layers if ly.depth == 0)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        top = [ly for ly in self.layers if ly.depth == 0]
        if self.error is not None:
            return None
        return top[-1].output_shape if top else self.input_shape


__all__ = ['ShapeReport', 'LayerShape', 'MemoryEstimate', 'ShapeWarning']
