"""Opening a preset or a session file (.tuinn) in the load worker: the engine, the devices, the session,
and what to say when something cannot be opened (a dialog, then the scratch network at start-up). No Textual
widgets here: what happened is posted as messages (ui/messages.py) for the app to show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

from tui_nn import engine

from .messages import LoadFailed, SessionLoaded
from .startup import is_session_path

if TYPE_CHECKING:
    from tui_nn.engine import DeviceInfo


def open_path(path: str | None, *, initial: bool, post: Callable[[Message], object]) -> bool:
    """Open `path` (None: the scratch network) and post SessionLoaded (its session None when a later load
    failed: the current one stays), after a LoadFailed for what went wrong. The first load (`initial`) always
    ends with a session on screen. True when the session asked for (or the scratch one) was posted."""
    try:  # the engine loads here (torch, after the preview)
        for name in ("DeviceError", "EngineError", "Session", "list_devices", "load_preset", "scratch_preset"):
            getattr(engine, name)
    except Exception as err:  # noqa: BLE001 - a broken install: say so, stay alive
        post(LoadFailed("Cannot load the engine", f"{type(err).__name__}: {err}"))
        return False
    devices: list[DeviceInfo] = []
    try:
        devices = engine.list_devices()
        note = ""
        session = None
        session_path = None
        if is_session_path(path):
            try:
                session = engine.load_session(path.strip())
                session_path = str(Path(path.strip()).expanduser())
                note = f"opened the session {path} at step {session.step}"
            except engine.EngineError as err:
                post(LoadFailed("Cannot open the session", err.message, getattr(err, "hint", "")))
                if not initial:
                    post(SessionLoaded(None, devices))
                    return False
                session = engine.Session(engine.scratch_preset())
                note = "opened the scratch network instead"
        if session is None:
            preset = None
            try:
                preset = engine.load_preset(path) if path else engine.scratch_preset()
            except engine.EngineError as err:
                post(LoadFailed("Cannot open the preset", err.message, err.hint))
                if not initial:
                    post(SessionLoaded(None, devices))
                    return False
                preset = engine.scratch_preset()
                note = "opened the scratch network instead"
            try:
                session = engine.Session(preset)
            except engine.DeviceError as err:
                session = engine.Session(preset, device="cpu")
                note = f"{err.message}; using the CPU"
            except engine.EngineError as err:
                where = f" {path}" if path else ""  # a memory or device refusal does not name the file itself
                post(LoadFailed(f"Cannot build the preset{where}", err.message, err.hint))
                if not initial:
                    post(SessionLoaded(None, devices))
                    return False
                session = engine.Session(engine.scratch_preset())
                note = "opened the scratch network instead"
        post(SessionLoaded(session, devices, note, session_path=session_path))
    except Exception as err:  # noqa: BLE001 - whatever happens, the app stays alive
        where = f" {path}" if path else ""
        post(LoadFailed(f"Cannot open{where}", f"{type(err).__name__}: {err}"))
        fallback = None
        if initial:  # the first load must end with a session on screen, not a "loading…" that never ends
            try:
                devices = devices or engine.list_devices()
                fallback = engine.Session(engine.scratch_preset())
            except Exception:  # noqa: BLE001 - nothing to fall back to: the dialog says what failed
                fallback = None
        post(SessionLoaded(fallback, devices if fallback else [],
                           "opened the scratch network instead" if fallback else ""))
        return False
    return True
