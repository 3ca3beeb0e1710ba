"""Metrics beside the training loss: accuracy, the test split's loss and accuracy, a confusion matrix.

Accuracy is defined by the loss: CrossEntropyLoss/NLLLoss compare the arg-max of the output with the
class index (or the arg-max of a probability row), BCEWithLogitsLoss thresholds the output at 0 and
BCELoss at 0.5 against targets thresholded at 0.5; regression losses have no accuracy.

During training nothing extra happens per step: when the trainer reports, the training accuracy is
computed (full batch: from the last step's own forward output; mini-batches: on the whole training
split) and the test split is evaluated (eval mode, no gradients), no more often than keeps the
evaluation a small share of the time, and once at the end of a run. Evaluating never changes the weights, the batch order or any RNG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import EngineError
from .objectives import LOSSES

EVAL_CHUNK = 16384  # samples per forward pass when evaluating a split
MAX_EVALS = 4096  # test evaluations kept per session (older ones are thinned out)
MAX_CLASSES = 1000  # confusion matrices larger than this are refused


def accuracy_kind(loss: str) -> str | None:
    """"classification", "binary" or None (no accuracy for regression losses)."""
    kind = LOSSES[loss].kind if loss in LOSSES else "regression"
    return kind if kind in ("classification", "binary") else None


def _predictions(out: torch.Tensor, y: torch.Tensor, loss: str,
                 ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(predicted class, true class, valid mask), all of the same shape, or None."""
    kind = accuracy_kind(loss)
    if kind == "classification":
        if out.dim() < 2:
            return None
        pred = out.argmax(1)
        if y.is_floating_point() and tuple(y.shape) == tuple(out.shape):
            truth = y.argmax(1)
            valid = torch.ones_like(truth, dtype=torch.bool)
        else:
            truth = y.long()
            valid = truth != ignore_index
        return pred, truth, valid
    if kind == "binary":
        threshold = 0.0 if loss == "BCEWithLogitsLoss" else 0.5
        pred = (out > threshold).long()
        truth = (y.reshape(out.shape) > 0.5).long() if y.numel() == out.numel() else (y > 0.5).long()
        return pred, truth, torch.ones_like(truth, dtype=torch.bool)
    return None


def batch_accuracy(out: torch.Tensor, y: torch.Tensor, loss: str, ignore_index: int = -100) -> torch.Tensor | None:
    """The share of correct predictions as a 0-dim tensor on the output's device (no sync), or None."""
    with torch.no_grad():
        p = _predictions(out.detach(), y, loss, ignore_index)
        if p is None:
            return None
        pred, truth, valid = p
        correct = ((pred == truth) & valid).sum()
        return correct.float() / valid.sum().clamp_min(1).float()


def _ignore_index(session: Any) -> int:
    return int(session.training.loss.args.get("ignore_index", -100))


@dataclass
class Evaluation:
    """A split evaluated in eval mode at a given step."""

    step: int
    loss: float | None
    accuracy: float | None
    samples: int


def _split(session: Any, split: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if split == "train":
        return session.inputs, session.targets
    if split == "test":
        return getattr(session, "test_inputs", None), getattr(session, "test_targets", None)
    raise EngineError(f"unknown split \"{split}\"; expected train or test")


def _outputs(session: Any, x: torch.Tensor) -> torch.Tensor:
    model = session.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(x[i:i + EVAL_CHUNK]) for i in range(0, int(x.shape[0]), EVAL_CHUNK)]
    finally:
        model.train(was_training)
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def evaluate(session: Any, split: str = "test") -> Evaluation | None:
    """Loss and accuracy of a split (eval mode, no gradients), or None when the split is empty/absent."""
    x, y = _split(session, split)
    if x is None or y is None or int(x.shape[0]) == 0 or session.loss_fn is None or session.report.error is not None:
        return None
    out = _outputs(session, x)
    loss = None
    with torch.no_grad():
        try:
            value = session.loss_fn(out, y)
            loss = float(value.mean().item())
        except (RuntimeError, ValueError):
            loss = None
        acc = batch_accuracy(out, y, session.training.loss.type, _ignore_index(session))
    return Evaluation(step=session.step, loss=loss, accuracy=None if acc is None else float(acc.item()),
                      samples=int(x.shape[0]))


def accuracy(session: Any, split: str = "train") -> float | None:
    ev = evaluate(session, split)
    return None if ev is None else ev.accuracy


@dataclass
class ConfusionMatrix:
    """counts[t][p]: samples of true class t predicted as p."""

    classes: int
    counts: list[list[int]]
    split: str

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def accuracy(self) -> float | None:
        total = self.total
        return None if total == 0 else sum(self.counts[i][i] for i in range(self.classes)) / total

    def text(self) -> str:
        width = max(5, len(str(max((max(r) for r in self.counts), default=0))) + 1)
        lines = ["true \\ predicted".ljust(18) + "".join(str(c).rjust(width) for c in range(self.classes))]
        for t, row in enumerate(self.counts):
            lines.append(f"class {t}".ljust(18) + "".join(str(v).rjust(width) for v in row))
        return "\n".join(lines)


def confusion_matrix(session: Any, split: str = "test") -> ConfusionMatrix | None:
    """The confusion matrix of a split for a classification loss (eval mode), or None (regression, no split)."""
    x, y = _split(session, split)
    loss = session.training.loss.type
    if x is None or y is None or accuracy_kind(loss) is None or session.report.error is not None:
        return None
    out = _outputs(session, x)
    p = _predictions(out, y, loss, _ignore_index(session))
    if p is None:
        return None
    pred, truth, valid = (t.reshape(-1).cpu() for t in p)
    if accuracy_kind(loss) == "binary":
        classes = 2
    else:
        classes = int(out.shape[1])
    if classes > MAX_CLASSES:
        raise EngineError(f"{classes} classes are too many for a confusion matrix (at most {MAX_CLASSES})")
    pred, truth = pred[valid], truth[valid]
    flat = torch.bincount(truth * classes + pred, minlength=classes * classes)
    return ConfusionMatrix(classes, flat.reshape(classes, classes).tolist(), split)


class Series:
    """(step, value) points, bounded: when full, every other older point is dropped (the newest is kept)."""

    def __init__(self, capacity: int = MAX_EVALS) -> None:
        self.capacity = capacity
        self.points: list[tuple[int, float]] = []

    def __len__(self) -> int:
        return len(self.points)

    def add(self, step: int, value: float) -> None:
        if self.points and self.points[-1][0] == step:
            self.points[-1] = (step, value)
            return
        self.points.append((step, value))
        if len(self.points) > self.capacity:
            keep = self.points[-1]
            self.points[:] = self.points[:-1:2] + [keep]

    def clear(self) -> None:
        self.points.clear()

    def truncate(self, step: int) -> None:
        self.points[:] = [p for p in self.points if p[0] <= step]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([p[0] for p in self.points], dtype=np.int64),
                np.array([p[1] for p in self.points], dtype=np.float64))

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


@dataclass
class Metrics:
    """A session's metrics besides the loss history, recorded at report time: the accuracy of the last
    step's batch, and the test evaluations. Both bounded (thinned out when full)."""

    accuracy: Series = field(default_factory=Series)
    evals: list[Evaluation] = field(default_factory=list)

    def clear(self) -> None:
        self.accuracy.clear()
        self.evals.clear()

    def truncate(self, step: int) -> None:
        self.accuracy.truncate(step)
        self.evals[:] = [e for e in self.evals if e.step <= step]

    def add_eval(self, ev: Evaluation) -> None:
        if self.evals and self.evals[-1].step == ev.step:
            self.evals[-1] = ev
            return
        self.evals.append(ev)
        if len(self.evals) > MAX_EVALS:
            keep = self.evals[-1]
            self.evals[:] = self.evals[:-1:2] + [keep]

    @property
    def last_eval(self) -> Evaluation | None:
        return self.evals[-1] if self.evals else None

    def test_series(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step, test loss, test accuracy) of the evaluations; NaN where a value is absent."""
        steps = np.array([e.step for e in self.evals], dtype=np.int64)
        loss = np.array([np.nan if e.loss is None else e.loss for e in self.evals], dtype=np.float64)
        acc = np.array([np.nan if e.accuracy is None else e.accuracy for e in self.evals], dtype=np.float64)
        return steps, loss, acc


def session_metrics(session: Any) -> Metrics:
    """The session's Metrics (created on first use)."""
    m = getattr(session, "metrics", None)
    if m is None:
        m = Metrics()
        session.metrics = m
    return m


class StepMetrics:
    """The trainer's helper, recording in `session.metrics` at report time:

    - the training accuracy: with full-batch steps, that of the last step's own forward output (kept by
      reference, no work per step); with mini-batches, one batch says little, so the whole training split is
      evaluated (eval mode), at the same bounded rate as the test split;
    - the test split's evaluation, when due (rate-limited so that evaluating stays a small share of the time)."""

    def __init__(self, session: Any, *, every: int | None, full_batch: bool = True) -> None:
        self.session = session
        self.loss = session.training.loss.type
        self.ignore = _ignore_index(session)
        self.track = accuracy_kind(self.loss) is not None
        self.full_batch = full_batch
        self.per_step = self.track and full_batch  # `record` is worth calling every step
        self.has_test = getattr(session, "test_inputs", None) is not None
        self.every = every
        self.next_eval = 0.0
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self.metrics = session_metrics(session)

    def record(self, out: torch.Tensor, y: torch.Tensor) -> None:
        if self.per_step:
            self.last = (out, y)

    def flush(self, step: int, *, final: bool, interval: float) -> tuple[float | None, Evaluation | None]:
        """(training accuracy, test evaluation), each None when not measured at this report; both recorded."""
        acc = None
        if self.last is not None:
            a = batch_accuracy(self.last[0], self.last[1], self.loss, self.ignore)
            self.last = None
            if a is not None:
                acc = float(a.item())
        ev = None
        now = time.perf_counter()
        train_split = self.track and not self.full_batch
        if (self.has_test or train_split) and (final or self.every is not None or now >= self.next_eval):
            if train_split:
                tr = evaluate(self.session, "train")
                acc = tr.accuracy if tr is not None else None
            if self.has_test:
                ev = evaluate(self.session, "test")
                if ev is not None:
                    self.metrics.add_eval(ev)
            cost = time.perf_counter() - now
            self.next_eval = now + max(interval, 9 * cost)  # evaluation stays about a tenth of the time
        if acc is not None:
            self.metrics.accuracy.add(step, acc)
        return acc, ev

    def finish(self, step: int) -> Evaluation | None:
        """At the end of a run: evaluate the test split unless that was just done at this step."""
        last = self.metrics.last_eval
        if not self.has_test or (last is not None and last.step == step):
            return None
        try:
            ev = evaluate(self.session, "test")
        except Exception:  # noqa: BLE001 - a run that failed may not evaluate either; the run's result stands
            return None
        if ev is not None:
            self.metrics.add_eval(ev)
        return ev


def apply_progress(session: Any, report: Any) -> None:
    """Record a report's metrics (a Progress or a Finished from a trainer process) in `session.metrics`."""
    m = session_metrics(session)
    if getattr(report, "accuracy", None) is not None:
        m.accuracy.add(report.step, report.accuracy)
    if getattr(report, "evaluation", None) is not None:
        m.add_eval(report.evaluation)


__all__ = ["accuracy_kind", "batch_accuracy", "evaluate", "accuracy", "Evaluation", "ConfusionMatrix",
           "confusion_matrix", "Metrics", "Series", "session_metrics",
           "StepMetrics", "apply_progress"]
