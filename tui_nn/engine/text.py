"""Text from outside (a preset, a session file, a CSV header, a file name, an error quoting any of them) made safe
to show on a terminal: the one function every display of such text goes through, in the command line and the app.

Pure Python: no torch, no Textual, no Rich (the command line and the app's first frame import it cheaply).
"""

from __future__ import annotations

import re

from .errors import sci

# The bidirectional embeddings, overrides and isolates ("Trojan Source": they reorder what is shown).
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Invisible characters that move text: the left-to-right and right-to-left marks, the line and paragraph separators.
MOVERS = "\u200e\u200f\u2028\u2029"

# The one definition of a control character, for what is shown (escaped) and what is refused (names, paths).
_CLASS = "\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE = re.compile(f"[{_CLASS}]")
_UNSAFE_BUT_LINES = re.compile(f"(?![\t\n])[{_CLASS}]")


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_UNSAFE_CODES = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *map(ord, BIDI_CONTROLS), *map(ord, MOVERS),
                 *range(0xD800, 0xE000)]
_TABLE: dict[int, str] = {code: _visible(code) for code in _UNSAFE_CODES if code not in (0x09, 0x0A)}
_TABLE_LINE: dict[int, str] = {**_TABLE, 0x09: " ", 0x0A: " "}  # a single line: tab and newline become spaces

MAX_GROWTH = 6  # the longest replacement, "\udc80", is 6 characters for 1


def printable(text: object, *, keep_newlines: bool = True) -> str:
    """`text` (str() of it if it is not a str) safe to write to a terminal.

    Replaced, each by a visible escape of its code point (`\\x` and two hex digits below U+0100, else `\\u` and
    four, as Python writes them: ESC becomes the four characters `\\x1b`, U+202E the six `\\u202e`):

    - the C0 controls U+0000-U+001F (ESC, BEL, CR, backspace, ...), except newline and tab;
    - DEL (U+007F) and the C1 controls U+0080-U+009F (U+009B is a one-byte CSI, U+009D an OSC);
    - the bidirectional embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069 ("Trojan Source"),
      the left-to-right and right-to-left marks U+200E/U+200F and the line and paragraph separators U+2028/U+2029;
    - lone surrogates U+D800-U+DFFF (a file name that is not UTF-8), which cannot be written to a terminal.

    With `keep_newlines=False` (a single-line place: a status line, a table cell, a title, a list row) newline
    and tab become one space each; otherwise they stay. Nothing else changes: ordinary text, other Unicode
    included, comes back unchanged (the same object). The result holds none of the characters above (besides
    newline and tab when kept), so printable(printable(t)) == printable(t), and it is at most MAX_GROWTH
    times as long as `text`. A backslash is not escaped: the text `\\x1b` typed as such looks like an
    escaped ESC, and says the same.
    """
    if not isinstance(text, str):
        text = str(text)
    pattern = _UNSAFE if not keep_newlines else _UNSAFE_BUT_LINES
    if pattern.search(text) is None:
        return text
    return text.translate(_TABLE_LINE if not keep_newlines else _TABLE)


def printable_line(text: object) -> str:
    """printable(text, keep_newlines=False): for a single-line place."""
    return printable(text, keep_newlines=False)


def first_control(text: str, *, allow: str = "") -> re.Match[str] | None:
    """The first control character of `text` (as `printable` defines them), but those in `allow`, as a match
    (`.group()`, `.start()`); None when there is none. What a loader refuses in names, labels and paths."""
    for m in _UNSAFE.finditer(text):
        if m.group() not in allow:
            return m
    return None


def bounded(text: object, limit: int, *, keep_newlines: bool = True) -> str:
    """printable(text), at most `limit` characters (then "..."): text from a file shown in a bounded place."""
    text = text if isinstance(text, str) else str(text)
    out = printable(text[:limit], keep_newlines=keep_newlines)
    return out if len(text) <= limit else out + "..."


def is_printable(text: str, *, keep_newlines: bool = True) -> bool:
    """True when printable(text, keep_newlines=...) would return `text` unchanged."""
    return (_UNSAFE_BUT_LINES if keep_newlines else _UNSAFE).search(text) is None


def fmt_bytes(n: float) -> str:
    """Bytes in the largest binary unit below 1024 of it (KiB = 1,024 B, MiB = 1,024 KiB, ...), up to PiB; a need
    of a million PiB or more as "6.81e+9332 bytes" (a product of huge sizes can have thousands of digits: neither
    str() nor float() takes it)."""
    if abs(n) >= 10**6 * 1024**5:
        return f"{sci(n) if isinstance(n, int) else f'{n:.3g}'} bytes"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _bytes_text(n: int) -> str:
    """"123456 bytes (120.6 KiB)": the exact count and its size; a count of more than 39 digits only as
    fmt_bytes writes it ("6.81e+9332 bytes": such a count can have thousands of digits)."""
    return f"{n} bytes ({fmt_bytes(n)})" if n.bit_length() <= 128 else fmt_bytes(n)


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "[" + ", ".join(str(s) for s in shape) + "]"


def _times(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


__all__ = ["BIDI_CONTROLS", "MAX_GROWTH", "MOVERS", "bounded", "first_control", "is_printable", "printable",
           "printable_line"]
