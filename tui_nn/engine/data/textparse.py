"""Reading a tensor typed or pasted as text, without eval.

Accepted forms (whitespace is free everywhere):

* one number: ``0.5``
* rows of numbers: rows separated by newlines or ``;``, numbers by spaces or commas
  (``1 2; 3 4``, ``1, 2\\n3, 4``); one row gives a 1-D list
* nested lists as Python prints them: ``[[1, 2], [3, 4]]``; numpy's comma-less form
  ``[[1. 2.]\\n [3. 4.]]`` too
* PyTorch's and numpy's printouts: ``tensor([[0.1, 0.2]], requires_grad=True)``,
  ``Parameter containing:\\ntensor([...])``, ``array([[1., 2.]])``, ``tensor(0.5)``

The result is a float or a nested list of floats (rectangular). Anything else raises `WeightError`
with the reason and where it happened. The tokenizer is written by hand: nothing is evaluated.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

from ..errors import WeightError
from ..model.catalogue import FLOAT32_MAX  # the largest float32; larger numbers become Inf in a float32 tensor

MAX_TEXT_CHARS = 64 * 1024 * 1024
MAX_ELEMENTS = 10_000_000
MAX_DEPTH = 8

_NUMBER = re.compile(r"[+-]?(?:\d+(?:_\d+)*\.?\d*(?:_\d+)*|\.\d+)(?:[eE][+-]?\d+)?")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
# "Parameter containing:" and a call such as "tensor(", "torch.tensor(", "np.array(" before the data
_PREFIX = re.compile(r"\s*(?:Parameter\s+containing\s*:\s*)?(?:[A-Za-z_][A-Za-z0-9_.]*\s*\(\s*)?")


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


def _number(token: str, text: str, pos: int) -> float:
    tok = token.replace("\u2212", "-")  # a typographic minus sign, as pasted from documents
    if _NONFINITE.fullmatch(tok):
        raise WeightError(f"{token!r} at {_where(text, pos)}: NaN or Inf is not allowed")
    if not _NUMBER.fullmatch(tok):
        raise WeightError(f"{token!r} at {_where(text, pos)} is not a number")
    value = float(tok.replace("_", ""))
    if not math.isfinite(value):
        raise WeightError(f"{token!r} at {_where(text, pos)} is too large (it overflows to Inf)")
    if abs(value) > FLOAT32_MAX:  # parameters and data are float32: finite here, Inf there
        raise WeightError(f"{token!r} at {_where(text, pos)} is too large for float32 (it would become Inf; "
                          f"at most about {FLOAT32_MAX:.4g})")
    return value


def _fast_number(token: str, text: str, m: re.Match[str]) -> float:
    """`_number` for a token of the tokenizer's match `m`: float() first, the checks and the position only when
    it is not a plain float32-sized number (NaN and Inf fail both comparisons)."""
    try:
        value = float(token)
    except ValueError:
        return _number(token, text, m.start())
    if -FLOAT32_MAX <= value <= FLOAT32_MAX:
        return value
    return _number(token, text, m.start())


_TOKEN = re.compile(r"[\[\](),;\n]|[^\s\[\](),;]+")
_BRACKET = re.compile(r"[\[\]]")


def _tokens(text: str, start: int, end: int) -> Iterator[tuple[str, int]]:
    """Split text[start:end] into brackets, separators and number-like words, with positions.

    A generator (and a regular expression): a bad token or too many numbers stop the parse there, without
    first splitting the whole text (up to MAX_TEXT_CHARS) in Python."""
    for m in _TOKEN.finditer(text, start, end):
        yield m.group(), m.start()


def _count(n: int, word: str) -> str:
    plural = word[:-1] + "ies" if word.endswith("y") else word + "s"
    return f"{n} {word if n == 1 else plural}"


def _check_count(n: int) -> None:
    if n > MAX_ELEMENTS:
        raise WeightError(f"too many numbers (more than {MAX_ELEMENTS})")


def _shape_of(value: Any, text: str) -> None:
    """Raise unless `value` (nested lists of floats) is rectangular."""
    level = [value]
    depth = 0
    while isinstance(level[0], list):
        n = len(level[0])
        for i, item in enumerate(level):
            if not isinstance(item, list):
                raise WeightError(f"mixed numbers and lists at depth {depth}: every entry at one depth must be of "
                                  f"the same kind")
            if len(item) != n:
                raise WeightError(f"rows of different lengths at depth {depth}: row {i + 1} has "
                                  f"{_count(len(item), 'entry')} but row 1 has {n}")
        level = [x for item in level for x in item]
        depth += 1
        if not level:
            return
    for item in level:
        if isinstance(item, list):
            raise WeightError(f"mixed numbers and lists at depth {depth}: every entry at one depth must be of "
                              f"the same kind")


def _parse_nested(text: str, open_pos: int) -> tuple[Any, int]:
    """Parse the bracketed list that starts at text[open_pos] == '['; returns (value, index after ']')."""
    # find the matching bracket first, so the tokenizer only sees the list
    depth = 0
    close = -1
    for b in _BRACKET.finditer(text, open_pos):
        c, k = b.group(), b.start()
        if c == "[":
            depth += 1
            if depth > MAX_DEPTH:
                raise WeightError(f"nested more than {MAX_DEPTH} levels deep (at {_where(text, k)})")
        elif c == "]":
            depth -= 1
            if depth == 0:
                close = k
                break
    if close < 0:
        raise WeightError(f"the '[' at {_where(text, open_pos)} is never closed")
    stack: list[list[Any]] = []
    result: Any = None
    count = 0
    expect_item = True  # after '[' or ',' an item is due; after an item a separator (',' or space) or ']'
    for m in _TOKEN.finditer(text, open_pos, close + 1):  # the position (m.start()) only for an error
        tok = m.group()
        if tok == "[":
            # numpy prints "[1. 2.]\n [3. 4.]" without commas between rows: no separator needed
            new: list[Any] = []
            if stack:
                stack[-1].append(new)
            stack.append(new)
            expect_item = True
        elif tok == "]":
            if not stack:  # pragma: no cover - the matching bracket was found above
                raise WeightError(f"unexpected ']' at {_where(text, m.start())}")
            done = stack.pop()
            if not stack:
                result = done
            expect_item = False
        elif tok == ",":
            if expect_item:
                raise WeightError(f"unexpected ',' at {_where(text, m.start())}: a number or a '[' is missing")
            expect_item = True
        elif tok == "\n":
            continue
        elif tok in "();":
            raise WeightError(f"unexpected {tok!r} at {_where(text, m.start())} inside a list")
        else:
            stack[-1].append(_fast_number(tok, text, m))
            count += 1
            if count > MAX_ELEMENTS:
                _check_count(count)
            expect_item = False
    _shape_of(result, text)
    return result, close + 1


_NOT_PLAIN = re.compile(r"[,\[\]()]")


def _plain_rows(text: str, start: int, end: int) -> list[list[float]] | None:
    """Rows of whitespace-separated numbers (rows split by newlines or ';'), read with str.split and float():
    about ten times faster than the tokenizer on a large paste. None when the text has commas or brackets, or a
    word that is not a plain float32-sized number: `_parse_rows` then reads it and words the error."""
    if _NOT_PLAIN.search(text, start, end):
        return None
    rows: list[list[float]] = []
    count = 0
    for line in text[start:end].replace(";", "\n").split("\n"):
        words = line.split()
        if not words:
            continue
        count += len(words)
        if count > MAX_ELEMENTS:
            _check_count(count)
        try:
            row = list(map(float, words))
        except ValueError:
            return None
        if not all(-FLOAT32_MAX <= v <= FLOAT32_MAX for v in row):  # NaN and Inf fail too
            return None
        rows.append(row)
    return rows


def _parse_rows(text: str, start: int, end: int) -> Any:
    rows: list[list[float]] = []
    row: list[float] = []
    count = 0
    last_comma = False
    plain = _plain_rows(text, start, end)
    if plain is not None:
        rows = plain
    for m in _TOKEN.finditer(text, start, end) if plain is None else ():
        tok = m.group()
        if tok in ";\n":
            if last_comma:
                raise WeightError(f"a number is missing after the ',' before {_where(text, m.start())}")
            if row:
                rows.append(row)
            row = []
        elif tok == ",":
            if not row or last_comma:
                raise WeightError(f"unexpected ',' at {_where(text, m.start())}: a number is missing")
            last_comma = True
            continue
        elif tok in "[]()":
            raise WeightError(f"unexpected {tok!r} at {_where(text, m.start())}")
        else:
            row.append(_fast_number(tok, text, m))
            count += 1
            if count > MAX_ELEMENTS:
                _check_count(count)
        last_comma = False
    if last_comma:
        raise WeightError("a number is missing after the last ','")
    if row:
        rows.append(row)
    if not rows:
        raise WeightError("no numbers found")
    n = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != n:
            raise WeightError(f"rows of different lengths: row {i + 1} has {_count(len(r), 'number')} but row 1 "
                              f"has {n}")
    if len(rows) == 1:
        return rows[0][0] if n == 1 else rows[0]
    return rows


def parse_tensor_text(text: str) -> Any:
    """A float or rectangular nested list of floats from `text` (see the module docstring).

    Raises WeightError with the reason (and the line/column where it applies).
    """
    if not isinstance(text, str):
        raise WeightError(f"expected text; got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise WeightError(f"text too long ({len(text)} characters; at most {MAX_TEXT_CHARS})")
    if not text.strip():
        raise WeightError("nothing to read: type numbers, e.g. 1 2; 3 4 or [[1, 2], [3, 4]]")
    first = text.find("[")
    m = _PREFIX.match(text)
    prefix_end = m.end() if m else 0
    called = m is not None and "(" in text[:prefix_end]
    if first >= 0:
        if first != prefix_end:
            bad = text[prefix_end:first].strip() or text[prefix_end:first]
            raise WeightError(f"unexpected text {bad[:30]!r} before the '[' at {_where(text, first)}")
        value, after = _parse_nested(text, first)
        rest = text[after:]
        stripped = rest.strip()
        if called:
            # "tensor([...], requires_grad=True)": keyword arguments after the data are ignored
            if not stripped.startswith((",", ")")):
                raise WeightError(f"unexpected text {stripped[:30]!r} after the list at {_where(text, after)}")
            if not stripped.endswith(")"):
                raise WeightError("the '(' is never closed")
        elif stripped:
            raise WeightError(f"unexpected text {stripped[:30]!r} after the list at {_where(text, after)}")
        return value
    if called:
        # "tensor(0.5)" or "tensor(0.5, requires_grad=True)"
        inner = text[prefix_end:]
        close = inner.rfind(")")
        if close < 0:
            raise WeightError("the '(' is never closed")
        body = inner[:close].split(",")[0]
        tail = inner[close + 1:].strip()
        if tail:
            raise WeightError(f"unexpected text {tail[:30]!r} after ')'")
        word = body.strip()
        if not word:
            raise WeightError("no numbers found inside the parentheses")
        return _number(word, text, prefix_end + inner.find(word))
    if "]" in text:
        pos = text.find("]")
        raise WeightError(f"unexpected ']' at {_where(text, pos)}: there is no matching '['")
    return _parse_rows(text, 0, len(text))


def shape_of(value: Any) -> tuple[int, ...]:
    """The shape of a value returned by `parse_tensor_text`."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


__all__ = ["parse_tensor_text", "shape_of"]
