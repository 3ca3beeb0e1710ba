"""Pilot tests: every flow of the playground driven with the keyboard (App.run_test)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from textual.widgets import Input, OptionList, TextArea

from tui_nn.ui.app import PlaygroundApp
from tui_nn.ui.screens.dialogs import ErrorModal, TextEditModal
from tui_nn.ui.screens.layer_form import LayerFormScreen
from tui_nn.ui.screens.pickers import LayerPicker, PresetPicker
from tui_nn.ui.widgets.layers import ErrorPanel, LayerTable
from tui_nn.ui.widgets.plot import LossPlot

from .helpers import loaded, preset, settle, wait_until


def types(app: Any) -> list[str]:
    return [layer.type for layer in app.session.spec.layers]


async def type_text(pilot: Any, text: str) -> None:
    await pilot.press(*[{" ": "space", ",": "comma", ".": "full_stop", "-": "minus", ";": "semicolon"}.get(c, c)
                        for c in text])


async def replace_input(pilot: Any, text: str) -> None:
    """Clear the focused Input and type `text`."""
    focused = pilot.app.focused
    assert isinstance(focused, Input), focused
    focused.value = ""
    await type_text(pilot, text)


# -- layers ----------------------------------------------------------------------------------


async def test_build_a_network_with_keys_only() -> None:
    app = PlaygroundApp(None)  # the scratch network: Linear(4, 8), ReLU, Linear(8, 1)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert types(app) == ["Linear", "ReLU", "Linear"]
        # remove everything
        for _ in range(3):
            await pilot.press("x")
            await settle(pilot)
        assert types(app) == []
        # add a Linear layer: picker, search, enter, then the generated form
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, LayerPicker)
        await type_text(pilot, "linear")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LayerFormScreen)
        # in_features is prefilled from the shape where the layer goes (4 features); out_features = 2
        await pilot.press("tab")
        await replace_input(pilot, "2")
        await pilot.press("enter")
        await settle(pilot)
        assert types(app) == ["Linear"]
        assert app.session.spec.layers[0].args == {"in_features": 4, "out_features": 2}
        # then a ReLU (no arguments: added at once) and a Softmax after it
        await pilot.press("a")
        await type_text(pilot, "relu")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("a")
        await type_text(pilot, "softmax")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LayerFormScreen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert types(app) == ["Linear", "ReLU", "Softmax"]
        rows = {r.path: r for r in app.session.report.layers}
        assert rows["0"].output_shape == (16, 2)
        assert rows["2"].output_shape == (16, 2)
        assert app.session.report.error is None
        # move the ReLU down, duplicate it, undo twice, redo once
        table = app.query_one(LayerTable)
        table.move_cursor(row=1)
        await pilot.press("J")
        await settle(pilot)
        assert types(app) == ["Linear", "Softmax", "ReLU"]
        await pilot.press("d")
        await settle(pilot)
        assert types(app) == ["Linear", "Softmax", "ReLU", "ReLU"]
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert types(app) == ["Linear", "ReLU", "Softmax"]
        await pilot.press("U")
        await settle(pilot)
        assert types(app) == ["Linear", "Softmax", "ReLU"]


async def test_form_validates_as_you_type() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        await replace_input(pilot, "x3")
        await pilot.pause()
        preview = str(form.query_one("#layer-preview").render())
        assert "is not an integer" in preview
        await pilot.press("enter")  # refused: the form stays
        await pilot.pause()
        assert app.screen is form
        await replace_input(pilot, "0")
        await pilot.pause()
        assert "must be >= 1" in str(form.query_one("#layer-preview").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.session.spec.layers[0].args["in_features"] == 3


async def test_shape_error_marks_the_layer_and_f_fixes_it() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await pilot.pause()
        await replace_input(pilot, "5")
        await pilot.pause()
        assert "mat1 and mat2 shapes cannot be multiplied" in str(app.screen.query_one("#layer-preview").render())
        await pilot.press("enter")
        await settle(pilot)
        err = app.session.report.error
        assert err is not None and err.layer == 0
        panel = str(app.query_one(ErrorPanel).render())
        assert "layer 0 (Linear)" in panel
        assert "mat1 and mat2 shapes cannot be multiplied (1x3 and 5x3)" in panel
        assert "hint:" in panel and "set in_features = 3" in panel
        table = app.query_one(LayerTable)
        assert str(table.get_row_at(0)[0]).startswith("✗")
        # training is refused with the reason
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        await pilot.press("escape")
        await pilot.press("f")
        await settle(pilot)
        assert app.session.report.error is None
        assert app.session.spec.layers[0].args["in_features"] == 3
        assert not app.query_one(ErrorPanel).display


async def test_conv_missing_flatten_fix_inserts_a_layer() -> None:
    app = PlaygroundApp(preset("conv"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        err = app.session.report.error
        assert err is not None and err.layer == 3
        assert "insert a Flatten" in str(app.query_one(ErrorPanel).render())
        await pilot.press("f")
        await settle(pilot)
        assert types(app) == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
        assert app.session.report.error is None
        assert app.session.report.output_shape == (2, 3)


async def test_edits_are_refused_while_training() -> None:
    app = PlaygroundApp(preset("endless"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.session.step > 0, what="training to start")
        before = types(app)
        await pilot.press("x")
        await pilot.pause()
        assert types(app) == before
        assert any("training is running" in n.message for n in app._notifications)
        await pilot.press("s")
        await settle(pilot)
        assert app.run_state == "ready"


# -- tensors and weights ----------------------------------------------------------------------


async def _open_tensor(pilot: Any, key: str) -> Any:
    app = pilot.app
    await pilot.press("2")
    await pilot.pause()
    lst = app.query_one("#tensor-list", OptionList)
    lst.highlighted = lst.get_option_index(key)
    await pilot.pause()
    view = app.query_one("#tensor-view")
    view.focus()
    await pilot.pause()
    return view


async def test_edit_a_weight_changes_the_forward_output_by_the_expected_amount() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        before = app.session.trace()[1][1].clone()  # output of layer 0 (Linear)
        view = await _open_tensor(pilot, "param:0.weight")
        assert view.entry.key == "param:0.weight"
        await pilot.press("right")  # cell [0, 1] = 0.3, multiplied by input 0.2
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, TextEditModal)
        await replace_input(pilot, "1.3")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, TextEditModal)
        after = app.session.trace()[1][1]
        assert torch.allclose(after - before, torch.tensor([[0.2, 0.0, 0.0]]), atol=1e-6)
        # the tensors list follows: the output of layer 0 shows the new value
        lst = app.query_one("#tensor-list", OptionList)
        lst.highlighted = lst.get_option_index("trace:0")
        await pilot.pause()
        assert app.query_one("#tensor-view").cursor_value() == pytest.approx(float(after[0, 0]), abs=1e-6)


@pytest.mark.parametrize("text, reason", [
    ("1 2 3; 4 5 6", "expected shape [3, 3]; got [2, 3]"),
    ("1 2 3\n4 5 6\n7 8 x", "'x' at line 3, column 5 is not a number"),
    ("[[1, 2, 3], [4, 5, 6], [7, 8, nan]]", "NaN or Inf is not allowed"),
])
async def test_a_bad_pasted_matrix_is_refused_inline(text: str, reason: str) -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        before = app.session.get_param("0.weight").detach().clone()
        await _open_tensor(pilot, "param:0.weight")
        await pilot.press("v")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TextEditModal)
        modal.query_one(TextArea).text = text
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal
        assert reason in str(modal.query_one("#edit-error").render())
        assert torch.equal(app.session.get_param("0.weight").detach(), before)
        # a good matrix, pasted as PyTorch prints it, is taken
        modal.query_one(TextArea).text = "tensor([[1., 0., 0.],\n        [0., 1., 0.],\n        [0., 0., 1.]])"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is not modal
        assert torch.equal(app.session.get_param("0.weight").detach(), torch.eye(3))


async def test_every_tensor_can_be_read() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("g")  # one backward pass: gradients appear
        await settle(pilot)
        await _open_tensor(pilot, "input")
        pane = app.query_one("#tensors")
        keys = list(pane.entries)
        for key in ("input", "targets", "param:0.weight", "param:0.bias", "trace:0", "trace:1", "trace:2", "output",
                    "grad:0.weight", "grad:0.bias"):
            assert key in keys, key
        for key in keys:
            pane.select(key)
            await pilot.pause()
            info = str(app.query_one("#tensor-info").render())
            assert "float32" in info or "int64" in info, (key, info)
        pane.select("output")
        assert app.query_one("#tensor-view").cursor_value() == pytest.approx(
            float(app.session.forward()[0, 0]), abs=1e-6)


async def test_freeze_and_init_from_the_keyboard() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("z")
        await pilot.pause()
        assert app.session.spec.layers[0].frozen
        assert app.session.report.trainable_params == 0
        await pilot.press("z")
        await pilot.pause()
        assert not app.session.spec.layers[0].frozen
        await pilot.press("i")
        await pilot.pause()
        from textual.widgets import Select

        app.screen.query_one("#init-scheme", Select).value = "zeros"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert float(app.session.get_param("0.weight").detach().abs().sum()) == 0.0


# -- training ---------------------------------------------------------------------------------


async def test_run_n_steps_updates_counter_plot_and_weights() -> None:
    app = PlaygroundApp(preset("regress"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        w0 = app.session.get_param("0.weight").detach().clone()
        await pilot.press("r")  # the preset's 20 steps
        await settle(pilot)
        assert app.session.step == 20
        assert "step 20" in app.query_one("#status").text.plain
        assert len(app.session.history) == 20
        await pilot.press("3")
        await pilot.pause(0.3)
        plot = app.query_one("#plot", LossPlot)
        assert plot.points == 20
        steps, values = plot._series
        assert list(steps) == list(range(1, 21))
        assert values[-1] < values[0]
        assert not torch.equal(app.session.get_param("0.weight").detach(), w0)
        # one more step with n, log scale with l
        await pilot.press("n")
        await settle(pilot)
        assert app.session.step == 21
        await pilot.press("l")
        await pilot.pause()
        assert plot.log


async def test_stop_and_pause_a_run_mid_way() -> None:
    app = PlaygroundApp(preset("endless"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.session.step > 5, what="training to start")
        assert app.running
        await pilot.press("p")
        await wait_until(pilot, lambda: app.run_state == "paused", what="the pause")
        paused_at = app.session.step
        await pilot.pause(0.1)
        assert app.session.step == paused_at  # nothing runs while paused
        assert "paused" in app.query_one("#status").text.plain
        await pilot.press("p")
        await wait_until(pilot, lambda: app.session.step > paused_at + 5, what="the resumed run")
        await pilot.press("s")
        await settle(pilot)
        assert app.run_state == "ready"
        stopped_at = app.session.step
        assert 0 < stopped_at < 100_000_000
        assert len(app.session.history) == stopped_at
        # the weights are those of the last completed step and still finite
        assert all(bool(torch.isfinite(p).all()) for _, p in app.session.named_parameters())


async def test_a_failing_step_keeps_the_app_alive() -> None:
    app = PlaygroundApp(preset("bce_fail"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        w0 = app.session.get_param("0.weight").detach().clone()
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")), what="the error dialog")
        body = str(app.screen.query_one("#error-body").render())
        assert "between 0 and 1" in body and "Sigmoid" in body
        await pilot.press("escape")
        await pilot.pause()
        assert app.run_state == "ready"
        assert app.session.step == 0
        assert torch.equal(app.session.get_param("0.weight").detach(), w0)
        # the app still works: add a Sigmoid and train
        await pilot.press("a")
        await type_text(pilot, "sigmoid")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert app.session.step == 5


async def test_training_settings_apply_to_the_session() -> None:
    app = PlaygroundApp(preset("regress"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("3")
        await pilot.pause()
        from textual.widgets import Select

        app.query_one("#opt-type", Select).value = "Adam"
        await pilot.pause()
        await pilot.pause()
        assert app.session.training.optimizer.type == "Adam"
        lr = [w for w in app.query_one("#opt-args").query(Input) if getattr(w, "arg_name", "") == "lr"][0]
        lr.focus()
        await pilot.pause()
        await replace_input(pilot, "0.5")
        await pilot.pause()
        assert app.session.training.optimizer.args["lr"] == 0.5
        lr.value = "-1"
        await pilot.pause()
        assert app.session.training.optimizer.args["lr"] == 0.5  # refused, the last valid value stays
        steps = [w for w in app.query_one("#run-args").query(Input) if getattr(w, "arg_name", "") == "steps"][0]
        steps.focus()
        await pilot.pause()
        await replace_input(pilot, "7")
        await pilot.pause()
        assert app.session.training.steps == 7
        app.query_one(LayerTable).focus()
        await pilot.pause()
        await pilot.press("r")  # refused: the lr field still says -1 (the session holds 0.5)
        await settle(pilot)
        assert app.session.step == 0 and app.run_state == "ready"
        lr.value = "0.5"
        await pilot.pause()
        app.query_one(LayerTable).focus()
        await pilot.pause()
        await pilot.press("r")
        await settle(pilot)
        assert app.session.step == 7


# -- presets and data ------------------------------------------------------------------------


async def test_open_a_preset_by_path() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        await pilot.press("slash")
        app.screen.query_one("#preset-path", Input).value = preset("regress")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.preset.name == "Small regression", what="the new preset")
        await settle(pilot)
        assert types(app) == ["Linear", "Tanh", "Linear"]
        assert "Sixteen random samples" in str(app.query_one("#instructions-text").render())
        # a file that does not exist: the error is shown and the current session stays
        await pilot.press("o")
        await pilot.press("slash")
        app.screen.query_one("#preset-path", Input).value = "/nonexistent/nope.toml"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")), what="the error")
        await pilot.press("escape")
        await settle(pilot)
        assert app.session.preset.name == "Small regression"


async def test_untrusted_text_is_shown_literally() -> None:
    app = PlaygroundApp(preset("markup"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("5")
        await pilot.pause()
        info = str(app.query_one("#info-text").render())
        assert "[bold red]not bold[/] $accent" in info
        assert "[link=https://example.com]click[/link] [b]stays literal[/b]" in info
        instr = str(app.query_one("#instructions-text").render())
        assert "[b]stays literal[/b]" in instr
        assert "[bold red]not bold[/]" in app.query_one("#status").text.plain


async def test_edit_the_data_and_switch_to_a_generator() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("4")
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TextEditModal)
        modal.query_one(TextArea).text = "0.5 0.5 0.5; 1 2"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "rows of different lengths" in str(modal.query_one("#edit-error").render())
        modal.query_one(TextArea).text = "1 2 3; 4 5 6"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is not modal
        assert app.session.inputs.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        # two samples and one target: the mismatch is reported as a data problem
        assert app.session.data_error is not None
        # targets: two class indices
        app.query_one("#data-targets-view").focus()
        await pilot.press("v")
        await pilot.pause()
        app.screen.query_one(TextArea).text = "0 2"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.session.targets.tolist() == [0, 2]
        assert app.session.trainable
        # the inputs from a generator
        app.query_one("#data-inputs-view").focus()
        await pilot.press("G")
        await pilot.pause()
        app.screen.query_one("#gen-shape", Input).value = "2, 3"
        app.screen.query_one("#gen-shape", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert tuple(app.session.inputs.shape) == (2, 3)
        assert app.session.preset.data.inputs.kind == "randn"


async def test_palette_and_help() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        from tui_nn.ui.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "Add layer: Tanh")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert "Tanh" in types(app)


async def test_large_tensor_draws_only_the_visible_window() -> None:
    from tui_nn.ui.widgets.tensor_entries import TensorEntry

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        view = await _open_tensor(pilot, "param:0.weight")
        big = torch.arange(2000 * 3000, dtype=torch.float32).reshape(2000, 3000)
        widgets_before = len(list(app.query("*")))
        view.show(TensorEntry("big", "big", big, kind="trace"))
        await pilot.pause()
        assert len(list(app.query("*"))) == widgets_before  # one widget, whatever the size
        await pilot.press("end")
        await pilot.pause()
        assert view.cursor_index() == (1999, 2999)
        assert view.cursor_value() == float(big[1999, 2999])
        line = view.render_line(1)
        assert line.cell_length == view.size.width
        assert "2999" in app.query_one("#tensor-cell").render().plain if hasattr(
            app.query_one("#tensor-cell").render(), "plain") else True


async def test_a_diverging_run_is_stopped_and_the_last_good_weights_kept() -> None:
    app = PlaygroundApp(preset("diverge"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")), what="the error dialog")
        body = str(app.screen.query_one("#error-body").render())
        assert "the loss became" in body and "lower the learning rate" in body
        await pilot.press("escape")
        await settle(pilot)
        assert app.last_finished.reason == "nonfinite"
        assert app.session.step == app.last_finished.restored_step
        assert all(bool(torch.isfinite(p).all()) for _, p in app.session.named_parameters())
        assert app.run_state == "ready"


async def test_save_the_current_state_as_a_preset(tmp_path: Any) -> None:
    from tui_nn.engine.files.preset_read import load_preset

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.set_weight("0.bias", "0.5 -0.5 0.25")
        await pilot.press("ctrl+s")
        await pilot.pause()
        target = tmp_path / "mine.toml"
        app.screen.query_one("#save-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        saved = load_preset(target)
        assert saved.model.layers[0].params["bias"] == [0.5, -0.5, 0.25]
        assert saved.name == "Hand-set 3-3 network"
        # a folder is refused inline
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#save-path", Input).value = str(tmp_path)
        await pilot.press("enter")
        await pilot.pause()
        assert "folder" in str(app.screen.query_one("#save-error").render())


async def test_quit_while_training_stops_the_run() -> None:
    app = PlaygroundApp(preset("endless"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.session.step > 0, what="training to start")
        await pilot.press("q")
    assert app.return_code == 0


async def test_moving_a_layer_moves_its_weights() -> None:
    app = PlaygroundApp(preset("regress"))  # Linear(4, 8), Tanh, Linear(8, 1)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        w = app.session.get_param("0.weight").detach().clone()
        await pilot.press("J")  # Linear(4, 8) goes below the Tanh
        await settle(pilot)
        assert types(app) == ["Tanh", "Linear", "Linear"]
        assert torch.equal(app.session.get_param("1.weight").detach(), w)
        await pilot.press("d")
        await settle(pilot)
        assert torch.equal(app.session.get_param("2.weight").detach(), w)
        assert app.session.report.error is not None  # Linear(4, 8) after Linear(4, 8): a shape error


async def test_fix_inside_a_residual_block_and_add_a_layer_there() -> None:
    app = PlaygroundApp(preset("residual"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        err = app.session.report.error
        assert err is not None and err.path == "1.0"
        table = app.query_one(LayerTable)
        assert table.paths == ["0", "1", "1.0", "1.1"]
        assert table.selected_path == "1.0"  # the error row is highlighted
        await pilot.press("f")
        await settle(pilot)
        assert app.session.report.error is None
        assert app.session.spec.layers[1].layers[0].args["in_features"] == 4
        assert app.session.spec.layers[0].args["in_features"] == 4
        # add a ReLU inside the block, after its Linear
        table.move_cursor(row=table.paths.index("1.0"))
        await pilot.press("a")
        await type_text(pilot, "relu")
        await pilot.press("enter")
        await settle(pilot)
        assert [x.type for x in app.session.spec.layers[1].layers] == ["Linear", "ReLU", "Tanh"]
        assert app.session.report.output_shape == (2, 4)


async def test_the_preset_is_on_screen_before_torch_has_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start-up (docs/performance.md): the first load shows the preset's layers, shapes and parameter counts by
    arithmetic before torch is imported; tabs and the table act; what needs the model says it is loading.
    Here the load stops after the preview, as if torch were still importing."""
    from tui_nn.ui.app import PREVIEW_NOTE
    from tui_nn.ui.widgets.status import StatusBar

    monkeypatch.setattr(PlaygroundApp, "_load_thread", lambda self, path, initial: self._preview_preset(path))
    app = PlaygroundApp("lab004-hand-set-network")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.built, what="the panes, after the first frame")
        table = app.query_one(LayerTable)
        await wait_until(pilot, lambda: table.row_count == 6, what="the preview")
        rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert "Linear(3, 3) ✎" in rows[0] and "[1,3] → [1,3]" in rows[0] and rows[0].endswith("12")
        assert "Softmax(dim=1)" in rows[5]
        assert PREVIEW_NOTE in app.query_one(StatusBar).text.plain
        assert "preview" in str(app.query_one("#totals").render())
        await pilot.press("down", "down")
        assert table.cursor_row == 2
        await pilot.press("3")
        assert app.query_one("#tabs").active == "tab-train"
        await pilot.press("1", "r")
        await pilot.pause()
        assert any("still loading" in n.message for n in app._notifications)
        assert app.session is None and app.run_state == "loading"


async def test_start_up_holds_the_collector_then_freezes_what_it_loaded() -> None:
    """run_app disables the garbage collector for start-up; the first load, once done (session, warm-up, trainer
    process), freezes what is alive (Textual, torch, the session: never scanned again) and re-enables it."""
    import gc

    gc.disable()
    app = PlaygroundApp("lab004-hand-set-network")
    app.gc_held = True  # what run_app does
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot)
            await wait_until(pilot, gc.isenabled, what="the first load to resume the collector")
            assert gc.get_freeze_count() > 10_000 and not app.gc_held
    finally:
        gc.unfreeze()
        gc.enable()


async def test_a_preset_too_large_for_memory_names_its_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal at build time (the memory budget, a device) is not a preset error and does not carry the file's
    name itself: the dialog's title does; the scratch network opens instead."""
    big = tmp_path / "huge-linear.toml"
    big.write_text('[model]\ninput_shape = [1, 100000]\n[[model.layers]]\ntype = "Linear"\n'
                   'in_features = 100000\nout_features = 100000\n')
    monkeypatch.setenv("TUI_NN_MEMORY_BUDGET", "1e8")
    app = PlaygroundApp(str(big))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog, composed")
        assert app.screen.title_text == f"Cannot build the preset {big}"
        assert "memory" in app.screen.query_one("#error-body").render().plain.lower()
        await pilot.press("escape")
        await loaded(pilot)
        from tui_nn.engine.model import edits

        assert app.session.spec.layers == edits.scratch_preset().model.layers  # the scratch network opened instead


async def test_an_unforeseen_failure_of_the_first_load_names_the_file_and_opens_the_scratch_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an EngineError (a bug, a broken install): the dialog names the file, and the app does not stay on
    "loading…": the scratch network is opened."""
    import tui_nn.engine.files.preset_read as preset_module

    real = preset_module.load_preset

    def broken(path: Any, *, checked: bool = True) -> Any:
        if checked and path is not None and str(path).endswith("tiny.toml"):
            raise RuntimeError("something no one foresaw")
        return real(path, checked=checked)

    monkeypatch.setattr(preset_module, "load_preset", broken)
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        assert "tiny.toml" in app.screen.title_text
        assert "something no one foresaw" in str(app.screen.query_one("#error-body").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.run_state == "ready" and app.session is not None, what="the scratch network")
        assert app.session.preset.name != "tiny"


async def test_a_new_concat_or_sequential_is_previewed_and_added_holding_an_identity() -> None:
    """The add form previews a new block as it will be inserted (holding an Identity, as a Residual is): a new
    Concat's preview shows the shapes, not torch.cat's words for an empty list of tensors."""
    with pytest.raises(Exception) as info, torch.no_grad():
        torch.cat([], 1)
    empty_cat = str(info.value).strip().splitlines()[0]
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        at = str(len(app.session.spec.layers))  # the path the new layer gets, after the last one
        app.add_layer_of_type("Concat", None)
        await pilot.pause()
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        preview = str(form.query_one("#layer-preview").render())
        assert empty_cat not in preview and "✗" not in preview
        assert preview.startswith(f"layer {at}: ")
        await pilot.press("enter")
        await settle(pilot)
        added = app.session.spec.layers[-1]
        assert added.type == "Concat" and [x.type for x in added.layers] == ["Identity"]
        assert app.session.report.error is None
        app.add_layer_of_type("Sequential", None)  # no arguments: added at once
        await settle(pilot)
        added = app.session.spec.layers[-1]
        assert added.type == "Sequential" and [x.type for x in added.layers] == ["Identity"]
        assert app.session.report.error is None


async def test_the_path_column_fits_a_block_layers_path() -> None:
    """The layer table's "#" column is as wide as the longest path ("3.1.2" in a Concat's branch), so each row
    says which layer it is; a flat network keeps the narrow column."""
    from textual.widgets.data_table import ColumnKey

    from tui_nn.ui.widgets.layers import LayerTable

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        table = app.query_one(LayerTable)
        assert table.columns[ColumnKey("idx")].width == 4
        app.open_preset_path(preset("arch-inception-block"))
        await wait_until(pilot, lambda: "3.1.2" in table.paths, what="the Inception preset's rows")
        longest = max(len(p) for p in table.paths)
        assert table.columns[ColumnKey("idx")].width == 2 + longest
        assert str(table.get_cell("3.1.2", "idx")).strip() == "3.1.2"  # the whole path, not "3."
