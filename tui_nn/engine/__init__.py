"""The headless engine: networks, data, training, presets and sessions. Imports torch, never Textual.

Names are loaded lazily, so `from tui_nn.engine.bundled import ...` (used before the app's first
frame) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "errors": ["DataError", "DeviceError", "EngineError", "Fix", "MemoryBudgetError", "PresetError", "ShapeError",
               "WeightError"],
    "preset": ["dumps_preset", "list_presets", "load_preset", "loads_preset", "save_preset"],
    "session": ["Session", "ShapeCheckFailed"],
    "shapes": ["ShapeReport", "check_model", "summary_table"],
    "spec": ["CallSpec", "DataSpec", "GeneratorSpec", "LayerSpec", "ModelSpec", "Preset", "TrainingSpec"],
    "trainer": ["Finished", "Progress", "Trainer", "train"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
