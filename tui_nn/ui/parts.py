"""The app's widgets and screens, in one import: numpy, plotext, Textual's widgets and ours (about 0.4 s on
the lab VM). The app imports this module after its first frame (ui/startup.py, `import_parts`) and reaches
these names as `parts.LayerTable`, ...; a module of its own imports them as usual."""

from __future__ import annotations

from textual.widgets import Select

from .screens.dataset import DatasetModal, dataset_spec
from .screens.dialogs import (
    ErrorModal,
    ExportModal,
    GeneratorModal,
    InitModal,
    SaveModal,
    TextEditModal,
)
from .screens.help import HelpScreen
from .screens.layer_form import LayerFormScreen, preview_text
from .screens.pickers import LayerPicker, PresetPicker
from .screens.reports import (
    confusion,
    confusion_screen,
    engine_text,
    gradcheck_screen,
    neuron_screen,
)
from .screens.runs import RunsModal
from .widgets.boundary import BoundaryPane
from .widgets.controls import TrainControls, apply_setting
from .widgets.data import DataPane, InfoPane, Instructions
from .widgets.layer_edits import (
    add_form,
    edit_form,
    fix_to_apply,
    has_parameters,
    input_shape_dialog,
    not_editable,
    where,
)
from .widgets.layers import ErrorPanel, LayerTable, Totals
from .widgets.plot import LossPlot, eval_series
from .widgets.tensor_edits import (
    check_generator,
    data_dialog,
    data_value,
    parse_value,
    refusal,
    weight_dialog,
)
from .widgets.tensors import (
    TensorEntry,
    TensorList,
    TensorsPane,
    TensorView,
    forward_trace,
    ints_if_whole,
    num_text,
    tensor_entries,
)

__all__ = [
    "BoundaryPane", "DataPane", "DatasetModal", "ErrorModal", "ErrorPanel", "ExportModal", "GeneratorModal",
    "HelpScreen", "InfoPane", "InitModal", "Instructions", "LayerFormScreen", "LayerPicker", "LayerTable",
    "LossPlot", "PresetPicker", "RunsModal", "SaveModal", "Select", "TensorEntry", "TensorList", "TensorView",
    "TensorsPane", "TextEditModal", "Totals", "TrainControls", "add_form", "apply_setting", "check_generator",
    "confusion", "confusion_screen", "data_dialog", "data_value", "dataset_spec", "edit_form", "engine_text",
    "eval_series", "fix_to_apply", "forward_trace", "gradcheck_screen", "has_parameters", "input_shape_dialog",
    "ints_if_whole", "neuron_screen", "not_editable", "num_text", "parse_value", "preview_text", "refusal",
    "tensor_entries", "weight_dialog", "where",
]
