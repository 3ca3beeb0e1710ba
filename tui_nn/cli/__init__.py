"""The `tui-nn` command: the app by default, headless subcommands (`entry.py`)."""

from .entry import main

__all__ = ["main"]
