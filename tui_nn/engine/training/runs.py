"""Runs compared: a record of every training run, and TensorBoard-style smoothing.

A `Run` is the settings a run trained with (the preset's name among them) and its loss curve (and test
metrics). A `RunRegistry` keeps every run; the app keeps one for all the sessions it opens, so runs of
different presets can be compared: the trainer calls `track()` at the end of each `Trainer.run()`, which
extends the current run while the settings stay the same, and starts a new run after a reset or when
the model, data, loss, optimizer, schedule, batch size or seed changed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EngineError
from ..spec import BLOCKS
from ..text import bounded

MAX_POINTS = 1024  # loss-curve points kept per run (neighbouring buckets are averaged beyond that)


def ema_smooth(values: Any, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average with debiasing (so the curve starts at the
    first value rather than at 0). weight in [0, 1): 0 leaves the values as they are. Non-finite values
    are passed through and do not disturb the average."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (0.0 <= weight < 1.0):
        raise EngineError(f"smoothing weight must be a number in [0, 1); got {weight!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    out = np.empty_like(v)
    last = 0.0
    n = 0
    for i, x in enumerate(v.tolist()):
        if not math.isfinite(x):
            out[i] = x
            continue
        last = last * weight + (1.0 - weight) * x
        n += 1
        debias = 1.0 - weight ** n if weight > 0 else 1.0
        out[i] = last / debias
    return out


def _layer_settings(layers: list[Any]) -> list[dict[str, Any]]:
    out = []
    for spec in layers:
        d: dict[str, Any] = {"type": spec.type, **spec.args}
        if spec.params:
            d["hand_set"] = sorted(spec.params)
        if spec.frozen:
            d["frozen"] = True
        if spec.init is not None:
            d["init"] = dict(spec.init)
        if spec.type in BLOCKS:  # a block's layers (a Concat's branches) and a Residual's shortcut
            d["layers"] = _layer_settings(spec.layers)
            if spec.shortcut:
                d["shortcut"] = _layer_settings(spec.shortcut)
        out.append(d)
    return out


def run_settings(session: Any) -> dict[str, Any]:
    """The settings that make a run what it is (JSON-able; no weights, no data values)."""
    from ..data.tables import describe

    p = session.preset
    t = p.training
    return {
        "preset": p.name,
        "input_shape": list(p.model.input_shape),
        "model": _layer_settings(p.model.layers),
        "data": describe(p.data),
        "loss": t.loss.to_value(),
        "optimizer": t.optimizer.to_value(),
        "scheduler": None if t.scheduler is None else {"type": t.scheduler.type, **t.scheduler.args},
        "batch_size": t.batch_size,
        "shuffle": t.shuffle,
        "seed": t.seed,
        "reset_optimizer_each_step": t.reset_optimizer_each_step,
        **({"drop_last": True} if t.drop_last else {}),  # absent when false, as in the runs saved before it
    }


def run_label(run_id: int, settings: dict[str, Any]) -> str:
    opt = settings["optimizer"]
    name, args = (opt, {}) if isinstance(opt, str) else (opt["type"], opt)
    lr = args.get("lr")
    preset = settings.get("preset") or ""
    if preset.startswith("<"):  # no name (a preset made from text): nothing worth showing
        preset = ""
    text = f"run {run_id}: " + (f"{preset[:40]}, " if preset else "") + name
    text += f" lr={lr:g}" if isinstance(lr, (int, float)) else ""
    if settings.get("scheduler"):
        text += f" {settings['scheduler']['type']}"
    bs = settings["batch_size"]
    text += f", batch {bs if bs else 'full'}, seed {settings['seed']}"
    return text


@dataclass
class Run:
    id: int
    label: str
    settings: dict[str, Any]
    start_step: int = 0  # the session step this run's settings began at
    step: int = 0  # steps completed when last recorded
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # last step of each point
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean training loss of each point
    test_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    test_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    test_accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    final_loss: float | None = None
    reason: str = ""

    def smoothed(self, weight: float) -> np.ndarray:
        return ema_smooth(self.losses, weight)

    def to_dict(self) -> dict[str, Any]:
        def num(a: np.ndarray) -> list[Any]:
            return [None if not math.isfinite(v) else v for v in a.astype(np.float64).tolist()]

        return {"id": self.id, "label": self.label, "settings": self.settings, "start_step": self.start_step,
                "step": self.step, "steps": self.steps.tolist(), "losses": num(self.losses),
                "test_steps": self.test_steps.tolist(), "test_losses": num(self.test_losses),
                "test_accuracy": num(self.test_accuracy), "final_loss": self.final_loss, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Run":
        """A run from `to_dict()`'s record (a runs.json entry): every field checked (types, int64 bounds, series
        lengths as `RunRegistry` keeps them, the settings a label is made from); an EngineError names the field."""
        if not isinstance(d, dict):
            raise EngineError("a run record is malformed: expected an object")
        unknown = sorted(set(d) - _RUN_KEYS, key=str)
        if unknown:
            raise EngineError(f"a run record is malformed: unknown key {str(unknown[0])[:40]!r}")
        try:
            settings = _checked_settings(d["settings"])
            run_id = _int(d["id"], "id", 1)
            run = cls(id=run_id, label=run_label(run_id, settings), settings=settings,
                      start_step=_int(d.get("start_step", 0), "start_step"), step=_int(d.get("step", 0), "step"),
                      steps=_series(d, "steps", MAX_POINTS, ints=True), losses=_series(d, "losses", MAX_POINTS),
                      test_steps=_series(d, "test_steps", _max_evals(), ints=True),
                      test_losses=_series(d, "test_losses", _max_evals()),
                      test_accuracy=_series(d, "test_accuracy", _max_evals()),
                      final_loss=_float(d.get("final_loss"), "final_loss"),
                      reason=_text(d.get("reason", ""), "reason", 200))
        except KeyError as err:
            raise EngineError(f"a run record is malformed: {err.args[0]!r} is missing") from None
        if len(run.steps) != len(run.losses) or not (len(run.test_steps) == len(run.test_losses)
                                                     == len(run.test_accuracy)):
            raise EngineError("a run record is malformed: series of different lengths")
        return run


MAX_RUNS = 10_000  # runs a runs.json may hold (each is bounded: MAX_POINTS and the evaluations' cap)
INT64_MAX = 2**63 - 1
_RUN_KEYS = {"id", "label", "settings", "start_step", "step", "steps", "losses", "test_steps", "test_losses",
             "test_accuracy", "final_loss", "reason"}


def _max_evals() -> int:
    from .metrics import MAX_EVALS

    return MAX_EVALS


def _int(value: Any, name: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EngineError(f"a run record is malformed: {name}: expected an integer, got {type(value).__name__}")
    if not lo <= value <= INT64_MAX:
        raise EngineError(f"a run record is malformed: {name}: {value} is not from {lo} to {INT64_MAX}")
    return value


def _float(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EngineError(f"a run record is malformed: {name}: expected a number or null, got {type(value).__name__}")
    return float(value)


def _text(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise EngineError(f"a run record is malformed: {name}: expected a string")
    return bounded(value, limit)  # shown in the app: control characters escaped


def _series(d: dict[str, Any], key: str, limit: int, *, ints: bool = False) -> np.ndarray:
    values = d.get(key, [])
    if not isinstance(values, list):
        raise EngineError(f"a run record is malformed: {key}: expected a list")
    if len(values) > limit:
        raise EngineError(f"a run record is malformed: {key}: {len(values)} points, more than {limit}")
    if ints:
        return np.array([_int(v, key) for v in values], dtype=np.int64)
    out = [_float(v, key) for v in values]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _checked_settings(settings: Any) -> dict[str, Any]:
    """The settings of a run record: a JSON object holding (at least) what `run_label` reads, of the types it
    needs; names shown in the app lose their control characters."""
    from .objectives import OPTIMIZERS
    from .schedules import SCHEDULERS

    if not isinstance(settings, dict):
        raise EngineError("a run record is malformed: settings: expected an object")
    settings = dict(settings)
    preset = settings.get("preset")
    if preset is not None:
        settings["preset"] = _text(preset, "settings.preset", 200)
    opt = settings.get("optimizer")
    name = opt if isinstance(opt, str) else opt.get("type") if isinstance(opt, dict) else None
    if name not in OPTIMIZERS:
        raise EngineError("a run record is malformed: settings.optimizer: not an optimizer")
    sched = settings.get("scheduler")
    if sched is not None and not (isinstance(sched, dict) and sched.get("type") in SCHEDULERS):
        raise EngineError("a run record is malformed: settings.scheduler: not a schedule")
    batch = settings.get("batch_size")
    if batch is not None:
        _int(batch, "settings.batch_size")
    _int(settings.get("seed"), "settings.seed")
    return settings


def _thin(steps: np.ndarray, means: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points: groups of neighbouring buckets averaged (weighted by the steps they cover)."""
    n = len(steps)
    if n <= limit:
        return steps.copy(), means.copy()
    k = -(-n // limit)
    counts = np.diff(np.concatenate([[0], steps])).astype(np.float64)
    pad = (-n) % k
    c = np.concatenate([counts, np.zeros(pad)]).reshape(-1, k)
    m = np.concatenate([means, np.zeros(pad)]).reshape(-1, k)
    s = np.concatenate([steps, np.full(pad, steps[-1])]).reshape(-1, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = (c * m).sum(axis=1) / np.maximum(c.sum(axis=1), 1)
    return s[:, -1].astype(np.int64), avg


class RunRegistry:
    """Every run of a session, oldest first."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self._next_id = 1
        self._fresh = True  # the next track() starts a new run

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):  # noqa: ANN204
        return iter(self.runs)

    def mark_reset(self) -> None:
        """The session was reset: the next run recorded is a new one."""
        self._fresh = True

    def clear(self) -> None:
        self.runs.clear()
        self._fresh = True

    def get(self, run_id: int) -> Run:
        for run in self.runs:
            if run.id == run_id:
                return run
        raise EngineError(f"no run {run_id}")

    def remove(self, run_id: int) -> None:
        self.runs.remove(self.get(run_id))

    def track(self, session: Any, finished: Any = None) -> Run:
        """Record the session's current state: extend the current run, or start a new one (after a reset,
        a change of settings, or when the history went back)."""
        settings = run_settings(session)
        current = self.runs[-1] if self.runs else None
        if (self._fresh or current is None or json.dumps(current.settings, sort_keys=True, default=str)
                != json.dumps(settings, sort_keys=True, default=str) or session.step < current.step):
            start = 0 if self._fresh or current is None or session.step < current.step else current.step
            current = Run(id=self._next_id, label=run_label(self._next_id, settings), settings=settings,
                          start_step=start)
            self._next_id += 1
            self.runs.append(current)
            self._fresh = False
        self._update(current, session, finished)
        return current

    def _update(self, run: Run, session: Any, finished: Any) -> None:
        steps, mean, _, _ = session.history.series()
        run.steps, run.losses = _thin(steps, mean)
        metrics = getattr(session, "metrics", None)
        if metrics is not None:
            run.test_steps, run.test_losses, run.test_accuracy = metrics.test_series()
        run.step = session.step
        run.final_loss = float(session.history.last) if len(session.history) else None
        if run.final_loss is not None and not math.isfinite(run.final_loss):
            run.final_loss = None
        if finished is not None:
            run.reason = finished.reason

    def absorb(self, other: "RunRegistry") -> None:
        """Take in another registry's runs (a session opened from a file), renumbered after these."""
        for run in other.runs:
            run.id = self._next_id
            run.label = run_label(run.id, run.settings)
            self._next_id += 1
            self.runs.append(run)
        self._fresh = other._fresh if other.runs else self._fresh

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.runs]

    def load_list(self, items: Any) -> None:
        """The runs of a runs.json (`to_list()`'s result), each record checked (`Run.from_dict`); ids unique. An
        EngineError names the run and the field; nothing is changed then."""
        if not isinstance(items, list):
            raise EngineError("runs: expected a list")
        if len(items) > MAX_RUNS:
            raise EngineError(f"runs: {len(items)} runs, more than {MAX_RUNS}")
        runs = []
        for i, d in enumerate(items):
            try:
                runs.append(Run.from_dict(d))
            except EngineError as err:
                raise EngineError(f"run {i + 1} of {len(items)}: {err.message}") from None
        if len({r.id for r in runs}) != len(runs):
            raise EngineError("runs: two runs have the same id")
        self.runs = runs
        self._next_id = max((r.id for r in self.runs), default=0) + 1
        self._fresh = False


__all__ = ["Run", "RunRegistry", "ema_smooth", "run_settings", "run_label"]
