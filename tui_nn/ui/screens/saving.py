"""The save and export flows behind ctrl+s and E: the dialog (screens/dialogs.py), the target's checks and the
work (ui/files.py), the writing in the host's engine worker and what is said when it is done. They act through
the app's `EditHost` interface (ui/host.py)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tui_nn import engine

from .. import files
from .dialogs import ExportModal, SaveModal

if TYPE_CHECKING:
    from tui_nn.engine import Session

    from ..host import EditHost


class Saving:
    """Saving a preset or a session (.tuinn) and exporting (a PyTorch script, the loss history, a screenshot)."""

    def __init__(self, host: EditHost) -> None:
        self.host = host

    @property
    def session(self) -> Session:
        assert self.host.session is not None  # the keys act only once a session is open
        return self.host.session

    def save(self) -> None:
        """ctrl+s: a preset file, or a session file (its suffix, or the dialog's format, says which)."""
        host = self.host
        if host.refuse("save"):
            return
        s = self.session

        def apply(path: str, with_weights: bool, fmt: str = "preset") -> str | None:
            if fmt == "session" or files.is_session_file(path):
                return self.save_session_to(path)
            error = files.save_preset_to(s, path, with_weights)
            if error is None:
                host.notify(f"saved {Path(path).expanduser()}", markup=False)
            return error

        host.push_screen(SaveModal(files.save_default(s), apply))

    def save_session_to(self, path: str) -> str | None:
        """Save the whole session (a .tuinn file) in a worker; returns a refusal or None."""
        host = self.host
        reason = host.busy_reason()
        if reason:
            return reason
        target = files.session_target(path)
        if isinstance(target, str):
            return target

        def done(written: Path) -> None:
            host.session_path = str(written)
            host.notify(f"session saved: {written}", markup=False)

        host.engine_op("save the session", partial(engine.save_session, self.session, target), then=done)
        return None

    def export(self, kind: str = "script") -> None:
        if self.host.refuse("export"):
            return
        self.host.push_screen(ExportModal(files.export_defaults(self.session), self.export_to, kind))

    def export_to(self, kind: str, path: str) -> str | None:
        host = self.host
        reason = host.busy_reason()
        if reason:
            return reason
        target = files.export_target(path)
        if isinstance(target, str):
            return target
        if kind == "svg":
            def shoot() -> None:
                written = host.save_screenshot(filename=target.name, path=str(target.parent.resolve()))
                host.notify(f"screenshot written: {written}", markup=False)

            host.call_after_refresh(shoot)  # once the dialog is gone: the screen itself
            return None
        s = self.session
        from_start = s.has_start_weights

        def written(p: Path) -> None:
            message, severity, timeout = files.export_notice(s, kind, p, from_start)
            host.notify(message, markup=False, severity=severity, timeout=timeout)

        host.engine_op("export", files.export_job(s, kind, target, from_start), then=written)
        return None
