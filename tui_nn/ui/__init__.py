"""The Textual app (`tui-nn` and `tui-nn PRESET`). Importing this package does not import torch."""

from __future__ import annotations


def run_app(preset_path: str | None = None) -> int:
    """Open the playground on a preset (a file path or a bundled preset name), or on a small scratch
    network when `preset_path` is None. Returns the exit status."""
    from .app import PlaygroundApp

    import sys

    app = PlaygroundApp(preset_path)
    result = app.run()
    if app.saved_on_quit:
        print(f"tui-nn: the session was autosaved to {app.saved_on_quit} (tui-nn FILE reopens it)", file=sys.stderr)
    return int(result or 0) if app.return_code is None else int(app.return_code)


__all__ = ["run_app"]
