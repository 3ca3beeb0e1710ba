"""The headless engine: networks, data, training, presets and sessions. Imports torch, never Textual.

Names are loaded lazily, so `from tui_nn.engine.files.bundled import ...` (used before the app's first
frame) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "files.preset_write": ["dumps_preset", "save_preset"],
    "shapes.report": ["ShapeReport"],
    "shapes.check": ["check_model"],
    "spec": ["GENERATORS", "CallSpec", "DataSpec", "GeneratorSpec", "LayerSpec", "ModelSpec", "Preset", "TrainingSpec"],
    "training.trainer": ["Finished", "Progress", "Trainer", "train"],
    # what the app (tui_nn/ui) uses
    "errors": ["DataError", "DeviceError", "EditError", "EngineError", "Fix", "INPUT_FIX", "MemoryBudgetError",
               "PresetError", "ShapeError", "WeightError"],
    "files.bundled": ["bundled_presets", "presets_dir"],
    "files.export": ["write_history_csv", "write_script"],
    "files.preset_read": ["INIT_SCHEMES", "list_presets", "load_preset", "loads_preset", "parse_init"],
    "files.session_file": ["SUFFIX", "Autosave", "load_session", "save_session"],
    "data.csvfile": ["parse_csv"],
    "data.generated": ["parse_dataset"],
    "data.tables": ["describe"],
    "data.textparse": ["parse_tensor_text"],
    "training.edits": ["set_data", "tensor_text"],
    "model.catalogue": ["BOOL", "CATALOGUE", "FLOAT", "INT", "ArgSpec"],
    "model.edits": ["apply_fix", "default_layer", "duplicate_layer", "insert_layer", "move_layer", "remove_layer",
                    "scratch_preset", "set_args", "shape_at"],
    "model.paths": ["flat_layers", "get_layer", "layer_path_of_param", "module_path", "sibling"],
    "inspect.gradcheck": ["GradcheckReport", "gradcheck_session"],
    "shapes.rules": ["preview", "preview_input_shape"],
    "training.devices": ["DeviceInfo", "list_devices"],
    "training.metrics": ["ConfusionMatrix", "confusion_matrix"],
    "training.objectives": ["LOSSES", "OPTIMIZERS"],
    "training.runner": ["make_runner"],
    "training.schedules": ["SCHEDULERS", "set_scheduler"],
    "training.session": ["Session", "ShapeCheckFailed"],
    "data.tensors": ["tensor_to_list"],
    "training.undo": ["Snapshot", "UndoStack", "carry_weights", "restore", "snapshot"],
    "text": ["fmt_bytes", "fmt_shape", "is_printable", "printable"],
    "model.argtext": ["args_from_values", "call_text", "validate_field", "value_text"],
    "shapes.summary": ["summary_table"],
    "inspect.probes": ["decision_grid", "function_curve", "neuron_equation", "optimizer_state"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
