"""Autosave: where a session is kept (the user data folder, or next to its .tuinn file), and when (at most
once an interval during a run, at a run's end or pause, and when quitting if something changed).

No Textual here: the app calls these from its workers and says what happened in its status line. The engine's
names are used when called (the module is imported before the first frame, torch after it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_data_dir

from tui_nn import engine  # its names load on first use (torch): after the first frame

if TYPE_CHECKING:
    from tui_nn.engine import Autosave, Session

AUTOSAVE_INTERVAL = 60.0  # seconds: at most one autosave a minute (during a run, between two of its slices)


def autosave_dir() -> Path:
    """TUI_NN_AUTOSAVE_DIR, else the user data folder's autosave/ ($XDG_DATA_HOME/tui-nn/autosave or
    ~/.local/share/tui-nn/autosave on Linux)."""
    env = os.environ.get("TUI_NN_AUTOSAVE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(user_data_dir("tui-nn", appauthor=False)) / "autosave"


def session_stem(session: Session) -> str:
    """The name a session's files start with: its preset file's stem, or "scratch"."""
    src = session.preset.source or ""
    return Path(src).stem if src and not src.startswith("<") else "scratch"


class Autosaver:
    """The engine's Autosave for the current session's file; `enabled` False (or TUI_NN_AUTOSAVE=off): none."""

    def __init__(self) -> None:
        self.enabled = True
        self.current: Autosave | None = None

    def path(self, session: Session, session_path: str | None) -> Path:
        if session_path:
            p = Path(session_path)
            return p.with_name(p.stem + ".autosave" + engine.SUFFIX)
        return autosave_dir() / f"{session_stem(session)}{engine.SUFFIX}"

    def for_session(self, session: Session | None, session_path: str | None) -> Autosave | None:
        if not self.enabled or os.environ.get("TUI_NN_AUTOSAVE", "on") == "off" or session is None:
            return None
        path = self.path(session, session_path)
        if self.current is None or Path(self.current.path) != path:
            self.current = engine.Autosave(path, AUTOSAVE_INTERVAL)
        return self.current

    def interval(self, session: Session | None, session_path: str | None) -> float | None:
        """Seconds between autosaves during a run (None: autosave is off)."""
        return AUTOSAVE_INTERVAL if self.for_session(session, session_path) is not None else None

    def due(self, session: Session, session_path: str | None, version: int) -> bool:
        auto = self.for_session(session, session_path)
        return auto is not None and auto.due(session, token=(session.step, version))

    def save(self, session: Session, session_path: str | None, version: int, *, force: bool) -> str | None:
        """Save `session` in the calling thread (a worker) if it changed: the path written, or None. An error
        is raised to the caller (which says it, never raises it)."""
        auto = self.for_session(session, session_path)
        if auto is None:
            return None
        token = (session.step, version)
        auto.path.parent.mkdir(parents=True, exist_ok=True)
        saved = auto.save_if_changed(session, token) if force else auto.maybe_save(session, token=token)
        return str(auto.path) if saved else None

    def save_on_quit(self, session: Session | None, session_path: str | None, version: int,
                     edited: bool) -> str | None:
        """When quitting (in a worker thread): what changed since the last autosave, whatever the interval;
        nothing when nothing was done in this session (`edited`: the undo stack holds something)."""
        auto = self.for_session(session, session_path)
        if session is None or auto is None:
            return None
        token = (session.step, version)
        if auto.last_token == token or (auto.last_token is None and session.step == 0 and version <= 1
                                        and not edited):
            return None  # nothing was done in this session: nothing to keep
        try:
            auto.path.parent.mkdir(parents=True, exist_ok=True)
            auto.save_if_changed(session, token)
        except Exception:  # noqa: BLE001 - quitting goes on; the last autosave (if any) stays
            return None
        return str(auto.path)
