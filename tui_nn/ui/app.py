"""The playground: one screen that drives the engine. It holds no training logic of its own.

The app is a router: it composes the screen, routes the regions' messages (widgets/: the layer table, the
tensors, the Train tab...; each declares its own) to thin actions, and runs engine work in thread workers
(`_engine_op`: loading, rebuilding after a layer edit, resetting, moving devices, saving). Training runs in a
worker (ui/training.py) whose reports come back as `TrainProgress` messages (about 15 Hz). The run's phase and
counters are one object (ui/run_state.py), the keys one table (ui/keys.py). The UI thread only reads the
session; while a run is under way, edits are refused with a notice.

What a key asks for is done by the region that owns it, through the app's small interface (ui/host.py): the
layer table's edits, undo and redo in widgets/layer_edits.py, the tensor editors in widgets/tensor_edits.py,
the reports, the runs compared and the data set dialog in screens/reports.py, saving and exporting in
screens/saving.py; the app's actions for them are one line each.

Start-up (ui/startup.py): nothing here imports torch or the widgets at module level; the first frame is drawn
before they load, and the widgets and screens are reached as `parts.X` once imported.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import work
from textual.app import App
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import get_current_worker

from tui_nn import engine

from . import keys, loading, startup, training
from .autosave import Autosaver
from .commands import PlaygroundCommands
from .messages import (
    EngineDone,
    EngineFailed,
    LoadFailed,
    PresetPreview,
    PresetsListed,
    SessionLoaded,
    TrainFailed,
    TrainFinished,
    TrainProgress,
)
from .run_state import RunState
from .safe import Shown, Text, line, shown
from .startup import PREVIEW_NOTE, SKELETON_TABS, parts
from .widgets.status import LossNow, StatusBar

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from tui_nn.engine import (
        DeviceInfo,
        Finished,
        Preset,
        Progress,
        Session,
        UndoStack,
    )
    from tui_nn.engine.training.runner import ProcessRunner, ThreadRunner
    from tui_nn.engine.training.runs import RunRegistry

    from .screens.reports import Reports
    from .screens.saving import Saving
    from .widgets.layer_edits import LayerEdits
    from .widgets.tensor_edits import TensorEdits

TABS = ("layers", "tensors", "train", "data", "info", "boundary")
LIVE_TENSOR_INTERVAL = 0.25  # seconds between live refreshes of a parameter shown while training
STATUS_INTERVAL = 0.2  # seconds between status-bar updates while training (terminal output: docs/performance.md)


class PlaygroundApp(App[int]):
    """tui-nn: build, shape-check, edit, train and watch a PyTorch network."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-nn"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    COMMANDS = App.COMMANDS | {PlaygroundCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = keys.bindings("app")  # ui/keys.py: every key, its footer word, palette entry and help line

    def __init__(self, preset_path: str | None = None, *, clock: bool = True) -> None:
        super().__init__()
        self.preset_path = preset_path
        self.clock = clock  # show steps/s and ETA (snapshot tests turn it off: timings vary)
        self.session: Session | None = None
        self.devices: list[DeviceInfo] = []
        self.presets: list[tuple[str, str, Preset | Exception]] = []
        self.runstate = RunState(on_change=self._phase_changed)  # phase, run counters, edit queue (run_state.py)
        self.undo_stack: UndoStack | None = None
        self.loss_now = LossNow()  # the loss in the status line (of the untrained model: once per version)
        self._stop_event = threading.Event()
        self.last_progress: Progress | None = None
        self.last_finished: Finished | None = None
        self._select_after: str | None = None
        self.loaded = threading.Event()
        self.autosave_note = ""  # "autosaved NAME", shown in the status line until the next run
        self.session_path: str | None = None  # the .tuinn file this session was opened from or saved to
        # the engine's runner: a trainer process (TUI_NN_RUNNER=thread: in a thread)
        self._runner: ThreadRunner | ProcessRunner | None = None
        self._runner_lock = threading.Lock()
        self._train_idle = threading.Event()  # clear while the train worker runs
        self._train_idle.set()
        self.saved_on_quit: str | None = None  # the autosave written when quitting, if any
        self.runs: RunRegistry | None = None  # kept across the sessions opened (runs compared)
        self.built = False  # the panes' widgets are mounted (`_build`, right after the first frame)
        self._preview_drawn = threading.Event()  # the preset's preview is on screen (the load worker waits for it)
        self.gc_held = False  # run_app disabled the garbage collector for start-up: the first load resumes it
        self.autosaver = Autosaver()
        self.layer_edits: LayerEdits  # made in `_build`, once the widgets are imported: the layer table's edits
        self.tensor_edits: TensorEdits  # the Tensors and Data tabs' editors
        self.reports: Reports  # the data set dialog, the reports (gradcheck, confusion, neuron) and the runs
        self.saving: Saving  # saving a preset or a session, exporting

    # -- what is shown: printable, never markup (tui_nn/ui/safe.py) ----------------------------------

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notification (the app's, its widgets' and screens', Textual's own): messages quote file names,
        keys and errors, so the message and the title are made printable. The app passes markup=False wherever it
        puts outside text in a message (Textual's own notices use markup)."""
        kw: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        super().notify(shown(message), title=line(title), severity=severity, markup=markup, **kw)

    def validate_title(self, title: object) -> str:
        return line(super().validate_title(title))

    def validate_sub_title(self, sub_title: object) -> str:
        return line(super().validate_sub_title(sub_title))

    def runner(self) -> ThreadRunner | ProcessRunner:
        with self._runner_lock:  # the load worker and the train worker may both ask first
            if self._runner is None:
                self._runner = engine.make_runner()
            return self._runner

    # -- layout ----------------------------------------------------------------------------------

    def compose(self):  # noqa: ANN201
        """The first frame: the tab names, the status line and the keys, drawn before the panes' modules (numpy,
        plotext, our widgets) are imported and before Textual's TabbedContent is built (together ~0.5 s on the
        lab VM). `_build` puts the real tabs and panes in its place right after (docs/performance.md, start-up)."""
        yield Shown(SKELETON_TABS, id="skeleton", markup=False)
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def _tabs(self) -> TabbedContent:
        """The tabs and their panes' widgets (after `startup.import_parts`)."""
        layers = Horizontal(
            Vertical(parts.LayerTable(id="layer-table"), parts.ErrorPanel("", id="error-panel", markup=False),
                     parts.Totals("loading…", id="totals", markup=False), id="layers-main"),
            Vertical(parts.Instructions(id="instructions"), parts.LossPlot(id="side-plot"), id="layers-side"),
            id="layers-split")
        tabs = TabbedContent(id="tabs", initial="tab-layers")
        for pane in (
            TabPane("1 Layers", layers, id="tab-layers"),
            TabPane("2 Tensors", parts.TensorsPane(id="tensors"), id="tab-tensors"),
            TabPane("3 Train", Horizontal(parts.TrainControls(id="controls"), parts.LossPlot(id="plot"),
                                          id="train-split"), id="tab-train"),
            TabPane("4 Data", parts.DataPane(id="data"), id="tab-data"),
            TabPane("5 Info", parts.InfoPane(id="info"), id="tab-info"),
            TabPane("6 Boundary", parts.BoundaryPane(id="boundary"), id="tab-boundary"),
        ):
            tabs.compose_add_child(pane)  # what `with TabbedContent():` in a compose does
        return tabs

    def on_mount(self) -> None:
        self.query_one(StatusBar).show(state="loading", step=0, loss=None, device="…",
                                       note=startup.opening_note(self.preset_path))
        self.call_after_refresh(self._build)

    async def _build(self) -> None:
        """After the first frame: the panes' widgets, then the preset (in a worker)."""
        startup.import_parts()
        self.layer_edits = parts.LayerEdits(self)
        self.tensor_edits = parts.TensorEdits(self)
        self.reports = parts.Reports(self)
        self.saving = parts.Saving(self)
        skeleton = self.query_one("#skeleton")
        await self.mount(self._tabs(), before=skeleton)
        await skeleton.remove()
        self.built = True
        self.query_one(parts.LayerTable).focus()
        self._load(self.preset_path, initial=True)

    # -- loading ---------------------------------------------------------------------------------

    def _load(self, path: str | None, *, initial: bool = False) -> None:
        self.runstate.start_loading()
        self.refresh_bindings()
        work = partial(self._first_load_thread, path) if initial else partial(self._load_thread, path, False)
        self.run_worker(work, thread=True, group="engine", exit_on_error=False, name="load")

    def _first_load_thread(self, path: str | None) -> None:
        try:
            self._load_thread(path, True)
        finally:
            if self.gc_held:  # run_app held the collector for start-up (tui_nn/ui/__init__.py)
                self.gc_held = False
                startup.release_gc()

    def _load_thread(self, path: str | None, initial: bool) -> None:
        """Open a preset or a session file (.tuinn). The session is posted as soon as it is built; what only
        later actions need (the first optimizer's imports, the bundled presets for the picker, the trainer
        process) is prepared after that, so the preset is on screen and keys act first. The first load shows a
        preview before torch is imported (`_preview_preset`)."""
        if initial:
            self._preview_preset(path)
            startup.prestart_trainer()
        if loading.open_path(path, initial=initial, post=self.post_message) and initial:
            self._warm_up()

    def _preview_preset(self, path: str | None) -> None:
        """In the load worker, before torch is imported: the preset's preview (startup.preview) posted, then the
        worker waits (at most a second) for its frame: torch's import holds the GIL most of the time."""
        shown = startup.preview(path)
        if shown is None:
            return
        self.post_message(PresetPreview(*shown))
        self._preview_drawn.wait(1.0)

    def on_preset_preview(self, msg: PresetPreview) -> None:
        if self.session is None and self.built:
            self.runstate.previewing = True
            self.query_one(parts.LayerTable).show_preview(msg.rows)
            known = [r.params for r in msg.rows if r.depth == 0]
            total = "…" if any(p is None for p in known) else f"{sum(known):,}"
            self.query_one(parts.Totals).update(Text.assemble(("params ", "dim"), (total, "bold"),
                                                        ("  (preview: PyTorch is loading)", "dim")))
            self.query_one(StatusBar).show(state="loading", step=0, loss=None, device="…", name=msg.preset.name,
                                           note=PREVIEW_NOTE)
        self.call_after_refresh(self._preview_drawn.set)

    def _warm_up(self) -> None:
        """Behind the first interactive frame (in the load worker): the first optimizer's imports, the bundled
        presets for the picker, and the trainer process started (ui/startup.py)."""
        startup.warm_optimizer()
        try:
            self.post_message(PresetsListed(startup.bundled()))
            runner = self.runner()
            if hasattr(runner, "start"):
                runner.start()
        except Exception as err:  # noqa: BLE001 - the session is open; a later run says what is wrong
            self.post_message(LoadFailed("Cannot prepare training", f"{type(err).__name__}: {err}"))

    def on_presets_listed(self, msg: PresetsListed) -> None:
        self.presets = msg.presets

    async def on_session_loaded(self, msg: SessionLoaded) -> None:
        if msg.presets is not None:
            self.presets = msg.presets
        if msg.devices:
            self.devices = msg.devices
        if msg.session is None:  # a later load failed: keep the current session
            self.runstate.open_failed(has_session=self.session is not None)
            self._update_status()
            self.refresh_bindings()
            return
        self.session = msg.session
        self.session_path = msg.session_path
        self.autosave_note = ""
        if self.runs is None:  # one record of runs for every session opened: runs of different presets compare
            self.runs = msg.session.runs
        elif msg.session.runs is not self.runs:
            self.runs.absorb(msg.session.runs)  # a session file's own runs join them
            self.runs.mark_reset()
            msg.session.runs = self.runs
        self.undo_stack = engine.UndoStack()
        self.last_progress = self.last_finished = None
        self.query_one(parts.TensorsPane).forget_trace()
        self.runstate.opened()
        await self.query_one(parts.TrainControls).load(self.session, self.devices)
        err = self.session.report.error
        # the cursor stays where it was moved in the preview
        previewed, self.runstate.previewing = self.runstate.previewing, False
        self.changed(select=(err.path or str(err.layer)) if err is not None else None if previewed else "0")
        if msg.note:
            self.notify(msg.note, severity="warning", markup=False)
        self.loaded.set()

    def on_load_failed(self, msg: LoadFailed) -> None:
        self.push_screen(parts.ErrorModal(msg.title, msg.message, msg.hint))

    # -- refreshing ------------------------------------------------------------------------------

    @property
    def run_state(self) -> str:
        """The phase: loading, ready, busy, running, paused or error (ui/run_state.py)."""
        return self.runstate.phase

    @property
    def running(self) -> bool:
        return self.runstate.running

    @property
    def version(self) -> int:
        """Bumped when the model, weights or data change (views compare it with the version they show)."""
        return self.runstate.version

    def _phase_changed(self, phase: str) -> None:
        if self.built:
            self.refresh_bindings()

    def changed(self, select: str | None = None) -> None:
        """The model, weights or data changed: redraw everything that shows them."""
        self.runstate.changed()
        self.query_one(parts.TensorsPane).forget_trace()
        self._refresh_all(select)

    def _refresh_all(self, select: str | None = None) -> None:
        s = self.session
        if s is None:
            return
        table = self.query_one(parts.LayerTable)
        table.update_from(s, select)
        self.query_one(parts.ErrorPanel).update_from(s)
        self.query_one(parts.Totals).update_from(s, table.selected_path)
        self.query_one(parts.Instructions).update_from(s)
        self.query_one(parts.InfoPane).update_from(s, self.devices)
        self.query_one(parts.DataPane).update_from(s, editable=not self.running)
        if not self.running:
            series = s.history.series()
            test = parts.eval_series(self.session)
            for plot in self.query(parts.LossPlot):
                plot.set_series(series)
                plot.set_test(test)
        if self.active_tab() == "tensors":
            self._refresh_tensors()
        self._update_status()
        self.refresh_bindings()

    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active.removeprefix("tab-")

    def _update_status(self, note: str = "") -> None:
        running = self.running
        self.query_one(StatusBar).show_session(
            self.session, self.runstate, self.last_progress if running else None, clock=self.clock, note=note,
            autosave_note=self.autosave_note,
            loss=self.loss_now.value(self.session, self.last_progress, running, self.version))

    # -- tensors ---------------------------------------------------------------------------------

    def _refresh_tensors(self) -> None:
        self.query_one(parts.TensorsPane).show_session(self.session, self.runstate)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-tensors":
            self._refresh_tensors()

    # -- guards ----------------------------------------------------------------------------------

    def busy_reason(self) -> str | None:
        return self.runstate.refusal(self.session is not None)

    def refuse(self, what: str, retry: Callable[[], None] | None = None) -> bool:
        """True (with a notice) when `what` cannot be done now. An edit asked for while another one is being
        applied (`retry` given; keys pressed quickly, e.g. u u u) is queued and done after it instead."""
        reason = self.busy_reason()
        if reason:
            if retry is None or not self.runstate.queue(retry):
                self.notify(f"Cannot {what} now: {reason}.", severity="warning", markup=False)
            return True
        return False

    def _run_queued(self) -> None:
        edit = self.runstate.next_queued()
        if edit is not None:
            self.call_later(edit)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.built:  # the first frame, before the panes exist (a fraction of a second)
            return action == "quit"
        if not keys.acts_in(action, self.run_state):
            return False
        s = self.session
        if action == "apply_fix":
            return s is not None and s.report.error is not None and s.report.error.fix is not None
        if action == "apply_alt_fix":
            return s is not None and s.report.error is not None and bool(s.report.error.extra_fixes)
        if action == "undo":
            return self.undo_stack is not None and bool(self.undo_stack.done)
        return True

    # -- engine operations off the UI thread ---------------------------------------------------

    def engine_op(self, label: str, fn: Callable[[], Any], then: Callable[[Any], None] | None = None,
                  undo: Callable[[], None] | None = None, select: str | None = None) -> None:
        """Run `fn` in a thread worker; then `then(result)` and the redraw (the table's cursor on `select`), or
        `undo()` and the error shown."""
        self._select_after = select
        self.runstate.begin_busy(label)
        self._update_status()
        self.refresh_bindings()

        def run() -> None:
            try:
                result = fn()
            except Exception as err:  # noqa: BLE001 - every failure is shown; the session is unchanged
                self.post_message(EngineFailed(label, err, undo))
                return
            self.post_message(EngineDone(label, result, then))

        self.run_worker(run, thread=True, group="engine", exit_on_error=False, name=label)

    def on_engine_done(self, msg: EngineDone) -> None:
        self.runstate.end_busy()
        if msg.then is not None:
            msg.then(msg.result)
        select, self._select_after = self._select_after, None
        self.changed(select)
        self._run_queued()

    def on_engine_failed(self, msg: EngineFailed) -> None:
        if self.session is not None:  # a move that failed: the device list shows where the session still is
            for controls in self.query(parts.TrainControls):
                controls.show_device(str(self.session.device))
        self.runstate.end_busy()
        if msg.undo is not None:
            msg.undo()
        err = msg.error
        message = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
        self.push_screen(parts.ErrorModal(f"Cannot {msg.label}", message, getattr(err, "hint", "")))
        self._select_after = None
        self.runstate.clear_queue()  # edits queued behind one that failed would apply to what the user did not see
        self._refresh_all()

    # -- layer edits (widgets/layer_edits.py) and tensor edits (widgets/tensor_edits.py) ----------

    def selected_path(self) -> str | None:
        return self.query_one(parts.LayerTable).selected_path

    def action_add_layer(self) -> None:
        self.layer_edits.add()

    def add_layer_of_type(self, type_name: str, path: str | None = ...) -> None:  # type: ignore[assignment]
        self.layer_edits.add_of_type(type_name, self.selected_path() if path is ... else path)

    def action_edit_layer(self) -> None:
        self.layer_edits.edit()

    def on_layer_table_edit_requested(self, msg: parts.LayerTable.EditRequested) -> None:
        self.layer_edits.edit()

    def on_layer_table_path_highlighted(self, msg: parts.LayerTable.PathHighlighted) -> None:
        if self.session is not None:
            for totals in self.query(parts.Totals):  # none while the app is closing (a late highlight event)
                totals.update_from(self.session, self.selected_path())

    def action_remove_layer(self) -> None:
        self.layer_edits.remove()

    def action_duplicate_layer(self) -> None:
        self.layer_edits.duplicate()

    def action_move_layer(self, delta: int) -> None:
        self.layer_edits.move(delta)

    def action_apply_fix(self, alternative: bool = False) -> None:
        self.layer_edits.apply_fix(alternative)

    def action_apply_alt_fix(self) -> None:
        self.layer_edits.apply_fix(alternative=True)

    def action_undo(self) -> None:
        self.layer_edits.undo_redo(undo=True)

    def action_redo(self) -> None:
        self.layer_edits.undo_redo(undo=False)

    def action_freeze_layer(self, path: str | None = None) -> None:
        self.layer_edits.freeze(path)

    def action_init_layer(self, path: str | None = None) -> None:
        self.layer_edits.init(path)

    def action_edit_input_shape(self) -> None:
        self.layer_edits.input_shape()

    def on_tensor_view_request(self, event: parts.TensorView.Request) -> None:
        event.stop()
        entry = event.view.entry
        if entry is None:
            return
        if entry.kind == "param" and event.what in ("init", "freeze"):
            path = engine.layer_path_of_param(entry.key.removeprefix("param:"))
            (self.layer_edits.init if event.what == "init" else self.layer_edits.freeze)(path)
        elif entry.kind == "param":
            self.tensor_edits.edit_param(entry.key.removeprefix("param:"), event.what, event.index)
        elif entry.kind == "data" and entry.key.startswith("data:"):
            self.tensor_edits.edit_data(entry.key.removeprefix("data:"), event.what, event.index)
        else:
            self.notify("This tensor is computed, not edited: edit a parameter or the data.", severity="warning")

    def set_weight(self, name: str, value_text: str, index: tuple[int, ...] | None = None) -> str | None:
        """For scripts and tests: the same path as the editor."""
        return self.tensor_edits.set_weight(name, index, value_text)

    def action_compute_grads(self) -> None:
        if self.refuse("run a backward pass"):
            return
        s = self.session
        if not s.can_backward:
            self.notify(f"No backward pass: {s.why_not_trainable()}", severity="warning", markup=False)
            return
        self.engine_op("run a backward pass", s.compute_gradients,
                       then=lambda loss: self.notify(f"backward pass done (loss {loss:.5g}): see ∇ in Tensors"))

    # -- training --------------------------------------------------------------------------------

    def action_train_step(self) -> None:
        self._train(1)

    def action_train_run(self) -> None:
        self._train(None)

    def train(self, steps: int, *, pause_at: int | None = None) -> None:
        """Start a run of `steps` steps (tests and scripts); `pause_at` pauses it when the session reaches
        that step, as `p` would (a deterministic mid-run state for screenshots)."""
        self.runstate.pause_at = pause_at
        self._train(steps)

    def _train(self, steps: int | None) -> None:
        if self.running:
            self.notify("Already training.", severity="information")
            return
        if self.refuse("train"):
            return
        invalid = self._train_field_error(steps=steps is None)
        if invalid:  # the field shows one thing, the session holds its last valid value: ask, do not guess
            self.notify(f"Cannot train: the Train tab's {invalid}. Fix the field first.",
                        severity="warning", markup=False)
            return
        s = self.session
        if not s.trainable:
            self.push_screen(parts.ErrorModal("Cannot train yet", s.why_not_trainable(),
                                        "fix the shape error (f) first" if s.report.error is not None else ""))
            return
        total = steps if steps is not None else max(int(s.training.steps), 1)
        self.runstate.start_run(total)
        self._start_run(total)

    def _train_field_error(self, *, steps: bool) -> str | None:
        try:
            controls = self.query_one(parts.TrainControls)
        except NoMatches:  # no session on screen yet
            return None
        return controls.first_error(steps=steps)

    def _start_run(self, steps: int) -> None:
        self.autosave_note = ""
        self._stop_event.clear()
        self.last_progress = None
        self._train_idle.clear()
        self._run_trainer(steps)  # first: (dis)abling the Train tab restyles ~100 widgets (~0.1 s of this thread)
        self.query_one(parts.TrainControls).disabled = True
        self._refresh_all()

    @work(thread=True, exit_on_error=False, group="train", name="train")
    def _run_trainer(self, steps: int) -> None:
        """The train worker: waits for the runner and forwards its reports. A long run is cut into slices of
        the autosave interval: between two slices (a step boundary, so the session is consistent) the
        session is autosaved from this worker, and the run goes on; the UI sees one run."""
        try:
            self._train_slices(steps)
        finally:
            self._train_idle.set()

    def _train_slices(self, steps: int) -> None:
        worker = get_current_worker()
        session = self.session
        stop = self._stop_event
        pause_at, self.runstate.pause_at = self.runstate.pause_at, None
        try:
            finished, paused = training.run_in_slices(
                self.runner().run, session, steps, pause_at=pause_at, interval=self.autosave_interval(),
                stopped=lambda: stop.is_set() or worker.is_cancelled, autosave=self.autosave_now,
                report=lambda p: self.post_message(TrainProgress(p, session.history.series())))
        except engine.EngineError as err:
            self.post_message(TrainFailed(err.message, err.hint))
            return
        except Exception as err:  # noqa: BLE001 - whatever fails, the app stays alive
            self.post_message(TrainFailed(f"{type(err).__name__}: {err}", "the weights are those of the last "
                                                                          "completed step"))
            return
        if paused:
            self.runstate.pause_requested = True
        self.post_message(TrainFinished(finished))

    def on_train_progress(self, msg: TrainProgress) -> None:
        if not self.running:
            return
        self.last_progress = msg.progress
        test = parts.eval_series(self.session)
        for plot in parts.LossPlot.mounted_in(self):  # not self.query(): walking the DOM 15 times a second costs CPU
            plot.set_series(msg.series)
            plot.set_test(test)
        now = msg.progress.elapsed
        if self.runstate.due("status", now, STATUS_INTERVAL):  # at most 5 Hz
            self._update_status()
        # a parameter on screen follows the training, at a bounded rate
        now = msg.progress.elapsed
        if self.active_tab() == "tensors" and self.runstate.due("live", now, LIVE_TENSOR_INTERVAL):
            pane = self.query_one(parts.TensorsPane)
            if pane.current and pane.current.startswith("param:"):
                pane.select(pane.current)

    def _run_ended(self) -> None:
        """The Train tab's settings unlock after this frame: the status says ready at once, and enabling the
        tab's ~100 widgets (a restyle of each, ~0.1 s here) comes after it, unless a new run started."""
        def unlock() -> None:
            if not self.running:
                self.query_one(parts.TrainControls).disabled = False

        self.call_after_refresh(unlock)

    def on_train_finished(self, msg: TrainFinished) -> None:
        fin = msg.finished
        self.last_finished = fin
        self._run_ended()
        done = self.runstate.finished(fin.reason, fin.run_steps)
        if fin.reason == "error":
            self.push_screen(parts.ErrorModal(f"Training stopped at step {fin.step}: a step failed", fin.message,
                                        fin.hint))
        elif fin.reason == "nonfinite":
            self.push_screen(parts.ErrorModal("The loss is not a finite number", fin.message, fin.hint))
        elif fin.reason == "target":
            what = fin.message or "Target reached"
            self.notify(f"{what} (step {fin.step}).", severity="information", markup=False)
        elif fin.reason == "stopped" and self.run_state == "paused":
            self.notify(f"Paused at step {fin.step}: p resumes ({self.runstate.run_total - done} steps left), s stops.")
        elif fin.reason == "stopped":
            self.notify(f"Stopped at step {fin.step}.")
        self.runstate.end_run()
        self.changed()
        self.maybe_autosave()

    def on_train_failed(self, msg: TrainFailed) -> None:
        self._run_ended()
        self.runstate.failed()
        self.push_screen(parts.ErrorModal("Training could not run", msg.message, msg.hint))
        self.changed()

    def action_pause(self) -> None:
        if self.runstate.request_pause():
            self._stop_event.set()

    def action_resume(self) -> None:
        if self.run_state != "paused":
            return
        if self.runstate.remaining <= 0:
            self.runstate.resume()  # nothing left: ready
            self._refresh_all()
            return
        s = self.session
        if not s.trainable:
            self.push_screen(parts.ErrorModal("Cannot resume", s.why_not_trainable()))
            return
        self._start_run(self.runstate.resume())

    def action_stop(self) -> None:
        what = self.runstate.request_stop()
        if what == "stopping":
            self._stop_event.set()
        elif what == "stopped":
            self.notify("Stopped.")
            self._refresh_all()

    def action_reset_weights(self, hand_set: bool = True) -> None:
        """R: back to the preset (its hand-set weights, the seed's initialisation elsewhere); ctrl+r: every layer
        from the seed's initialisation, the hand-set values dropped. Data and history start afresh too."""
        if self.refuse("reset the weights"):
            return
        self.undo_stack.push(engine.snapshot(self.session, "reset weights"))
        self.runstate.reset()
        session = self.session
        if hand_set:
            done = "Weights, data and history reset to the preset (u restores the weights)."
        else:
            done = (f"Every layer re-initialised from seed {session.training.seed}, hand-set values dropped; "
                    "data and history reset (u restores the weights).")
        self.engine_op("reset the weights", partial(session.reset, hand_set=hand_set),
                       undo=lambda: self.undo_stack.done.pop(), then=lambda _r: self.notify(done, markup=False))

    def action_reset_init(self) -> None:
        self.action_reset_weights(hand_set=False)

    def action_toggle_log(self) -> None:
        plots = parts.LossPlot.mounted_in(self)  # not a DOM query: that walks every widget, ~14 ms here
        value = not plots[0].log if plots else False
        for plot in plots:
            plot.log = value  # the plot's title says it ("loss (log scale)"); no toast: a toast costs a frame

    # -- training settings -----------------------------------------------------------------------

    def on_train_controls_changed(self, msg: parts.TrainControls.Changed) -> None:
        s = self.session
        if s is None:
            return
        if self.running:
            self.notify("Training settings are locked while a run is under way.", severity="warning")
            return
        if msg.what == "device":
            if msg.value != str(s.device):
                self.choose_device(msg.value)
            return
        try:
            changed, note = parts.apply_setting(s, msg.what, msg.value)
        except Exception as err:  # noqa: BLE001 - a refused setting is shown, nothing else changes
            self.push_screen(parts.ErrorModal("Setting refused", getattr(err, "message", str(err)),
                                              getattr(err, "hint", "")))
            return
        if note:
            self.notify(note)
        if changed:
            self.changed()
        elif msg.what == "run":
            self._update_status()

    def choose_loss(self, name: str) -> None:
        if not self.refuse("change the loss"):
            self.query_one(parts.TrainControls).choose("loss-type", name)  # its Changed message applies it
            self.action_show_tab("train")

    def choose_optimizer(self, name: str) -> None:
        if not self.refuse("change the optimizer"):
            self.query_one(parts.TrainControls).choose("opt-type", name)
            self.action_show_tab("train")

    def choose_device(self, name: str) -> None:
        if self.refuse("change the device"):
            return
        s = self.session
        if name == str(s.device):
            return
        self.engine_op(f"move to {name}", partial(s.set_device, name),
                       then=lambda _r: self.notify(f"now on {name}"))

    # -- presets ---------------------------------------------------------------------------------

    def action_open_preset(self) -> None:
        if self.refuse("open a preset"):
            return
        self.push_screen(parts.PresetPicker(self.presets), callback=lambda p: self.open_preset_path(p) if p else None)

    def open_preset_path(self, path: str) -> None:
        if self.refuse("open a preset"):
            return
        self.action_show_tab("layers")
        self._update_status(note=f"opening {path}…")
        self._load(path.strip())

    def action_save_preset(self) -> None:
        self.saving.save()

    def save_session_to(self, path: str) -> str | None:
        """Save the whole session (a .tuinn file) in a worker; returns a refusal or None."""
        return self.saving.save_session_to(path)

    def open_session_path(self, path: str) -> None:
        """Open a .tuinn session file (as `o` or `tui-nn FILE.tuinn` do)."""
        self.open_preset_path(path)

    def action_export(self, kind: str = "script") -> None:
        self.saving.export(kind)

    # -- autosave (tui_nn/ui/autosave.py) ---------------------------------------------------------

    def autosave_interval(self) -> float | None:
        """Seconds between autosaves during a run (None: autosave is off)."""
        return self.autosaver.interval(self.session, self.session_path)

    def autosave_now(self, session: Session) -> str | None:
        """In a worker (between two slices of a run, or after one): autosave if it changed, at most once an
        interval; the path written, or None. A failure is said in the status line, never raised."""
        try:
            saved = self.autosaver.save(session, self.session_path, self.version, force=False)
        except Exception as err:  # noqa: BLE001 - an autosave that fails is said, never raised
            self.call_from_thread(self._update_status, f"autosave failed: {err}")
            return None
        if saved:
            self.call_from_thread(self.autosaved, saved)
        return saved

    def autosave_on_quit(self) -> str | None:
        """When quitting (in a worker thread): save what changed since the last autosave, whatever the interval."""
        edited = self.undo_stack is not None and bool(self.undo_stack.done)
        return self.autosaver.save_on_quit(self.session, self.session_path, self.version, edited)

    def maybe_autosave(self) -> None:
        """At a run's end or pause: at most once an interval, in a worker."""
        s = self.session
        if s is None or self.running or not self.autosaver.due(s, self.session_path, self.version):
            return
        self.run_worker(partial(self.autosave_now, s), thread=True, group="autosave", exclusive=True,
                        exit_on_error=False, name="autosave")

    def autosaved(self, path: str) -> None:
        self.autosave_note = f"autosaved {Path(path).name}"
        if not self.running:
            self._update_status()

    # -- data sets, reports, runs ---------------------------------------------------------------

    def action_choose_dataset(self) -> None:
        self.reports.choose_dataset()

    def action_confusion(self) -> None:
        self.reports.confusion()

    def action_gradcheck(self) -> None:
        self.reports.gradcheck()

    def action_neuron(self) -> None:
        self.reports.neuron()

    def action_compare_runs(self) -> None:
        self.reports.compare_runs()

    # -- navigation and help --------------------------------------------------------------------

    def action_show_tab(self, name: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = f"tab-{name}"
        target: str = {
            "layers": "#layer-table", "tensors": "#tensor-list", "train": "#controls", "data": "#data-inputs-view",
            "info": "#info", "boundary": "#boundary-view",
        }[name]
        if name == "tensors":
            self._refresh_tensors()
        widget = self.query_one(target)
        if name == "train":
            focusable = [w for w in widget.query("Select, Input") if w.focusable]
            widget = focusable[0] if focusable else widget
        self.call_after_refresh(widget.focus)

    def action_help(self) -> None:
        self.push_screen(parts.HelpScreen(keys.help_sections(), keys.HELP_INTRO))

    # -- palette (commands.py; its actions: ui/keys.py) -------------------------------------------

    def palette_presets(self) -> list[tuple[str, str, str]]:
        out = []
        for stem, path, preset in self.presets:
            desc = "" if isinstance(preset, Exception) else (preset.description.strip().splitlines() or [""])[0]
            out.append((stem, path, desc[:100]))
        return out

    def run_action_safely(self, action: str) -> None:
        self.call_later(self.run_action, action)

    async def action_quit(self) -> None:
        """Quit: a run stops at its next step; the session is autosaved (if it changed) before the app exits."""
        self._stop_event.set()
        if self.running:  # the run ends at its next step (the worker returns); not longer than a second
            await asyncio.to_thread(self._train_idle.wait, 1.0)
        if self._train_idle.is_set() and self.run_state not in ("busy", "loading"):
            self.saved_on_quit = await asyncio.to_thread(self.autosave_on_quit)
        self.exit(0)

    def on_unmount(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
        startup.discard_trainer()


__all__ = ["PlaygroundApp"]
