"""Only fixes that work: each candidate fix of a shape error is applied to a copy of the model and the whole
network checked again (every layer, one output row per sample, and the loss on the targets where a target
check is given) before it is offered. The first candidate that makes everything valid is the fix, the others
that do are the alternatives ("or ..."); when none does, no fix is offered and the hint says which layer fails
next with the first candidate. Bounded: at most MAX_TRIALS full checks per error, and an input-size search
by arithmetic over at most MAX_SIZES sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import INPUT_FIX, EngineError, Fix, ShapeError
from ..spec import ModelSpec

TargetCheck = Callable[[tuple[int, ...]], "str | None"]  # an output shape -> why the loss fails on it, or None

MAX_TRIALS = 8  # full re-checks of the network per error
MAX_SIZES = 64  # input sizes tried by arithmetic (a kernel too large for the input) when no offered change works


def settle(model: ModelSpec, input_shape: tuple[int, ...], error: ShapeError, check: Callable[..., Any],
           target_check: TargetCheck | None = None) -> ShapeError:
    """`error` with only the fixes that make the whole network valid: `check` is check_model (passed in, so
    that this module and check.py do not import each other), called on each fixed copy without verification."""
    candidates = [f for f in (error.fix, *error.extra_fixes) if f is not None]
    follows_model = tuple(input_shape) == tuple(model.input_shape)  # else the data fixes the input's shape
    if not follows_model:
        candidates = [f for f in candidates if f.layer != INPUT_FIX]
    valid: list[Fix] = []
    first_failure = ""
    for fix in candidates[:MAX_TRIALS]:
        problem = _problem_after(model, input_shape, error, fix, check, target_check)
        if problem is None:
            valid.append(fix)
        elif not first_failure:
            first_failure = f'with "{_plain(fix.text)}", {problem}'
    if not valid and follows_model and len(input_shape) >= 3 and _too_small(error, candidates):
        alt = _input_that_works(model, input_shape, error, check, target_check)
        if alt is not None:
            valid.append(alt)
    hint = error.hint
    if not valid and candidates:
        hint = f"{hint} No single change found makes the whole network valid: {first_failure}.".strip()
    elif first_failure and valid and valid[0].layer == INPUT_FIX and all(f.layer == INPUT_FIX for f in valid):
        hint = f"{hint} A change at this layer is not enough: {first_failure}.".strip()
    fix = replace(valid[0], text=_plain(valid[0].text)) if valid else None
    extras = tuple(f if f.text.startswith("or ") else replace(f, text="or " + f.text) for f in valid[1:])
    return replace(error, fix=fix, extra_fixes=extras, hint=hint)


def _too_small(error: ShapeError, candidates: list[Fix]) -> bool:
    """Whether the error is a spatial size too small for a kernel or a window (another input size may fit)."""
    if any(f.arg == "kernel_size" for f in candidates):
        return True
    words = error.message.lower()
    return error.type.startswith(("Conv", "MaxPool", "AvgPool")) and "size" in words and "channel" not in words


def _plain(text: str) -> str:
    return text.removeprefix("or ")


def _problem_after(model: ModelSpec, input_shape: tuple[int, ...], error: ShapeError, fix: Fix,
                   check: Callable[..., Any], target_check: TargetCheck | None) -> str | None:
    """Why the network is still not valid after `fix`, or None when it is."""
    from ..model.edits import apply_fix

    trial = model.copy()
    try:
        apply_fix(trial, error, fix)
    except (EngineError, KeyError, IndexError, ValueError, TypeError) as err:  # a fix that cannot be applied
        return f"the change cannot be made ({err})"
    shape = tuple(int(v) for v in fix.value) if fix.layer == INPUT_FIX else tuple(input_shape)
    return network_problem(trial, shape, check, target_check)


def network_problem(model: ModelSpec, shape: tuple[int, ...], check: Callable[..., Any],
                    target_check: TargetCheck | None) -> str | None:
    """Why `model` on an input of `shape` is not a network that trains (a layer fails, the output loses the batch,
    the loss fails on the targets), or None."""
    from .diagnosis import META_WORDS_ONLY

    token = META_WORDS_ONLY.set(True)
    try:
        report = check(model, shape, verify=False)
    except EngineError as err:  # too large to describe, say
        return err.message
    finally:
        META_WORDS_ONLY.reset(token)
    if report.error is not None:
        e = report.error
        return f"layer {e.path or e.layer} ({e.type}) fails next: {e.message}"
    out = report.output_shape
    if out is None or len(out) == 0 or out[0] != shape[0]:
        return f"the output {list(out or ())} does not keep one row per sample ({shape[0]} samples)"
    if target_check is not None:
        why = target_check(tuple(out))
        if why is not None:
            return f"the loss cannot be computed on the targets for the output {list(out)}: {why}"
    return None


def _input_that_works(model: ModelSpec, input_shape: tuple[int, ...], error: ShapeError, check: Callable[..., Any],
                      target_check: TargetCheck | None) -> Fix | None:
    """An input shape (same batch and channels, every spatial size changed by the same amount, larger first) for
    which the whole network is valid: found by arithmetic over at most MAX_SIZES sizes, then checked fully."""
    from .diagnosis import _prefix_shape

    trials = 0
    spatial = input_shape[2:]
    for delta in range(1, MAX_SIZES // 2 + 1):
        for d in (delta, -delta):
            if min(spatial) + d < 1:
                continue
            cand = tuple(input_shape[:2]) + tuple(s + d for s in spatial)
            out = _prefix_shape(model.layers, cand)
            if out is None or not out or out[0] != cand[0]:
                continue
            trials += 1
            if network_problem(model, cand, check, target_check) is None:
                return Fix(INPUT_FIX, "input_shape", list(cand), f"use an input of shape {list(cand)}, for which "
                                                                  "every layer fits")
            if trials >= 4:
                return None
    return None


__all__ = ["TargetCheck", "network_problem", "settle"]
