"""Action sequences: a hypothesis state machine over the app's actions, played with real keys through Pilot.

Each sequence is one app with the default runner (training runs in the trainer process) and up to `STEPS` rules.
A rule is what a user does with the keyboard: the help screen (?), add a layer (1, a, a search typed into the picker, enter, the
form), edit one (e), the layer keys (x remove, K/J move, u/U undo/redo, f apply the shape fix, d duplicate,
up/down), change the input shape (I), edit a weight cell on the Tensors tab (2, down the list, tab, arrows, e,
a value), train (n one step, r run, s stop, r then s after a random delay), type the number of steps on the Train
tab, choose a device in the Train tab's device list (the CPU, or a GPU that is listed but not there), save
(ctrl+s and a .tuinn or .toml name, or an invalid one), open (o, /, a path: the last save, a missing file, a
broken session, a broken preset, the preset saved). Forms get invalid input too (junk, 0, negative and huge
numbers, NaN, markup). Each rule checks its own outcome: the model or the weights changed as asked, or the form
stayed open with the refusal shown and nothing changed, or an error dialog said why and nothing changed.

Invariants after every rule: the app is alive (running, no exception, no worker dead of an uncaught exception),
its screen renders, and the last session saved loads with the engine's `load_session` at the step it was saved at.
The counts come from what happened: sequences, rules (and which), keys, saves, loads, refusals, error dialogs, app
deaths.

The app runs `App.run_test()` on an event loop in a thread of its own (`AppDriver`); each rule submits a coroutine
to it and waits for it. Sizes: $TUI_NN_ACTION_SEQUENCES sequences (CI: 3, a fixed seed) of $TUI_NN_ACTION_STEPS
rules (CI: 10); `fuzz_run` runs 20 of 15, new ones each time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test, invariant, precondition, rule

from . import counts

SEQUENCES = int(os.environ.get("TUI_NN_ACTION_SEQUENCES", "3"))
STEPS = int(os.environ.get("TUI_NN_ACTION_STEPS", "10"))
LONG = "TUI_NN_ACTION_SEQUENCES" in os.environ
GROUP = "action sequences"
SIZE = (100, 30)
TIMEOUT = 60.0  # seconds a rule may wait for the app (a hang fails the sequence)
MISSING_DEVICE = "cuda:7"  # listed in the Train tab's device list, not there

PRESET = """
[preset]
name = "actions"
[model]
input_shape = [16, 4]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 8
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 8
out_features = 1
[data]
inputs = { generate = "randn", shape = [16, 4] }
targets = { generate = "randn", shape = [16, 1] }
[training]
optimizer = { type = "Adam", lr = 0.01 }
steps = 1500
seed = 1
"""


class AppDriver:
    """Runs `app.run_test()` on an event loop in a thread; `call(fn)` runs the coroutine `fn(pilot)` there (in the
    run_test task, one at a time) and returns its result. Workers that die of an uncaught exception are recorded."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.jobs: asyncio.Queue[Any] | None = None
        self.failed_workers: list[str] = []
        self.error: BaseException | None = None
        self._ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._thread, daemon=True, name="app-driver")
        self.thread.start()
        self._ready.result(TIMEOUT * 2)

    def _hook(self, message: Any) -> None:
        from textual.worker import Worker, WorkerState

        if isinstance(message, Worker.StateChanged) and message.state == WorkerState.ERROR:
            self.failed_workers.append(f"{message.worker.name}: {message.worker.error!r}")

    def _thread(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as err:  # noqa: BLE001 - handed to the test
            self.error = err
            if not self._ready.done():
                self._ready.set_exception(err)
        finally:
            self.loop.close()

    async def _main(self) -> None:
        from tests.ui.helpers import loaded

        self.jobs = asyncio.Queue()
        async with self.app.run_test(size=SIZE, message_hook=self._hook) as pilot:
            await loaded(pilot)
            self._ready.set_result(pilot)
            while True:
                fn, fut = await self.jobs.get()
                if fn is None:
                    fut.set_result(None)
                    break
                try:
                    fut.set_result(await fn(pilot))
                except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
                    fut.set_exception(err)

    def call(self, fn: Callable[[Any], Awaitable[Any]], timeout: float = TIMEOUT * 3) -> Any:
        if not self.thread.is_alive():
            raise AssertionError(f"the app's event loop is gone: {self.error!r}")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        assert self.jobs is not None
        self.loop.call_soon_threadsafe(self.jobs.put_nowait, (fn, fut))
        return fut.result(timeout)

    def close(self) -> None:
        """Leave run_test (the app shuts down, its trainer process stops); re-raise what the app died of."""
        if self.thread.is_alive():
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            assert self.jobs is not None
            self.loop.call_soon_threadsafe(self.jobs.put_nowait, (None, fut))
            self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the app did not shut down"
        if self.error is not None:
            raise self.error


async def wait_for(pilot: Any, cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    from tests.ui.helpers import wait_until

    await wait_until(pilot, cond, timeout=timeout, what=what)


def idle(app: Any) -> bool:
    return app.run_state not in ("loading", "busy")


async def settled(pilot: Any) -> None:
    """Engine operations (rebuilds, saves, loads, device moves) done; a training run may go on."""
    await pilot.pause()
    await wait_for(pilot, lambda: idle(pilot.app), "the app to finish an engine operation")
    await pilot.pause()


def modal(app: Any) -> Any:
    return app.screen if app.screen is not app.screen_stack[0] else None


def error_text(app: Any) -> str | None:
    from textual.widgets import Static

    from tui_nn.ui.screens.dialogs import ErrorModal

    if isinstance(app.screen, ErrorModal):
        return str(app.screen.query_one("#error-body", Static).render())
    return None


def dialog_title(app: Any) -> str:
    from textual.widgets import Static

    titles = app.screen.query(".dialog-title") if modal(app) is not None else []
    return " ".join(str(t.render()) for t in titles if isinstance(t, Static))


def layer_types(app: Any) -> list[str]:
    return [layer.type for layer in app.session.spec.layers]


LAYER_QUERY = st.sampled_from(["relu", "tanh", "linear", "dropout", "sigmoid", "layernorm", "zzz"])
FORM_TEXT = st.sampled_from([None, None, "3", "8", "1", "0", "-2", "x3", "", "99999999999999", "[b]"])
SHAPE_TEXT = st.sampled_from(["16, 4", "8, 4", "16, 3", "0", "x", "1,2,3,4,5,6,7,8,9", "100000000000, 4",
                              "[@click=app.quit]"])
WEIGHT_TEXT = st.sampled_from(["0.5", "-1.25", "3", "1e-3", "nan", "inf", "abc", "1 2", "[@click=app.quit]", "",
                               "1e999", "0x10"])
STEPS_TEXT = st.sampled_from(["40", "400", "3000", "abc", "0", "-5", "1e3", "2000000000", ""])
SAVE_NAME = st.sampled_from(["s1.tuinn", "s2.tuinn", "s1.tuinn", "p1.toml", "", "sub", "nodir/x.tuinn",
                             "[@click=app.quit].tuinn"])
OPEN_WHAT = st.sampled_from(["last", "last", "missing.tuinn", "junk.tuinn", "bad.toml", "p1.toml"])


class AppActions(RuleBasedStateMachine):
    """One app, one sequence of rules."""

    def __init__(self) -> None:
        super().__init__()
        from tui_nn.ui.app import PlaygroundApp

        self.folder = Path(_FOLDERS.mktemp("actions"))
        os.chdir(self.folder)  # paths are typed relative to it (short to type)
        (self.folder / "sub").mkdir()
        (self.folder / "junk.tuinn").write_bytes(b"PK\x03\x04 not really a session")
        (self.folder / "bad.toml").write_text('[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = "Nope"\n')
        (self.folder / "actions.toml").write_text(PRESET)
        self.last_save: tuple[Path, int] | None = None
        self.preset_saved = False
        self.rules = 0
        self.driver = AppDriver(PlaygroundApp(str(self.folder / "actions.toml")))
        runner = self.driver.app.runner()
        assert getattr(runner, "kind", "") == "process", "the app should train in its trainer process"
        counts.add(GROUP, "sequences")

    # -- helpers run in the app's loop --------------------------------------------------------------------

    def play(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        async def job(pilot: Any) -> Any:
            await self._normalise(pilot)
            return await fn(pilot)

        self.rules += 1
        counts.add(GROUP, "rules")
        counts.add("action sequences: rules", fn.__qualname__.split(".")[1])
        return self.driver.call(job)

    async def _normalise(self, pilot: Any) -> None:
        """Before a rule: a dialog left by a run that ended on its own is read and closed (escape), and the focus
        leaves a text field of the main screen (keys like 1 would be typed into it)."""
        from textual.widgets import Input, TextArea

        app = pilot.app
        for _ in range(4):
            if modal(app) is None:
                break
            if error_text(app) is not None:
                counts.add(GROUP, "error dialogs shown")
            await self.keys(pilot, "escape")
            await pilot.pause()
        assert modal(app) is None, f"a dialog does not close: {app.screen}"
        if isinstance(app.focused, (Input, TextArea)):
            app.screen.set_focus(None)
            await pilot.pause()

    async def keys(self, pilot: Any, *keys: str) -> None:
        await pilot.press(*keys)
        counts.add(GROUP, "keys", len(keys))

    async def type_into(self, pilot: Any, text: str) -> None:
        """Clear the focused field (home, ctrl+k) and type `text`."""
        await self.keys(pilot, "home", "ctrl+k")
        if text:
            await self.keys(pilot, *text)

    async def close_error(self, pilot: Any) -> str | None:
        text = error_text(pilot.app)
        if text is not None:
            counts.add(GROUP, "error dialogs shown")
            await self.keys(pilot, "escape")
            await pilot.pause()
        return text

    # -- help ---------------------------------------------------------------------------------------------------

    @rule()
    def help_screen(self) -> None:
        """? shows the keys; escape closes it. (Also hypothesis's simplest sequence: the rule without arguments
        comes first, and its simplest sequence is this rule over and over, a cheap one.)"""
        async def go(pilot: Any) -> None:
            from tui_nn.ui.screens.help import HelpScreen

            app = pilot.app
            await self.keys(pilot, "question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen), app.screen
            await self.keys(pilot, "escape")
            await pilot.pause()
            assert modal(app) is None
            counts.add(GROUP, "help screens shown")

        self.play(go)

    # -- layers -----------------------------------------------------------------------------------------------

    @rule(query=LAYER_QUERY, text=FORM_TEXT)
    def add_layer(self, query: str, text: str | None) -> None:
        async def go(pilot: Any) -> None:
            from tui_nn.ui.screens.layer_form import LayerFormScreen
            from tui_nn.ui.screens.pickers import LayerPicker

            app = pilot.app
            before = layer_types(app)
            await self.keys(pilot, "1", "a")
            await pilot.pause()
            if not isinstance(app.screen, LayerPicker):
                counts.add(GROUP, "actions refused while busy or running")
                return
            await self.keys(pilot, *query, "enter")
            await pilot.pause()
            if isinstance(app.screen, LayerPicker):  # nothing matched: enter only rang the bell
                assert query == "zzz"
                await self.keys(pilot, "escape")
                return
            if isinstance(app.screen, LayerFormScreen):
                form = app.screen
                if text is not None:
                    await self.type_into(pilot, text)
                await self.keys(pilot, "enter")
                await pilot.pause()
                if app.screen is form:
                    counts.add(GROUP, "invalid inputs refused in a form")
                    await self.keys(pilot, "escape")
                    await pilot.pause()
                    assert layer_types(app) == before
                    return
            await settled(pilot)
            if await self.close_error(pilot) is None:
                assert len(layer_types(app)) == len(before) + 1, (before, layer_types(app))
                counts.add(GROUP, "layers added")
            else:
                assert layer_types(app) == before

        self.play(go)

    @rule(text=FORM_TEXT)
    def edit_layer(self, text: str | None) -> None:
        async def go(pilot: Any) -> None:
            from tui_nn.ui.screens.layer_form import LayerFormScreen

            app = pilot.app
            await self.keys(pilot, "1", "e")
            await pilot.pause()
            if not isinstance(app.screen, LayerFormScreen):  # no layer, no arguments, or busy: a notice
                return
            form = app.screen
            before = [(layer.type, dict(layer.args)) for layer in app.session.spec.layers]
            if text is not None:
                await self.type_into(pilot, text)
            await self.keys(pilot, "enter")
            await pilot.pause()
            if app.screen is form:
                counts.add(GROUP, "invalid inputs refused in a form")
                await self.keys(pilot, "escape")
                await pilot.pause()
                assert [(layer.type, dict(layer.args)) for layer in app.session.spec.layers] == before
                return
            await settled(pilot)
            if await self.close_error(pilot) is not None:
                assert [(layer.type, dict(layer.args)) for layer in app.session.spec.layers] == before
            else:
                counts.add(GROUP, "layers edited")

        self.play(go)

    @rule(key=st.sampled_from(["x", "K", "J", "u", "U", "f", "d", "up", "down"]))
    def layer_key(self, key: str) -> None:
        """Remove (x), move up/down (K/J), undo/redo (u/U), apply the shape fix (f), duplicate (d), move the
        cursor (up/down)."""
        async def go(pilot: Any) -> None:
            app = pilot.app
            was_idle = app.run_state in ("ready", "paused")
            before = layer_types(app)
            await self.keys(pilot, "1", key)
            await settled(pilot)
            shown = await self.close_error(pilot)
            after = layer_types(app)
            if key == "x" and was_idle and before and shown is None:
                assert len(after) == len(before) - 1, (before, after)
            elif key in ("K", "J") and shown is None:
                assert sorted(after) == sorted(before)
            elif key == "d" and was_idle and before and shown is None:
                assert len(after) == len(before) + 1
            counts.add(GROUP, f"key {key}")

        self.play(go)

    @rule(text=SHAPE_TEXT)
    def input_shape(self, text: str) -> None:
        async def go(pilot: Any) -> None:
            from tui_nn.ui.screens.dialogs import TextEditModal

            app = pilot.app
            await self.keys(pilot, "1", "I")
            await pilot.pause()
            if not isinstance(app.screen, TextEditModal):
                return
            dialog = app.screen
            before = tuple(app.session.spec.input_shape)
            await self.keys(pilot, *text, "enter")  # the field's text is selected: typing replaces it
            await pilot.pause()
            if app.screen is dialog:
                counts.add(GROUP, "invalid inputs refused in a form")
                assert "✗" in str(dialog.query_one("#edit-error").render())
                await self.keys(pilot, "escape")
                await pilot.pause()
                assert tuple(app.session.spec.input_shape) == before
                return
            await settled(pilot)
            if await self.close_error(pilot) is not None:
                assert tuple(app.session.spec.input_shape) == before

        self.play(go)

    # -- weights --------------------------------------------------------------------------------------------

    @rule(moves=st.lists(st.sampled_from(["right", "down", "left", "up"]), max_size=3), text=WEIGHT_TEXT)
    def edit_weight_cell(self, moves: list[str], text: str) -> None:
        async def go(pilot: Any) -> None:
            import torch

            from tui_nn.ui.screens.dialogs import TextEditModal

            app = pilot.app
            await self.keys(pilot, "2")
            await pilot.pause()
            lst = app.query_one("#tensor-list")
            for _ in range(12):  # down the list to the first parameter
                if lst.highlighted is not None and str(lst.get_option_at_index(lst.highlighted).id).startswith(
                        "param:"):
                    break
                await self.keys(pilot, "down")
            else:
                return  # no parameters (every layer removed)
            name = str(lst.get_option_at_index(lst.highlighted).id).removeprefix("param:")
            if name == "none":  # "(no parameters)": every layer with weights was removed
                await self.keys(pilot, "1")
                return
            await self.keys(pilot, "tab", *moves, "e")
            await pilot.pause()
            if not isinstance(app.screen, TextEditModal):  # training: weights are not edited now
                counts.add(GROUP, "actions refused while busy or running")
                await self.keys(pilot, "1")
                return
            dialog = app.screen
            before = app.session.get_param(name).detach().clone()
            await self.keys(pilot, *text, "enter")
            await pilot.pause()
            after = app.session.get_param(name).detach()
            if app.screen is dialog:
                counts.add(GROUP, "invalid inputs refused in a form")
                assert "✗" in str(dialog.query_one("#edit-error").render())
                assert torch.equal(after, before), f"a refused weight {text!r} changed {name}"
                await self.keys(pilot, "escape")
            else:
                counts.add(GROUP, "weights edited")
                changed = (after != before).nonzero()
                assert len(changed) <= 1, f"{text!r} changed {len(changed)} cells of {name}"
                if len(changed):
                    cell = after[tuple(changed[0].tolist())]
                    assert float(cell) == float(np.float32(float(text))), (text, float(cell))
            await pilot.pause()
            await self.keys(pilot, "1")

        self.play(go)

    # -- training ---------------------------------------------------------------------------------------------

    @rule(action=st.sampled_from(["n", "r", "s", "r then s"]), delay=st.floats(0.0, 0.5))
    def train(self, action: str, delay: float) -> None:
        """One step (n), a run (r: the steps set on the Train tab), stop (s), or a run stopped after `delay`."""
        async def go(pilot: Any) -> None:
            app = pilot.app
            was = app.run_state
            before = app.session.step
            trainable = app.session.trainable
            if action == "n":
                await self.keys(pilot, "n")
                await pilot.pause()
                await wait_for(pilot, lambda: app.run_state != "running", "one step")
                await settled(pilot)
                shown = await self.close_error(pilot)
                if was == "ready" and trainable and shown is None:
                    assert app.session.step == before + 1, (before, app.session.step)
                    counts.add(GROUP, "single steps trained")
            elif action == "r":
                await self.keys(pilot, "r")
                await pilot.pause()
                counts.add(GROUP, "runs started" if app.run_state == "running" else "r pressed, no run")
            else:
                if action == "r then s":
                    await self.keys(pilot, "r")
                    await asyncio.sleep(delay)
                    was = app.run_state
                t0 = time.perf_counter()
                await self.keys(pilot, "s")
                if was == "running":
                    await wait_for(pilot, lambda: app.run_state in ("ready", "paused"), "the stop", timeout=10)
                    counts.add(GROUP, "runs stopped")
                    counts.peak(GROUP, "slowest stop (s)", time.perf_counter() - t0)
                await self.close_error(pilot)

        self.play(go)

    @rule(text=STEPS_TEXT)
    def type_steps(self, text: str) -> None:
        async def go(pilot: Any) -> None:
            app = pilot.app
            await self.keys(pilot, "3")
            await pilot.pause()
            form = app.query_one("#run-args")
            field = form._fields["steps"]
            if app.running:
                await self.keys(pilot, "1")
                return
            before = app.session.training.steps
            field.focus()  # no key jumps to one field of the form; the typing is keys
            await pilot.pause()
            await self.type_into(pilot, text)
            await pilot.pause()
            app.screen.set_focus(None)
            if "steps" in form.errors:
                # typed key by key, a valid prefix ("1" of "1x", "200000000" of "2000000000") was applied on the
                # way: the session holds the last valid value, so r refuses until the field is fixed
                counts.add(GROUP, "invalid inputs refused in a form")
                assert app.session.training.steps in {before} | {int(text[:k]) for k in range(1, len(text) + 1)
                                                                 if text[:k].isdigit()}, text
                await self.keys(pilot, "r")
                await pilot.pause()
                assert app.run_state != "running", f"r started a run with {text!r} in the steps field"
                counts.add(GROUP, "r refused while the steps field is invalid")
            else:
                assert app.session.training.steps == form.values["steps"], (text, app.session.training.steps)
            if text in ("abc", "0", "-5", "", "2000000000"):
                assert "steps" in form.errors, f"{text!r} was taken as a number of steps"
            if text == "1e3":
                assert app.session.training.steps == 1000, app.session.training.steps
            await self.keys(pilot, "1")

        self.play(go)

    @rule(device=st.sampled_from([MISSING_DEVICE, "cpu"]))
    def choose_device(self, device: str) -> None:
        async def go(pilot: Any) -> None:
            app = pilot.app
            await self.keys(pilot, "3")
            await pilot.pause()
            select = app.query_one("#device")
            if app.running:
                await self.keys(pilot, "1")
                return
            select.focus()  # the list is the last field of the tab; the choosing is keys
            select.scroll_visible()
            await pilot.pause()
            await self.keys(pilot, "enter")
            await pilot.pause()
            names = [d.name for d in app.devices]
            current = names.index(str(app.session.device))
            target = names.index(device)
            moves = ["down"] * (target - current) if target >= current else ["up"] * (current - target)
            await self.keys(pilot, *moves, "enter")
            await settled(pilot)
            shown_title = dialog_title(app)
            shown = await self.close_error(pilot)
            if device == MISSING_DEVICE:
                assert shown is not None and MISSING_DEVICE in shown_title, (shown_title, shown)
                counts.add(GROUP, "missing device refused")
            assert str(app.session.device) == "cpu" and select.value == "cpu"
            app.screen.set_focus(None)
            await self.keys(pilot, "1")

        self.play(go)

    # -- saving and opening -----------------------------------------------------------------------------------

    @rule(name=SAVE_NAME)
    def save(self, name: str) -> None:
        async def go(pilot: Any) -> Any:
            from tui_nn.ui.screens.dialogs import SaveModal

            app = pilot.app
            await self.keys(pilot, "ctrl+s")
            await pilot.pause()
            if not isinstance(app.screen, SaveModal):
                counts.add(GROUP, "actions refused while busy or running")
                return None
            dialog = app.screen
            step = app.session.step
            target = self.folder / name
            await self.type_into(pilot, name)
            await self.keys(pilot, "enter")
            await pilot.pause()
            if app.screen is dialog:  # no name, a folder: refused in the dialog
                counts.add(GROUP, "invalid inputs refused in a form")
                assert "✗" in str(dialog.query_one("#save-error").render())
                await self.keys(pilot, "escape")
                return None
            await settled(pilot)
            shown = await self.close_error(pilot)
            if shown is not None:  # the folder does not exist
                assert not target.exists(), shown
                counts.add(GROUP, "saves refused (error shown)")
                return None
            assert target.exists(), f"saved {name}, no file"
            if name.endswith(".tuinn"):
                return ("session", target, step)
            return ("preset", target, step)

        out = self.play(go)
        if out is not None:
            kind, target, step = out
            if kind == "session":
                self.last_save = (target, step)
                assert _load(target).step == step
                counts.add(GROUP, "sessions saved")
            else:
                from tui_nn.engine.files.preset_read import load_preset

                load_preset(target)
                self.preset_saved = True
                counts.add(GROUP, "presets saved")

    @rule(what=OPEN_WHAT)
    def open_file(self, what: str) -> None:
        if what == "last" and self.last_save is None:
            what = "missing.tuinn"
        if what == "p1.toml" and not self.preset_saved:
            what = "bad.toml"
        name = self.last_save[0].name if what == "last" and self.last_save else what
        expect_step = self.last_save[1] if what == "last" and self.last_save else None

        async def go(pilot: Any) -> None:
            from textual.widgets import Input

            from tui_nn.ui.screens.pickers import PresetPicker

            app = pilot.app
            await self.keys(pilot, "o")
            await pilot.pause()
            if not isinstance(app.screen, PresetPicker):
                counts.add(GROUP, "actions refused while busy or running")
                return
            await self.keys(pilot, "slash")
            assert isinstance(app.focused, Input)
            before = app.session
            await self.keys(pilot, *name, "enter")
            await pilot.pause()
            await settled(pilot)
            shown = await self.close_error(pilot)
            if what in ("missing.tuinn", "junk.tuinn", "bad.toml"):
                assert shown is not None and name in shown, f"opening {name}: {shown}"
                assert app.session is before, "a refused file replaced the session"
                counts.add(GROUP, "opens refused (error shown)")
            else:
                assert shown is None, shown
                if expect_step is not None:
                    assert app.session.step == expect_step, (app.session.step, expect_step)
                    counts.add(GROUP, "sessions opened at their step")
                else:
                    counts.add(GROUP, "presets opened")

        self.play(go)

    # -- invariants ---------------------------------------------------------------------------------------

    @invariant()
    def alive_and_rendering(self) -> None:
        async def look(pilot: Any) -> tuple[bool, Any, int, str]:
            app = pilot.app
            strips = app.screen._compositor.render_strips()
            return app.is_running and app.return_code is None, app._exception, len(strips), str(app.screen)

        try:
            running, exc, rows, screen = self.driver.call(look)
        except BaseException:
            counts.add(GROUP, "app deaths")
            raise
        if not running or exc is not None:
            counts.add(GROUP, "app deaths")
        if self.driver.failed_workers:
            counts.add(GROUP, "workers that died")
        assert running and exc is None, f"the app stopped: {exc!r}"
        assert not self.driver.failed_workers, f"a worker died: {self.driver.failed_workers}"
        assert rows == SIZE[1], f"the screen {screen} rendered {rows} rows"

    @invariant()
    @precondition(lambda self: self.last_save is not None)
    def last_save_loads(self) -> None:
        assert self.last_save is not None
        path, step = self.last_save
        assert _load(path).step == step, f"{path.name} no longer loads at step {step}"
        counts.add(GROUP, "last-save checks")

    def teardown(self) -> None:
        async def finish(pilot: Any) -> None:
            app = pilot.app
            await self._normalise(pilot)
            if app.run_state in ("running", "paused"):
                await self.keys(pilot, "s")
                await wait_for(pilot, lambda: app.run_state == "ready", "the last stop", timeout=10)
            await settled(pilot)

        try:
            if self.driver.thread.is_alive():
                self.driver.call(finish)
        finally:
            self.driver.close()
        if self.last_save is not None:
            assert _load(self.last_save[0]).step == self.last_save[1]
        counts.add(GROUP, "sequences finished, app alive to the end")


def _load(path: Path) -> Any:
    """The engine's load_session, leaving torch's global RNG (which it restores from the file) as it was."""
    import torch

    from tui_nn.engine.files.session_file import load_session

    rng = torch.get_rng_state()
    try:
        return load_session(path)
    finally:
        torch.set_rng_state(rng)


_FOLDERS: Any = None


def test_action_sequences_keep_the_app_alive_and_the_last_save_loadable(
        monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    global _FOLDERS
    import tui_nn.engine.training.devices as devices

    _FOLDERS = tmp_path_factory
    monkeypatch.delenv("TUI_NN_RUNNER", raising=False)  # the app's default runner: the trainer process
    monkeypatch.setenv("TUI_NN_AUTOSAVE", "off")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path_factory.mktemp("autosave")))
    monkeypatch.chdir(tmp_path_factory.getbasetemp())
    real = devices.list_devices

    def listed() -> list[Any]:  # a GPU in the list that is not there (unplugged, or the driver gone)
        return real() + [devices.DeviceInfo(MISSING_DEVICE, "a GPU that is listed but not there")]

    monkeypatch.setattr(devices, "list_devices", listed)
    machine_test = get_state_machine_test(AppActions, settings=SETTINGS)
    if not LONG:
        seed(CI_SEED)(machine_test)  # the CI sample: a fixed seed whose sequences use every rule
    machine_test()


# CI: hypothesis with a fixed seed (deterministic), chosen so that its SEQUENCES x STEPS sample uses every rule and
# opens a session it saved (hypothesis's swarm testing switches rules off per sequence, so a small sample may not);
# the long run draws new sequences every time. No shrinking: a failing sequence is printed as found (a replay takes
# seconds; shrinking one took more than five minutes).
CI_SEED = 252  # found by replaying the rule choices offline (no app): see the comment above
SETTINGS = settings(max_examples=SEQUENCES, stateful_step_count=STEPS, deadline=None, database=None,
                    derandomize=False, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck))
