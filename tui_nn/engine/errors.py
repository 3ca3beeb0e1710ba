"""Errors as values.

Everything the engine can refuse is described by one of these, so the UI and the command line
can show it (layer index, PyTorch's own message, a plain-language hint, a concrete fix) instead
of a traceback.
"""

from __future__ import annotations

import datetime
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

# ---------------------------------------------------------------------------------------------
# user values in error texts: one formatter, display-safe and bounded whatever the value

SHOWN = 60  # characters of a user value an error message quotes
_NAME_SHOWN = 40  # characters of a user-given name (a key, a layer type) quoted in double quotes
_DEPTH_SHOWN = 6  # nesting levels of a list or table shown; deeper ones are "[...]"
_BIG_INT_BITS = 128  # larger integers are written as about m.mme+N (str() of 4300+ digits raises ValueError)


def sci(n: int) -> str:
    """An integer of any size as "6.81e+9332" (3 significant digits); Python takes the log of a big int
    directly, so nothing of its size is written out."""
    if n == 0:
        return "0"
    exp10 = math.log10(abs(n))
    exp = math.floor(exp10)
    mant = round(10 ** (exp10 - exp), 2)
    if mant >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{'-' if n < 0 else ''}{mant:.2f}e+{exp}"


def int_text(n: int) -> str:
    """An integer as text, whatever its size: exact up to 2**128 (39 digits), beyond as "about 1.00e+5000"
    (Python refuses to write integers of more than 4300 digits, and writing them is slow anyway)."""
    return str(n) if n.bit_length() <= _BIG_INT_BITS else f"about {sci(n)}"


def _escape(ch: str) -> str:
    """A character that is not shown as itself (a control character, a quote, a backslash) as an escape."""
    if ch in '"\\':
        return "\\" + ch
    n = ord(ch)  # as safe_text.printable writes them: \x1b, \x0a, \u202e
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def brief(value: Any, limit: int = SHOWN) -> str:
    """A user value as an error message quotes it: repr-like, as TOML writes values ('abc', [1, 2], true,
    {a = 1}), control characters escaped, at most `limit` characters (then "..."), and safe for any value:
    lists and tables nested to any depth (no recursion beyond _DEPTH_SHOWN levels), integers of any size
    (`int_text`), strings of any length (cut before they are escaped). The work is bounded by `limit`, not
    by the value's size."""
    parts: list[str] = []
    room = [limit + 4]

    def emit(text: str) -> None:
        parts.append(text)
        room[0] -= len(text)

    def walk(v: Any, depth: int) -> None:
        if room[0] <= 0:
            return
        if isinstance(v, str):
            emit(repr(v[:room[0] + 1]))
        elif isinstance(v, bool):
            emit("true" if v else "false")  # as the file writes it
        elif v is None or isinstance(v, float):
            emit(repr(v))
        elif isinstance(v, int):
            emit(int_text(v))
        elif isinstance(v, (list, tuple, dict)):
            opening, closing = ("{", "}") if isinstance(v, dict) else ("(", ",)" if len(v) == 1 else ")") \
                if isinstance(v, tuple) else ("[", "]")
            if depth >= _DEPTH_SHOWN and v:
                emit(f"{opening}...{closing}")
                return
            emit(opening)
            items = v.items() if isinstance(v, dict) else v
            for k, item in enumerate(items):
                if room[0] <= 0:
                    break
                if k:
                    emit(", ")
                if isinstance(v, dict):  # a table as TOML writes it inline: {a = 1, "b c" = 2}
                    key = item[0]
                    emit(key if isinstance(key, str) and key.isidentifier() and len(key) <= room[0]
                         else quote(key, max(room[0], 1)))
                    emit(" = ")
                    walk(item[1], depth + 1)
                else:
                    walk(item, depth + 1)
            emit(closing)
        elif isinstance(v, (datetime.date, datetime.time)):  # TOML's dates and times, as TOML writes them
            emit(v.isoformat())
        else:  # anything else is named, never repr()'d: its repr could be anything
            emit(f"<{type(v).__name__}>")

    walk(value, 0)
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def quote(name: Any, limit: int = _NAME_SHOWN) -> str:
    """A user-given name (a key, a layer type, a loss name) in double quotes, as the messages quote names:
    control characters, quotes and backslashes escaped, at most `limit` characters of it; a value that is
    not a string is written by `brief`."""
    if not isinstance(name, str):
        return brief(name, limit)
    body = "".join(ch if ch.isprintable() and ch not in '"\\' else _escape(ch) for ch in name[:limit])
    return f'"{body}"' + ("..." if len(name) > limit else "")


def shown(text: str, limit: int = 2000, keep: str = "\n\t") -> str:
    """Text from elsewhere (a file name, PyTorch's message) made safe to show: control characters other than
    those in `keep` escaped, at most `limit` characters."""
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    if text.isprintable():
        return text
    text = "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."  # (escapes are longer than what they stand for)


class EngineError(ValueError):
    """Base of every error the engine raises on purpose. Shown to the user as one message."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        # whatever went into the text (a user's key, a file name, PyTorch's words), it is shown safely: control
        # characters escaped, bounded (the formatters above quote user values; this is the backstop)
        message, hint = shown(str(message), 1500), shown(str(hint), 500)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class PresetError(EngineError):
    """A preset (or session) file that does not fit the format: names the file and the field."""

    def __init__(self, message: str, *, source: str = "<preset>", field: str = "", line: int | None = None,
                 hint: str = "") -> None:
        self.source = source
        self.field = shown(field, 200, keep="")  # the path as shown: a key in it may hold anything (escaped)
        self.line = line
        where = shown(source, 1000, keep="")  # a file name may hold anything too
        if line is not None:
            where += f", line {line}"
        if field:
            where += f": {self.field}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.detail = shown(message, 1500)


class LayerError(PresetError):
    """A layer of a preset that torch's constructor refuses (Conv2d's groups not dividing the channels, padding =
    "same" with a stride): the preset's field, and the layer as the shape check names it (top-level index `layer`,
    `path` "3.1" inside a Residual block, `type`), torch's own message, a hint and a fix where one exists."""

    def __init__(self, message: str, *, layer: int, path: str, type: str, fix: Fix | None = None,
                 source: str = "<preset>", field: str = "", hint: str = "") -> None:
        self.layer = layer
        self.path = path
        self.type = shown(type, 100, keep="")
        self.fix = fix
        super().__init__(message, source=source, field=field, hint=hint)

    def __str__(self) -> str:
        return super().__str__() + (f"\n  fix: {self.fix.text}" if self.fix is not None else "")


class DeviceError(EngineError):
    """A device that is not there, or that failed (out of memory)."""


class DataError(EngineError):
    """Data that does not fit the model or the loss."""


class WeightError(EngineError):
    """A parameter value that is refused (wrong shape, not a number, NaN/Inf, unknown name)."""


class MemoryBudgetError(EngineError):
    """A model refused before allocation because it would not fit in the memory budget."""

    def __init__(self, message: str, *, needed_bytes: int, budget_bytes: int, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.needed_bytes = needed_bytes
        self.budget_bytes = budget_bytes


INPUT_FIX = -1  # Fix.layer value meaning "the model's input_shape"
TRAINING_FIX = -2  # Fix.layer value meaning "a setting of the [training] table" (`arg`, e.g. drop_last)
INSERT = "__insert__"  # Fix.arg value meaning "insert layer type `value` before `layer`"
REMOVE = "__remove__"  # Fix.arg value meaning "remove layer `layer`"


@dataclass(frozen=True)
class Fix:
    """A concrete, applicable fix: set argument `arg` of layer `layer` to `value`.

    `layer` is a top-level index; `path` names the exact layer ("3.1": the second layer inside the
    Residual block at index 3) and is what to apply the fix to. `then` are further steps of the same fix,
    applied after it, each naming its layer in the model as the steps before it left it (insert a Flatten at 2,
    then set in_features of the Linear now at 3): the fix is all of them, and the shape check offers it only
    when all of them together make the network valid."""

    layer: int
    arg: str
    value: Any
    text: str
    path: str = ""
    then: tuple[Fix, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path or str(self.layer), "arg": self.arg, "value": self.value,
                "text": self.text}


@dataclass(frozen=True)
class ShapeError:
    """A shape mismatch found while checking a model, as a value.

    `layer` is the 0-based index in the top-level layer list (for a layer inside a Residual block,
    `path` gives the nested position, e.g. "3.1").
    """

    layer: int
    type: str
    message: str  # PyTorch's own words, as a CPU run would print them
    hint: str = ""
    fix: Fix | None = None
    input_shape: tuple[int, ...] | None = None
    path: str = ""
    extra_fixes: tuple[Fix, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "path": self.path or str(self.layer),  # "3.1": the second layer inside the Residual block at 3
            "type": self.type,
            "message": self.message,
            "hint": self.hint,
            "fix": self.fix.text if self.fix else None,  # null without a fix, as error_object writes it
        }

    def __str__(self) -> str:
        text = f"layer {self.path or self.layer} ({self.type}): {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if self.fix:
            text += f"\n  fix: {self.fix.text}"
        for extra in self.extra_fixes:
            text += f"\n       {extra.text}"
        return text


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "X"?)' for a near-miss name, or ''. Never the name itself (a key that is known but whose
    value is wrong needs another message), and nothing for a name far longer than any choice (bounded work)."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    choices = [c for c in choices if c != word]
    lower = {c.lower(): c for c in choices}
    if word.lower() in lower:
        return f' (did you mean "{lower[word.lower()]}"?)'
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close_l = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.6)
        close = [lower[c] for c in close_l]
    return f' (did you mean "{close[0]}"?)' if close else ""


def friendly_error(err: BaseException) -> tuple[str, str]:
    """(message, hint) for an exception raised inside a training step."""
    import torch  # called only once torch is loaded: errors.py stays torch-free

    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return (f"out of memory: {text}", "use a smaller batch or model, or another device; the weights are those "
                                          "of the last completed step")
    if isinstance(err, EngineError):
        return err.message, err.hint
    if "between 0 and 1" in text:
        return text, "BCELoss needs probabilities: end the model with Sigmoid, or use BCEWithLogitsLoss"
    if "Expected floating point type for target" in text or "expected scalar type Long" in text:
        return text, "the loss and the targets do not match: class indices for CrossEntropyLoss, values for MSELoss"
    return f"{type(err).__name__}: {text}", "the weights are those of the last completed step"


class EditError(EngineError):
    """An edit that cannot be made (shown to the user, nothing changes)."""
