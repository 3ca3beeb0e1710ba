"""The Textual app (`tui-nn` and `tui-nn PRESET`). Importing this package does not import torch."""

from __future__ import annotations


def run_app(preset_path: str | None = None) -> int:
    """Open the playground on a preset (a file path or a bundled preset name), or on a small scratch
    network when `preset_path` is None. Returns the exit status."""
    import gc
    import sys

    # Start-up leaves ~3 x 10^5 long-lived objects (Textual, torch imported behind the first frame, our modules); a
    # full collection over them stalls the UI for ~180 ms on the lab VM, and Python runs one whenever enough new
    # objects pile up. Collection is held until the first load is done, then those objects are frozen (gc.freeze:
    # never scanned again; a full collection then takes 0.1 ms) and it resumes (PlaygroundApp._first_load_thread).
    gc.disable()
    from .splash import Splash

    splash = Splash()
    shown = splash.show(preset_path)  # the first frame now; importing Textual takes 0.4-0.57 s here
    try:
        from .app import PlaygroundApp

        app = PlaygroundApp(preset_path)
    except KeyboardInterrupt:
        if shown:
            splash.abandon()
        return 130
    except BaseException:
        if shown:
            splash.abandon()
        raise
    splash.restore_echo()
    app.gc_held = True
    result = app.run()
    if app.saved_on_quit:
        from tui_nn.engine.text import printable  # the path holds a preset's file name

        print(printable(f"tui-nn: the session was autosaved to {app.saved_on_quit} (tui-nn FILE reopens it)"),
              file=sys.stderr)
    return int(result or 0) if app.return_code is None else int(app.return_code)


__all__ = ["run_app"]
