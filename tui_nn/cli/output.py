"""What every subcommand prints and returns: exit codes, the JSON writer, error output."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable

from ..engine.text import printable

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

MAX_SEED = 2**63 - 1  # as a preset's training.seed

MAX_STEPS = 10**12  # as a preset's training.steps

SESSION_SUFFIX = ".tuinn"  # tui_nn.engine.files.session_file.SUFFIX (not imported here: that imports torch)



def say(text: Any = "", *, file: Any = None, line: bool = False) -> None:
    """print() for text that may come from outside: control characters escaped (`printable`); `line=True` for a
    single-line place (a list row), where newlines and tabs become spaces too."""
    print(printable(text, keep_newlines=not line), file=file)



def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]; anything else is a usage error (exit 2) naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number in [{low}, {high}], not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: a whole number in [{low}, {high}]")
        return value

    parse.__name__ = "whole number"
    return parse



SEED = int_in(0, MAX_SEED)

STEPS = int_in(0, MAX_STEPS)



def _nonfinite(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")



def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by null; in a dict, a key "<name>_nonfinite" beside it says
    which ("inf", "-inf" or "nan"), so the output stays standard JSON (no Infinity/NaN tokens)."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
                out[f"{key}_nonfinite"] = _nonfinite(value)
            else:
                out[key] = json_safe(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if isinstance(v, float) and not math.isfinite(v) else json_safe(v) for v in obj]
    return obj



def dumps(obj: Any) -> str:
    """The one JSON writer of the command line: standard JSON only (allow_nan=False after json_safe)."""
    return json.dumps(json_safe(obj), allow_nan=False)



def _json_int(n: int) -> int | float:
    """An integer as JSON carries it: beyond int64 a float (beyond a float, inf: null and "_nonfinite" in the
    output), never the 4300-digit text Python refuses to write."""
    if -2**63 <= n < 2**63:
        return n
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf



def error_object(err: Exception) -> dict[str, Any]:
    """The documented error shape, {"error": {"layer", "type", "message", "hint", "fix"}}, for an error that is
    not at a layer (layer/type/fix null), plus "field"/"source"/"line" for a preset error where known."""
    from ..engine.errors import LayerError, MemoryBudgetError, PresetError

    out: dict[str, Any] = {"layer": None, "type": None, "message": getattr(err, "message", str(err)),
                           "hint": getattr(err, "hint", ""), "fix": None}
    if isinstance(err, LayerError):  # a layer torch's constructor refuses: at that layer, with its fix
        out.update(layer=err.layer, path=err.path, type=err.type, fix=err.fix.text if err.fix else None)
    if isinstance(err, PresetError):
        out["field"] = err.field or None
        out["source"] = err.source
        if err.line is not None:
            out["line"] = err.line
    if isinstance(err, MemoryBudgetError):
        out["needed_bytes"] = _json_int(err.needed_bytes)
        out["budget_bytes"] = _json_int(err.budget_bytes)
    return {"error": out}



def _fail(message: str, hint: str = "", *, json_mode: bool = False, payload: dict[str, Any] | None = None) -> int:
    if json_mode:
        print(dumps(payload if payload is not None else {"error": {"layer": None, "type": None, "message": message,
                                                                   "hint": hint, "fix": None}}))
    else:
        say(f"tui-nn: error: {message}", file=sys.stderr)
        if hint:
            say(f"  hint: {hint}", file=sys.stderr)
    return EXIT_ERROR



def _fail_err(err: Exception, *, json_mode: bool = False) -> int:
    """_fail for an EngineError: in JSON mode the full error object (field, source where known); a layer error's
    fix on its own line, as a shape error's."""
    hint = getattr(err, "hint", "")
    fix = getattr(err, "fix", None)
    if fix is not None and not json_mode:
        hint = f"{hint}\n  fix: {fix.text}"
    return _fail(getattr(err, "message", str(err)), hint, json_mode=json_mode,
                 payload=error_object(err) if json_mode else None)



def _quiet_stdout() -> None:
    """After a broken pipe (`tui-nn run ... | head`): send the rest of stdout, and the flush at exit, nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a file descriptor
        pass
