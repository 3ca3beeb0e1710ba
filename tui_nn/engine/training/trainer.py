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
from .metrics import StepMetrics, batch_accuracy, evaluate
from .schedules import step_every
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
    torch's DataLoader does by default, or with `drop_last` is dropped when it would be smaller than the
    others, as DataLoader(drop_last=True) does) or one sample per step."""

    session: Session
    size: int
    shuffle: bool
    drop_last: bool = False
    perm: torch.Tensor | None = field(default=None)

    def __post_init__(self) -> None:
        n = int(self.session.inputs.shape[0])
        self.n = n
        self.full = self.size <= 0 or self.size >= n
        # where an epoch ends: after the last sample, or with drop_last after the last complete batch
        self.end = n - n % self.size if self.drop_last and not self.full else n

    def epoch_done(self) -> bool:
        """Whether the last batch drawn ended an epoch (the next one starts a new order)."""
        return self.session.batch_pos >= self.end

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.session
        assert s.targets is not None
        if self.full:
            return s.inputs, s.targets
        if s.batch_perm is None or s.batch_pos >= self.end:  # a new epoch (its last batch may be smaller)
            perm = (torch.randperm(self.n, generator=s.batch_gen) if self.shuffle else torch.arange(self.n))
            s.batch_perm = perm.to(s.inputs.device)
            s.batch_pos = 0
        idx = s.batch_perm[s.batch_pos:s.batch_pos + self.size]
        s.batch_pos += self.size
        return s.inputs[idx], s.targets[idx]

    def next_ends_epoch(self) -> bool:
        """Whether the next batch drawn ends an epoch (a full batch: every step is an epoch)."""
        if self.full:
            return True
        s = self.session
        pos = 0 if s.batch_perm is None or s.batch_pos >= self.end else s.batch_pos
        return pos + self.size >= self.end


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


def train_step(model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor], opt: torch.optim.Optimizer,
               schedule: Any, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step, as a hand-written loop takes it: zero_grad, forward, loss, backward, optimizer step, schedule."""
    opt.zero_grad(set_to_none=True)
    out = model(xb)
    loss = loss_fn(out, yb)
    loss.backward()
    opt.step()
    if schedule is not None:
        schedule.step()
    return out, loss


class StepPlan:
    """A step beyond the plain one (`train_step`): gradient clipping between backward and the update, LBFGS's
    closure, a schedule stepped at each epoch's end, ReduceLROnPlateau's loss, OneCycleLR's last step. None
    (`StepPlan.of`) on the common path, which keeps `train_step`: the hot loop then pays one `is None` check.

    The order is a hand-written loop's: the batch, zero_grad, forward, loss, backward, clip, optimizer step
    (LBFGS: optimizer.step(closure), the step's loss the closure's first evaluation, as optimizer.step returns
    it), then the scheduler, when it steps, with ReduceLROnPlateau's loss (the test split's in eval mode when
    there is one, else this step's training loss)."""

    @staticmethod
    def of(s: Session, batches: _Batches, fresh: Callable[[], torch.optim.Optimizer] | None,
           reset_each: bool) -> StepPlan | None:
        t = s.training
        sched = t.scheduler
        plain = (t.clip_grad_norm is None and t.clip_grad_value is None and t.optimizer.type != "LBFGS"
                 and (sched is None or (step_every(sched) == "step"
                                        and sched.type not in ("ReduceLROnPlateau", "OneCycleLR"))))
        return None if plain else StepPlan(s, batches, fresh, reset_each)

    def __init__(self, s: Session, batches: _Batches, fresh: Callable[[], torch.optim.Optimizer] | None,
                 reset_each: bool) -> None:
        t = s.training
        self.s, self.batches, self.fresh, self.reset_each = s, batches, fresh, reset_each
        self.params = [p for p in s.model.parameters()]
        self.clip_norm, self.clip_value = t.clip_grad_norm, t.clip_grad_value
        self.closure = t.optimizer.type == "LBFGS"
        sched = t.scheduler
        self.every = step_every(sched)
        self.plateau = sched is not None and sched.type == "ReduceLROnPlateau"
        self.limit = int(sched.args["total_steps"]) if sched is not None and sched.type == "OneCycleLR" else None
        self.test = s.test_inputs is not None and int(s.test_inputs.shape[0]) > 0

    def step(self, model: torch.nn.Module, loss_fn: Callable[..., torch.Tensor], opt: torch.optim.Optimizer,
             schedule: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                     torch.optim.Optimizer, Any]:
        """One step: (output, loss, the batch's inputs and targets, the optimizer and schedule now)."""
        s, b = self.s, self.batches
        stepping = schedule is not None and (self.every == "step" or b.next_ends_epoch())
        if stepping and self.limit is not None and schedule.last_epoch >= self.limit:
            raise EngineError(f"OneCycleLR was stepped total_steps = {self.limit} times: torch cannot step it "
                              f"further; training stopped before step {s.step + 1}",
                              hint="set a larger training.scheduler.total_steps (the steps of the whole run), or "
                                   "R to reset and start the cycle again")
        xb, yb = (s.inputs, s.targets) if b.full else b.next()
        if self.reset_each:
            opt, schedule = renew_optimizer(s, self.fresh, schedule)
        if self.closure:
            first: list[torch.Tensor] = []

            def closure() -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                output = model(xb)
                value = loss_fn(output, yb)
                value.backward()
                if not first:
                    first.append(output)
                return value

            loss = opt.step(closure)
            out = first[0]
        else:
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            if self.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
            elif self.clip_value is not None:
                torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
            opt.step()
        if stepping:
            if self.plateau:
                schedule.step(self.plateau_loss(loss))
            else:
                schedule.step()
        return out, loss, xb, yb, opt, schedule

    def plateau_loss(self, loss: torch.Tensor) -> float:
        """ReduceLROnPlateau's loss: the test split's (eval mode, no gradients) or this step's training loss."""
        if not self.test:
            return float(loss.item())
        ev = evaluate(self.s, "test")
        if ev is None or ev.loss is None:
            raise EngineError("ReduceLROnPlateau needs the test split's loss, which could not be computed")
        return ev.loss


def renew_optimizer(s: Session, fresh: Callable[[], torch.optim.Optimizer] | None, schedule: Any
                    ) -> tuple[torch.optim.Optimizer, Any]:
    """`reset_optimizer_each_step` (lab 004): a fresh optimizer for this step, the session's from now on. `fresh`
    is the session's optimizer_maker() (what a hand-written loop does: the class with the checked arguments);
    None: the session's new_optimizer(), with a fresh schedule."""
    if fresh is not None:
        opt = fresh()
        s.optimizer = opt
        return opt, schedule
    opt = s.optimizer = s.new_optimizer()
    return opt, s.scheduler


class Rollback:
    """The way back from a non-finite loss or training state to the last good step.

    Snapshots of the whole training state (weights, optimizer, mini-batch order, RNG) are taken at reports whose
    checks passed (`snapshot`), so they only ever hold finite values. On a failure (`recover`) the steps after the
    newest snapshot before it are replayed (they are deterministic) with a check after every step, which finds
    the first bad step, and the session is left at the last good one (the module's docstring says which)."""

    def __init__(self, s: Session, batches: _Batches, start_step: int, *, model: torch.nn.Module,
                 loss_fn: Callable[..., torch.Tensor], fresh: Callable[[], torch.optim.Optimizer] | None,
                 reset_each: bool, plan: StepPlan | None = None) -> None:
        self.s = s
        self.plan = plan
        self.model, self.loss_fn = model, loss_fn  # the run's: a replay steps exactly as the run did
        self.batches = batches
        self.start_step = start_step
        self.fresh = fresh
        self.reset_each = reset_each
        self.snapshots = [s.train_state(copy=True, weights=True)]
        self.next_snapshot = time.perf_counter() + SNAPSHOT_INTERVAL

    def snapshot(self, now: float) -> None:
        """At a report whose checks passed: a new snapshot when SNAPSHOT_INTERVAL has passed (two are kept)."""
        if now >= self.next_snapshot:
            self.snapshots[:] = self.snapshots[-1:] + [self.s.train_state(copy=True, weights=True)]
            self.next_snapshot = time.perf_counter() + SNAPSHOT_INTERVAL

    def newest(self, step: int) -> dict[str, Any]:
        """The newest snapshot at or before `step` (the oldest if none is)."""
        return max((x for x in self.snapshots if x["step"] <= step), key=lambda x: x["step"],
                   default=self.snapshots[0])

    def replay(self, snap: dict[str, Any], upto: int) -> tuple[str, int, Any] | None:
        """Restore `snap` and replay the steps up to step `upto` (deterministic), checking the loss and the
        training state after each: the first bad step as ("loss", step, value) or ("state", step,
        first_nonfinite's answer), the session then left after that step; None when every step was fine.
        A step that raises: ("error", step, the exception), the snapshot restored."""
        s = self.s
        s.apply_train_state(snap)
        opt, schedule = s.optimizer, s.scheduler
        try:
            while s.step < upto:
                if self.plan is not None:
                    _, loss, _, _, opt, schedule = self.plan.step(self.model, self.loss_fn, opt, schedule)
                else:
                    xb, yb = (s.inputs, s.targets) if self.batches.full else self.batches.next()
                    if self.reset_each:
                        opt, schedule = renew_optimizer(s, self.fresh, schedule)
                    _, loss = train_step(self.model, self.loss_fn, opt, schedule, xb, yb)
                value = float(loss.detach().item())
                if not math.isfinite(value):
                    return "loss", s.step + 1, value
                tensors = state_tensors(s)
                if not all_finite(tensors):
                    return "state", s.step + 1, first_nonfinite(tensors)
                s.step += 1
        except Exception as err:  # noqa: BLE001 - the snapshot is finite: keep it
            at = s.step + 1
            s.apply_train_state(snap)
            return "error", at, err
        return None

    def recover(self, bad_loss: tuple[int, float] | None) -> tuple[str, int, Any]:
        """After a report found a non-finite loss (its step and value) or (None) a non-finite training state at
        this step: find the first bad step and go back to the last good one, by replaying from a snapshot
        with a check after each step. A non-finite loss at step k: the weights after step k-1 give it, those
        of step k-2 (whose loss, step k-1's, was finite) are restored; a state that step k made non-finite:
        step k-1's is restored. Returns what was found (replay's kinds, or "lost": a replay from the
        snapshot did not reproduce it, and the snapshot is kept)."""
        s = self.s
        end = s.step
        upto = max(bad_loss[0] - 2, self.start_step) if bad_loss is not None else end
        snap = self.newest(upto)
        found = self.replay(snap, upto)
        if found is None:  # no bad step before upto
            if bad_loss is not None:  # the session is at step k-2, the last good one
                if s.step == upto == bad_loss[0] - 2:
                    # step k-1 once more, checked: a state it made non-finite is named rather than the loss
                    here = s.train_state(copy=True, weights=True)
                    extra = self.replay(here, upto + 1)
                    s.apply_train_state(here)
                    if extra is not None and extra[0] == "state":
                        return extra
                return "loss", bad_loss[0], bad_loss[1]
            s.apply_train_state(snap)  # the replay differed (a nondeterministic kernel): the snapshot is finite
            return "lost", end, None
        kind, at, _ = found
        if kind == "error":
            return found
        want = at - 1 if kind == "state" else max(at - 2, self.start_step)
        back = self.newest(want)
        if self.replay(back, want) is not None:  # differed this time: keep that snapshot
            s.apply_train_state(back)
        return found

    def message(self, found: tuple[str, int, Any], end: int, restored: int) -> str:
        """What happened, in words: the bad step, what became non-finite and which step's weights were kept."""
        kind, at, what = found
        if kind == "loss":
            if at - 1 <= self.start_step:
                return (f"the loss is {what} at step {at}: the weights this run started from (step {restored}) "
                        f"already give a non-finite loss; they were kept")
            return (f"the loss became {what} at step {at}; training stopped and the weights of step {restored} "
                    f"were restored, the newest whose loss was finite (with the optimizer state and the "
                    f"mini-batch order of that step)")
        if kind == "state":
            head = f"{_describe(what)} at step {at} while the loss stayed finite; training stopped"
            if restored == self.start_step:
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


class Trainer:
    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, steps: int | None, *, report: Callable[[Report], None] = lambda r: None,
            should_stop: Callable[[], bool] = lambda: False, interval: float = REPORT_INTERVAL,
            every: int | None = None, target_loss: float | None = None) -> Finished:
        """Train `steps` steps (None: until stopped or the target loss). Reports via `report`."""
        # ---- set-up: the session, the batches, the optimizer, the checks
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
        batches = _Batches(s, t.batch_size, t.shuffle, t.drop_last)
        full = batches.full
        metrics = StepMetrics(s, every=every, full_batch=full)  # accuracy and the test split, at report time
        start_step = s.step
        reset_each = t.reset_optimizer_each_step
        fresh = s.optimizer_maker() if reset_each else None  # lab 004: a fresh optimizer every step
        s.note_run_start()
        opt = s.optimizer  # made here if it was not yet
        schedule = s.scheduler  # schedules.py: stepped once per step (or per epoch: StepPlan)
        assert opt is not None
        start_state = state_tensors(s)
        start_bad = None if all_finite(start_state) else first_nonfinite(start_state)
        plan = StepPlan.of(s, batches, fresh, reset_each)  # None: the plain step (train_step)
        rollback = Rollback(s, batches, start_step, model=model, loss_fn=loss_fn, fresh=fresh, reset_each=reset_each,
                            plan=plan)
        run = _Reports(s, report, metrics, rollback, steps=steps, interval=interval)
        limit = steps
        reason = "done"
        if start_bad is not None:  # nothing finite to go back to: train nothing, keep the state as it is
            limit = 0
            reason = "nonfinite"
            run.restored = s.step
            run.message = (f"{start_bad[0]} holds {start_bad[1]} ({start_bad[2]} of {start_bad[3]} values) in the "
                           f"weights this run started from (step {s.step}); nothing was trained and they were kept")
            run.hint = "R resets the weights; a NaN or Inf weight gives no useful gradient"
        model.train()

        # the hot loop: per step only what a hand-written loop does, plus a list append, a counter and a clock read
        xb, yb = s.inputs, s.targets  # full batch: the same tensors every step
        record = metrics.record if metrics.per_step else None
        check_target = target is not None or target_acc is not None
        buf = run.buf  # the detached loss of each step since the last report (flush empties it)
        append = buf.append
        perf_counter = time.perf_counter
        out: torch.Tensor | None = None  # the last completed step's output
        done = 0
        try:
            while limit is None or done < limit:
                # ---- stop: a request is honoured at a step boundary (checked every step)
                if should_stop():
                    reason = "stopped"
                    break
                # ---- batch, forward, backward, update (a step that raises leaves `out` the last completed step's)
                if plan is not None:  # clipping, LBFGS's closure, a schedule per epoch or with a loss: StepPlan
                    out, loss, xb, yb, opt, schedule = plan.step(model, loss_fn, opt, schedule)
                else:
                    if not full:
                        xb, yb = batches.next()
                    if reset_each:
                        opt, schedule = renew_optimizer(s, fresh, schedule)
                    out, loss = train_step(model, loss_fn, opt, schedule, xb, yb)
                append(loss.detach())  # on the device: .item() only when reporting
                s.step += 1
                done += 1
                # ---- target (a sync point, only when a target is set)
                last = limit is not None and done >= limit
                hit = check_target and _target_met(s, batches, metrics, run, out, loss, yb, target, target_acc)
                # ---- report: at a bounded rate, every K-th step, the last, a full buffer or a target met
                if (hit or last or len(buf) == BUFFER
                        or (every is not None and s.step % every == 0)
                        or (every is None and perf_counter() >= run.next_report)):
                    if record is not None:  # the output the report's accuracy is taken from: this step's
                        record(out, yb)
                    if not run.flush(final=last or hit):  # a non-finite loss or state: rolled back
                        reason = "nonfinite"
                        break
                    if hit:
                        reason = "target"
                        break
        except Exception as err:  # noqa: BLE001 - every failure in a step becomes a value
            # ---- a step that raised: the completed steps' losses still reach the listener
            run.message, run.hint = friendly_error(err)
            reason = "error"
            try:
                if record is not None and out is not None:  # the accuracy of the step the run ends at
                    record(out, yb)
                run.flush(final=True)  # (a failing report callback is not called again)
            except Exception:  # noqa: BLE001
                pass
        else:
            # ---- the last report
            if reason != "nonfinite":
                if record is not None and out is not None:
                    record(out, yb)
                if not run.flush(final=True):
                    reason = "nonfinite"
        # ---- done (a roll-back, even after an error, ends the run as "nonfinite")
        if run.restored is not None:
            reason = "nonfinite"
        elapsed = time.perf_counter() - run.t0
        run_steps = s.step - start_step
        if reason != "nonfinite":
            run.last_eval = metrics.finish(s.step) or run.last_eval  # the test split as training left it
        # the loss reported at the end: the last step's, or the one that met target_loss (mini-batches: the whole
        # training set's, in eval mode, at the end of an epoch)
        final_loss = run.met_loss if reason == "target" and run.met_loss is not None else run.last_loss
        fin = Finished(reason=reason, step=s.step, run_steps=max(run_steps, 0), final_loss=final_loss,
                       elapsed=elapsed, steps_per_s=run_steps / elapsed if elapsed > 0 and run_steps > 0 else 0.0,
                       message=run.message, hint=run.hint, restored_step=run.restored, accuracy=run.last_acc,
                       evaluation=run.last_eval)
        runs = getattr(s, "runs", None)  # a trainer process's session has none: the app's process records it
        if runs is not None:
            runs.track(s, fin)
        return fin


def _target_met(s: Session, batches: _Batches, metrics: StepMetrics, run: _Reports, out: torch.Tensor,
                loss: torch.Tensor, yb: torch.Tensor, target: float | None, target_acc: float | None) -> bool:
    """Full batch: this step's loss and accuracy (a sync point, only when a target is set). Mini-batches:
    the whole training set, evaluated at the end of each epoch (one batch's numbers are noise); a loss that
    meets target_loss there is kept as `run.met_loss`, the run's final loss."""
    if batches.full:
        if target is not None and loss.item() <= target:
            return True
        if target_acc is not None:
            a = batch_accuracy(out, yb, s.training.loss.type, metrics.ignore)
            return a is not None and a.item() >= target_acc
        return False
    if not batches.epoch_done():
        return False
    ev = evaluate(s, "train")
    if ev is None:
        return False
    if target is not None and ev.loss is not None and ev.loss <= target:
        run.met_loss = ev.loss
        return True
    return target_acc is not None and ev.accuracy is not None and ev.accuracy >= target_acc


class _Reports:
    """A run's reporting: the losses buffered on the device since the last report, moved to the host in one
    sync with the training state's finiteness check (`flush`), recorded in the history and sent to the
    listener as a Progress; what the run ends with (the last loss, accuracy and evaluation, and after a
    non-finite loss or state the step restored and why)."""

    def __init__(self, s: Session, report: Callable[[Report], None], metrics: StepMetrics, rollback: Rollback,
                 *, steps: int | None, interval: float) -> None:
        self.s = s
        self.report = report
        self.metrics = metrics
        self.rollback = rollback
        self.steps = steps
        self.interval = interval
        self.start_step = s.step
        self.buf: list[torch.Tensor] = []  # the detached loss of each step since the last report
        self.first_in_buf = s.step + 1
        self.last_loss: float | None = s.history.last if len(s.history) else None
        self.last_acc: float | None = None
        self.last_eval: Any = None
        self.met_loss: float | None = None  # the whole training set's loss that met target_loss (mini-batches)
        self.message = self.hint = ""
        self.restored: int | None = None
        self.t0 = time.perf_counter()
        self.next_report = self.t0  # the first step is reported

    def flush(self, final: bool) -> bool:
        """Move buffered losses to the host, record them, report. False if a loss or the training state was not
        finite (the session is then rolled back to the last good step)."""
        s, buf = self.s, self.buf
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
        first, self.first_in_buf = self.first_in_buf, s.step + 1
        bad = ~np.isfinite(values)
        k = int(np.argmax(bad)) if bad.any() else len(values)  # the losses before the first non-finite one
        if k < len(values) or not state_ok:
            self._roll_back(values, k, first)
            return False
        s.history.extend(values)
        self.last_loss = float(values[-1])
        acc, ev = self.metrics.flush(s.step, final=final, interval=self.interval)
        if acc is not None:
            self.last_acc = acc
        if ev is not None:
            self.last_eval = ev
        now = time.perf_counter()
        elapsed = now - self.t0
        done_now = s.step - self.start_step
        self.report(Progress(step=s.step, loss=self.last_loss, losses=values, first_step=first,
                             steps_per_s=done_now / elapsed if elapsed > 0 else 0.0, elapsed=elapsed,
                             run_steps=done_now, total_steps=self.steps, accuracy=acc, evaluation=ev))
        if not final:
            self.rollback.snapshot(now)
        self.next_report = now + self.interval
        return True

    def _roll_back(self, values: np.ndarray, k: int, first: int) -> None:
        """A report found the loss of step first + k not finite (k < len(values)) or the training state: back to
        the last good step, the history cut there, its finite losses still reported."""
        s = self.s
        end = s.step
        found = self.rollback.recover((first + k, float(values[k])) if k < len(values) else None)
        restored = self.restored = s.step
        s.history.extend(values[:k])
        s.history.truncate(restored)
        self.metrics.metrics.truncate(restored)
        kept = values[:max(restored - first + 1, 0)]
        if len(kept):  # the finite losses before the bad step still reach the listener (a remote history)
            el = time.perf_counter() - self.t0
            self.report(Progress(step=restored, loss=float(kept[-1]), losses=kept, first_step=first,
                                 steps_per_s=(restored - self.start_step) / el if el else 0.0, elapsed=el,
                                 run_steps=restored - self.start_step, total_steps=self.steps))
        self.message = self.rollback.message(found, end, restored)
        self.hint = ("lower the learning rate (an update this large overflows float32); R resets the weights"
                     if found[0] == "state" else
                     "lower the learning rate, or check the data and the loss; R resets the weights")
        self.last_loss = float(s.history.last) if len(s.history) else None


def train(session: Session, steps: int, **kw) -> tuple[Finished, list[float]]:  # noqa: ANN003
    """Convenience for scripts and tests: run and collect every step's loss."""
    losses: list[float] = []

    def collect(r: Report) -> None:
        if isinstance(r, Progress):
            losses.extend(float(v) for v in r.losses)

    fin = Trainer(session).run(steps, report=collect, **kw)
    return fin, losses
