"""Where the trainer runs: in this process (a thread), or in a trainer process of its own.

Both runners take the same call as `Trainer.run` (steps, a report callback, a stop predicate) and
return the same `Finished`, so the UI does not care where training happens. The app calls a
runner from a Textual thread worker; the worker only waits and forwards reports.

Why a process: a small model's per-step Python work and the UI's Python work take turns on the
GIL, which capped a thread worker at about 0.75x of a plain loop. `ProcessRunner` keeps one
long-lived trainer process (spawned once, torch imported once) and moves the session's parameters,
buffers and data into shared memory, so the trainer updates the very tensors the UI reads: no
copies per step, the UI sees live weights, and a stop leaves the last completed step's weights in
place. Optimizer state, gradients, the step count, the batch position and the RNG states travel
back when a run ends, so a later run (in either runner) continues exactly.

CUDA sessions use the thread runner: the GPU does the work there, and CUDA tensors would need
CUDA IPC between the processes.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .metrics import apply_progress
from .process import default_threads, end, new_stop_event, spawn, take, wants_process
from .session import Session, ShapeCheckFailed
from .trainer import Finished, Progress, Report, Trainer


def _run_kwargs(interval: float, every: int | None, target_loss: float | None) -> dict[str, Any]:
    return {"interval": interval, "every": every, "target_loss": target_loss}



class ThreadRunner:
    """Runs the trainer in the calling thread (the app's thread worker)."""

    kind = "thread"

    def run(self, session: Session, steps: int | None, *, report: Callable[[Report], None],
            should_stop: Callable[[], bool], interval: float = 1 / 15, every: int | None = None,
            target_loss: float | None = None) -> Finished:
        return Trainer(session).run(steps, report=report, should_stop=should_stop,
                                    **_run_kwargs(interval, every, target_loss))

    def close(self) -> None:
        pass



def _share(session: Session) -> None:
    """Move parameters, buffers and data into shared memory, in place (CPU only)."""
    for t in list(session.model.parameters()) + list(session.model.buffers()):
        if not t.is_shared():
            t.data.share_memory_()
    for t in (session.inputs, session.targets):
        if t is not None and not t.is_shared():
            t.share_memory_()



class ProcessRunner:
    """Runs the trainer in a long-lived process of its own; parameters live in shared memory."""

    kind = "process"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or default_threads()
        self._proc: Any = None
        self._conn: Any = None
        self._ready = False  # the trainer process answered a ping (its imports are done)
        early = take(self.threads)  # a process the app spawned before it imported torch (process.py)
        if early is not None:
            self._proc, self._conn, self._stop = early
        else:
            self._stop = new_stop_event()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the trainer process (importing torch there takes a second or two); idempotent."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                return
            self._proc, self._conn = spawn(self._stop, self.threads)
            self._ready = False

    def _await_ready(self, should_stop: Callable[[], bool]) -> bool:
        """Wait until the trainer process answers (a fresh one is still importing torch, seconds); False when a
        stop is asked for first (a run that has not begun stops at once). The pong of an abandoned wait is
        taken by the next run's loop."""
        if self._ready:
            return True
        proc, conn = self._proc, self._conn
        try:
            conn.send(("ping",))
        except (OSError, EOFError, ValueError):
            return True  # the run's own send finds the dead process and starts another
        while proc.is_alive():
            if should_stop():
                return False
            try:
                if conn.poll(0.02) and conn.recv()[0] == "pong":
                    self._ready = True
                    return True
            except (EOFError, OSError, ValueError):
                break
        return True  # it died: the run's own path reports it

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def run(self, session: Session, steps: int | None, *, report: Callable[[Report], None],
            should_stop: Callable[[], bool], interval: float = 1 / 15, every: int | None = None,
            target_loss: float | None = None) -> Finished:
        if not session.trainable:
            if session.report.error is not None:
                raise ShapeCheckFailed(session.report.error)
            from ..errors import EngineError

            raise EngineError(session.why_not_trainable())
        if session.inputs.device.type != "cpu":
            return ThreadRunner().run(session, steps, report=report, should_stop=should_stop,
                                      **_run_kwargs(interval, every, target_loss))
        self.start()
        t0 = time.perf_counter()
        start_step = session.step
        if not self._await_ready(should_stop):
            return Finished(reason="stopped", step=start_step, run_steps=0,
                            final_loss=session.history.last if len(session.history) else None,
                            elapsed=time.perf_counter() - t0, steps_per_s=0.0)
        session.note_run_start()
        _share(session)
        payload = {
            "preset": session.preset, "state": session.model.state_dict(keep_vars=False),
            "inputs": session.inputs, "targets": session.targets, "session": session.train_state(),
            "test": (session.test_inputs, session.test_targets),
            "steps": steps, "kwargs": _run_kwargs(interval, every, target_loss),
        }
        self._stop.clear()
        try:
            self._conn.send(("run", payload))
        except (OSError, EOFError):  # the trainer process died between runs: start a new one, once
            self._proc = None
            self.start()
            self._conn.send(("run", payload))
        proc, conn = self._proc, self._conn  # close() from another thread must not pull these away mid-run
        while True:
            if should_stop():
                self._stop.set()
            try:
                ready = conn.poll(0.02)
                msg = conn.recv() if ready else None
            except (EOFError, OSError, ValueError):  # closed under us (the app is quitting) or the child died
                msg = ("died",)
            if msg is None:
                if proc.is_alive():
                    continue
                msg = ("died",)
            kind = msg[0]
            if kind == "pong":  # the answer to an earlier wait that a stop cut short
                self._ready = True
                continue
            if kind == "progress":
                p: Progress = msg[1]
                session.history.extend(p.losses)
                apply_progress(session, p)  # accuracy and test evaluations
                session.step = p.step
                report(p)
            elif kind == "finished":
                fin: Finished = msg[1]
                session.apply_train_state(msg[2])
                apply_progress(session, fin)  # the test split's evaluation at the end of the run
                if fin.reason == "nonfinite" and fin.restored_step is not None:
                    session.history.truncate(fin.restored_step)
                    session.metrics.truncate(fin.restored_step)
                session.runs.track(session, fin)
                return fin
            else:
                if kind == "failed":
                    message, hint = msg[1], msg[2]
                else:
                    code = proc.exitcode
                    message = f"the trainer process stopped unexpectedly (exit code {code})"
                    hint = "the weights are those in shared memory at that moment; start a new run to continue"
                    if self._proc is proc:
                        self._proc = None
                elapsed = time.perf_counter() - t0
                return Finished(reason="error", step=session.step, run_steps=session.step - start_step,
                                final_loss=session.history.last if len(session.history) else None,
                                elapsed=elapsed, steps_per_s=0.0, message=message, hint=hint)

    def close(self, timeout: float = 0.2) -> None:
        """Stop the trainer process (within `timeout` seconds, then terminate it)."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return
        self._stop.set()
        end(proc, conn, timeout)



def make_runner(prefer: str = "process") -> ThreadRunner | ProcessRunner:
    """The runner for the app: a trainer process unless TUI_NN_RUNNER=thread (or prefer='thread')."""
    return ProcessRunner() if wants_process(prefer) else ThreadRunner()
