"""Pilot tests for the widgets and dialogs: forms, the status line, layouts at 80x24 and 120x40, the loss
plot's axis labels, the paste-all editor and the preset picker (App.run_test, keyboard only)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from rich.console import Console
from textual.app import App
from textual.widgets import Input, OptionList, Select, Static, TextArea

from tui_nn.ui.app import PlaygroundApp
from tui_nn.ui.screens.dialogs import (
    GeneratorModal,
    InitModal,
    SaveModal,
    TextEditModal,
)
from tui_nn.ui.screens.layer_form import LayerFormScreen
from tui_nn.ui.screens.pickers import PresetPicker
from tui_nn.ui.widgets.controls import TrainControls
from tui_nn.ui.widgets.plot import LossPlot
from tui_nn.ui.widgets.status import BAR_MIN, StatusBar

from .helpers import loaded, preset, settle, wait_until


def field(app: Any, form_id: str, name: str) -> Any:
    return next(w for w in app.query_one(f"#{form_id}").query("Input, Select") if getattr(w, "arg_name", "") == name)


async def choose_in_select(pilot: Any, select: Select, label: str) -> None:
    """Open the focused Select with enter and move to `label` with the arrow keys, then enter."""
    assert pilot.app.focused is select
    await pilot.press("enter")
    await pilot.pause()
    overlay = select.query_one("SelectOverlay")
    labels = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
    target = labels.index(label)
    current = overlay.highlighted or 0
    await pilot.press(*(["down"] * (target - current) if target >= current else ["up"] * (current - target)))
    await pilot.press("enter")
    await pilot.pause()


def screen_lines(app: Any) -> list[str]:
    """What the terminal shows of the top screen, as plain text (one string per row)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


# -- 1. a true/false field can be set to false -------------------------------------------------------------


async def test_bool_field_can_be_set_to_false_in_the_layer_form() -> None:
    app = PlaygroundApp(preset("tiny"))  # layer 0: Linear(3, 3) with bias: 12 parameters
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert app.session.report.layers[0].params == 12
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        await pilot.press("tab", "tab")  # in_features -> out_features -> bias
        bias = form.query_one("#layer-args").query_one(Select)
        await choose_in_select(pilot, bias, "false")
        assert bias.value is False
        assert form.current_args() == {"in_features": 3, "out_features": 3, "bias": False}
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.session.spec.layers[0].args.get("bias") is False
        assert app.session.report.layers[0].params == 9


async def test_bool_field_can_be_set_to_false_on_the_train_tab() -> None:
    app = PlaygroundApp(preset("regress"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("3")
        await pilot.pause()
        assert app.session.training.shuffle is True
        shuffle = field(app, "run-args", "shuffle")
        shuffle.focus()
        await pilot.pause()
        await choose_in_select(pilot, shuffle, "false")
        assert app.session.training.shuffle is False
        await choose_in_select(pilot, shuffle, "true")
        assert app.session.training.shuffle is True


# -- 3. Esc leaves a form field, so the global keys act again ------------------------------------------


async def type_steps(pilot: Any, text: str) -> Any:
    """Once the preset is loaded: the Train tab, the steps field focused and emptied, `text` typed key by key."""
    await loaded(pilot)
    await pilot.press("3")
    await pilot.pause()
    steps = field(pilot.app, "run-args", "steps")
    steps.focus()
    await pilot.pause()
    steps.value = ""
    await pilot.press(*text)
    await pilot.pause()
    return steps


async def test_escape_leaves_a_train_tab_field_and_global_keys_work_again() -> None:
    app = PlaygroundApp(preset("regress"))
    async with app.run_test(size=(80, 24)) as pilot:
        steps = await type_steps(pilot, "50000")
        assert app.session.training.steps == 50000
        # the footer says how to leave the field
        active = app.screen.active_bindings
        assert "escape" in active and active["escape"].binding.description == "Leave field"
        await pilot.press("escape")
        await pilot.pause()
        controls = app.query_one(TrainControls)
        assert app.focused is controls
        assert "escape" not in app.screen.active_bindings or \
            app.screen.active_bindings["escape"].binding.description != "Leave field"
        await pilot.press("r")
        await wait_until(pilot, lambda: app.run_state == "running", what="the run")
        await pilot.press("p")
        await wait_until(pilot, lambda: app.run_state == "paused", what="the pause")
        assert steps.value == "50000"  # neither r nor p was typed into the field
        await pilot.press("s")
        await settle(pilot)
        assert app.run_state == "ready"
        # a Select on the Train tab: Esc leaves it too
        app.query_one("#opt-type", Select).focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is controls


async def test_steps_field_reads_1e3_and_r_refuses_while_a_field_is_invalid() -> None:
    """Typed key by key, '2000000000' applies its valid prefix 200000000 on the way and ends refused (at most
    10^9): the field shows an error while the session holds the last valid value, so r must not run that."""
    app = PlaygroundApp(preset("regress"))
    async with app.run_test(size=(80, 24)) as pilot:
        steps = await type_steps(pilot, "1e3")
        assert app.session.training.steps == 1000  # exponent notation naming an integer
        steps.value = ""
        await pilot.press(*"2000000000")
        await pilot.pause()
        form = app.query_one("#run-args")
        assert "steps" in form.errors
        await pilot.press("escape")
        notes: list[str] = []
        real = app.notify
        app.notify = lambda message, *a, **kw: (notes.append(str(message)), real(message, *a, **kw))[1]
        await pilot.press("r")
        await pilot.pause()
        assert app.run_state != "running" and app.session.step == 0
        assert notes and "steps field" in notes[-1] and "Cannot train" in notes[-1], notes
        await pilot.press("n")  # one step does not read the steps field
        await wait_until(pilot, lambda: app.session.step == 1, what="one step")
        # the Train tab unlocks in the frame after the run ends (the status says ready first)
        await wait_until(pilot, lambda: not app.query_one(TrainControls).disabled, what="the Train tab unlocked")
        steps.value = "30"
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("r")
        await wait_until(pilot, lambda: app.session.step == 31 and app.run_state == "ready", what="the run")


async def test_escape_still_closes_a_dialog_with_a_form() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, LayerFormScreen)
        assert isinstance(app.focused, Input)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LayerFormScreen)
        await pilot.press("i")  # the init dialog: a form inside a dialog
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, InitModal)
        await choose_in_select(pilot, modal.query_one("#init-scheme", Select), "constant")
        await pilot.pause()
        modal.query_one("#init-args").query_one(Input).focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not modal


# -- 2. the status line keeps a progress bar and the device at 80 columns ---------------------------------


class StatusApp(App[None]):
    def compose(self):  # noqa: ANN201
        yield StatusBar(id="status")


LONG_RUN = dict(state="running", step=758, loss=0.0076463, device="cpu", steps_per_s=350.0, eta=142.0, done=220,
                total=50000)


async def test_status_line_keeps_bar_and_device_at_80_columns() -> None:
    app = StatusApp()
    async with app.run_test(size=(80, 5)) as pilot:
        bar = app.query_one(StatusBar)
        cases = [
            LONG_RUN,
            dict(LONG_RUN, accuracy=0.984, test_accuracy=0.97, steps_per_s=1350.0, eta=3742.0),
            dict(LONG_RUN, device="cuda:0", accuracy=0.984, test_accuracy=0.97, note="autosaved lab002-first-linear"),
        ]
        for kw in cases:
            bar.show(**kw)
            await pilot.pause()
            plain = bar.text.plain
            assert bar.text.cell_len <= 80, plain
            assert f"  {kw['device']}  " in plain, plain  # the device, whole
            assert "step 758" in plain and "loss 0.0076463" in plain, plain
            m = re.search(r"  ([ ▏▎▍▌▋▊▉█]+) +0%$", plain.split("  autosaved")[0].rstrip())
            assert m is not None and len(m.group(1)) >= BAR_MIN, plain  # a bar of at least BAR_MIN cells
        # the run fraction goes before the ETA and the speed; at 120 columns everything fits
        bar.show(**cases[1])
        assert "(220/50000)" not in bar.text.plain and "ETA 1:02:22" in bar.text.plain
    app = StatusApp()
    async with app.run_test(size=(120, 5)) as pilot:
        bar = app.query_one(StatusBar)
        bar.show(**cases[1])
        await pilot.pause()
        plain = bar.text.plain
        for part in ("(220/50000)", "acc 98.4%", "test 97.0%", "1,350/s", "ETA 1:02:22", "  cpu  ", "0%"):
            assert part in plain, (part, plain)


async def test_status_line_of_the_app_shows_the_bar_during_a_long_run() -> None:
    app = PlaygroundApp(preset("regress"), clock=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.train(10**6)
        status = app.query_one(StatusBar)
        await wait_until(pilot, lambda: app.running and app.last_progress is not None
                         and "/s" in status.text.plain, what="a progress report")
        plain = status.text.plain
        assert status.progress is not None and "%" in plain and "  cpu  " in plain, plain
        assert status.text.cell_len <= 80
        await pilot.press("s")
        await settle(pilot)


# -- 4. nothing is cut off at 80x24 and 120x40 --------------------------------------------------------------


def needed_lines(widget: Any) -> int:
    """How many rows the widget's text needs at its width (word wrap)."""
    from rich.text import Text

    text = Text(str(widget.render()))
    return len(text.wrap(Console(width=max(widget.content_size.width, 1)), max(widget.content_size.width, 1)))


def assert_fits(widget: Any) -> None:
    assert widget.content_size.height >= needed_lines(widget), (
        f"{widget!r} is {widget.content_size} but needs {needed_lines(widget)} rows for {str(widget.render())!r}")


async def test_data_tab_head_shows_its_key_hints_at_80x24() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("4")
        await pilot.pause()
        await pilot.pause()
        for key in ("inputs", "targets"):
            head = app.query_one(f"#data-{key}-head", Static)
            assert "D data set/CSV" in str(head.render())
            assert_fits(head)
        screen = "\n".join(screen_lines(app))
        assert screen.count("D data set/CSV") == 2, screen
        assert screen.count("e edit cell") == 2, screen


async def test_dialog_hints_wrap_instead_of_being_cut_at_80x24() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        for key, kind, tab in (("i", InitModal, "1"), ("G", GeneratorModal, "4"), ("ctrl+s", SaveModal, "1"),
                               ("v", TextEditModal, "4")):
            await pilot.press(tab)
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, kind), (key, app.screen)
            hint = app.screen.query_one(".dialog-hint", Static)
            assert_fits(hint)
            await pilot.press("escape")
            await pilot.pause()


async def test_layer_form_help_wraps_at_80x24() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, LayerFormScreen)
        docs = list(form.query(".arg-doc").results(Static))
        assert any("last dimension" in str(d.render()) for d in docs)
        for doc in docs:
            assert_fits(doc)


async def test_tensor_slice_indicator_is_visible_at_80x24() -> None:
    app = PlaygroundApp(preset("conv"))  # Conv2d weight: [4, 1, 3, 3]
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        await pilot.pause()
        lst = app.query_one("#tensor-list", OptionList)
        lst.highlighted = lst.get_option_index("param:0.weight")
        await pilot.pause()
        app.query_one("#tensor-view").focus()
        await pilot.press("right_square_bracket")
        await pilot.pause()
        cell = app.query_one("#tensor-cell", Static)
        assert "slice [1, 0, :, :]" in str(cell.render())
        assert_fits(cell)
        screen = "\n".join(screen_lines(app))
        assert "slice [1, 0, :, :] 2/4" in screen and "[ ] previous/next slice" in screen, screen


async def test_wide_layout_keeps_params_column_and_train_help_whole_at_120x40() -> None:
    app = PlaygroundApp("lab001-conv-stride2")  # a bundled preset: Conv2d(3, 1, 3, stride=2, padding=1), a long row
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.pause()
        table = app.query_one("#layer-table")
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
        assert "params" in "\n".join(screen_lines(app))
        await pilot.press("3")
        await pilot.pause()
        await pilot.pause()
        nesterov = next(d for d in app.query("#opt-args .arg-doc").results(Static) if "Nesterov" in str(d.render()))
        for doc in app.query("TrainControls .arg-doc").results(Static):
            if doc.display:
                assert_fits(doc)
        assert_fits(nesterov)


# -- 5. readable loss axis labels -----------------------------------------------------------------------


class PlotApp(App[None]):
    def compose(self):  # noqa: ANN201
        yield LossPlot(id="plot")


def y_labels(plot: LossPlot) -> list[str]:
    console = Console(width=plot.size.width, color_system=None, record=True)
    console.print(plot.render())
    return [m.group(1) for line in console.export_text().splitlines() if (m := re.match(r"^\s*(\S+)┤", line))]


async def test_loss_axis_labels_are_readable_in_log_and_linear_scale() -> None:
    app = PlotApp()
    async with app.run_test(size=(60, 18)) as pilot:
        plot = app.query_one(LossPlot)
        steps = np.arange(1, 31)
        plot.set_series((steps, np.geomspace(0.9, 1e-11, 30)))
        plot.log = True
        plot._draw()
        await pilot.pause()
        labels = y_labels(plot)
        assert len(labels) >= 3, labels
        assert all(len(lab) <= 6 for lab in labels), labels
        assert "1e-9" in labels or "1e-10" in labels or "1e-11" in labels, labels
        assert len(set(labels)) == len(labels)
        assert not any(lab.startswith("0.0000") for lab in labels), labels
        # linear: round numbers with as many decimals as the step needs
        plot.log = False
        plot.set_series((steps, np.linspace(0.1025, 0.1, 30)))
        plot._draw()
        await pilot.pause()
        labels = y_labels(plot)
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
        assert all(len(lab) <= 7 for lab in labels), labels
        values = [float(lab) for lab in labels]
        assert all(0.1 <= v <= 0.1025 for v in values), labels
        plot.set_series((steps, np.linspace(3e-6, 1e-6, 30)))
        plot._draw()
        await pilot.pause()
        labels = y_labels(plot)
        assert labels and all("e-6" in lab for lab in labels), labels


def segments(renderable: Any, width: int) -> list[tuple[str, Any]]:
    console = Console(width=width, color_system="truecolor", file=open("/dev/null", "w"))  # noqa: SIM115
    return [(seg.text, seg.style) for seg in console.render(renderable)]


async def test_plot_lines_built_from_the_matrix_equal_textual_plotexts_own_render() -> None:
    """LossPlot turns plotext's character matrix into styled runs directly, and the screen's lines into Strips
    (issue 6: the ANSI round trip and Rich's text wrapping were most of a redraw). What the screen shows must be
    exactly what textual-plotext's render (Text.from_ansi(figure.build())) gives through Textual's own path."""
    from rich.text import Text
    from textual.visual import Visual, visualize
    from textual_plotext import PlotextPlot

    app = PlotApp()
    async with app.run_test(size=(70, 20)) as pilot:
        plot = app.query_one(LossPlot)
        steps = np.arange(1, 401)
        cases = [(None, None, False),
                 ((steps, np.exp(-steps / 80.0) + 0.05), None, False),
                 ((steps, np.exp(-steps / 80.0) + 0.05), None, True),
                 ((steps, np.exp(-steps / 80.0) + 0.05), (steps[::40], np.exp(-steps[::40] / 60.0) + 0.1), True)]
        width, height = plot.size.width, plot.size.height
        for series, test, log in cases:
            plot.set_series(series)
            plot.set_test(test)
            plot.log = log
            await pilot.pause()
            plot._draw(refresh=False)  # a fresh figure for each path: plotext's build() log-scales its data in place
            ours = plot.render()
            lines = [plot.render_line(y) for y in range(height)]
            plot._draw(refresh=False)
            theirs = PlotextPlot.render(plot)  # textual-plotext's own render: Text.from_ansi(figure.build())
            assert isinstance(theirs, Text)
            assert ours.plain == theirs.plain
            assert ours.plain.count("\n") == height
            ours_segments = segments(ours, width)
            assert ours_segments == segments(theirs, width)
            if series is not None:  # the curve is drawn in color: the comparison covers styles, not only text
                assert any(st is not None and st.color is not None and "⠀" < text[:1] <= "⣿"
                           for text, st in ours_segments)
            # the screen's lines: Textual's path for a render() result, line by line
            textual_lines = Visual.to_strips(plot, visualize(plot, theirs), width, height, plot.visual_style)
            assert len(lines) == len(textual_lines[:height]) == height
            def look(strip: Any) -> list[tuple[str, Any]]:  # what shows: text and style (Textual's path also tags
                # each cell with its offset for text selection, which a plot does not offer)
                from rich.segment import Segment
                from textual.strip import Strip

                plain = Strip([Segment(seg.text, seg.style.clear_meta_and_links() if seg.style else None)
                               for seg in strip]).simplify()
                return [(seg.text, seg.style) for seg in plain]

            for mine, real in zip(lines, textual_lines, strict=False):
                assert look(mine) == look(real)


# -- 6. paste all replaces the current values ------------------------------------------------------------


async def test_paste_all_replaces_the_current_values() -> None:
    from textual import events

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        await pilot.pause()
        lst = app.query_one("#tensor-list", OptionList)
        lst.highlighted = lst.get_option_index("param:0.weight")
        await pilot.pause()
        app.query_one("#tensor-view").focus()
        await pilot.press("v")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TextEditModal)
        area = modal.query_one(TextArea)
        assert area.text and area.selected_text == area.text  # everything selected on open
        assert "f7: select all" in str(modal.query_one(".dialog-hint", Static).render())
        app.post_message(events.Paste("1 2 3; 4 5 6; 7 8 9"))  # as the terminal sends a paste
        await pilot.pause()
        assert area.text == "1 2 3; 4 5 6; 7 8 9"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is not modal
        assert app.session.get_param("0.weight").tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


# -- 7. the preset picker: filter, names, a scrollable description, markup off ---------------------------


async def test_preset_picker_filters_shows_names_and_scrolls_the_description() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("o")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, PresetPicker)
        lst = picker.query_one("#preset-list", OptionList)
        everything = lst.option_count
        # each option: the file's stem and the preset's name
        first = str(lst.get_option_at_index(0).prompt)
        stem, _path, p = app.presets[0]
        assert stem in first and p.name in first
        # typing filters (names, stems and descriptions)
        await pilot.press(*"optim")
        await pilot.pause()
        by_stem = {stem: p for stem, _path, p in app.presets}
        shown = [str(lst.get_option_at_index(i).id) for i in range(lst.option_count)]
        assert 0 < len(shown) < everything, shown
        for stem in shown:
            p = by_stem[stem]
            assert "optim" in f"{stem} {p.name} {p.description}".lower(), stem
        assert "lab003-optim-sgd" in shown and "lab002-first-linear" not in shown
        await pilot.press("minus", *"adam")  # "optim-adam": one file
        await pilot.pause()
        shown = [str(lst.get_option_at_index(i).prompt) for i in range(lst.option_count)]
        assert len(shown) == 1 and shown[0] == "lab003-optim-adam  Optimizer comparison: Adam", shown
        # the long description scrolls by keyboard
        doc = picker.query_one("#preset-doc-scroll")
        assert doc.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert doc.scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause()
        assert doc.scroll_y == 0
        # up/down move the highlight from the search box; enter opens
        await pilot.press(*["backspace"] * len("-adam"))
        await pilot.pause()
        assert lst.option_count > 1
        await pilot.press("down")
        await pilot.pause()
        assert lst.highlighted == 1
        target = picker._entry()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.session.preset.name == target[2].name, what="the chosen preset")
        await settle(pilot)


async def test_preset_picker_shows_untrusted_names_and_descriptions_literally() -> None:
    from tui_nn.engine.files.preset_read import load_preset

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        path = preset("markup")
        picker = PresetPicker([("markup", path, load_preset(path))] + app.presets[:2])
        app.push_screen(picker)
        await pilot.pause()
        await pilot.pause()
        lst = picker.query_one("#preset-list", OptionList)
        assert "[bold red]not bold[/] $accent" in str(lst.get_option_at_index(0).prompt)
        doc = str(picker.query_one("#preset-doc", Static).render())
        assert "[bold red]not bold[/]" in doc and "[b]stays literal[/b]" in doc
        await pilot.press(*"literal")  # the description is searched too
        await pilot.pause()
        assert lst.option_count == 1
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not picker
