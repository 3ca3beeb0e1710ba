"""The app's "Beyond the labs" actions: data sets and CSV files, the confusion matrix, the numerical
gradient check, a neuron in numbers, the runs compared, sessions (.tuinn) with autosave, and export.

A mixin of `PlaygroundApp` (it uses the app's guards, `_engine_op` and refresh). Long work (gradient
check, confusion matrix, saving, export) runs in thread workers; outside text is shown literally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.binding import Binding

from .safe import Text

INSIGHT_BINDINGS = [
    Binding("D", "choose_dataset", "Data set", show=False, id="data.dataset",
            tooltip="Choose a data set (spiral, xor, ...) or the columns of a CSV file"),
    Binding("C", "confusion", "Confusion matrix", show=False, id="metrics.confusion",
            tooltip="The confusion matrix of the test split (or the training data)"),
    Binding("c", "compare_runs", "Runs", id="runs.compare",
            tooltip="Every run kept: overlay several, smoothing and log scale"),
    Binding("X", "gradcheck", "Gradient check", show=False, id="tensors.gradcheck",
            tooltip="Numerical gradient check: autograd against central differences"),
    Binding("N", "neuron", "Neuron in numbers", show=False, id="layers.neuron",
            tooltip="The highlighted Linear layer's output unit written out with its numbers"),
    Binding("E", "export", "Export", show=False, id="app.export",
            tooltip="Write a PyTorch script, the loss history CSV or an SVG screenshot"),
    Binding("6", "show_tab('boundary')", "Boundary tab", show=False, id="tab.boundary"),
]

MAX_NEURON_TERMS = 256  # terms of y = sum w_i x_i + b written out in the neuron dialog
AUTOSAVE_INTERVAL = 60.0  # seconds: at most one autosave a minute (during a run, between two of its slices)


def autosave_dir() -> Path:
    env = os.environ.get("TUI_NN_AUTOSAVE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tui-nn" / "autosave"


def _stem(session: Any) -> str:
    src = session.preset.source or ""
    return Path(src).stem if src and not src.startswith("<") else "scratch"


class InsightMixin:
    """Actions added to PlaygroundApp."""

    session: Any
    autosave_enabled: bool = True
    _autosave: Any = None
    session_path: str | None = None

    # -- data sets ---------------------------------------------------------------------------------

    def action_choose_dataset(self) -> None:
        from .screens.insight import DatasetModal
        app: Any = self
        if app._refuse("change the data"):
            return
        app.action_show_tab("data")
        app.push_screen(DatasetModal(app.session.preset.data, self._apply_dataset))

    def _apply_dataset(self, values: dict[str, Any]) -> str | None:
        from .screens.insight import dataset_table
        app: Any = self
        reason = app._busy_reason()
        if reason:
            return reason
        from tui_nn.engine.data.csvfile import parse_csv
        from tui_nn.engine.data.generated import parse_dataset
        from tui_nn.engine.errors import EngineError
        from tui_nn.engine.spec import DataSpec

        try:
            which, table = dataset_table(values)
        except ValueError as err:
            return str(err)
        s = app.session
        # a path typed here is relative to the working folder; the current CSV's own path keeps its base
        current = s.preset.data.csv
        base = current.base if current is not None and table.get("path") == current.path else os.getcwd()
        try:
            if which == "csv":
                spec = DataSpec(csv=parse_csv(table, source="the CSV dialog", base=base))
            else:
                spec = DataSpec(dataset=parse_dataset(table, source="the data set dialog"))
        except EngineError as err:
            return _engine_text(err)
        from tui_nn.engine.data.tables import describe

        app._engine_op("use the new data", lambda: s.set_data(spec),
                       then=lambda _r: app.notify(f"data: {describe(spec)}", markup=False))
        return None

    # -- metrics -----------------------------------------------------------------------------------

    def accuracy_now(self) -> float | None:
        """The accuracy to show: of the last reported batch while training, else the last recorded."""
        app: Any = self
        p = app.last_progress if app.running else None
        if p is not None and getattr(p, "accuracy", None) is not None:
            return float(p.accuracy)
        s = app.session
        if s is None:
            return None
        try:
            return s.metrics.accuracy.last
        except Exception:  # noqa: BLE001
            return None

    def test_accuracy_now(self) -> float | None:
        s: Any = self.session
        if s is None:
            return None
        try:
            ev = s.metrics.last_eval
        except Exception:  # noqa: BLE001
            return None
        return None if ev is None or ev.accuracy is None else float(ev.accuracy)

    def test_series(self) -> tuple[Any, Any] | None:
        s: Any = self.session
        if s is None:
            return None
        try:
            steps, loss, _acc = s.metrics.test_series()
        except Exception:  # noqa: BLE001
            return None
        return (steps, loss) if len(steps) else None

    def action_confusion(self) -> None:
        from .screens.dialogs import ErrorModal
        from .screens.insight import ReportModal
        app: Any = self
        if app._refuse("compute the confusion matrix"):
            return
        s = app.session

        def compute() -> Any:
            from tui_nn.engine.training.metrics import confusion_matrix

            cm = confusion_matrix(s, "test")
            split = "test split"
            if cm is None:
                cm, split = confusion_matrix(s, "train"), "training data"
            return cm, split

        def show(result: Any) -> None:
            cm, split = result
            if cm is None:
                app.push_screen(ErrorModal("No confusion matrix",
                                           "A confusion matrix needs a classification loss (CrossEntropyLoss, "
                                           "NLLLoss, BCELoss, BCEWithLogitsLoss) and targets."))
                return
            acc = cm.accuracy
            title = f"Confusion matrix, {split} (step {s.step})" + (f", accuracy {acc:.1%}" if acc is not None else "")
            app.push_screen(ReportModal(title, Text(cm.text() + "\n\nrows: true class, columns: predicted class"),
                                        dialog_id="confusion-dialog"))

        app._engine_op("compute the confusion matrix", compute, then=show)

    # -- gradient check ----------------------------------------------------------------------------

    def action_gradcheck(self) -> None:
        from .screens.insight import ReportModal, gradcheck_text
        app: Any = self
        if app._refuse("check the gradients"):
            return
        s = app.session
        if not s.trainable:
            app.notify(f"No gradient check: {s.why_not_trainable()}", severity="warning", markup=False)
            return

        def compute() -> Any:
            from tui_nn.engine.inspect.gradcheck import gradcheck_session

            return gradcheck_session(s)

        def show(report: Any) -> None:
            verdict = "gradients agree" if report.ok else "GRADIENTS DISAGREE (flagged ✗)"
            app.push_screen(ReportModal(f"Numerical gradient check: {verdict}", gradcheck_text(report),
                                        dialog_id="gradcheck-dialog"))

        app._engine_op("check the gradients", compute, then=show)

    # -- a neuron in numbers -----------------------------------------------------------------------

    def action_neuron(self) -> None:
        from .screens.dialogs import TextEditModal
        from .screens.insight import ReportModal
        app: Any = self
        if app._refuse("write out a neuron"):
            return
        from ..engine.model import paths

        path = app._selected_path()
        s = app.session
        spec = paths.get_layer(s.spec, path) if path is not None else None
        if spec is None or spec.type != "Linear":
            app.notify("Highlight a Linear layer on the Layers tab (1), then press N.", severity="warning")
            return
        out_features = int(spec.args.get("out_features", 1))

        def apply(text: str) -> str | None:
            try:
                unit = int(text.strip())
            except ValueError:
                return f"a whole number in 0..{out_features - 1}"
            if not 0 <= unit < out_features:
                return f"a unit in 0..{out_features - 1}"
            from tui_nn.engine.inspect.probes import neuron_equation

            try:
                # every term written out (the dialog scrolls); a very wide layer is cut with a count of the rest
                terms = min(int(spec.args.get("in_features", 8)), MAX_NEURON_TERMS)
                eq = neuron_equation(s, paths.module_path(path), unit, max_terms=terms)
            except Exception as err:  # noqa: BLE001
                return _engine_text(err)
            app.call_later(app.push_screen, ReportModal(f"Layer {path} (Linear), unit {unit}, sample 0",
                                                        Text(eq.text), dialog_id="neuron-dialog"))
            return None

        if out_features == 1:
            apply("0")
            return
        app.push_screen(TextEditModal(f"Layer {path} (Linear): which output unit?",
                                      f"An output unit in 0..{out_features - 1}: its equation with the current "
                                      "weights and the first input sample.", "0", apply))

    # -- runs compared ------------------------------------------------------------------------------

    def action_compare_runs(self) -> None:
        from .screens.insight import RunsModal
        app: Any = self
        if app.session is None:
            return
        if not app.session.runs.runs:
            app.notify("No runs yet: train a little (n, r), change a setting, train again.", severity="information")
            return
        app.push_screen(RunsModal(app.session))

    # -- sessions -----------------------------------------------------------------------------------

    def save_session_to(self, path: str) -> str | None:
        """Save the whole session (a .tuinn file) in a worker; returns a refusal or None."""
        app: Any = self
        reason = app._busy_reason()
        if reason:
            return reason
        target = Path(path).expanduser()
        if target.is_dir():
            return "that is a folder: add a file name"
        s = app.session

        def save() -> Any:
            from tui_nn.engine.files.session_file import save_session

            return save_session(s, target)

        def done(written: Any) -> None:
            app.session_path = str(written)
            app.notify(f"session saved: {written}", markup=False)

        app._engine_op("save the session", save, then=done)
        return None

    def open_session_path(self, path: str) -> None:
        """Open a .tuinn session file (as `o` or `tui-nn FILE.tuinn` do)."""
        app: Any = self
        app.open_preset_path(path)

    def autosave_path(self) -> Path:
        s: Any = self.session
        if self.session_path:
            p = Path(self.session_path)
            return p.with_name(p.stem + ".autosave.tuinn")
        return autosave_dir() / f"{_stem(s)}.tuinn"

    def _autosaver(self) -> Any:
        """The engine's Autosave for the current session's file, or None when autosave is off."""
        app: Any = self
        if not self.autosave_enabled or os.environ.get("TUI_NN_AUTOSAVE", "on") == "off" or app.session is None:
            return None
        from tui_nn.engine.files.session_file import Autosave

        path = self.autosave_path()
        if self._autosave is None or Path(self._autosave.path) != path:
            self._autosave = Autosave(path, AUTOSAVE_INTERVAL)
        return self._autosave

    def autosave_interval(self) -> float | None:
        """Seconds between autosaves during a run (None: autosave is off)."""
        return AUTOSAVE_INTERVAL if self._autosaver() is not None else None

    def _save_now(self, session: Any, *, force: bool) -> str | None:
        """Autosave `session` in the calling thread (a worker) if it changed; the path written, or None."""
        app: Any = self
        auto = self._autosaver()
        if auto is None:
            return None
        token = (session.step, app.version)
        try:
            auto.path.parent.mkdir(parents=True, exist_ok=True)
            saved = auto.save_if_changed(session, token) if force else auto.maybe_save(session, token=token)
        except Exception as err:  # noqa: BLE001 - an autosave that fails is said, never raised
            app.call_from_thread(app._update_status, f"autosave failed: {err}")
            return None
        if saved:
            app.call_from_thread(app.autosaved, str(auto.path))
            return str(auto.path)
        return None

    def autosave_now(self, session: Any) -> None:
        """Between two slices of a run (the train worker), at most once an interval."""
        self._save_now(session, force=False)

    def autosave_on_quit(self) -> str | None:
        """When quitting (in a worker thread): save what changed since the last autosave, whatever the interval."""
        app: Any = self
        if app.session is None:
            return None
        auto = self._autosaver()
        if auto is None:
            return None
        token = (app.session.step, app.version)
        if auto.last_token == token or (auto.last_token is None and app.session.step == 0 and app.version <= 1
                                        and not app.undo_stack.done):
            return None  # nothing was done in this session: nothing to keep
        try:
            auto.path.parent.mkdir(parents=True, exist_ok=True)
            auto.save_if_changed(app.session, token)
        except Exception:  # noqa: BLE001 - quitting goes on; the last autosave (if any) stays
            return None
        return str(auto.path)

    def maybe_autosave(self) -> None:
        """At a run's end or pause: at most once an interval, in a worker."""
        app: Any = self
        if app.session is None or app.running or self._autosaver() is None:
            return
        s = app.session
        if not self._autosave.due(s, token=(s.step, app.version)):
            return
        app.run_worker(lambda: self._save_now(s, force=False), thread=True, group="autosave", exclusive=True,
                       exit_on_error=False, name="autosave")

    def autosaved(self, path: str) -> None:
        app: Any = self
        app.autosave_note = f"autosaved {Path(path).name}"
        if not app.running:
            app._update_status()

    # -- export -------------------------------------------------------------------------------------

    def action_export(self, kind: str = "script") -> None:
        from .screens.insight import ExportModal
        app: Any = self
        if app._refuse("export"):
            return
        stem = _stem(app.session)
        defaults = {"script": f"{stem}.py", "csv": f"{stem}-loss.csv", "svg": f"{stem}.svg"}
        app.push_screen(ExportModal(defaults, self._export, kind))

    def _export(self, kind: str, path: str) -> str | None:
        app: Any = self
        reason = app._busy_reason()
        if reason:
            return reason
        target = Path(path).expanduser()
        if target.is_dir():
            return "that is a folder: add a file name"
        if not target.parent.exists():
            return f"the folder {target.parent} does not exist"
        s = app.session
        if kind == "svg":
            def shoot() -> None:
                written = app.save_screenshot(filename=target.name, path=str(target.parent.resolve()))
                app.notify(f"screenshot written: {written}", markup=False)

            app.call_after_refresh(shoot)  # once the dialog is gone: the screen itself
            return None

        from_start = s.has_start_weights

        def write() -> Any:
            from tui_nn.engine.files.export import write_history_csv, write_script

            if kind == "script":
                # from step 0, with the weights the loss history began from: the script prints the app's losses
                return write_script(s.current_preset(with_weights=True, at_start=from_start), target)
            return write_history_csv(s, target)

        def written(p: Any) -> None:
            where = Path(p).resolve()
            if kind != "script":
                app.notify(f"written: {where}", markup=False)
            elif from_start:
                app.notify(f"written: {where}: it trains from step 0 with the weights this history began from, "
                           "and prints the same losses as the app", markup=False, timeout=8)
            else:
                app.notify(f"written: {where}: it trains from the current weights (step {s.step}; the weights of "
                           "step 0 are not known for this session) with a fresh optimizer", markup=False,
                           severity="warning", timeout=8)

        app._engine_op("export", write, then=written)
        return None


def _engine_text(err: Any) -> str:
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    hint = getattr(err, "hint", "")
    return str(message) + (f" ({hint})" if hint else "")
