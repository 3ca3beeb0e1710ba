"""Errors as values.

Everything the engine can refuse is described by one of these, so the UI and the command line
can show it (layer index, PyTorch's own message, a plain-language hint, a concrete fix) instead
of a traceback.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable


class EngineError(ValueError):
    """Base of every error the engine raises on purpose. Shown to the user as one message."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class PresetError(EngineError):
    """A preset (or session) file that does not fit the format: names the file and the field."""

    def __init__(self, message: str, *, source: str = "<preset>", field: str = "", line: int | None = None,
                 hint: str = "") -> None:
        self.source = source
        self.field = field
        self.line = line
        where = source
        if line is not None:
            where += f", line {line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.detail = message


class DeviceError(EngineError):
    """A device that is not there, or that failed (out of memory)."""


class DataError(EngineError):
    """Data that does not fit the model or the loss."""


class WeightError(EngineError):
    """A parameter value that is refused (wrong shape, not a number, NaN/Inf, unknown name)."""


class MemoryBudgetError(EngineError):
    """A model refused before allocation because it would not fit in the memory budget."""

    def __init__(self, message: str, *, needed_bytes: int, budget_bytes: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.needed_bytes = needed_bytes
        self.budget_bytes = budget_bytes


INPUT_FIX = -1  # Fix.layer value meaning "the model's input_shape"
INSERT = "__insert__"  # Fix.arg value meaning "insert layer type `value` before `layer`"
REMOVE = "__remove__"  # Fix.arg value meaning "remove layer `layer`"


@dataclass(frozen=True)
class Fix:
    """A concrete, applicable fix: set argument `arg` of layer `layer` to `value`.

    `layer` is a top-level index; `path` names the exact layer ("3.1": the second layer inside the
    Residual block at index 3) and is what to apply the fix to."""

    layer: int
    arg: str
    value: Any
    text: str
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path or str(self.layer), "arg": self.arg, "value": self.value,
                "text": self.text}


@dataclass(frozen=True)
class ShapeError:
    """A shape mismatch found while checking a model, as a value.

    `layer` is the 0-based index in the top-level layer list (for a layer inside a Residual block,
    `path` gives the nested position, e.g. "3.1").
    """

    layer: int
    type: str
    message: str  # PyTorch's own words, as a CPU run would print them
    hint: str = ""
    fix: Fix | None = None
    input_shape: tuple[int, ...] | None = None
    path: str = ""
    extra_fixes: tuple[Fix, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "path": self.path or str(self.layer),  # "3.1": the second layer inside the Residual block at 3
            "type": self.type,
            "message": self.message,
            "hint": self.hint,
            "fix": self.fix.text if self.fix else "",
        }

    def __str__(self) -> str:
        text = f"layer {self.path or self.layer} ({self.type}): {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.fix:
            text += f"\n  fix: {self.fix.text}"
        for extra in self.extra_fixes:
            text += f"\n       {extra.text}"
        return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "X"?)' for a near-miss name, or ''."""
    choices = list(choices)
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f' (did you mean "{lower[word.lower()]}"?)'
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close_l = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
        close = [lower[c] for c in close_l]
    return f' (did you mean "{close[0]}"?)' if close else ""
