"""Pilot tests of "Beyond the labs": data sets and CSV files, metrics, the decision boundary, runs
compared, the gradient check, optimizer state, a neuron in numbers, schedules and stop conditions,
sessions with autosave, and export. Tiny presets; no timing assertions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select, SelectionList, Static

from tui_nn.ui.app import PlaygroundApp
from tui_nn.ui.keys import palette_actions
from tui_nn.ui.screens.dataset import DatasetModal
from tui_nn.ui.screens.dialogs import ExportModal, SaveModal, TextEditModal
from tui_nn.ui.screens.reports import ReportModal
from tui_nn.ui.screens.runs import RunsModal
from tui_nn.ui.widgets.plot import LossPlot

from .helpers import loaded, preset, settle, train_steps, wait_until


def static_text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def modal(pilot: Any, cls: type) -> Any:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, cls) and bool(pilot.app.screen.query(".dialog")),
                     what=cls.__name__)
    await pilot.pause()
    return pilot.app.screen


async def test_dataset_dialog_and_csv_errors(tmp_path: Path) -> None:
    app = PlaygroundApp(preset("boundary"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("D")
        dlg = await modal(pilot, DatasetModal)
        dlg.query_one("#ds-source", Select).value = "circles"
        dlg.query_one("#ds-samples", Input).value = "50"
        dlg.query_one("#ds-test", Input).value = "0.2"
        await pilot.press("ctrl+s")
        await settle(pilot)
        ds = app.session.preset.data.dataset
        assert (ds.name, ds.samples) == ("circles", 50)
        assert app.session.inputs.shape[0] == 40 and app.session.test_inputs.shape[0] == 10
        # a CSV file with a bad row: the error names the line, shown literally in the dialog
        bad = tmp_path / "points.csv"
        bad.write_text("x1,x2,y\n0.1,0.2,0\n0.3,[red]oops[/red],1\n", encoding="utf-8")
        await pilot.press("D")
        dlg = await modal(pilot, DatasetModal)
        dlg.query_one("#ds-source", Select).value = "csv"
        dlg.query_one("#csv-path", Input).value = str(bad)
        dlg.query_one("#csv-features", Input).value = "x1, x2"
        dlg.query_one("#csv-target", Input).value = "y"
        dlg.query_one("#ds-test", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, DatasetModal)
        err = static_text(app, "#dataset-error")
        assert "line 3" in err and "[red]oops[/red]" in err
        # a good file is used, keeping the weights
        good = tmp_path / "good.csv"
        good.write_text("x1,x2,y\n" + "".join(f"{i / 10},{-i / 10},{i % 2}\n" for i in range(10)), encoding="utf-8")
        weight = app.session.get_param("0.weight").detach().clone()
        dlg.query_one("#csv-path", Input).value = str(good)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.session.preset.data.csv is not None
        assert app.session.inputs.shape == (10, 2)
        assert app.session.get_param("0.weight").detach().equal(weight)


async def test_metrics_boundary_confusion_and_optimizer_state() -> None:
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 20)
        # accuracy in the status line, the test loss as a second series on the loss plot
        status = app.query_one("#status").text.plain
        assert " acc " in status and " test " in status
        labels = [a[0] for a in palette_actions()]
        for what in ("Boundary tab", "data set", "Confusion matrix", "Runs compared", "gradient check",
                     "neuron", "Export", "session"):
            assert any(what in label for label in labels), what
        assert all(plot._test is not None for plot in app.query(LossPlot))
        # the decision boundary, computed in a worker for the visible size
        await pilot.press("6")
        pane = app.query_one("#boundary")
        await wait_until(pilot, lambda: pane.computed > 0 and not pane._computing, what="the grid")
        view = app.query_one("#boundary-view")
        assert view.grid is not None and view.grid.kind == "class"
        assert view.grid.values.shape == (view.size.height, view.size.width)
        assert view.train_points and view.test_points
        # the confusion matrix of the test split
        await pilot.press("C")
        dlg = await modal(pilot, ReportModal)
        assert dlg.dialog_id == "confusion-dialog"
        assert "accuracy" in dlg.title_text
        await pilot.press("escape")
        await pilot.pause()
        # optimizer state tensors on the Tensors tab
        await pilot.press("2")
        await pilot.pause()
        lst = app.query_one("#tensor-list")
        keys = [lst.get_option_at_index(i).id for i in range(lst.option_count)]
        assert any(k and k.startswith("opt:0.weight: exp_avg") for k in keys), keys


async def test_function_curve_for_one_input() -> None:
    app = PlaygroundApp(preset("curve"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("6")
        pane = app.query_one("#boundary")
        await wait_until(pilot, lambda: pane.computed > 0 and not pane._computing, what="the curve")
        assert app.query_one("#boundary-curve").display
        assert not app.query_one("#boundary-view").display


async def test_runs_compared_gradcheck_and_neuron() -> None:
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 5)
        app.session.set_optimizer(app.session.training.optimizer.__class__("SGD", {"lr": 0.1}))
        await train_steps(pilot, 5)
        assert len(app.session.runs.runs) == 2
        await pilot.press("c")
        dlg = await modal(pilot, RunsModal)
        assert sorted(dlg.selected) == [r.id for r in app.session.runs.runs]
        draws = dlg.draws
        await pilot.press("l", "plus")
        assert dlg.log_scale and dlg.smoothing == pytest.approx(0.7)
        assert dlg.draws >= draws + 2
        lst = dlg.query_one(SelectionList)
        assert lst.has_focus
        await pilot.press("space")  # deselect the highlighted run
        await pilot.pause()
        assert len(dlg.selected) == 1
        await pilot.press("escape")
        await pilot.pause()
        # numerical gradient check in a worker, results in a modal
        await pilot.press("X")
        dlg = await modal(pilot, ReportModal)
        assert dlg.dialog_id == "gradcheck-dialog" and "agree" in dlg.title_text
        assert "0.weight" in dlg.body.plain and "max abs error" in dlg.body.plain
        await pilot.press("escape")
        await pilot.pause()
        # a neuron in numbers: the highlighted Linear layer (layer 0), unit 1
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("N")
        ask = await modal(pilot, TextEditModal)
        ask.query_one(Input).value = "1"
        await pilot.press("enter")
        dlg = await modal(pilot, ReportModal)
        assert dlg.dialog_id == "neuron-dialog"
        assert "unit 1" in dlg.title_text and dlg.body.plain.strip()


async def test_schedule_and_stop_conditions() -> None:
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("3")
        await pilot.pause()
        app.query_one("#sched-type", Select).value = "StepLR"
        await pilot.pause()
        await pilot.pause()
        form = app.query_one("#sched-args")
        form._fields["step_size"].value = "5"
        form._fields["gamma"].value = "0.5"
        await pilot.pause()
        sched = app.session.training.scheduler
        assert sched is not None and sched.type == "StepLR" and sched.args == {"step_size": 5, "gamma": 0.5}
        stop = app.query_one("#stop-args")
        stop._fields["target_accuracy"].value = "0.5"
        await pilot.pause()
        assert app.session.training.target_accuracy == 0.5
        await train_steps(pilot, 50)
        assert app.last_finished.reason == "target"
        assert app.session.step < 50
        from tui_nn.engine.training.schedules import current_lr

        app.query_one("#sched-type", Select).value = "none"
        await pilot.pause()
        await pilot.pause()
        assert app.session.training.scheduler is None
        assert current_lr(app.session) == [0.05]


async def test_sessions_save_open_and_autosave(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUI_NN_AUTOSAVE", "on")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path / "auto"))
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 7)
        auto = tmp_path / "auto" / "boundary.tuinn"
        await wait_until(pilot, lambda: auto.exists() and "autosaved" in app.query_one("#status").text.plain,
                         what="the autosave")
        # ctrl+s offers a preset or a session
        await pilot.press("ctrl+s")
        dlg = await modal(pilot, SaveModal)
        dlg.query_one("#save-format", Select).value = "session"
        await pilot.pause()
        assert dlg.query_one("#save-path", Input).value.endswith(".tuinn")
        target = tmp_path / "mine.tuinn"
        dlg.query_one("#save-path", Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot)
        assert target.exists()
        weight = app.session.get_param("0.weight").detach().clone()
        await train_steps(pilot, 3)
        assert app.session.step == 10
        # open it again (the open dialog takes a .tuinn path): the state at step 7
        app.open_preset_path(str(target))
        await settle(pilot)
        await wait_until(pilot, lambda: app.session.step == 7, what="the session to open")
        assert app.session.get_param("0.weight").detach().equal(weight)
        assert app.session_path == str(target)


async def test_export_script_csv_and_screenshot(tmp_path: Path) -> None:
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 3)
        for kind, name in (("script", "run.py"), ("csv", "loss.csv"), ("svg", "screen.svg")):
            await pilot.press("E")
            dlg = await modal(pilot, ExportModal)
            dlg.query_one("#export-kind", Select).value = kind
            await pilot.pause()
            dlg.query_one("#export-path", Input).value = str(tmp_path / name)
            await pilot.press("ctrl+s")
            await settle(pilot)
            await wait_until(pilot, lambda: (tmp_path / name).exists(), what=name)
        assert "step" in (tmp_path / "loss.csv").read_text(encoding="utf-8").splitlines()[0]
        assert "import torch" in (tmp_path / "run.py").read_text(encoding="utf-8")
        assert (tmp_path / "screen.svg").read_text(encoding="utf-8").startswith("<svg")


async def test_autosave_during_a_run_is_a_consistent_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long run is autosaved between two slices: the file holds exactly the weights of the step it names."""
    import tui_nn.engine.files.session_file as sessionio
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.files.session_file import load_session
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import train
    from tui_nn.ui import autosave

    monkeypatch.setenv("TUI_NN_AUTOSAVE", "on")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path / "auto"))
    monkeypatch.setattr(autosave, "AUTOSAVE_INTERVAL", 0.3)
    monkeypatch.setattr(sessionio, "MIN_AUTOSAVE_INTERVAL", 0.1)
    app = PlaygroundApp(preset("boundary"), clock=False)
    auto = tmp_path / "auto" / "boundary.tuinn"
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.train(10**7)
        await wait_until(pilot, lambda: auto.exists() and app.autosaver.current is not None
                         and (app.autosaver.current.last_step or 0) > 0 and app.running,
                         what="an autosave during the run")
        await pilot.press("s")
        await settle(pilot)
        assert app.last_finished.reason == "stopped"
        assert app.last_finished.run_steps == app.session.step  # one run for the UI, whatever the slices
    saved = load_session(auto)
    assert 0 < saved.step
    twin = Session(load_preset(preset("boundary")))
    train(twin, saved.step)
    for (name, p), q in zip(saved.model.named_parameters(), twin.model.parameters()):
        assert p.detach().equal(q.detach()), name


async def test_quit_autosaves_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_nn.engine.files.session_file import load_session

    monkeypatch.setenv("TUI_NN_AUTOSAVE", "on")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path / "auto"))
    auto = tmp_path / "auto" / "boundary.tuinn"
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("q")  # nothing done yet: nothing saved
    assert not auto.exists() and app.saved_on_quit is None
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 3)
        await wait_until(pilot, lambda: auto.exists(), what="the autosave after the run")
        first = auto.stat().st_mtime_ns
        await train_steps(pilot, 2)  # within the interval: not autosaved after this run
        assert auto.stat().st_mtime_ns == first
        await pilot.press("q")
    assert app.saved_on_quit == str(auto) and load_session(auto).step == 5


async def test_a_session_file_opens_from_the_command_line(tmp_path: Path) -> None:
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.files.session_file import save_session
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import train

    s = Session(load_preset(preset("boundary")))
    train(s, 4)
    path = save_session(s, tmp_path / "mine.tuinn")
    app = PlaygroundApp(str(path), clock=False)  # as `tui-nn mine.tuinn` does
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert app.session.step == 4 and app.session_path == str(path)
        assert app.session.get_param("0.weight").detach().equal(s.get_param("0.weight").detach())
        assert "step 4" in app.query_one("#status").text.plain


async def test_runs_of_different_presets_are_compared(tmp_path: Path) -> None:
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        await train_steps(pilot, 3)
        first = app.session.preset.name
        other = tmp_path / "other.toml"
        other.write_text(Path(preset("boundary")).read_text().replace("[preset]\n", "[preset]\n", 1)
                         .replace('name = "', 'name = "Other ', 1))
        app.open_preset_path(str(other))
        await settle(pilot)
        await wait_until(pilot, lambda: app.session.preset.name.startswith("Other"), what="the other preset")
        await train_steps(pilot, 2)
        runs = list(app.session.runs)
        assert len(runs) == 2 and runs[0].settings["preset"] == first and runs[1].settings["preset"].startswith("Other")
        assert first[:20] in runs[0].label
        await pilot.press("c")
        await modal(pilot, RunsModal)


async def test_exported_script_reproduces_the_apps_history_after_training(tmp_path: Path) -> None:
    """Exported after 12 steps (with a weight edited before the first one): the script starts from the
    weights the history began from and prints the app's 12 losses, then goes on."""
    import re
    import subprocess
    import sys

    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert app.set_weight("0.weight", "0.25", (0, 0)) is None
        await train_steps(pilot, 12)
        losses = app.session.history.series()[1].tolist()
        assert len(losses) == 12
        await pilot.press("E")
        dlg = await modal(pilot, ExportModal)
        dlg.query_one("#export-path", Input).value = str(tmp_path / "run.py")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await wait_until(pilot, lambda: (tmp_path / "run.py").exists(), what="the script")
    out = subprocess.run([sys.executable, "-I", str(tmp_path / "run.py")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", out.stdout, re.M)]
    assert printed[:12] == losses
