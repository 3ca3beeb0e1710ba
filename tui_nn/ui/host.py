"""The app as the regions' edits and reports see it: a small explicit interface (`EditHost`), so that
widgets/layer_edits.py, widgets/tensor_edits.py, screens/reports.py and screens/saving.py act on the session
without reaching into the app's private methods. ui/app.py implements it; no Textual is imported here at run
time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.screen import Screen

    from tui_nn.engine import Session, UndoStack


class EditHost(Protocol):
    """What an edit needs from the app: the session and its undo stack, the run rules, a worker for the engine
    work, and the redraw after a change (ui/app.py implements it)."""

    session: Session | None
    undo_stack: UndoStack | None
    session_path: str | None  # the .tuinn file the session was opened from or saved to

    def refuse(self, what: str, retry: Callable[[], None] | None = None) -> bool: ...

    def busy_reason(self) -> str | None: ...

    def engine_op(self, label: str, fn: Callable[[], Any], then: Callable[[Any], None] | None = None,
                  undo: Callable[[], None] | None = None, select: str | None = None) -> None: ...

    def changed(self, select: str | None = None) -> None: ...

    def selected_path(self) -> str | None: ...

    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], Any] | None = None) -> Any: ...

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...

    def call_later(self, callback: Callable[..., Any], *args: Any) -> bool: ...

    def call_after_refresh(self, callback: Callable[..., Any], *args: Any) -> bool: ...

    def save_screenshot(self, filename: str | None = None, path: str | None = None,
                        time_format: str | None = None) -> str: ...

    def action_show_tab(self, name: str) -> None: ...
