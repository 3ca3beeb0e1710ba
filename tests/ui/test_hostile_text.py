"""Pilot tests: text from files (a preset's name, description and lab, a key quoted by an error, a session file's
source and run labels, a CSV header) is shown with its control characters escaped, ESC as the four characters
`\\x1b` (tui_nn.engine.text.printable), wherever the app puts it: the status line, the description and info
panes, the open dialog, error dialogs, notifications, the runs list, the data dialog.

Each test also reads the whole screen as drawn (`export_screenshot`: the text of every cell) and finds no raw
control character in it. The same app in a real terminal, read byte by byte: tests/robustness/test_hostile_display.py.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from rich.text import Span, Text

from tui_nn.engine.text import is_printable
from tui_nn.ui.app import PlaygroundApp
from tui_nn.ui.safe import Shown, cell, safe_text
from tui_nn.ui.safe import Text as SafeText
from tui_nn.ui.screens.dialogs import ErrorModal
from tui_nn.ui.screens.pickers import PresetPicker

from .helpers import loaded, preset, settle, wait_until

TITLE = "\x1b]0;PWNED\x07"  # what the hostile preset's name is: an OSC 0 (the terminal's title)
SHOWN_TITLE = "\\x1b]0;PWNED\\x07"  # ... as the app shows it


def toml_str(text: str) -> str:
    return '"' + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\u{ord(c):04x}" for c in text) + '"'


def assert_screen_clean(app: Any, *visible: str) -> str:
    """The screen as drawn holds no control character (but newlines), and shows each of `visible`."""
    svg = app.export_screenshot()
    bad = sorted({f"U+{ord(c):04X}" for c in svg if not is_printable(c)})
    assert not bad, f"raw control characters on screen: {bad}"
    for text in visible:
        assert text.replace(" ", "\xa0") in svg.replace("&#160;", "\xa0"), text
    return svg


def plain(widget: Any) -> str:
    return str(widget.render())


async def test_a_hostile_preset_is_refused_and_its_text_shown_escaped() -> None:
    """The hostile preset's name, description and lab hold escape sequences: the loader refuses it (control
    characters are not allowed there), and the refusal, which quotes them, is shown escaped."""
    app = PlaygroundApp(preset("hostile"))
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        body = plain(app.screen.query_one("#error-body"))
        assert "preset.name" in body and "control character" in body and '"\\x1b"' in body
        assert_screen_clean(app, "control")
        await pilot.press("escape")
        await settle(pilot)
        assert_screen_clean(app)


async def test_a_hostile_file_name_is_shown_escaped_everywhere(tmp_path: Path) -> None:
    """A preset without a name is named after its file, and a file name may hold any character but / and NUL."""
    text = Path(preset("hostile")).read_text()
    text = text[text.index("[model]"):]  # no [preset] table: the name is the file's stem
    path = tmp_path / f"{TITLE}.toml"
    path.write_text(text)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(130, 40)) as pilot:
        await loaded(pilot)
        status = app.query_one("#status").text.plain
        assert SHOWN_TITLE in status and is_printable(status, keep_newlines=False)
        border = app.query_one("#instructions").border_title
        assert SHOWN_TITLE in str(border) and "\x1b" not in str(border)
        assert_screen_clean(app, SHOWN_TITLE)

        await pilot.press("5")
        await pilot.pause()
        info = plain(app.query_one("#info-text"))
        assert info.startswith(SHOWN_TITLE) and f"{SHOWN_TITLE}.toml" in info
        assert_screen_clean(app, SHOWN_TITLE)

        hostile = app.session.preset.copy()
        hostile.lab = "\x9b2J"  # (the loader refuses this; the open dialog still shows whatever it is given, escaped)
        app.presets = [("evil\x1b]2;T\x07", preset("hostile"), hostile)] + app.presets[:2]
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PresetPicker), what="the open dialog")
        await pilot.pause()
        picker = app.screen
        prompt = picker.query_one("#preset-list").get_option_at_index(0).prompt
        assert str(prompt) == f"evil\\x1b]2;T\\x07  {SHOWN_TITLE}"
        doc = plain(picker.query_one("#preset-doc"))
        assert doc.startswith(f"{SHOWN_TITLE}  (lab \\x9b2J)\nevil\\x1b]2;T\\x07.toml")
        assert_screen_clean(app, "evil\\x1b]2;T\\x07")
        await pilot.press("escape")
        await pilot.pause()

        app.notify(f"a note about {TITLE}", title=TITLE + "\nsecond line")
        await pilot.pause()
        note = list(app._notifications)[-1]  # what the toast shows
        assert (note.message, note.title) == (f"a note about {SHOWN_TITLE}", f"{SHOWN_TITLE} second line")
        assert_screen_clean(app)


async def test_an_error_quoting_a_hostile_key_is_shown_escaped(tmp_path: Path) -> None:
    text = Path(preset("tiny")).read_text().replace("[model]", f"[model]\n{toml_str(TITLE)} = 1", 1)
    bad = tmp_path / f"bad{TITLE}.toml"
    bad.write_text(text)
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.open_preset_path(str(bad))
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        body = plain(app.screen.query_one("#error-body"))
        assert f'unknown key "{SHOWN_TITLE}"' in body and f"bad{SHOWN_TITLE}.toml" in body
        assert_screen_clean(app, SHOWN_TITLE)
        await pilot.press("escape")
        await settle(pilot)
        assert_screen_clean(app)


async def test_a_hostile_session_file_is_shown_escaped(tmp_path: Path) -> None:
    """A session file made by hand: its source (state.json) and a run's label (runs.json) hold escapes."""
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.files.session_file import save_session
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import Trainer

    session = Session(load_preset(preset("tiny")))
    Trainer(session).run(3)
    saved = save_session(session, tmp_path / "saved.tuinn")
    hostile = tmp_path / "hostile.tuinn"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(hostile, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "state.json":
                state = json.loads(data)
                state["source"] = f"/somewhere/{TITLE}.toml"
                data = json.dumps(state).encode()
            elif item.filename == "runs.json":
                runs = json.loads(data)
                for run in runs:
                    run["label"] = f"run {TITLE}"
                data = json.dumps(runs).encode()
            dst.writestr(item, data)
    app = PlaygroundApp(str(hostile))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert not isinstance(app.screen, ErrorModal), plain(app.screen.query_one("#error-body"))
        await pilot.press("5")
        await pilot.pause()
        assert f"/somewhere/{SHOWN_TITLE}.toml" in plain(app.query_one("#info-text"))
        assert_screen_clean(app, SHOWN_TITLE)
        labels = [run.label for run in app.session.runs.runs]
        assert labels  # the trained session has its run
        if any(TITLE in label for label in labels):  # the label kept as the file has it: the list escapes it
            await pilot.press("c")
            await pilot.pause()
            assert_screen_clean(app, f"run {SHOWN_TITLE}")
            await pilot.press("escape")
            await pilot.pause()


async def test_a_hostile_csv_header_is_shown_escaped(tmp_path: Path) -> None:
    """A CSV column named with an escape sequence: refused (the error lists the header) or loaded (the data
    dialog's fields show the names); either way escaped on screen."""
    column = f"x{TITLE}"
    csv = tmp_path / "h.csv"
    csv.write_text(f"x1,{column},y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n")
    text = (Path(preset("tiny")).read_text().split("[data]")[0]
            + f'[data]\ncsv = {{ path = "h.csv", features = ["x1", {toml_str(column)}], target = "y" }}\n')
    hostile = tmp_path / "hostile.toml"
    hostile.write_text(text)
    missing = tmp_path / "missing.toml"
    missing.write_text(text.replace(toml_str(column), '"x2"'))
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.open_preset_path(str(missing))  # no column "x2": the refusal lists the columns, the hostile one too
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        assert f"x{SHOWN_TITLE}" in plain(app.screen.query_one("#error-body"))
        assert_screen_clean(app, SHOWN_TITLE)
        await pilot.press("escape")
        await settle(pilot)
        app.open_preset_path(str(hostile))
        await wait_until(pilot, lambda: app.run_state == "ready" and (isinstance(app.screen, ErrorModal) or (
            app.session is not None and app.session.preset.data.csv is not None)), what="the CSV preset")
        await pilot.pause()
        if isinstance(app.screen, ErrorModal):  # the loader refuses control characters in column names
            await wait_until(pilot, lambda: bool(app.screen.query("#error-body")), what="the error body")
            assert_screen_clean(app)
            return
        await pilot.press("D")
        await pilot.pause()
        assert app.screen.query_one("#csv-features").value == f"x1, x{SHOWN_TITLE}"
        assert_screen_clean(app, SHOWN_TITLE)


# -- the helpers themselves ----------------------------------------------------------------------------------


def test_safe_text_keeps_the_styles_of_a_rich_text() -> None:
    text = Text("ab\x1bcd\ne", spans=[Span(0, 3, "bold"), Span(3, 7, "red")], style="dim")
    out = safe_text(text)
    assert out.plain == "ab\\x1bcd\ne" and out.style == "dim"
    assert [(s.start, s.end, s.style) for s in out.spans] == [(0, 6, "bold"), (6, 10, "red")]
    assert out.plain[0:6] == "ab\\x1b" and out.plain[6:10] == "cd\ne"
    one = cell(text)
    assert one.plain == "ab\\x1bcd e" and [(s.start, s.end) for s in one.spans] == [(0, 6), (6, 10)]
    ordinary = Text("plain – ünïcode\tand a tab", style="bold")
    assert safe_text(ordinary) is ordinary  # nothing to escape: the same object, drawn as before
    assert safe_text(42) == 42  # not text: left as it is


def test_the_apps_text_escapes_what_rich_would_drop_or_keep() -> None:
    """Rich's own Text drops BEL, backspace, VT, FF and CR and keeps ESC; the app's shows all of them escaped."""
    assert Text("a\x07b\x1bc").plain == "ab\x1bc"
    built = SafeText("a\x07b", style="bold").append("\x1b[2J", style="red").append(Text("\x9b"))
    assert built.plain == "a\\x07b\\x1b[2J\\x9b" and [(s.start, s.end) for s in built.spans] == [(6, 13)]
    assembled = SafeText.assemble(("\r", "dim"), "\u202e")
    assert assembled.plain == "\\x0d\\u202e"
    assert SafeText("ordinary text", style="bold").plain == "ordinary text"


async def test_shown_escapes_what_it_is_given_and_never_reads_markup() -> None:
    from textual.app import App

    class One(App[None]):
        def compose(self):  # noqa: ANN201
            yield Shown(f"[bold]{TITLE}[/]", id="multi")
            yield Shown(Text("a\n\x1b]0;PWNED"), id="single", line=True)  # Rich's Text drops a BEL, keeps ESC

    app = One()
    async with app.run_test() as pilot:
        multi, single = app.query_one("#multi", Shown), app.query_one("#single", Shown)
        assert plain(multi) == f"[bold]{SHOWN_TITLE}[/]"
        assert plain(single) == "a \\x1b]0;PWNED"
        multi.update(SafeText(f"x\n{TITLE}", style="bold"))
        await pilot.pause()
        assert plain(multi) == f"x\n{SHOWN_TITLE}"
        assert_screen_clean(app, SHOWN_TITLE)


async def test_the_layer_table_escapes_every_cell() -> None:
    from tui_nn.ui.widgets.layers import LayerTable

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        table = app.query_one(LayerTable)
        table.add_row(Text("9\n\x1b]0;PWNED"), f"Evil{TITLE}", "x", "y", key="evil")
        await pilot.pause()
        assert [str(c) for c in table.get_row("evil")][:2] == ["9 \\x1b]0;PWNED", f"Evil{SHOWN_TITLE}"]
        assert_screen_clean(app)
