"""Start-up, in one place: what comes before what, so that the screen answers at once (docs/performance.md,
start-up; the first frame before torch and Textual's widgets are imported).

1. `run_app` (ui/__init__.py) holds the garbage collector and the splash (ui/splash.py) draws the first frame
   before Textual is imported; the app's `compose` then draws the same frame with Textual (`SKELETON_TABS`,
   `opening_note`) and Textual's first paint covers the splash.
2. Right after that frame, `import_parts` imports the widgets and screens (ui/parts.py: numpy, plotext, ours);
   the app reaches them as `parts.LayerTable`, ... and builds its tabs.
3. The load worker shows the preset's `preview` (read without torch, shapes by arithmetic), then starts the
   trainer process (`prestart_trainer`: it imports torch on the other core), then imports torch and builds the
   session; behind the first interactive frame, `warm_optimizer` pays the first optimizer's imports, reads the bundled
   presets for the picker and starts the runner; `release_gc` then freezes what start-up loaded.

Only this module defers imports; the rest of ui/ imports at module top, the engine through `tui_nn.engine`,
whose names load when first used.
"""

from __future__ import annotations

import gc
import importlib
from typing import TYPE_CHECKING

from tui_nn import engine

from . import splash

if TYPE_CHECKING:
    from tui_nn.engine import Preset
    from tui_nn.engine.shapes.rules import PreviewRow

    from . import parts
else:
    class _Parts:
        """ui/parts.py's names, once `import_parts` has run (before: AttributeError)."""

    parts = _Parts()

SKELETON_TABS = splash.TABS  # the first frame's tab line (splash.py draws it before Textual is imported)
PREVIEW_NOTE = "loading PyTorch…"  # the status line's note while the preset's preview is shown
SESSION_SUFFIX = ".tuinn"  # engine.SUFFIX, known here without torch (engine/files/session_file.py imports it)
opening_note = splash.opening_note


def import_parts() -> None:
    """After the first frame: the widgets and screens (about 0.4 s on the lab VM)."""
    module = importlib.import_module(".parts", __package__)
    vars(parts).update({name: getattr(module, name) for name in module.__all__})


def is_session_path(path: str | None) -> bool:
    return bool(path) and path.strip().endswith(SESSION_SUFFIX)


def preview(path: str | None) -> tuple[Preset, list[PreviewRow]] | None:
    """In the load worker, before torch is imported (~2 s on the lab VM): the preset read without the checks
    that need torch, and its layers with the shapes and parameter counts arithmetic gives; None for a session
    file or when the preset cannot be read (the real load says what is wrong)."""
    if is_session_path(path):
        return None
    try:
        preset = engine.load_preset(path, checked=False) if path else engine.scratch_preset()
        return preset, engine.preview(preset.model, engine.preview_input_shape(preset))
    except Exception:  # noqa: BLE001 - no preview
        return None


def prestart_trainer() -> None:
    """Once the preview is on screen, before this process imports torch: the trainer process, which imports
    torch itself (about 4 s with torch._dynamo), on the other core meanwhile; the runner adopts it
    (engine/training/process.py). Started earlier, it slowed the preview (2 cores)."""
    from tui_nn.engine.training import (
        process,  # no torch; multiprocessing, not needed for the first frame
    )

    if process.wants_process():
        try:
            process.prestart()
        except Exception:  # noqa: BLE001, S110 - the runner starts its own when a run needs it, and says what fails
            pass


def discard_trainer() -> None:
    """When the app ends: a trainer process started at the first frame that no runner took."""
    from tui_nn.engine.training import process

    process.discard()


def warm_optimizer() -> None:
    """The first optimizer of a process imports torch._dynamo (about a second): a throwaway one takes that cost
    behind the first interactive frame, not the first step."""
    try:
        import torch

        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    except Exception:  # noqa: BLE001, S110 - only a head start; the real optimizer reports its own errors
        pass


def bundled() -> list[tuple[str, str, Preset | Exception]]:
    """The bundled presets for the picker: (stem, path, preset or the error reading it)."""
    presets: list[tuple[str, str, Preset | Exception]] = []
    for p in engine.bundled_presets():
        try:
            presets.append((p.stem, str(p), engine.load_preset(p)))
        except engine.EngineError as err:
            presets.append((p.stem, str(p), err))
    return presets


def release_gc() -> None:
    """run_app held the collector for start-up (ui/__init__.py): freeze what is alive (never scanned again)
    and resume it."""
    gc.freeze()
    gc.enable()
