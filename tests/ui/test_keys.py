"""The table of keys (tui_nn/ui/keys.py) is the one source of BINDINGS, the palette and the help screen."""

from tui_nn.ui import keys
from tui_nn.ui.app import PlaygroundApp


def _method(action: str) -> str:
    return "action_" + action.removeprefix("app.").split("(")[0]


def test_every_key_has_one_id_and_every_action_exists() -> None:
    ids = [k.id for k in keys.KEYS if k.id is not None]
    assert len(ids) == len(set(ids))
    for k in keys.KEYS:
        if k.region in ("app", "layers", "palette") and k.action not in ("command_palette", "focus", "edit"):
            assert hasattr(PlaygroundApp, _method(k.action)), k.action
    assert {b.id for b in PlaygroundApp.BINDINGS} == {k.id for k in keys.KEYS if k.region == "app" and k.bound}


def test_palette_entries_name_their_keys() -> None:
    labels = {label: action for label, action, _help in keys.palette_actions()}
    assert labels["Run training (r)"] == "train_run"
    assert labels["Help: keys (?)"] == "help"
    assert labels["Remove the highlighted layer (x)"] == "remove_layer"
    assert labels["Export the loss history as CSV"] == "export('csv')"
    assert labels["Save the session (.tuinn) (ctrl+s)"] == "save_preset"
    assert len(labels) == len(keys.PALETTE)


def test_phases_gate_the_run_keys() -> None:
    assert keys.acts_in("pause", "running") and not keys.acts_in("pause", "paused")
    assert keys.acts_in("resume", "paused") and not keys.acts_in("resume", "running")
    assert keys.acts_in("stop", "paused") and not keys.acts_in("stop", "ready")
    assert not keys.acts_in("train_step", "running") and keys.acts_in("train_run", "paused")
    assert keys.acts_in("help", "loading")
