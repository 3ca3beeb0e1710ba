"""Every text the app shows goes through here: control characters and bidi overrides escaped
(`tui_nn.engine.text.printable`: ESC is shown as the four characters `\\x1b`), never read as markup.

A preset's name, description and lab, layer types, loss and device names, CSV headers, file names, run labels and
the error messages quoting any of them come from files anyone can write: written raw, an escape sequence in them
would reach the terminal (set its title, write its clipboard). The choke points:

- `Text`, the Rich Text the app's modules build their texts with: every string that goes in is made printable;
- `Shown`, the app's Static (markup off): what it is given, a string or a Rich Text, is made printable when
  it is set (`Shown(..., line=True)`: a single line, newlines and tabs become spaces);
- `cell` / `safe_text` for what is put on screen otherwise (table cells, list options, border titles, input
  fields, Strips drawn by hand);
- `PlaygroundApp.notify` (every notification) and its title and sub-title validators.
"""

from __future__ import annotations

from typing import Any

from rich.text import Span
from rich.text import Text as RichText
from textual.widgets import Static

from tui_nn.engine.text import is_printable, printable

__all__ = ["Shown", "Text", "cell", "line", "safe_text", "shown"]


def shown(text: Any) -> str:
    """Multi-line text, printable (newlines and tabs kept)."""
    return printable(text)


def line(text: Any) -> str:
    """Single-line text, printable (newlines and tabs become spaces)."""
    return printable(text, keep_newlines=False)


def _escaped(plain: str, spans: list[Span], keep: bool) -> tuple[str, list[Span]]:
    """`plain` made printable, and `spans` moved with the characters they cover."""
    pieces: list[str] = []
    starts: list[int] = []  # starts[i]: where character i of `plain` starts in the new text
    at = 0
    for ch in plain:
        starts.append(at)
        piece = printable(ch, keep_newlines=keep)
        pieces.append(piece)
        at += len(piece)
    starts.append(at)
    end = len(plain)
    return "".join(pieces), [Span(starts[min(s.start, end)], starts[min(s.end, end)], s.style) for s in spans]


def safe_text(value: Any, *, one_line: bool = False) -> Any:
    """A string, or a Rich Text with its styles kept (spans moved with the characters), made printable; anything
    else (a Visual, a Rich renderable that is not text) is returned as it is."""
    keep = not one_line
    if isinstance(value, str):
        return printable(value, keep_newlines=keep)
    if not isinstance(value, RichText) or is_printable(value.plain, keep_newlines=keep):
        return value
    plain, spans = _escaped(value.plain, value.spans, keep)
    return RichText(plain, style=value.style, justify=value.justify, overflow=value.overflow, no_wrap=value.no_wrap,
                    end=value.end, tab_size=value.tab_size, spans=spans)


def cell(value: Any) -> Any:
    """For a single-line place (a table cell, a list option, a border title): `safe_text(value, one_line=True)`."""
    return safe_text(value, one_line=True)


class Text(RichText):
    """Rich's Text for the app's own code (its modules import this one): every string that goes in, through the
    constructor, `append` or `assemble`, is made printable first. (Rich itself silently drops BEL, backspace, VT,
    FF and CR and keeps ESC; here all of them are shown as escapes, as the command line shows them.)"""

    def __init__(self, text: str = "", style: Any = "", **kw: Any) -> None:
        if not is_printable(text):
            text, spans = _escaped(text, kw.get("spans") or [], True)
            if kw.get("spans"):
                kw["spans"] = spans
        super().__init__(text, style, **kw)

    def append(self, text: Any, style: Any = None) -> "Text":
        if isinstance(text, str):
            text = printable(text)
        else:
            text = safe_text(text)
        super().append(text, style)
        return self

    def append_text(self, text: RichText) -> "Text":
        super().append_text(safe_text(text))
        return self


class Shown(Static):
    """The app's Static: markup off, and every content it is given (at construction and by `update`) made
    printable; `line=True` for a single-line place (a title, a status line)."""

    def __init__(self, content: Any = "", *, line: bool = False, **kw: Any) -> None:
        kw["markup"] = False
        self._one_line = line
        super().__init__(safe_text(content, one_line=line), **kw)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        super().update(safe_text(content, one_line=self._one_line), layout=layout)
