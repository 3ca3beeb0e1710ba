"""The headless engine: networks, data, training, presets and sessions. Imports torch, never Textual."""

from .errors import DataError, DeviceError, EngineError, Fix, MemoryBudgetError, PresetError, ShapeError, WeightError
from .preset import dumps_preset, list_presets, load_preset, loads_preset, save_preset
from .session import Session, ShapeCheckFailed
from .shapes import ShapeReport, check_model, summary_table
from .spec import CallSpec, DataSpec, GeneratorSpec, LayerSpec, ModelSpec, Preset, TrainingSpec
from .trainer import Finished, Progress, Trainer, train

__all__ = [
    "DataError", "DeviceError", "EngineError", "Fix", "MemoryBudgetError", "PresetError", "ShapeError", "WeightError",
    "dumps_preset", "list_presets", "load_preset", "loads_preset", "save_preset", "Session", "ShapeCheckFailed",
    "ShapeReport", "check_model", "summary_table", "CallSpec", "DataSpec", "GeneratorSpec", "LayerSpec", "ModelSpec",
    "Preset", "TrainingSpec", "Finished", "Progress", "Trainer", "train",
]
