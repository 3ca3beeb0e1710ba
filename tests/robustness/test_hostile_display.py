"""Hostile text on the way to a terminal: control characters, escape sequences and bidi overrides in every string a
preset, a session file or a file name can carry must never reach the terminal as such.

- `printable` (tui_nn/engine/safe_text.py), the one function every display goes through, over every code point
  (what is replaced, to what) and over generated text (idempotent, bounded, nothing else changed);
- the command line: generated hostile strings in every string field of a preset (name, description, lab, an
  unknown key, a layer type, the loss and optimizer names, the device, the file's name, --device) through check,
  check --json, run, run --json, export and gradcheck, and through `presets` (hostile presets listed): the bytes
  written to stdout and stderr decode as UTF-8 and hold no ESC, C1, bidi control, or C0 but newline and tab;
- the app, in a real terminal (a pty): a hostile preset, an error quoting a hostile key and file name, and (in the
  long run) a hand-made session file; the injected sequences never appear in the byte stream, Textual's own do,
  and the injected text is drawn in its escaped form.

CI runs a sample (CI_EXAMPLES generated inputs per target); TUI_NN_FUZZ_EXAMPLES sizes the long run.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import select
import struct
import sys
import termios
import time
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.conftest import EXAMPLE
from tui_nn.cli import entry as cli
from tui_nn.engine.text import BIDI_CONTROLS, MAX_GROWTH, MOVERS, is_printable, printable

from . import counts

CI_EXAMPLES = 25
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / f"tui-nn-display-{os.getpid()}"
WORK.mkdir(parents=True, exist_ok=True)

# what a terminal acts on: C0 (ESC, BEL, CR, ...), DEL, C1 (U+009B is a one-byte CSI, U+009D an OSC), the bidi
# embeddings/overrides/isolates; and lone surrogates, which cannot be written at all
NASTY = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))] + list(BIDI_CONTROLS)
SEQUENCES = ["\x1b]0;PWNED\x07", "\x1b]2;T\x1b\\", "\x1b]52;c;UFdORUQ=\x07", "\x1b[2J", "\x9b31m", "\x9d0;X\x9c",
             "\x1bP+q\x1b\\", "\r\x1b[K", "\u202eevil\u202c", "\x1b[6n"]


def expected_unsafe(code: int) -> bool:
    """The rule, from Unicode's own categories: every Cc (C0, DEL, C1) but newline and tab, every Cs (a lone
    surrogate), the nine bidi embeddings, overrides and isolates, and the four invisible movers (LRM, RLM, the line
    and paragraph separators)."""
    if code in (0x09, 0x0A):
        return False
    return unicodedata.category(chr(code)) in ("Cc", "Cs") or chr(code) in BIDI_CONTROLS + MOVERS


def visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# -- printable itself ----------------------------------------------------------------------------------------------


def test_printable_over_every_code_point() -> None:
    replaced = 0
    for code in range(0x110000):
        ch = chr(code)
        out = printable(ch)
        line = printable(ch, keep_newlines=False)
        if expected_unsafe(code):
            assert out == line == visible(code), hex(code)
            assert is_printable(out, keep_newlines=False) and len(out) <= MAX_GROWTH
            assert not is_printable(ch)
            replaced += 1
        elif code in (0x09, 0x0A):
            assert out is ch and line == " ", hex(code)
            assert is_printable(ch) and not is_printable(ch, keep_newlines=False)
        else:
            assert out is ch and line is ch, hex(code)  # unchanged: the same object
            assert is_printable(ch, keep_newlines=False)
    assert replaced == 32 - 2 + 1 + 32 + len(BIDI_CONTROLS) + len(MOVERS) + 2048  # C0 but \t \n, DEL, C1, bidi,
    # the movers, surrogates
    counts.add("display", "code points checked", 0x110000)
    counts.add("display", "code points replaced", replaced)


HOSTILE_TEXT = st.lists(st.one_of(st.sampled_from(NASTY), st.sampled_from(SEQUENCES),
                                  st.characters(codec=None, exclude_categories=()),  # surrogates included
                                  st.text(max_size=8)), max_size=40).map("".join)


@SETTINGS
@given(text=HOSTILE_TEXT, keep=st.booleans())
def test_printable_is_idempotent_bounded_and_changes_nothing_else(text: str, keep: bool) -> None:
    out = printable(text, keep_newlines=keep)
    assert is_printable(out, keep_newlines=keep)
    assert printable(out, keep_newlines=keep) == out  # idempotent
    assert len(out) <= MAX_GROWTH * len(text)
    # character by character: a safe one is itself, an unsafe one its visible escape (or, on one line, \n\t: " ")
    assert out == "".join(ch if not expected_unsafe(ord(ch)) and (keep or ch not in "\n\t")
                          else (" " if ch in "\n\t" else visible(ord(ch))) for ch in text)
    if is_printable(text, keep_newlines=keep):
        assert out is text
    counts.add("display", "printable examples")
    counts.peak("display", "longest growth", len(out) / max(len(text), 1))


# -- the command line -------------------------------------------------------------------------------------------

TOML_TEXT = st.lists(st.one_of(st.sampled_from([c for c in NASTY if c != "\x00"] + ["\x00"]),
                               st.sampled_from(SEQUENCES), st.text(max_size=6)), min_size=1, max_size=12).map("".join)


def toml_str(text: str) -> str:
    return '"' + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\u{ord(c):04x}" for c in text) + '"'


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


FIELDS = {
    "name": lambda s: _replace(EXAMPLE, 'name = "Hand-set 3-3-3-3 network"', f"name = {toml_str(s)}"),
    "description": lambda s: _replace(EXAMPLE, 'description = """Shown in the app as the exercise\'s instructions."""',
                                      f"description = {toml_str(s)}"),
    "lab": lambda s: _replace(EXAMPLE, "[model]", f"lab = {toml_str(s)}\n\n[model]"),
    "unknown key": lambda s: _replace(EXAMPLE, "in_features = 3\n", f"in_features = 3\n{toml_str(s)} = 1\n"),
    "unknown top key": lambda s: _replace(EXAMPLE, "[training]\n", f"[training]\n{toml_str(s)} = 1\n"),
    "layer type": lambda s: _replace(EXAMPLE, 'type = "ReLU"', f"type = {toml_str(s)}"),
    "loss": lambda s: _replace(EXAMPLE, 'loss = "CrossEntropyLoss"', f"loss = {toml_str(s)}"),
    "optimizer": lambda s: _replace(EXAMPLE, 'type = "Adam"', f"type = {toml_str(s)}"),
    "device": lambda s: _replace(EXAMPLE, 'device = "cpu"', f"device = {toml_str(s)}"),
    "file name": lambda s: _replace(EXAMPLE, "in_features = 3\n", "in_features = 3\nbogus = 1\n"),  # error: names it
    "--device": lambda s: EXAMPLE,
}


def run_cli(argv: list[str]) -> tuple[int, bytes, bytes]:
    """cli.main in this process, stdout and stderr as the bytes a terminal would get (UTF-8, strict: a lone
    surrogate would raise here as it would there)."""
    out, err = io.BytesIO(), io.BytesIO()
    out_w = io.TextIOWrapper(out, encoding="utf-8", errors="strict", write_through=True)
    err_w = io.TextIOWrapper(err, encoding="utf-8", errors="strict", write_through=True)
    code: Any
    with contextlib.redirect_stdout(out_w), contextlib.redirect_stderr(err_w):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # a usage error
            code = exit_.code
    out_w.flush()
    err_w.flush()
    return int(code or 0), out.getvalue(), err.getvalue()


def assert_terminal_safe(data: bytes, where: str) -> None:
    text = data.decode("utf-8")  # strict: what went out is UTF-8
    bad = sorted({f"U+{ord(c):04X}" for c in text if not is_printable(c)})
    assert not bad, f"{where}: {bad} in {text[:300]!r}"


def file_name(s: str) -> str:
    name = "".join(c for c in s if c not in "/\x00")[:60] or "x"
    return f"p{name}.toml"


PER_FIELD = settings(SETTINGS, max_examples=max(3, EXAMPLES // 5))


@pytest.mark.parametrize("field", sorted(FIELDS))
@PER_FIELD
@given(hostile=TOML_TEXT)
def test_cli_output_never_carries_control_characters(field: str, hostile: str) -> None:
    path = WORK / (file_name(hostile) if field == "file name" else "p.toml")
    try:
        path.write_text(FIELDS[field](hostile))
    except (OSError, UnicodeEncodeError):  # a name the filesystem refuses: nothing to test
        return
    try:
        extra = ["--device", hostile.replace("\x00", "")] if field == "--device" else []
        for argv in (["check", str(path)], ["check", str(path), "--json"],
                     ["run", str(path), "--steps", "1", *extra], ["run", str(path), "--steps", "1", "--json", *extra],
                     ["export", str(path), "--steps", "1"], ["gradcheck", str(path), "--max-elements", "2"]):
            code, out, err = run_cli(argv)
            assert code in (0, 1, 2), (argv, code)
            assert_terminal_safe(out, f"{field}: {argv[0]} stdout")
            assert_terminal_safe(err, f"{field}: {argv[0]} stderr")
            if "--json" in argv and out:
                for row in out.decode().splitlines():
                    json.loads(row)  # standard JSON, the text inside it exact
            counts.add("display", f"cli {argv[0]}{' --json' if '--json' in argv else ''}")
    finally:
        path.unlink(missing_ok=True)
    counts.add("display", f"cli field {field}")


@SETTINGS
@given(stem=TOML_TEXT, name=TOML_TEXT, description=TOML_TEXT, broken=TOML_TEXT)
def test_presets_listing_never_carries_control_characters(monkeypatch: pytest.MonkeyPatch, stem: str, name: str,
                                                          description: str, broken: str) -> None:
    """`tui-nn presets` with listed presets whose file names, names and descriptions are hostile, as a loader that
    let them through would give them, and a broken one whose error quotes hostile text."""
    from tui_nn.engine.errors import PresetError
    from tui_nn.engine.files import preset_read as preset_module
    from tui_nn.engine.files.preset_read import loads_preset

    good = loads_preset(EXAMPLE)
    good.name, good.description = name, description
    items = [(stem, good), (stem + "2", PresetError(f"unknown key {broken!r} and {broken}", source=stem,
                                                    hint=broken))]
    with monkeypatch.context() as m:
        m.setattr(preset_module, "list_presets", lambda: items)
        code, out, err = run_cli(["presets"])
    assert code == 0 and not err
    assert_terminal_safe(out, "presets")
    assert len(out.decode().splitlines()) == 2  # one line per preset, whatever the text held
    counts.add("display", "cli presets")


@SETTINGS
@given(name=HOSTILE_TEXT, message=HOSTILE_TEXT)
def test_cli_printers_escape_text_the_loader_let_through(monkeypatch: pytest.MonkeyPatch, name: str,
                                                         message: str) -> None:
    """Whatever a loader accepts: a session whose preset's name holds anything (surrogates too), a training run
    that ends with a hostile message; check and run print it escaped."""
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import Trainer

    session = Session(loads_preset(EXAMPLE))
    session.preset.name = name
    real_run = Trainer.run

    def hostile_run(self: Any, *args: Any, **kw: Any) -> Any:
        from dataclasses import replace

        return replace(real_run(self, *args, **kw), message=message, hint=message)

    with monkeypatch.context() as m:
        m.setattr("tui_nn.cli.commands._load", lambda *a, **k: session)
        m.setattr(Trainer, "run", hostile_run)
        for argv in (["check", "p.toml"], ["run", "p.toml", "--steps", "1"], ["run", "p.toml", "--steps", "1",
                                                                                 "--json"]):
            code, out, err = run_cli(argv)
            assert code in (0, 1)
            assert_terminal_safe(out, f"{argv[0]} stdout")
            assert_terminal_safe(err, f"{argv[0]} stderr")
    counts.add("display", "cli printers")


# -- the app in a terminal ---------------------------------------------------------------------------------------

INJECTED = (b"\x1b]0;PWNED", b"\x1b]52", b"\x1b]2;", b"\xc2\x9b", b"\xe2\x80\xae", b"\x07 and a bell")


def _app_in_a_pty(argv: list[str], keys: list[bytes], wait_for: bytes) -> bytes:
    """`python -m tui_nn ARGV` on a 120x40 pty: read until `wait_for` appears, press `keys` (reading between them),
    quit with ctrl+q; every byte the app wrote."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child: the app
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            os.chdir(ROOT)
            env = dict(os.environ, TERM="xterm-256color", TUI_NN_RUNNER="thread", TUI_NN_AUTOSAVE="off")
            os.execve(sys.executable, [sys.executable, "-m", "tui_nn", *argv], env)
        finally:
            os._exit(127)
    chunks: list[bytes] = []

    def pump(seconds: float, until: bytes | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until in b"".join(chunks[-200:]):
                return
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

    try:
        pump(180, until=wait_for)  # a guard against a hang, not a timing assertion
        assert wait_for in b"".join(chunks), b"".join(chunks)[-2000:]
        for key in keys:
            os.write(fd, key)
            pump(1.0)
        os.write(fd, b"\x11")  # ctrl+q
        pump(20, until=b"\x1b[?1049l")
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    return b"".join(chunks)


def _hostile_session(tmp_path: Path) -> Path:
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.files.session_file import save_session
    from tui_nn.engine.training.session import Session

    saved = save_session(Session(load_preset(ROOT / "tests/ui/presets/tiny.toml")), tmp_path / "saved.tuinn")
    hostile = tmp_path / "hostile.tuinn"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(hostile, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "state.json":
                state = json.loads(data)
                state["source"] = "/x/\x1b]0;PWNED\x07\x1b]52;c;UFdORUQ=\x07.toml"
                data = json.dumps(state).encode()
            dst.writestr(item, data)
    return hostile


# each case starts the app (torch's import: several seconds); the hand-made session joins in the long run (the Pilot
# test tests/ui/test_hostile_text.py shows the same session in CI)
PTY_CASES = ["preset", "error"] + (["session"] if LONG else [])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
@pytest.mark.parametrize("case", PTY_CASES)
def test_the_app_in_a_terminal_never_writes_the_injected_sequences(tmp_path: Path, case: str) -> None:
    if case == "preset":  # a preset named after its file, whose name is an OSC 0 and an OSC 2 (a preset's own name,
        # description and lab may not hold control characters: the loader refuses them; tests/ui/test_hostile_text.py)
        text = (ROOT / "tests/ui/presets/hostile.toml").read_text()
        named = tmp_path / "\x1b]0;PWNED\x07\x1b]2;T\x07.toml"
        named.write_text(text[text.index("[model]"):])
        argv, keys = [str(named)], [b"5", b"o", b"\x1b", b"1"]
    elif case == "error":  # the file's name and an unknown key, quoted by the error dialog
        text = (ROOT / "tests/ui/presets/tiny.toml").read_text().replace(
            "[model]", "[model]\n" + toml_str("\x1b]0;PWNED\x07\x1b]52;c;UFdORUQ=\x07") + " = 1", 1)
        bad = tmp_path / "bad\x1b]2;T\x07.toml"
        bad.write_text(text)
        argv, keys = [str(bad)], [b"\r", b"5"]
    else:  # a session file made by hand: its source, shown on the Info tab
        argv, keys = [str(_hostile_session(tmp_path))], [b"5", b"1"]
    out = _app_in_a_pty(argv, keys, wait_for=b" ready ")
    for seq in INJECTED:
        assert seq not in out, (case, seq)
    assert b"\x1b[?1049h" in out  # Textual's own sequences (the alternate screen) go through
    assert b"\\x1b]0;PWNED" in out or b"\\x1b]2;T" in out  # the injected text, drawn escaped
    counts.add("display", f"app in a pty: {case}")
    counts.add("display", "app bytes read", len(out))
