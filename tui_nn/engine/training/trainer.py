"""The trainer: commands in, reports out.

`Trainer.run()` trains a `Session` for N steps (or until a target loss) and reports through a
callback: `Progress` at a bounded rate (time-based, plus the first and the last step, or every K-th
step) and one `Finished` at the end. It never touches a UI: the app runs it in a thread worker and
posts each report as a message; the command line prints them; a future process-based runner can
pickle them (they are plain dataclasses of numbers and strings).

One step = zero_grad, forward, loss, backward, optimizer step. Per-step losses stay on the device
in a buffer; `.cpu()`/`.item()` happen only when reporting (a GPU sync point). A stop request is
honoured at a step boundary, so the weights are those of the last completed step.

NaN and Inf: a non-finite loss, or a training state (parameters, buffers such as BatchNorm's running
statistics, the optimizer's state tensors) that is no longer finite while the loss still is (a dead ReLU
under a huge learning rate: the first layer's weights overflow to -inf, the ReLU outputs 0 and the loss
stays finite), stops training with the last finite weights. The losses are checked at each report, the
state there too with one fused check (a sum per tensor, sent to the host with the losses: no sync of its
own, nothing per step). Snapshots of the whole training state (weights, optimizer, mini-batch order, RNG)
are taken at reports whose checks passed, so they only ever hold finite values; on a failure the steps
after the newest one are replayed (they are deterministic) with a check after every step, which finds
the first bad step, and training ends ("nonfinite") at the last good one: step k-2 for a non-finite
loss at step k (the weights after step k-1 are those that give it), step k-1 for a state that step k
made non-finite. A run that starts from a non-finite state trains nothing and keeps it. A session the
trainer leaves therefore saves and reopens (the loader refuses NaN/Inf in any of these tensors).
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..errors import EngineError, friendly_error
from .session import Session, ShapeCheckFailed

REPORT_INTERVAL = 1 / 15  # seconds between progress reports (about 15 Hz)

BUFFER = 4096  # losses kept on the device between reports

SNAPSHOT_INTERVAL = 0.5  # seconds between snapshots of the training state (a NaN/Inf loss replays from one)


def freeze_startup_objects() -> None:
    """Once a process has imported torch and built its session: the objects alive then (~3 x 10^5, torch's
    and ours) are never garbage, so the collector's full passes, which the tensors each step creates set off,
    need not walk them (~130 ms a pass on the lab VM, a pause of training; 1-2 % of an MLP's steps/s). Cycles
    among them are never collected; everything else is freed as before. `tui-nn run` and the trainer process
    call it before training."""
    gc.collect()
    gc.freeze()


@dataclass
class Progress:
    step: int  # steps completed in this session
    loss: float  # loss of the last step
    losses: np.ndarray  # losses of the steps since the previous report (steps first_step..step)
    first_step: int
    steps_per_s: float
    elapsed: float
    run_steps: int  # steps completed in this run
    total_steps: int | None  # steps asked for in this run (None: until stopped/target)
    accuracy: float | None = None  # training accuracy (classification losses; metrics.py StepMetrics)
    evaluation: Any = None  # metrics.Evaluation of the test split made at this report, if any

    @property
    def test_loss(self) -> float | None:
        return None if self.evaluation is None else self.evaluation.loss

    @property
    def test_accuracy(self) -> float | None:
        return None if self.evaluation is None else self.evaluation.accuracy


@dataclass
class Finished:
    reason: str  # "done", "stopped", "target", "nonfinite", "error"
    step: int
    run_steps: int
    final_loss: float | None
    elapsed: float
    steps_per_s: float
    message: str = ""
    hint: str = ""
    restored_step: int | None = None  # for "nonfinite": the step whose weights were restored
    accuracy: float | None = None  # training accuracy (classification losses; metrics.py StepMetrics)
    evaluation: Any = None  # metrics.Evaluation of the test split at the end, if there is one

    @property
    def ok(self) -> bool:
        return self.reason in ("done", "stopped", "target")


Report = Progress | Finished


@dataclass
class _Batches:
    """Full batch, mini-batches (reshuffled each epoch; the last one of an epoch holds what is left, as
    torch's DataLoader does by default) or one sample per step."""

    session: Session
    size: int
    shuffle: bool
    perm: torch.Tensor | None = field(default=None)

    def __post_init__(self) -> None:
        n = int(self.session.inputs.shape[0])
        self.n = n
        self.full = self.size <= 0 or self.size >= n

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.session
        assert s.targets is not None
        if self.full:
            return s.inputs, s.targets
        if s.batch_perm is None or s.batch_pos >= self.n:  # a new epoch (its last batch may be smaller)
            perm = (torch.randperm(self.n, generator=s.batch_gen) if self.shuffle else torch.arange(self.n))
            s.batch_perm = perm.to(s.inputs.device)
            s.batch_pos = 0
        idx = s.batch_perm[s.batch_pos:s.batch_pos + self.size]
        s.batch_pos += self.size
        return s.inputs[idx], s.targets[idx]


def state_tensors(session: Session) -> list[tuple[str, torch.Tensor]]:
    """The floating tensors of the training state a session file holds, each with what to call it: the model's
    parameters and buffers (its state dict) and the optimizer's state tensors."""
    model = session.model
    params = dict(model.named_parameters())
    out = [((f"the parameter {name}" if name in params else f"the buffer {name}"), t)
           for name, t in model.state_dict().items() if t.is_floating_point() and t.numel()]
    opt = session.optimizer if session.optimizer_made else None
    if opt is not None and opt.state:
        names = {id(p): name for name, p in params.items()}
        for group in opt.param_groups:
            for p in group["params"]:
                for key, value in opt.state.get(p, {}).items():
                    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
                        out.append((f"the optimizer's {key} of {names.get(id(p), 'a parameter')}", value))
    return out


_HALF = (torch.float16, torch.bfloat16)


def finite_flag(tensors: list[tuple[str, torch.Tensor]]) -> torch.Tensor | None:
    """On the tensors' device, without a sync: True when the sum of each tensor is finite, which proves every
    value is (Inf and NaN propagate; Inf - Inf is NaN). False also when a sum overflowed on finite values: then
    `first_nonfinite` tells. None without tensors."""
    if not tensors:
        return None
    sums = [t.detach().sum(dtype=torch.float32) if t.dtype in _HALF else t.detach().sum() for _, t in tensors]
    return torch.stack(sums).isfinite().all()


def all_finite(tensors: list[tuple[str, torch.Tensor]]) -> bool:
    """Whether every tensor holds only finite values: one sum per tensor and one sync (the exact check only when a
    sum is not finite)."""
    flag = finite_flag(tensors)
    return flag is None or bool(flag) or first_nonfinite(tensors) is None


def first_nonfinite(tensors: list[tuple[str, torch.Tensor]]) -> tuple[str, float, int, int] | None:
    """(what, the first non-finite value, how many there are, of how many) of the first tensor holding NaN or
    Inf; None when all are finite."""
    for label, t in tensors:
        ok = torch.isfinite(t.detach())
        if not bool(ok.all()):
            bad = t.detach()[~ok]
            return label, float(bad[0].item()), int(bad.numel()), int(t.numel())
    return None


def _describe(bad: tuple[str, float, int, int]) -> str:
    label, value, n, size = bad
    return f"{label} became {value} ({n} of {size} values)"


class Trainer:
    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, steps: int | None, *, report: Callable[[Report], None] = lambda r: None,
            should_stop: Callable[[], bool] = lambda: False, interval: float = REPORT_INTERVAL,
            every: int | None = None, target_loss: float | None = None) -> Finished:
        """Train `steps` steps (None: until stopped or the target loss). Reports via `report`."""
        s = self.session
        if not s.trainable:
            if s.report.error is not None:
                raise ShapeCheckFailed(s.report.error)
            raise EngineError(s.why_not_trainable())
        assert s.loss_fn is not None
        t = s.training
        target = target_loss if target_loss is not None else t.target_loss
        target_acc = t.target_accuracy
        model, loss_fn = s.model, s.loss_fn
        batches = _Batches(s, t.batch_size, t.shuffle)
        full = batches.full
        buf: list[torch.Tensor] = []  # the detached loss of each step since the last report (stacked at flush)
        from .metrics import StepMetrics, batch_accuracy, evaluate

        metrics = StepMetrics(s, every=every, full_batch=full)  # accuracy and the test split, at report time
        last_acc: float | None = None
        last_eval: Any = None
        start_step = s.step
        first_in_buf = s.step + 1
        reset_each = t.reset_optimizer_each_step
        fresh = s.optimizer_maker() if reset_each else None  # lab 004: a fresh optimizer every step
        s.note_run_start()
        opt = s.optimizer  # made here if it was not yet
        schedule = s.scheduler  # schedules.py: stepped once per step
        assert opt is not None
        start_state = state_tensors(s)
        start_bad = None if all_finite(start_state) else first_nonfinite(start_state)
        # snapshots of the whole training state, all finite, for a NaN/Inf: the bad step's predecessors are replayed
        snapshots = [s.train_state(copy=True, weights=True)]
        next_snapshot = time.perf_counter() + SNAPSHOT_INTERVAL
        t0 = time.perf_counter()
        next_report = t0  # the first step is reported
        done = 0
        reason = "done"
        message = hint = ""
        restored: int | None = None
        last_loss: float | None = s.history.last if len(s.history) else None
        limit = steps
        if start_bad is not None:  # nothing finite to go back to: train nothing, keep the state as it is
            limit = 0
            reason = "nonfinite"
            restored = s.step
            message = (f"{start_bad[0]} holds {start_bad[1]} ({start_bad[2]} of {start_bad[3]} values) in the weights "
                       f"this run started from (step {s.step}); nothing was trained and they were kept")
            hint = "R resets the weights; a NaN or Inf weight gives no useful gradient"
        model.train()

        def one_step(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            nonlocal opt, schedule
            if reset_each:
                if fresh is not None:  # what a hand-written loop does: the class with the checked arguments
                    opt = s.optimizer = fresh()
                else:
                    opt = s.optimizer = s.new_optimizer()
                    schedule = s.scheduler
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            return out, loss

        def newest_snapshot(step: int) -> dict[str, Any]:
            """The newest snapshot at or before `step` (the oldest if none is)."""
            return max((x for x in snapshots if x["step"] <= step), key=lambda x: x["step"], default=snapshots[0])

        def restore(state: dict[str, Any]) -> None:
            nonlocal opt, schedule
            s.apply_train_state(state)
            opt, schedule = s.optimizer, s.scheduler

        def replay(snap: dict[str, Any], upto: int) -> tuple[str, int, Any] | None:
            """Restore `snap` and replay the steps up to step `upto` (deterministic), checking the loss and the
            training state after each: the first bad step as ("loss", step, value) or ("state", step,
            first_nonfinite's answer), the session then left after that step; None when every step was fine.
            A step that raises: ("error", step, the exception), the snapshot restored."""
            restore(snap)
            try:
                while s.step < upto:
                    if full:
                        xb, yb = s.inputs, s.targets
                    else:
                        xb, yb = batches.next()
                    _, loss = one_step(xb, yb)
                    value = float(loss.detach().item())
                    if not math.isfinite(value):
                        return "loss", s.step + 1, value
                    tensors = state_tensors(s)
                    if not all_finite(tensors):
                        return "state", s.step + 1, first_nonfinite(tensors)
                    s.step += 1
            except Exception as err:  # noqa: BLE001 - the snapshot is finite: keep it
                at = s.step + 1
                restore(snap)
                return "error", at, err
            return None

        def recover(bad_loss: tuple[int, float] | None) -> tuple[str, int, Any]:
            """After a report found a non-finite loss (its step and value) or (None) a non-finite training state at
            this step: find the first bad step and go back to the last good one, by replaying from a snapshot
            with a check after each step. A non-finite loss at step k: the weights after step k-1 give it, those
            of step k-2 (whose loss, step k-1's, was finite) are restored; a state that step k made non-finite:
            step k-1's is restored. Returns what was found (replay's kinds, or "lost": a replay from the
            snapshot did not reproduce it, and the snapshot is kept)."""
            end = s.step
            upto = max(bad_loss[0] - 2, start_step) if bad_loss is not None else end
            snap = newest_snapshot(upto)
            found = replay(snap, upto)
            if found is None:  # no bad step before upto
                if bad_loss is not None:  # the session is at step k-2, the last good one
                    if s.step == upto == bad_loss[0] - 2:
                        # step k-1 once more, checked: a state it made non-finite is named rather than the loss
                        here = s.train_state(copy=True, weights=True)
                        extra = replay(here, upto + 1)
                        restore(here)
                        if extra is not None and extra[0] == "state":
                            return extra
                    return "loss", bad_loss[0], bad_loss[1]
                restore(snap)  # the replay differed (a nondeterministic kernel): the snapshot is finite
                return "lost", end, None
            kind, at, _ = found
            if kind == "error":
                return found
            want = at - 1 if kind == "state" else max(at - 2, start_step)
            back = newest_snapshot(want)
            if replay(back, want) is not None:  # differed this time: keep that snapshot
                restore(back)
            return found

        def nonfinite_message(found: tuple[str, int, Any], end: int) -> str:
            kind, at, what = found
            if kind == "loss":
                if at - 1 <= start_step:
                    return (f"the loss is {what} at step {at}: the weights this run started from (step {restored}) "
                            f"already give a non-finite loss; they were kept")
                return (f"the loss became {what} at step {at}; training stopped and the weights of step {restored} "
                        f"were restored, the newest whose loss was finite (with the optimizer state and the "
                        f"mini-batch order of that step)")
            if kind == "state":
                head = f"{_describe(what)} at step {at} while the loss stayed finite; training stopped"
                if restored == start_step:
                    return f"{head} and the weights this run started from (step {restored}) were kept"
                return (f"{head} and the weights of step {restored} were restored, the newest whose parameters and "
                        f"optimizer state were all finite (with the mini-batch order of that step)")
            if kind == "error":
                err_message, _ = friendly_error(what)
                return (f"the training state was not finite by step {end}; replaying the steps to find the first "
                        f"bad one failed at step {at} ({err_message}); the weights of step {restored}, all finite, "
                        f"were restored")
            return (f"the training state was not finite at step {end}, but replaying the steps from step {restored} "
                    f"did not make it so again (a nondeterministic kernel?); the weights of step {restored}, all "
                    f"finite, were restored")

        def flush(final: bool) -> bool:
            """Move buffered losses to the host, record them, report. False if a loss or the training state was not
            finite (training then ends at the last good step: recover)."""
            nonlocal first_in_buf, reason, message, hint, restored, last_loss, next_report, next_snapshot
            nonlocal last_acc, last_eval
            if not buf:
                return True
            stacked = torch.stack(buf)
            tensors = state_tensors(s)  # the training state, checked with the losses: the same single sync
            flag = finite_flag(tensors)
            if flag is not None:
                stacked = torch.cat([stacked, flag.to(stacked.dtype).reshape(1)])
            values = stacked.cpu().double().numpy()
            state_ok = True
            if flag is not None:
                state_ok = bool(values[-1]) or first_nonfinite(tensors) is None  # a sum that overflowed on finite
                values = values[:-1]
            buf.clear()
            first, first_in_buf = first_in_buf, s.step + 1
            bad = ~np.isfinite(values)
            k = int(np.argmax(bad)) if bad.any() else len(values)  # the losses before the first non-finite one
            if k < len(values) or not state_ok:
                end = s.step
                found = recover((first + k, float(values[k])) if k < len(values) else None)
                restored = s.step
                s.history.extend(values[:k])
                s.history.truncate(restored)
                metrics.metrics.truncate(restored)
                kept = values[:max(restored - first + 1, 0)]
                if len(kept):  # the finite losses before the bad step still reach the listener (a remote history)
                    el = time.perf_counter() - t0
                    report(Progress(step=restored, loss=float(kept[-1]), losses=kept, first_step=first,
                                    steps_per_s=(restored - start_step) / el if el else 0.0, elapsed=el,
                                    run_steps=restored - start_step, total_steps=steps))
                reason = "nonfinite"
                message = nonfinite_message(found, end)
                hint = ("lower the learning rate (an update this large overflows float32); R resets the weights"
                        if found[0] == "state" else
                        "lower the learning rate, or check the data and the loss; R resets the weights")
                last_loss = float(s.history.last) if len(s.history) else None
                return False
            s.history.extend(values)
            last_loss = float(values[-1])
            acc, ev = metrics.flush(s.step, final=final, interval=interval)
            if acc is not None:
                last_acc = acc
            if ev is not None:
                last_eval = ev
            now = time.perf_counter()
            elapsed = now - t0
            done_now = s.step - start_step
            report(Progress(step=s.step, loss=last_loss, losses=values, first_step=first,
                            steps_per_s=done_now / elapsed if elapsed > 0 else 0.0, elapsed=elapsed,
                            run_steps=done_now, total_steps=steps, accuracy=acc, evaluation=ev))
            if not final and now >= next_snapshot:
                snapshots[:] = snapshots[-1:] + [s.train_state(copy=True, weights=True)]
                next_snapshot = time.perf_counter() + SNAPSHOT_INTERVAL
            next_report = now + interval
            return True

        def target_met(out: torch.Tensor, loss: torch.Tensor, yb: torch.Tensor) -> bool:
            """Full batch: this step's loss and accuracy (a sync point, only when a target is set). Mini-batches:
            the whole training set, evaluated at the end of each epoch (one batch's numbers are noise)."""
            if full:
                if target is not None and loss.item() <= target:
                    return True
                if target_acc is not None:
                    a = batch_accuracy(out, yb, t.loss.type, metrics.ignore)
                    return a is not None and a.item() >= target_acc
                return False
            if s.batch_pos < batches.n:
                return False
            ev = evaluate(s, "train")
            if ev is None:
                return False
            return ((target is not None and ev.loss is not None and ev.loss <= target)
                    or (target_acc is not None and ev.accuracy is not None and ev.accuracy >= target_acc))

        # the hot loop: per step only what a hand-written loop does, plus a list append, a counter and a clock read
        xb, yb = s.inputs, s.targets  # full batch: the same tensors every step
        record = metrics.record if metrics.per_step else None
        check_target = target is not None or target_acc is not None
        append = buf.append
        perf_counter = time.perf_counter
        out: torch.Tensor | None = None  # the last completed step's output

        def record_last() -> None:  # before the final flush: the accuracy of the step the run ends at
            if record is not None and out is not None:
                record(out, yb)

        try:
            while limit is None or done < limit:
                if should_stop():
                    reason = "stopped"
                    break
                if not full:
                    xb, yb = batches.next()
                out, loss = one_step(xb, yb)  # (a step that raises leaves `out` the last completed step's)
                append(loss.detach())
                s.step += 1
                done += 1
                last = limit is not None and done >= limit
                hit = check_target and target_met(out, loss, yb)
                if (hit or last or len(buf) == BUFFER
                        or (every is not None and s.step % every == 0)
                        or (every is None and perf_counter() >= next_report)):
                    if record is not None:  # the output the report's accuracy is taken from: this step's
                        record(out, yb)
                    if not flush(final=last or hit):
                        break
                    if hit:
                        reason = "target"
                        break
        except Exception as err:  # noqa: BLE001 - every failure in a step becomes a value
            message, hint = friendly_error(err)
            reason = "error"
            try:
                record_last()
                flush(final=True)  # the completed steps' losses (a failing report callback is not called again)
            except Exception:  # noqa: BLE001
                pass
        else:
            if reason != "nonfinite":
                record_last()
                flush(final=True)
        elapsed = time.perf_counter() - t0
        run_steps = s.step - start_step
        if reason != "nonfinite":
            last_eval = metrics.finish(s.step) or last_eval  # the test split as training left it
        fin = Finished(reason=reason, step=s.step, run_steps=max(run_steps, 0), final_loss=last_loss,
                       elapsed=elapsed, steps_per_s=run_steps / elapsed if elapsed > 0 and run_steps > 0 else 0.0,
                       message=message, hint=hint, restored_step=restored, accuracy=last_acc, evaluation=last_eval)
        runs = getattr(s, "runs", None)  # a trainer process's session has none: the app's process records it
        if runs is not None:
            runs.track(s, fin)
        return fin


def train(session: Session, steps: int, **kw) -> tuple[Finished, list[float]]:  # noqa: ANN003
    """Convenience for scripts and tests: run and collect every step's loss."""
    losses: list[float] = []

    def collect(r: Report) -> None:
        if isinstance(r, Progress):
            losses.extend(float(v) for v in r.losses)

    fin = Trainer(session).run(steps, report=collect, **kw)
    return fin, losses
