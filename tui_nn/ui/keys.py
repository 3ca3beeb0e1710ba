"""Every key and action, once: the table below feeds the BINDINGS of the app and of its regions (the layer
table, a tensor's view, the Train tab), the command palette (commands.py) and the help screen (`?`).

A row with a key becomes a `Binding` with its `id` (users remap keys by id with Textual's keymap); a row with
`palette` text is a command palette entry (its key shown in brackets); a row with `bound=False` is a line of the
help screen only. `only_in` / `not_in` name the run phases (ui/run_state.py) in which the key acts or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    id: str | None  # the Binding id (None: not remappable)
    action: str  # as Textual writes it: "train_step", "show_tab('layers')", "app.add_layer"
    keys: str = ""  # Textual's key names, comma-separated ("" : no key of its own)
    description: str = ""  # the footer's word
    region: str = "app"  # app | layers | tensor | train | dialogs: whose BINDINGS, which help section
    show: bool = True  # in the footer
    tooltip: str = ""  # the help screen's text (the description when empty)
    palette: str = ""  # the command palette's label ("" : not in the palette)
    palette_help: str = ""
    palette_key: str = ""  # the key shown in the palette's label (default: the first of `keys`)
    only_in: frozenset[str] | None = None  # the phases in which the key acts (None: every phase)
    not_in: frozenset[str] = frozenset()  # the phases in which it does not
    group: str = ""  # a footer group (one description for several keys)
    bound: bool = True  # False: a line of the help screen only


def _phases(*names: str) -> frozenset[str]:
    return frozenset(names)


KEYS: tuple[Key, ...] = (
    # -- the app: everywhere -----------------------------------------------------------------------
    Key("layers.fix", "apply_fix", "f", "Fix", tooltip="Apply the fix shown under a shape error",
        palette="Apply the shape fix"),
    Key("layers.alt_fix", "apply_alt_fix", "F", "Alternative fix", show=False,
        tooltip="Apply the alternative fix (e.g. change the model input shape)", palette="Apply the alternative fix"),
    Key("train.step", "train_step", "n", "Step", tooltip="Train one step", palette="One training step",
        not_in=_phases("running")),
    Key("train.run", "train_run", "r", "Run", tooltip="Train the number of steps set on the Train tab",
        palette="Run training", palette_help="train the steps set on the Train tab", not_in=_phases("running")),
    Key("train.pause", "pause", "p", "Pause", tooltip="Pause the run at the next step", palette="Pause training",
        only_in=_phases("running")),
    Key("train.resume", "resume", "p", "Resume", tooltip="Resume a paused run", palette="Resume training",
        only_in=_phases("paused")),
    Key("train.stop", "stop", "s", "Stop", tooltip="Stop the run at the next step (keeps the weights)",
        palette="Stop training", only_in=_phases("running", "paused")),
    Key("layers.undo", "undo", "u", "Undo", tooltip="Undo the last change to layers or weights", palette="Undo"),
    Key("layers.redo", "redo", "U", "Redo", show=False, tooltip="Redo what was undone", palette="Redo"),
    Key("app.open", "open_preset", "o", "Open", tooltip="Open a bundled preset or a preset file",
        palette="Open a preset"),
    Key("app.help", "help", "question_mark,f1", "Help", tooltip="This list of keys", palette="Help: keys"),
    Key("train.reset", "reset_weights", "R", "Reset weights", show=False,
        tooltip="Reset weights, data and loss history to the preset (its hand-set weights)",
        palette="Reset weights to the preset", palette_help="its hand-set weights; the seed's init elsewhere"),
    Key("train.reset_init", "reset_init", "ctrl+r", "Re-initialise", show=False,
        tooltip="Reset to the seed's initialisation: hand-set weights dropped, data and history reset",
        palette="Re-initialise from the seed",
        palette_help="every layer from the seed's initialisation; hand-set values dropped"),
    Key("plot.log", "toggle_log", "l", "Log scale", show=False, tooltip="Toggle a logarithmic loss axis",
        palette="Toggle log scale of the loss plot"),
    Key("tensors.backward", "compute_grads", "g", "Backward", show=False,
        tooltip="Run one forward and backward pass: gradients appear on the Tensors tab",
        palette="Run a backward pass: gradients"),
    Key("app.save", "save_preset", "ctrl+s", "Save", show=False,
        tooltip="Save as a preset file, or the whole session (.tuinn); o opens either", palette="Save as a preset"),
    Key("tab.layers", "show_tab('layers')", "1", "Layers tab", show=False, palette="Layers tab"),
    Key("tab.tensors", "show_tab('tensors')", "2", "Tensors tab", show=False, palette="Tensors tab"),
    Key("tab.train", "show_tab('train')", "3", "Train tab", show=False, palette="Train tab"),
    Key("tab.data", "show_tab('data')", "4", "Data tab", show=False, palette="Data tab"),
    Key("tab.info", "show_tab('info')", "5", "Info tab", show=False, palette="Info tab"),
    Key("app.quit", "quit", "q,ctrl+q", "Quit", show=False, tooltip="Quit (stops a run first)"),
    Key("data.dataset", "choose_dataset", "D", "Data set", show=False,
        tooltip="Choose a data set (spiral, xor, ...) or the columns of a CSV file",
        palette="Choose a data set or a CSV file",
        palette_help="xor, circles, moons, blobs, spiral, sine, plane, or columns of a CSV file"),
    Key("metrics.confusion", "confusion", "C", "Confusion matrix", show=False,
        tooltip="The confusion matrix of the test split (or the training data)", palette="Confusion matrix",
        palette_help="of the test split, or of the training data"),
    Key("runs.compare", "compare_runs", "c", "Runs", tooltip="Every run kept: overlay several, smoothing and log scale",
        palette="Runs compared", palette_help="overlay runs, smoothing, log scale"),
    Key("tensors.gradcheck", "gradcheck", "X", "Gradient check", show=False,
        tooltip="Numerical gradient check: autograd against central differences",
        palette="Numerical gradient check", palette_help="autograd against central differences"),
    Key("layers.neuron", "neuron", "N", "Neuron in numbers", show=False,
        tooltip="The highlighted Linear layer's output unit written out with its numbers",
        palette="A neuron in numbers", palette_help="the highlighted Linear layer's unit, written out"),
    Key("app.export", "export", "E", "Export", show=False,
        tooltip="Write a PyTorch script, the loss history CSV or an SVG screenshot",
        palette="Export: PyTorch script, loss CSV, SVG screenshot"),
    Key("tab.boundary", "show_tab('boundary')", "6", "Boundary tab", show=False,
        palette="Boundary tab: the model over the input plane"),
    Key(None, "command_palette", "ctrl+p", "Command palette: presets, layers, losses, optimizers, devices, actions",
        bound=False),
    Key(None, "focus", "tab,shift+tab", "Next / previous area", bound=False),
    # -- the palette's own entries (another key's action with an argument) ---------------------------
    Key("palette.export_csv", "export('csv')", palette="Export the loss history as CSV", bound=False,
        region="palette"),
    Key("palette.export_svg", "export('svg')", palette="Export an SVG screenshot", bound=False, region="palette"),
    Key("palette.save_session", "save_preset", palette="Save the session (.tuinn)", palette_key="ctrl+s",
        palette_help="choose 'session' in the dialog", bound=False, region="palette"),
    # -- the layer table (tab 1): its keys act on the highlighted layer ------------------------------
    Key("layers.add", "app.add_layer", "a", "Add", region="layers", tooltip="Add a layer after this one",
        palette="Add a layer"),
    Key("layers.edit", "app.edit_layer", "e", "Edit", region="layers", tooltip="Edit this layer's arguments",
        palette="Edit the highlighted layer"),
    Key("layers.remove", "app.remove_layer", "x,delete", "Del", region="layers", tooltip="Remove this layer",
        palette="Remove the highlighted layer"),
    Key("layers.move_up", "app.move_layer(-1)", "K,shift+up", "Move up", region="layers", group="Move"),
    Key("layers.move_down", "app.move_layer(1)", "J,shift+down", "Move down", region="layers", group="Move"),
    Key("layers.duplicate", "app.duplicate_layer", "d", "Duplicate", region="layers", show=False,
        palette="Duplicate the highlighted layer"),
    Key("layers.freeze", "app.freeze_layer", "z", "Freeze / unfreeze", region="layers", show=False,
        palette="Freeze / unfreeze the highlighted layer"),
    Key("layers.init", "app.init_layer", "i", "Initialise weights", region="layers", show=False,
        palette="Initialise the highlighted layer"),
    Key("layers.input_shape", "app.edit_input_shape", "I", "Model input shape", region="layers", show=False,
        palette="Change the model input shape"),
    Key(None, "edit", "enter", "Edit the highlighted layer", region="layers", bound=False),
    # -- a tensor's view (tabs 2 and 4) ---------------------------------------------------------------
    Key(None, "move(-1, 0)", "up", "Up", region="tensor", show=False),
    Key(None, "move(1, 0)", "down", "Down", region="tensor", show=False),
    Key(None, "move(0, -1)", "left", "Left", region="tensor", show=False),
    Key(None, "move(0, 1)", "right", "Right", region="tensor", show=False),
    Key(None, "page(-1)", "pageup", "Page up", region="tensor", show=False),
    Key(None, "page(1)", "pagedown", "Page down", region="tensor", show=False),
    Key(None, "home", "home", "First cell", region="tensor", show=False),
    Key(None, "end", "end", "Last cell", region="tensor", show=False),
    Key("tensor.prev_slice", "slice(-1)", "left_square_bracket", "Prev slice", region="tensor", show=False,
        tooltip="Previous 2-D slice of a tensor with more than two dimensions"),
    Key("tensor.next_slice", "slice(1)", "right_square_bracket", "Next slice", region="tensor", show=False,
        tooltip="Next 2-D slice"),
    Key("tensor.edit_cell", "edit_cell", "enter,e", "Edit cell", region="tensor",
        tooltip="Edit the value under the cursor (a weight, or an inline input/target)"),
    Key("tensor.edit_all", "edit_all", "v", "Paste all", region="tensor",
        tooltip="Type or paste the whole tensor (rows by newline or ;, or a nested list)"),
    Key("tensor.init", "init", "i", "Init", region="tensor", tooltip="Apply an initialisation scheme to this layer"),
    Key("tensor.freeze", "freeze", "z", "Freeze", region="tensor", tooltip="Freeze / unfreeze this layer"),
    Key("data.generator", "generator", "G", "Generator", region="tensor",
        tooltip="Data tab: switch to a generator (rand, randn, zeros, ones, randint) with a shape"),
    Key(None, "move", "arrows,pgup,pgdn", "Move the cursor (only the visible window is drawn)", region="tensor",
        bound=False),
    # -- the Train tab (3) ------------------------------------------------------------------------------
    Key("train.leave_field", "leave_field", "escape", "Leave field", region="train",
        tooltip="Leave the text field or list: the global keys (r, p, s, 1-6...) act again"),
    Key(None, "focus", "tab,shift+tab", "Next / previous field; a field checks its value as you type",
        region="train", bound=False),
    # -- dialogs (their own BINDINGS; listed for the help screen) -----------------------------------------
    Key(None, "apply", "enter", "Apply (ctrl+s in multi-line editors)", region="dialogs", bound=False),
    Key(None, "cancel", "escape", "Cancel", region="dialogs", bound=False),
    Key(None, "next", "tab", "Next field", region="dialogs", bound=False),
)

# the command palette's order of actions (ids of rows above)
PALETTE = (
    "train.run", "train.step", "train.pause", "train.resume", "train.stop", "train.reset", "train.reset_init",
    "layers.fix", "layers.alt_fix", "layers.undo", "layers.redo", "layers.add", "layers.edit", "layers.remove",
    "layers.duplicate", "layers.freeze", "layers.init", "layers.input_shape", "tensors.backward", "plot.log",
    "app.open", "app.save", "app.help", "tab.layers", "tab.tensors", "tab.train", "tab.data", "tab.info",
    "tab.boundary", "data.dataset", "metrics.confusion", "runs.compare", "tensors.gradcheck", "layers.neuron",
    "app.export", "palette.export_csv", "palette.export_svg", "palette.save_session",
)

# the help screen's sections: (title, the regions whose rows it lists)
HELP_SECTIONS = (
    ("Everywhere", "app"),
    ("Layers (tab 1)", "layers"),
    ("Tensors (tab 2) and Data (tab 4)", "tensor"),
    ("Train (tab 3)", "train"),
    ("Dialogs", "dialogs"),
)
HELP_INTRO = ("tui-nn: build a network, break and fix its shapes, edit weights, train and watch every tensor. "
              "Everything works with the keyboard alone; the footer shows the keys of the focused area.")

BY_ID = {k.id: k for k in KEYS if k.id is not None}
BY_ACTION = {k.action: k for k in KEYS if k.bound and k.region == "app"}  # the app's own actions (check_action)
_GROUPS: dict[str, Binding.Group] = {}


def _binding(k: Key) -> Binding:
    group = _GROUPS.setdefault(k.group, Binding.Group(k.group)) if k.group else None
    return Binding(k.keys, k.action, k.description, show=k.show, id=k.id, tooltip=k.tooltip, group=group)


def bindings(region: str) -> list[Binding]:
    """The BINDINGS of a region (app | layers | tensor | train), in the table's order."""
    return [_binding(k) for k in KEYS if k.region == region and k.bound and k.keys]


def help_sections() -> list[tuple[str, list[Binding]]]:
    """For the help screen: each section's keys, those that are bindings first, then its other lines."""
    out = []
    for title, region in HELP_SECTIONS:
        rows = [k for k in KEYS if k.region == region and k.keys]
        ordered = [k for k in rows if k.bound] + [k for k in rows if not k.bound]
        out.append((title, [_binding(k) for k in ordered]))
    return out


KEY_NAMES = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]", "slash": "/",
             "delete": "del"}  # Textual's key names as the help screen and the palette write them


def key_label(keys: str) -> str:
    """The first key of a binding as the palette writes it ("question_mark" → "?")."""
    first = keys.split(",")[0].strip()
    return KEY_NAMES.get(first, first)


def palette_actions() -> list[tuple[str, str, str]]:
    """(label, action, help) of each palette entry, in PALETTE's order; the label names the key."""
    out = []
    for kid in PALETTE:
        k = BY_ID[kid]
        key = k.palette_key or (key_label(k.keys) if k.keys else "")
        out.append((f"{k.palette} ({key})" if key else k.palette, k.action.removeprefix("app."), k.palette_help))
    return out


def acts_in(action: str, phase: str) -> bool:
    """Whether the app's key for `action` acts in this run phase (ui/run_state.py)."""
    k = BY_ACTION.get(action)
    if k is None:
        return True
    return (k.only_in is None or phase in k.only_in) and phase not in k.not_in
