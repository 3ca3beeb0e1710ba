"""Action sequences: hypothesis draws sequences of the app's actions (add, edit, remove and move layers, edit
weights, undo, train, stop, save, load, switch device) and plays them through Pilot. After every step the app is
alive, and the last save loads (with the step it was saved at).

Saving uses the app's own session saving when it has one (`save_session_to`), else the engine's `save_session`
on the app's session between runs (what the app's save does); loading opens the last save in the app (a .tuinn
when the app opens sessions, else the preset saved beside it).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ui.helpers import loaded, wait_until
from tui_nn.engine.preset import save_preset
from tui_nn.engine.sessionio import load_session, save_session

from . import counts

SEQUENCES = int(os.environ.get("TUI_NN_ACTION_SEQUENCES", "4"))

ACTION = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["ReLU", "Tanh", "Linear", "Dropout", "Sigmoid"])),
    st.tuples(st.just("edit"), st.integers(1, 9)),
    st.tuples(st.just("remove")),
    st.tuples(st.just("move"), st.sampled_from([-1, 1])),
    st.tuples(st.just("select"), st.integers(0, 6)),
    st.tuples(st.just("weight"), st.sampled_from(["valid", "nan", "shape", "junk", "markup"])),
    st.tuples(st.just("undo")),
    st.tuples(st.just("train"), st.integers(1, 400)),
    st.tuples(st.just("stop")),
    st.tuples(st.just("save")),
    st.tuples(st.just("load")),
    st.tuples(st.just("device"), st.sampled_from(["cpu", "cuda:0", "meta"])),
)


async def play(actions: list[tuple[Any, ...]], folder: Path) -> int:
    from textual.widgets import Input

    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.layer_form import LayerFormScreen
    from tui_nn.ui.widgets.layers import LayerTable

    app = PlaygroundApp(None)
    last_save: tuple[Path, int] | None = None
    done = 0
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)

        async def idle() -> None:
            await wait_until(pilot, lambda: app.run_state not in ("loading", "busy", "running"), timeout=60,
                             what="the app to be idle")
            await pilot.pause()

        for n, action in enumerate(actions):
            kind = action[0]
            if kind == "add":
                app.add_layer_of_type(action[1])
                await pilot.pause()
                if isinstance(app.screen, LayerFormScreen):
                    await pilot.press("ctrl+s")
            elif kind == "edit":
                app.action_edit_layer()
                await pilot.pause()
                if isinstance(app.screen, LayerFormScreen):
                    focused = app.focused
                    if isinstance(focused, Input):
                        focused.value = str(action[1])
                    await pilot.press("ctrl+s")
            elif kind == "remove":
                app.action_remove_layer()
            elif kind == "move":
                app.action_move_layer(action[1])
            elif kind == "select":
                table = app.query_one(LayerTable)
                if table.row_count:
                    table.move_cursor(row=action[1] % table.row_count)
            elif kind == "weight" and app.session is not None:
                params = app.session.named_parameters()
                if params:
                    name, t = params[0]
                    rows = t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)
                    text = {"valid": "; ".join(" ".join("0.25" for _ in range(rows.shape[1]))
                                               for _ in range(rows.shape[0])),
                            "nan": "nan", "shape": "1 2 3 4 5 6 7; 1 2 3 4 5 6 7", "junk": "[[1, 2]",
                            "markup": "[@click=app.quit]"}[action[1]]
                    app.set_weight(name, text)
            elif kind == "undo":
                app.action_undo()
            elif kind == "train":
                app.train(action[1])
            elif kind == "stop":
                await pilot.press("s")
            elif kind == "save":
                await idle()
                if app.run_state == "paused":
                    await pilot.press("s")
                    await idle()
                path = folder / f"save-{n}.tuinn"
                if hasattr(app, "save_session_to"):
                    err = app.save_session_to(str(path))
                    assert err is None, err
                else:
                    save_session(app.session, path)
                    save_preset(app.session.current_preset(), folder / f"save-{n}.toml")
                last_save = (path, app.session.step)
                counts.add("action sequences", "saves")
            elif kind == "load" and last_save is not None:
                await idle()
                path = last_save[0]
                if hasattr(app, "open_session_path"):
                    app.open_preset_path(str(path))
                else:
                    app.open_preset_path(str(path.with_suffix(".toml")))
                await wait_until(pilot, lambda: app.run_state not in ("loading", "busy"), what="the load")
                counts.add("action sequences", "loads")
            elif kind == "device":
                await idle()
                app.choose_device(action[1])
            await pilot.pause()
            # dismiss whatever dialog the action opened (an error, a form left open)
            for _ in range(3):
                if app.screen is not app.screen_stack[0]:
                    await pilot.press("escape")
                    await pilot.pause()
            assert app.is_running, f"the app stopped after {action}"
            if last_save is not None:
                restored = load_session(last_save[0])
                assert restored.step == last_save[1]
                counts.add("action sequences", "last-save checks")
            done += 1
        await pilot.press("s")
        await idle()
        assert app.is_running
    return done


@settings(max_examples=SEQUENCES, deadline=None, derandomize="TUI_NN_ACTION_SEQUENCES" not in os.environ,
          database=None, suppress_health_check=list(HealthCheck))
@given(actions=st.lists(ACTION, min_size=10, max_size=16))
def test_random_action_sequences_keep_the_app_alive_and_the_last_save_loadable(actions: list[tuple[Any, ...]],
                                                                               tmp_path_factory: Any) -> None:
    before = os.environ.get("TUI_NN_RUNNER")
    os.environ["TUI_NN_RUNNER"] = "thread"  # fast; the trainer process has its own tests (test_stopping.py)
    try:
        folder = tmp_path_factory.mktemp("actions")
        done = asyncio.run(play(actions, folder))
    finally:
        if before is None:
            del os.environ["TUI_NN_RUNNER"]
        else:
            os.environ["TUI_NN_RUNNER"] = before
    counts.add("action sequences", "sequences")
    counts.add("action sequences", "actions", done)
    counts.add("action sequences", "app deaths", 0)
