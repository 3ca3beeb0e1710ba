"""The file flows: saving a preset or a session, and exporting (a PyTorch script, the loss history as CSV).
The checks of a target path, the work (run in the app's engine worker) and what is said when it is done.

No Textual here; the engine's names are used when called (torch loads after the first frame).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tui_nn import engine

from .autosave import session_stem

if TYPE_CHECKING:
    from tui_nn.engine import Session


def is_session_file(path: str) -> bool:
    return path.strip().endswith(engine.SUFFIX)


def save_default(session: Session) -> str:
    return f"{session_stem(session)}-mine.toml"


def save_preset_to(session: Session, path: str, with_weights: bool) -> str | None:
    """Write the session as a preset file (in the calling thread: it is small); a refusal or None."""
    target = Path(path).expanduser()
    try:
        if target.resolve().parent == engine.presets_dir().resolve():
            return "the bundled presets are read-only here: choose another folder or name"
        if target.is_dir():
            return "that is a folder: add a file name"
        engine.save_preset(session.current_preset(with_weights=with_weights), target)
    except OSError as err:
        return f"cannot write {path}: {err.strerror or err}"
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"
    return None


def session_target(path: str) -> Path | str:
    """Where a session is saved, or the refusal."""
    target = Path(path).expanduser()
    return "that is a folder: add a file name" if target.is_dir() else target


def export_defaults(session: Session) -> dict[str, str]:
    stem = session_stem(session)
    return {"script": f"{stem}.py", "csv": f"{stem}-loss.csv", "svg": f"{stem}.svg"}


def export_target(path: str) -> Path | str:
    """Where an export is written, or the refusal."""
    target = Path(path).expanduser()
    if target.is_dir():
        return "that is a folder: add a file name"
    if not target.parent.exists():
        return f"the folder {target.parent} does not exist"
    return target


def export_job(session: Session, kind: str, target: Path, from_start: bool) -> Callable[[], Path]:
    """The export of `kind` ("script" or "csv") to `target`, to run in a worker."""

    def write() -> Path:
        if kind == "script":
            # from step 0, with the weights the loss history began from: the script prints the app's losses
            return engine.write_script(session.current_preset(with_weights=True, at_start=from_start), target)
        return engine.write_history_csv(session, target)

    return write


def export_notice(session: Session, kind: str, written: Path, from_start: bool) -> tuple[str, str, float | None]:
    """(message, severity, timeout) of the notification once an export is written (`from_start`: the script
    starts from the weights of step 0)."""
    where = Path(written).resolve()
    if kind != "script":
        return f"written: {where}", "information", None
    if from_start:
        return (f"written: {where}: it trains from step 0 with the weights this history began from, and prints the "
                "same losses as the app"), "information", 8
    return (f"written: {where}: it trains from the current weights (step {session.step}; the weights of step 0 "
            "are not known for this session) with a fresh optimizer"), "warning", 8
