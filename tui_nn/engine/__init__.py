"""The headless engine: networks, data, training, presets and sessions. Imports torch, never Textual.

Names are loaded lazily, so `from tui_nn.engine.files.bundled import ...` (used before the app's first
frame) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "errors": ["DataError", "DeviceError", "EditError", "EngineError", "Fix", "MemoryBudgetError", "PresetError",
               "ShapeError", "WeightError"],
    "files.preset_read": ["list_presets", "load_preset", "loads_preset"],
    "files.preset_write": ["dumps_preset", "save_preset"],
    "training.session": ["Session", "ShapeCheckFailed"],
    "shapes.report": ["ShapeReport"],
    "shapes.check": ["check_model"],
    "shapes.summary": ["summary_table"],
    "spec": ["CallSpec", "DataSpec", "GeneratorSpec", "LayerSpec", "ModelSpec", "Preset", "TrainingSpec"],
    "training.trainer": ["Finished", "Progress", "Trainer", "train"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
