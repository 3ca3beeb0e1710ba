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
    SaveModal,
    TextEditModal,
)
from .screens.help import HelpScreen
from .screens.layer_form import LayerFormScreen, preview_text
from .screens.pickers import PresetPicker
from .screens.reports import (
    Reports,
    confusion,
    confusion_screen,
    engine_text,
    gradcheck_screen,
    neuron_screen,
)
from .screens.runs import RunsModal
from .screens.saving import Saving
from .widgets.boundary import BoundaryPane
from .widgets.controls import TrainControls, apply_setting
from .widgets.data import DataPane, InfoPane, Instructions
from .widgets.layer_edits import LayerEdits
from .widgets.layers import ErrorPanel, LayerTable, Totals
from .widgets.plot import LossPlot, eval_series
from .widgets.tensor_edits import TensorEdits
from .widgets.tensor_entries import (
    TensorEntry,
    forward_trace,
    ints_if_whole,
    num_text,
    tensor_entries,
)
from .widgets.tensor_view import TensorView
from .widgets.tensors import TensorList, TensorsPane

__all__ = [
    "BoundaryPane", "DataPane", "DatasetModal", "ErrorModal", "ErrorPanel", "ExportModal", "GeneratorModal",
    "HelpScreen", "InfoPane", "Instructions", "LayerEdits", "LayerFormScreen", "LayerTable", "LossPlot",
    "PresetPicker", "Reports", "RunsModal", "SaveModal", "Saving", "Select", "TensorEdits", "TensorEntry",
    "TensorList", "TensorView", "TensorsPane", "TextEditModal", "Totals", "TrainControls", "apply_setting",
    "confusion", "confusion_screen", "dataset_spec", "engine_text", "eval_series", "forward_trace",
    "gradcheck_screen", "ints_if_whole", "neuron_screen", "num_text", "preview_text", "tensor_entries",
]
