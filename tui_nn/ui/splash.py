"""The frame drawn before Textual is imported.

Importing Textual takes 0.4-0.57 s on the lab VM (docs/performance.md, start-up), before the app can draw
anything. `show` writes the app's first frame (the tab names and the status line, what `PlaygroundApp.compose`
draws next) straight to the terminal with a few escape codes, so the screen answers the launch at once; Textual's
first paint then covers it (its driver enters the same alternate screen and does not clear it). Typed keys are
not echoed over the frame meanwhile; `restore_echo` gives the terminal back its settings before Textual reads
them, and `abandon` leaves the alternate screen if the app never started. Only on a POSIX terminal (stdin and
stdout both a tty, TERM set and not "dumb"), and not with TUI_NN_SPLASH=0. No Textual, no torch.
"""

from __future__ import annotations

import os
import sys
from typing import Any

TABS = " 1 Layers  2 Tensors  3 Train  4 Data  5 Info  6 Boundary"  # the first frame's tab line (compose too)

ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"  # the alternate screen, the cursor hidden, cleared
LEAVE = "\x1b[?25h\x1b[?1049l"


def opening_note(preset_path: str | None) -> str:
    return f"opening {preset_path or 'the scratch network'}…"


def _printable(text: str) -> str:
    """The text without control characters (a file name could hold an escape sequence)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def wanted(env: Any = None) -> bool:
    env = os.environ if env is None else env
    if env.get("TUI_NN_SPLASH", "1") == "0" or env.get("TERM", "dumb") in ("", "dumb"):
        return False
    try:
        import termios  # noqa: F401 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def frame(columns: int, lines: int, preset_path: str | None) -> str:
    """The escape codes and text of the frame, for a terminal of columns x lines."""
    status = _printable(f" loading  step 0  loss —  …  {opening_note(preset_path)}")[:max(columns, 1)]
    row = max(lines - 1, 2)  # the status line sits above the keys' line, as in the app
    return (f"{ENTER}\x1b[1;1H\x1b[2m{TABS[:max(columns, 1)]}\x1b[0m"
            f"\x1b[{row};1H\x1b[7m{status}{' ' * max(columns - len(status), 0)}\x1b[0m")


class Splash:
    """show(), then restore_echo() once the slow import is done, or abandon() if the app will not start."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.saved: Any = None

    def show(self, preset_path: str | None) -> bool:
        if not wanted():
            return False
        try:
            import termios

            fd = sys.stdin.fileno()
            size = os.get_terminal_size(sys.stdout.fileno())
            if size.columns < 20 or size.lines < 5:  # a terminal that reports no size (0x0): Textual guesses
                return False
            saved = termios.tcgetattr(fd)
            quiet = list(saved)
            quiet[3] = quiet[3] & ~termios.ECHO  # lflag: keys typed now are kept for the app, not echoed
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self.fd, self.saved = fd, saved
            out = sys.stdout
            out.write(frame(size.columns, size.lines, preset_path))
            out.flush()
        except (OSError, ValueError, AttributeError, ImportError):  # no frame: the app draws its own shortly
            self.restore_echo()
            return False
        return True

    def restore_echo(self) -> None:
        """The terminal's own settings back, before Textual saves them (it restores what it saved at exit)."""
        if self.fd is None:
            return
        try:
            import termios

            termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
        except (OSError, ImportError, Exception):  # noqa: BLE001 - termios.error is not an OSError
            pass
        self.fd = None

    def abandon(self) -> None:
        """The app did not start: the terminal as it was."""
        self.restore_echo()
        try:
            sys.stdout.write(LEAVE)
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
