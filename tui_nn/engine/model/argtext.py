"""Layer arguments as text for forms, and back."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from ..errors import EditError
from ..spec import LayerSpec
from .args import check_arg
from .catalogue import CATALOGUE

# ---------------------------------------------------------------------------------------------
# argument text <-> values


def _toml_text(value: Any) -> str:
    """A validated value as TOML inline text (a schedule table inside SequentialLR's list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string (the names here are plain ASCII)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_text(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_text(v) for v in value) + "]"
    return repr(value)


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        return _toml_text(list(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)



def parse_value(argspec: Any, text: str) -> Any:
    """Turn typed text into a Python value for `argspec` (then validated with check_arg)."""
    from .catalogue import BOOL, CHOICE, FLOAT, INT, INTS, OPT_FLOAT, OPT_INT, PADDING

    t = text.strip()
    kind = argspec.kind
    if kind == BOOL:
        low = t.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise EditError("expected true or false")
    if kind == CHOICE:
        return t
    if argspec.none_as and t.strip("'\"") == argspec.none_as:
        return argspec.none_as
    if kind in (INT, OPT_INT):
        return _int(t)
    if kind in (FLOAT, OPT_FLOAT):
        return _float(t)
    if kind in (INTS, PADDING):
        if kind == PADDING and t.strip("'\"") in argspec.choices:
            return t.strip("'\"")
        items = _items(t)
        if len(items) == 1:
            return _int(items[0])
        return [_int(x) for x in items]
    if kind in ("float_pair", "float_list"):
        return [_float(x) for x in _items(t)]
    if kind == "int_list":
        return [_int(x) for x in _items(t)]
    if kind == "schedule_list":  # TOML's own inline syntax, read by tomllib (nothing is executed)
        import tomllib

        try:
            return tomllib.loads("v = " + t)["v"]
        except tomllib.TOMLDecodeError as err:
            raise EditError(f"expected a TOML list of schedule tables: {str(err)[:120]}") from None
    return t  # pragma: no cover - unknown kinds are validated by check_arg



def _items(t: str) -> list[str]:
    inner = t.strip()
    if inner[:1] in "[(" and inner[-1:] in "])":
        inner = inner[1:-1]
    items = [x for x in inner.replace(",", " ").split() if x]
    if not items:
        raise EditError("expected a value")
    return items



_INT_EXP = re.compile(r"[+-]?\d+(?:\.\d*)?[eE]\+?\d{1,2}")



def _int(t: str) -> int:
    """An integer; exponent notation that names one (1e3, 2.5e4: how step counts are often written) too."""
    t = t.strip()
    try:
        return int(t)
    except ValueError:
        pass
    if _INT_EXP.fullmatch(t):
        value = Decimal(t)
        if value == value.to_integral_value():
            return int(value)
        raise EditError(f"{t!r} is not an integer ({value.normalize():f})")
    raise EditError(f"{t!r} is not an integer") from None



def _float(t: str) -> float:
    try:
        v = float(t.strip())
    except ValueError:
        raise EditError(f"{t.strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise EditError("NaN or Inf is not allowed")
    return v



def validate_field(argspec: Any, text: str) -> tuple[Any, str | None, bool]:
    """(value, error, omitted): empty text means the default (omitted), unless the argument is required."""
    from ..errors import PresetError

    if not text.strip():
        if argspec.required:
            return None, "required", False
        return argspec.default, None, True
    try:
        value = parse_value(argspec, text)
        value = check_arg(argspec, value, argspec.name)
    except EditError as err:
        return None, err.message, False
    except PresetError as err:
        return None, err.detail, False
    return value, None, False



def args_from_values(argspecs: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Arguments that differ from defaults (required ones always kept)."""
    out: dict[str, Any] = {}
    for a in argspecs:
        if a.name not in values:
            continue
        v = values[a.name]
        if a.required or v != a.default:
            out[a.name] = v
    return out



# ---------------------------------------------------------------------------------------------
# what the layer rows show


def call_text(spec: LayerSpec) -> str:
    """'Linear(3, 4)', 'Conv2d(1, 8, 3, padding=1)', 'Softmax(dim=1)': like the PyTorch call."""
    lt = CATALOGUE.get(spec.type)
    if lt is None:
        return spec.type
    parts: list[str] = []
    for a in lt.args:
        if a.name not in spec.args:
            continue
        v = spec.args[a.name]
        if not a.required and v == a.default:
            continue  # written out in the preset, but the default anyway
        text = "None" if a.none_as and v == a.none_as else f"'{v}'" if isinstance(v, str) else \
            value_text(v) if not isinstance(v, list) else \
            "(" + ", ".join(str(x) for x in v) + ")"
        parts.append(text if a.required else f"{a.name}={text}")
    for k, v in spec.args.items():
        if lt.arg(k) is None:
            parts.append(f"{k}={value_text(v)}")
    return f"{spec.type}({', '.join(parts)})"



def fmt_count(n: int) -> str:
    return f"{n:,}"


__all__ = ['value_text', 'parse_value', 'validate_field', 'args_from_values', 'call_text']
