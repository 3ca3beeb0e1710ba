"""Argument validation shared by layers, losses, optimizers and data: one value against its spec (`check_arg`), a nested list of numbers (`check_numbers`); every failure a PresetError naming the field."""

from __future__ import annotations

import math
import sys
from typing import Any

from ..errors import PresetError, brief, did_you_mean
from .catalogue import (BOOL, CHOICE, FLOAT, FLOAT32_MAX, FLOATS, INT, INT_LIST, INTS, MAX_LIST, MAX_SCHEDULES, OPT_FLOAT,
                        OPT_INT, PADDING, SCHEDULE_LIST, ArgSpec)

MAX_TENSOR_ELEMENTS = 10_000_000



INT64_MIN, INT64_MAX = -2**63, 2**63 - 1



def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), f"a {type(value).__name__}")



# ---------------------------------------------------------------------------------------------
# argument validation shared by layers, losses and optimizers


def check_arg(spec: ArgSpec, value: Any, field: str, source: str = "<input>") -> Any:
    """Validate one argument value against its spec; returns the normalised value."""

    def fail(expected: str) -> PresetError:
        return PresetError(f"expected {expected}; got {brief(value)}", source=source, field=field)

    def bounded(v: float, what: str) -> None:
        # an excluded bound is one torch enforces (Adam's betas < 1, HuberLoss delta > 0): say what it means
        if spec.min is not None and (v <= spec.min if spec.min_open else v < spec.min):
            raise PresetError(f"{what} must be {'>' if spec.min_open else '>='} {spec.min:g}; got {brief(v)}",
                              source=source, field=field, hint=spec.doc if spec.min_open else "")
        if spec.max is not None and (v >= spec.max if spec.max_open else v > spec.max):
            raise PresetError(f"{what} must be {'<' if spec.max_open else '<='} {spec.max:g}; got {brief(v)}",
                              source=source, field=field, hint=spec.doc if spec.max_open else "")
        if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:  # every integer argument reaches torch
            raise PresetError(f"{what} is out of range: a 64-bit integer at most (-2**63 to 2**63 - 1); "
                              f"got {brief(v)}", source=source, field=field)

    def finite(v: Any) -> None:  # a number Python can hold as a float (an integer of 400 digits cannot)
        if isinstance(v, int) and abs(v) > sys.float_info.max:
            raise fail(f"a number of at most about {sys.float_info.max:.3g} in size")
        if isinstance(v, float) and not math.isfinite(v):
            raise fail("a finite number")

    kind = spec.kind
    if spec.none_as and isinstance(value, str):  # the word for torch's None (TOML has no null)
        if value == spec.none_as:
            return value
        raise PresetError(f"expected a number or \"{spec.none_as}\"; got {brief(value)}", source=source, field=field,
                          hint=f"{spec.name} = \"{spec.none_as}\" is torch's {spec.name}=None (TOML has no null)")
    if kind in (INT, OPT_INT):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
        bounded(value, spec.name)
        return value
    if kind in (FLOAT, OPT_FLOAT):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        finite(value)
        if spec.float32 and abs(value) > FLOAT32_MAX:
            raise PresetError(f"{brief(value)} is too large for float32 (it would become inf)", source=source,
                              field=field, hint=f"the layer computes in float32: at most about {FLOAT32_MAX:.4g} "
                                                "in size")
        bounded(value, spec.name)
        return float(value)
    if kind == BOOL:
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    for refused, reason, hint in spec.refused:  # a value torch takes that cannot work here, with the reason
        if isinstance(value, str) and value == refused:
            raise PresetError(reason, source=source, field=field, hint=hint)
    if kind == CHOICE:
        if not isinstance(value, str) or value not in spec.choices:
            hint = did_you_mean(value, spec.choices) if isinstance(value, str) else ""
            raise PresetError(f"expected one of {', '.join(spec.choices)}; got {brief(value)}{hint}",
                              source=source, field=field)
        return value
    if kind in (INTS, PADDING):
        if kind == PADDING and isinstance(value, str):
            if value not in spec.choices:
                raise PresetError(f"expected an integer, a list of integers or one of {', '.join(spec.choices)}; "
                                  f"got {brief(value)}{did_you_mean(value, spec.choices)}", source=source,
                                  field=field)
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            bounded(value, spec.name)
            return value
        if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if spec.dims and len(value) != spec.dims:
                raise fail(f"an integer or a list of {spec.dims} integers")
            for v in value:
                bounded(v, spec.name)
            return list(value)
        raise fail("an integer or a list of integers" if spec.dims != 1 else "an integer")
    if kind == "float_pair":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise fail("a list of two numbers")
        for v in value:
            finite(v)
            bounded(v, spec.name)
        return [float(v) for v in value]
    if kind in (FLOATS, INT_LIST):
        ints = kind == INT_LIST
        what = "integers" if ints else "numbers"
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or (ints and not all(isinstance(v, int) for v in value))):
            raise fail(f"a list of {what}")
        if len(value) > MAX_LIST:
            raise PresetError(f"too many {what}: {len(value):,} (at most {MAX_LIST:,})", source=source, field=field)
        for v in value:
            finite(v)
            if not ints and abs(v) > FLOAT32_MAX:
                raise PresetError(f"{brief(v)} is too large for float32 (it would become inf)", source=source,
                                  field=field)
            bounded(v, spec.name)
        return list(value) if ints else [float(v) for v in value]
    if kind == SCHEDULE_LIST:  # the shape only: each table's keys are the schedules' (schedules.check_required)
        if not isinstance(value, list) or not value:
            raise fail("a list of schedule tables, e.g. [ { type = \"LinearLR\" }, { type = \"StepLR\", step_size = 5 } ]")
        if len(value) > MAX_SCHEDULES:
            raise PresetError(f"too many schedules: {len(value)} (at most {MAX_SCHEDULES})", source=source, field=field)
        return list(value)
    raise AssertionError(f"unknown argument kind {kind}")  # pragma: no cover - catalogue bug



def check_numbers(value: Any, field: str, source: str = "<input>", *, float32: bool = False) -> tuple[int, ...]:
    """Check a (nested) list of numbers is rectangular; returns its shape. With `float32`, floats that would
    become inf as float32 (what data tensors are made of) are refused too."""
    if isinstance(value, bool) or (not isinstance(value, (list, int, float))):
        raise PresetError(f"expected a number or a (nested) list of numbers; got {_type_name(value)}",
                          source=source, field=field)
    shape: list[int] = []
    level = [value]
    depth = 0
    total = 1
    while True:
        firsts = level[0]
        if isinstance(firsts, list):
            n = len(firsts)
            for i, item in enumerate(level):
                if not isinstance(item, list) or len(item) != n:
                    raise PresetError(f"rows of different lengths or mixed lists and numbers at depth {depth} "
                                      f"(item {i}): every row must have {n} entries", source=source, field=field)
            shape.append(n)
            total *= max(n, 1)
            depth += 1
            if depth > 8 or total > MAX_TENSOR_ELEMENTS:
                raise PresetError("tensor too large or too deeply nested (at most 8 dimensions, "
                                  f"{MAX_TENSOR_ELEMENTS} numbers)", source=source, field=field)
            level = [x for item in level for x in item]
            if not level:
                return tuple(shape)
            continue
        for item in level:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise PresetError(f"expected numbers; found {_type_name(item)} {brief(item)}", source=source,
                                  field=field)
            if isinstance(item, float) and not math.isfinite(item):
                raise PresetError(f"expected finite numbers; found {item!r}", source=source, field=field)
            if float32 and isinstance(item, float) and abs(item) > FLOAT32_MAX:
                raise PresetError(f"{item!r} is too large for float32 (it would become inf)", source=source,
                                  field=field, hint=f"data is float32: at most about {FLOAT32_MAX:.4g} in size")
            if isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:  # torch.tensor would overflow
                raise PresetError(f"number out of range (a 64-bit integer at most); found {brief(item)}",
                                  source=source, field=field)
        return tuple(shape)


__all__ = ['check_arg', 'check_numbers']
