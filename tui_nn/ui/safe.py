"""Every text the app shows goes through here: control characters and bidi overrides escaped
(`tui_nn.engine.safe_text.printable`: ESC is shown as the four characters `\\x1b`), never read as markup.

A preset's name, description and lab, layer types, loss and device names, CSV headers, file names, run labels and
the error messages quoting any of them come from files anyone can write: written raw, an escape sequence in them
would reach the terminal (set its title, write its clipboard). The choke points:

- `Shown`, the app's Static (markup off): what it is given, a string or a Rich Text, is made printable when
  it is set (`Shown(..., line=True)`: a single line, newlines and tabs become spaces);
- `cell` / `safe_text` for what is put on screen otherwise (table cells, list options, border titles, input
  fields, Strips drawn by hand);
- `PlaygroundApp.notify` (every notification) and its title and sub-title validators.
"""

from __future__ import annotations

from typing import Any

from rich.text import Span, Text
from textual.widgets import Static

from tui_nn.engine.safe_text import is_printable, printable

__all__ = ["Shown", "cell", "line", "safe_text", "shown"]


def shown(text: Any) -> str:
    """Multi-line text, printable (newlines and tabs kept)."""
    return printable(text)


def line(text: Any) -> str:
    """Single-line text, printable (newlines and tabs become spaces)."""
    return printable(text, keep_newlines=False)


def safe_text(value: Any, *, one_line: bool = False) -> Any:
    """A string, or a Rich Text with its styles kept (spans moved with the characters), made printable; anything
    else (a Visual, a Rich renderable that is not text) is returned as it is."""
    keep = not one_line
    if isinstance(value, str):
        return printable(value, keep_newlines=keep)
    if not isinstance(value, Text) or is_printable(value.plain, keep_newlines=keep):
        return value
    plain = value.plain
    pieces: list[str] = []
    starts: list[int] = []  # starts[i]: where character i of `plain` starts in the new text
    at = 0
    for ch in plain:
        starts.append(at)
        piece = printable(ch, keep_newlines=keep)
        pieces.append(piece)
        at += len(piece)
    starts.append(at)
    spans = [Span(starts[s.start], starts[min(s.end, len(plain))], s.style) for s in value.spans]
    out = Text("".join(pieces), style=value.style, justify=value.justify, overflow=value.overflow,
               no_wrap=value.no_wrap, end=value.end, tab_size=value.tab_size)
    out.spans = spans
    return out


def cell(value: Any) -> Any:
    """For a single-line place (a table cell, a list option, a border title): `safe_text(value, one_line=True)`."""
    return safe_text(value, one_line=True)


class Shown(Static):
    """The app's Static: markup off, and every content it is given (at construction and by `update`) made
    printable; `line=True` for a single-line place (a title, a status line)."""

    def __init__(self, content: Any = "", *, line: bool = False, **kw: Any) -> None:
        kw["markup"] = False
        self._one_line = line
        super().__init__(safe_text(content, one_line=line), **kw)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        super().update(safe_text(content, one_line=self._one_line), layout=layout)
