"""What a session file's `state.json` may hold: a strict pydantic schema with bounds, and the checks that give
the optimizer and the learning-rate schedule only state that a fresh optimizer/schedule of the session's own
settings has.

`state.json` is validated in full before anything of the session is built: integers are int64 and not
negative, strings and lists are bounded (the accuracy series and the evaluations by the cap the session keeps
them under), unknown keys are errors. The optimizer and schedule state are then checked against the objects
they are loaded into:

- optimizer: as many parameter groups as a fresh optimizer has, over the same parameters; every setting equal
  to the fresh one's (they come from the preset) except the learning rate (the schedule moves it: a finite
  number >= 0); per parameter, exactly the state entries one step of such an optimizer makes, each tensor of
  the parameter's shape (or a scalar where the optimizer keeps one), of its dtype;
- schedule: torch's `LRScheduler.load_state_dict` is `self.__dict__.update(state_dict)`, so only the keys of a
  fresh schedule's `state_dict()` reach it (others are dropped: `get_lr`, `optimizer`, `__class__` can no
  longer replace the schedule's methods or its optimizer), each of the fresh value's type; the settings equal
  the fresh ones, only the progress (`last_epoch`, `_step_count`, `_last_lr`, two flags) comes from the file.

Every problem is a `StateError` naming the field (`optimizer.param_groups[0].momentum`); the session loader
turns it into a SessionFileError naming the file and `state.json`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..training.history import MAX_CAPACITY
from ..training.metrics import MAX_EVALS

INT64_MAX = 2**63 - 1
MAX_GROUPS = 64  # parameter groups (tui-nn makes one)
MAX_PARAMS = 1 << 20  # parameters an optimizer state may list
MAX_KEYS = 64  # keys of a parameter group, of a schedule's state
MAX_ENTRY_KEYS = 16  # state entries per parameter (Adam with amsgrad has 4)
MAX_LIST = 1 << 20  # a list inside a group or a schedule state (a group's parameter ids)
MAX_TEXT = 4096  # paths, messages
PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step",
            "best", "num_bad_epochs", "cooldown_counter")  # the last three: ReduceLROnPlateau's


class StateError(ValueError):
    """A field of state.json that is refused; `field` is its path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Key = Annotated[str, Field(min_length=1, max_length=64)]
Scalar = Union[None, bool, int, float, Annotated[str, Field(max_length=256)]]
Value = Union[Scalar, Annotated[list[Scalar], Field(max_length=MAX_LIST)]]


class HistoryMeta(_Strict):
    capacity: Annotated[int, Field(ge=4, le=MAX_CAPACITY)]
    width: Annotated[int, Field(ge=1, le=2**62)]
    steps: Count
    last: float  # NaN before the first step


class TensorRef(_Strict):
    tensor: Annotated[str, Field(min_length=1, max_length=128)]


class ValueRef(_Strict):
    value: Scalar


StateEntry = Annotated[dict[Key, Union[TensorRef, ValueRef]], Field(max_length=MAX_ENTRY_KEYS)]


class OptimizerMeta(_Strict):
    param_groups: Annotated[list[Annotated[dict[Key, Value], Field(max_length=MAX_KEYS)]],
                            Field(min_length=1, max_length=MAX_GROUPS)]
    state: Annotated[dict[Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,8})$")], StateEntry],
                     Field(max_length=MAX_PARAMS)]


class SessionState(_Strict):
    step: Count
    batch_pos: Count
    optimizer: OptimizerMeta | None = None
    # any JSON under any key (state.json's size bounds it): only the keys of a fresh schedule are used, each
    # checked against the fresh value's type (scheduler_state); the others are dropped
    scheduler: Annotated[dict[Key, Any], Field(max_length=MAX_KEYS)] | None = None
    history: HistoryMeta
    accuracy: Annotated[list[tuple[Count, Share]], Field(max_length=MAX_EVALS)] = Field(default_factory=list)
    evals: Annotated[list[tuple[Count, float | None, Share | None, Count]],
                     Field(max_length=MAX_EVALS)] = Field(default_factory=list)
    data_error: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    device: Annotated[str, Field(max_length=64)] | None = None
    source: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    original_source: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    torch: Annotated[str, Field(max_length=64)] | None = None
    saved_at: Annotated[float, Field(allow_inf_nan=False)] | None = None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part) in ("TensorRef", "ValueRef", "list[...]") or "[" in str(part) or str(part).startswith(
                ("none", "bool", "int", "float", "str", "list", "function-", "constrained-")):
            continue  # the branch of a union pydantic tried: not a field of the file
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_state(text: str | bytes) -> SessionState:
    """state.json, validated; a StateError names the first field refused."""
    try:
        return SessionState.model_validate_json(text, strict=True)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        first = errors[0]
        if first.get("type") == "json_invalid":
            raise StateError("", f"is not valid JSON: {first.get('msg', '')}"[:300]) from None
        field = _loc(tuple(first.get("loc", ())))
        message = str(first.get("msg", "refused"))
        if sum(_loc(tuple(e.get("loc", ()))) == field for e in errors) > 1:  # every branch of a union refused it
            message = f"a value of type {type(first.get('input')).__name__} is not one this field takes"
        raise StateError(field or "(the whole object)", message[:300]) from None


def _json_value(value: Any) -> Any:
    """A state value as JSON reads it back (tuples as lists, tensors as numbers)."""
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if hasattr(value, "item") and hasattr(value, "numel") and value.numel() == 1:
        return value.item()
    return value


def _same_kind(fresh: Any, saved: Any) -> bool:
    """The saved value has the fresh one's type: numbers stay numbers (an int where a float was is fine), bools
    stay bools, None stays None, lists keep their length."""
    if isinstance(fresh, bool) or fresh is None or isinstance(fresh, str):
        return type(saved) is type(fresh)
    if isinstance(fresh, (int, float)):
        return not isinstance(saved, bool) and isinstance(saved, (int, float)) and (
            isinstance(fresh, float) or isinstance(saved, int))
    if isinstance(fresh, list):
        return isinstance(saved, list) and len(saved) == len(fresh) and all(
            _same_kind(f, s) for f, s in zip(fresh, saved))
    if isinstance(fresh, dict):  # OneCycleLR's _schedule_phases: tables of numbers and names
        return isinstance(saved, dict) and set(saved) == set(fresh) and all(
            _same_kind(fresh[k], saved[k]) for k in fresh)
    return False


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _rate(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise StateError(field, f"{value!r} is not a learning rate (a finite number >= 0)")
    return float(value)


def scheduler_state(saved: dict[str, Any], scheduler: Any, step: int) -> dict[str, Any]:
    """The state to give `scheduler.load_state_dict`: exactly the keys of its own (fresh) state_dict, of their
    types; the settings must equal the fresh ones, the progress is bounded (last_epoch <= the session's step)."""
    return _schedule_state(saved, scheduler, step, "scheduler")


def _schedule_state(saved: dict[str, Any], scheduler: Any, step: int, where: str) -> dict[str, Any]:
    fresh = {k: _json_value(v) for k, v in scheduler.state_dict().items()}
    out: dict[str, Any] = {}
    for key, want in fresh.items():
        field = f"{where}.{key}"
        if key == "_schedulers" and key in saved:  # SequentialLR's: each checked against its own schedule
            inner = saved[key]
            if not isinstance(inner, list) or len(inner) != len(scheduler._schedulers) or not all(
                    isinstance(x, dict) for x in inner):
                raise StateError(field, f"expected {len(scheduler._schedulers)} schedule states")
            out[key] = [_schedule_state(x, sch, step, f"{field}[{i}]")
                        for i, (x, sch) in enumerate(zip(inner, scheduler._schedulers))]
            continue
        if key not in saved:
            if key == "last_epoch":
                raise StateError(field, "is missing")
            out[key] = scheduler.state_dict()[key]
            continue
        value = saved[key]
        # a setting may be infinite as the fresh one is (ReduceLROnPlateau's mode_worse), and its best loss starts
        # infinite (no loss seen yet); any other progress is finite
        if not _same_kind(want, value) or not (_finite(value) or key == "best" or (key not in PROGRESS
                                                                                    and value == want)):
            raise StateError(field, f"{_short(value)} does not fit (expected a value like {_short(want)})")
        if key not in PROGRESS:
            if value != want:
                raise StateError(field, f"{_short(value)} does not match the preset's schedule ({_short(want)})")
        elif key == "best":
            if math.isnan(value):
                raise StateError(field, "is not a number")
        elif key in ("last_epoch", "_step_count", "num_bad_epochs", "cooldown_counter"):
            if not 0 <= value <= step + 1:
                raise StateError(field, f"{value} is not from 0 to the session's step count + 1 ({step + 1})")
        elif key == "_last_lr":
            value = [_rate(v, f"{field}[{i}]") for i, v in enumerate(value)]
        elif key == "_get_lr_called_within_step" and value:
            raise StateError(field, "must be false between steps")
        out[key] = value
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def probe_entry(optimizer: Any) -> dict[str, tuple[str, Any]]:
    """The per-parameter state one step of an optimizer of this class and settings makes: key -> ("param", None)
    for a tensor of the parameter's shape and dtype, ("scalar", (shape, dtype)) for another tensor (Adam's
    `step`), ("value", type) for a plain value."""
    import torch

    group = optimizer.param_groups[0]
    first = group["params"][0]
    settings = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
    p = torch.zeros(2, dtype=first.dtype, requires_grad=True)
    probe = type(optimizer)([{"params": [p], **settings}])
    p.grad = torch.ones(2, dtype=first.dtype)
    probe.step()
    out: dict[str, tuple[str, Any]] = {}
    for key, value in probe.state_dict()["state"].get(0, {}).items():
        if isinstance(value, torch.Tensor):
            out[key] = ("param", None) if tuple(value.shape) == (2,) else ("scalar", (tuple(value.shape), value.dtype))
        else:
            out[key] = ("value", type(value))
    return out


def optimizer_state(meta: OptimizerMeta, optimizer: Any, tensors: dict[str, tuple[Any, tuple[int, ...]]],
                    cycled: bool = False) -> tuple[dict[str, Any], dict[str, tuple[int, str]]]:
    """Checks the saved optimizer state against `optimizer` (fresh, over the session's parameters) and the
    header of optimizer.safetensors (`tensors`: name -> (dtype, shape)). Returns the state dict to load, with
    the tensor references left as {"tensor": name} (filled in once the tensors are read), and for each tensor
    name its (parameter index, key). `cycled`: a schedule moves the momentum (OneCycleLR's cycle_momentum), so
    the saved momentum, or betas[0], is progress: a number in [0, 1] rather than the setting."""
    fresh = optimizer.state_dict()
    fresh_groups = fresh["param_groups"]
    if len(meta.param_groups) != len(fresh_groups):
        raise StateError("optimizer.param_groups", f"{len(meta.param_groups)} groups; the optimizer has "
                                                   f"{len(fresh_groups)}")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    groups = []
    for i, (saved, want) in enumerate(zip(meta.param_groups, fresh_groups)):
        group: dict[str, Any] = {}
        for key, value in want.items():
            field = f"optimizer.param_groups[{i}].{key}"
            if key not in saved:
                if key in ("params", "lr"):
                    raise StateError(field, "is missing")
                group[key] = value
                continue
            got = saved[key]
            if key == "lr":
                group[key] = _rate(got, field)
                continue
            plain = _json_value(value)
            if cycled and key in ("momentum", "betas") and _same_kind(plain, got) and _finite(got):
                first = got if key == "momentum" else got[0]
                if 0 <= first <= 1 and (key == "momentum" or got[1:] == plain[1:]):
                    group[key] = first if key == "momentum" else (first, *value[1:])
                    continue
            if got != plain or not _same_kind(plain, got):
                raise StateError(field, f"{_short(got)} does not match the optimizer's settings ({_short(plain)})")
            group[key] = value
        groups.append(group)
    entry_kinds: dict[str, tuple[str, Any]] | None = None
    refs: dict[str, tuple[int, str]] = {}
    state: dict[int, dict[str, Any]] = {}
    for idx_text, items in meta.state.items():
        idx = int(idx_text)
        field = f"optimizer.state.{idx_text}"
        if idx >= len(params):
            raise StateError(field, f"there is no parameter {idx} (the optimizer has {len(params)})")
        if entry_kinds is None:
            entry_kinds = probe_entry(optimizer)
        if set(items) != set(entry_kinds):
            raise StateError(field, f"holds {sorted(items)}; {type(optimizer).__name__} keeps {sorted(entry_kinds)}")
        param = params[idx]
        entry: dict[str, Any] = {}
        for key, ref in items.items():
            kind, detail = entry_kinds[key]
            where = f"{field}.{key}"
            if kind == "value":
                if not isinstance(ref, ValueRef) or type(ref.value) is not detail or not _finite(ref.value):
                    raise StateError(where, f"expected a {detail.__name__} value")
                entry[key] = ref.value
                continue
            if not isinstance(ref, TensorRef):
                raise StateError(where, "expected a tensor")
            name = ref.tensor
            if name not in tensors:
                raise StateError(where, f"tensor {name[:60]!r} is not in optimizer.safetensors")
            if name in refs:
                raise StateError(where, f"tensor {name[:60]!r} is named twice")
            dtype, shape = tensors[name]
            want_shape, want_dtype = (tuple(param.shape), param.dtype) if kind == "param" else detail
            if tuple(shape) != tuple(want_shape) or dtype != want_dtype:
                raise StateError(where, f"tensor {name[:60]!r} is {list(shape)} {dtype}; expected {list(want_shape)} "
                                        f"{want_dtype}")
            refs[name] = (idx, key)
            entry[key] = {"tensor": name}
        state[idx] = entry
    unused = sorted(set(tensors) - set(refs))
    if unused:
        raise StateError("optimizer.state", f"optimizer.safetensors holds {unused[0][:60]!r}, which no state names")
    return {"state": state, "param_groups": groups}, refs


__all__ = ["SessionState", "StateError", "parse_state", "scheduler_state", "optimizer_state", "probe_entry"]
