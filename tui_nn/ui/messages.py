"""Messages the workers post to the app (they are thread-safe to post)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from textual.message import Message

if TYPE_CHECKING:
    from tui_nn.engine import DeviceInfo, Finished, Preset, Progress, Session
    from tui_nn.engine.shapes.rules import PreviewRow


class SessionLoaded(Message):
    """A preset was loaded and its session built (in a worker)."""

    def __init__(self, session: Session | None, devices: list[DeviceInfo], note: str = "",
                 presets: list[tuple[str, str, Any]] | None = None, session_path: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.devices = devices
        self.note = note
        self.presets = presets
        self.session_path = session_path  # the .tuinn file the session was opened from, if any


class PresetPreview(Message):
    """The preset read, before torch has loaded: its layers with the shapes arithmetic gives (a worker)."""

    def __init__(self, preset: Preset, rows: list[PreviewRow]) -> None:
        super().__init__()
        self.preset = preset
        self.rows = rows


class PresetsListed(Message):
    """The bundled presets, loaded behind the first frame (for the picker and the palette)."""

    def __init__(self, presets: list[tuple[str, str, Any]]) -> None:
        super().__init__()
        self.presets = presets


class LoadFailed(Message):
    """A preset could not be loaded; `message` is shown literally."""

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.title = title
        self.message = message
        self.hint = hint


class TrainProgress(Message):
    """A progress report from the trainer (at most ~15 per second), with a consistent copy of the
    loss history taken in the training thread."""

    def __init__(self, progress: Progress, series: tuple[Any, ...]) -> None:
        super().__init__()
        self.progress = progress
        self.series = series


class TrainFinished(Message):
    def __init__(self, finished: Finished) -> None:
        super().__init__()
        self.finished = finished


class TrainFailed(Message):
    """Training could not start (shape error, no targets) or the worker itself failed."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__()
        self.message = message
        self.hint = hint


class EngineDone(Message):
    """An engine operation run off the UI thread finished."""

    def __init__(self, label: str, result: Any, then: Callable[[Any], None] | None) -> None:
        super().__init__()
        self.label = label
        self.result = result
        self.then = then


class EngineFailed(Message):
    def __init__(self, label: str, error: BaseException, undo: Callable[[], None] | None) -> None:
        super().__init__()
        self.label = label
        self.error = error
        self.undo = undo
