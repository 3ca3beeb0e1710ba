"""The frame drawn before Textual is imported (tui_nn/ui/splash.py): what it writes, when it is drawn, and that
the terminal is given back as it was (echo on, the main screen) whether the app starts or not."""

from __future__ import annotations

import fcntl
import os
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

from tui_nn.ui import splash

ROOT = Path(__file__).resolve().parents[2]


def test_the_frame_has_the_tab_names_and_the_status_line_at_the_bottom() -> None:
    text = splash.frame(80, 24, "lab004-hand-set-network")
    assert text.startswith(splash.ENTER)
    assert splash.TABS in text
    assert "\x1b[23;1H" in text  # the status line above the keys' line, as the app draws it
    assert "opening lab004-hand-set-network…" in text


def test_a_file_name_cannot_write_escape_codes() -> None:
    text = splash.frame(80, 24, "evil\x1b]0;title\x07\x1b[2J.toml")
    status = text.split("\x1b[23;1H", 1)[1]
    assert "]0;title" not in status.replace("?]0;title", "")  # the escape replaced by "?"
    assert "evil?]0;title??[2J.toml" in status


def test_a_narrow_terminal_gets_lines_cut_to_its_width() -> None:
    text = splash.frame(20, 5, "x" * 100)
    assert splash.TABS[:20] in text and splash.TABS[:21] not in text
    assert "\x1b[4;1H" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
def test_a_terminal_without_a_size_gets_no_splash(monkeypatch: pytest.MonkeyPatch) -> None:
    import pty

    master, slave = pty.openpty()  # 0x0, as some serial consoles report
    try:
        monkeypatch.setattr(sys, "stdin", os.fdopen(os.dup(slave), "r"))
        monkeypatch.setattr(sys, "stdout", os.fdopen(os.dup(slave), "w"))
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.delenv("TUI_NN_SPLASH", raising=False)
        before = termios.tcgetattr(slave)
        assert not splash.Splash().show("p.toml")
        assert termios.tcgetattr(slave) == before
    finally:
        sys.stdin.close()
        sys.stdout.close()
        os.close(master)
        os.close(slave)


def test_only_on_a_terminal_and_not_when_turned_off() -> None:
    assert not splash.wanted({"TERM": "xterm-256color", "TUI_NN_SPLASH": "0"})
    assert not splash.wanted({"TERM": "dumb"})
    assert not splash.wanted({})
    # pytest's stdout is not a terminal
    assert not splash.wanted({"TERM": "xterm-256color"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
def test_echo_is_off_while_shown_and_back_when_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    import pty

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        tty_in = os.fdopen(os.dup(slave), "r")
        tty_out = os.fdopen(os.dup(slave), "w")
        monkeypatch.setattr(sys, "stdin", tty_in)
        monkeypatch.setattr(sys, "stdout", tty_out)
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.delenv("TUI_NN_SPLASH", raising=False)
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ECHO
        s = splash.Splash()
        assert s.show("p.toml")
        assert not termios.tcgetattr(slave)[3] & termios.ECHO  # typed keys are not echoed over the frame
        written = os.read(master, 1 << 16).decode()
        assert splash.TABS in written and "opening p.toml…" in written
        s.abandon()
        assert termios.tcgetattr(slave) == before
        assert splash.LEAVE in os.read(master, 1 << 16).decode()
        tty_in.close()
        tty_out.close()
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")
def test_the_app_under_a_terminal_draws_the_splash_first_and_gives_the_terminal_back() -> None:
    """`python -m tui_nn PRESET` on a pty: the splash, then Textual's paint of the same frame; ctrl+q quits with
    exit 0 and the terminal's settings (echo on) as before."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, on an 80x24 terminal
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.chdir(ROOT)
        env = dict(os.environ, TERM="xterm-256color", TUI_NN_RUNNER="thread")
        env.pop("TUI_NN_SPLASH", None)
        os.execve(sys.executable, [sys.executable, "-m", "tui_nn", "lab004-hand-set-network"], env)
    chunks: list[bytes] = []
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and b" ready " not in b"".join(chunks)[-200_000:]:
            try:
                chunks.append(os.read(fd, 1 << 16))
            except OSError:
                break
        out = b"".join(chunks)
        tabs = splash.TABS.encode()
        first = out.find(tabs)
        assert 0 <= first < out.find(b"\x1b[?1049h", first + 1)  # the splash, before Textual's driver starts
        assert out.find(tabs, first + len(tabs)) > first  # Textual's paint of the same tabs follows
        assert b" ready " in out
        os.write(fd, b"\x11")  # ctrl+q
        end = time.monotonic() + 30
        status = None
        while time.monotonic() < end:
            try:
                if not os.read(fd, 1 << 16):
                    break
            except OSError:
                break
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        assert status is not None and os.waitstatus_to_exitcode(status) == 0
        lflag = termios.tcgetattr(fd)[3]
        assert lflag & termios.ECHO and lflag & termios.ICANON  # echo and line editing, as a shell wants them
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
