"""The run state of the app, one object with no Textual in it: the phase, what each phase allows, the run's
counters and the queue of edits asked for while another one is applied.

Phases (`RunState.phase`, the strings the app and its tests read as `app.run_state`):

- ``loading``: a preset or a session is being opened (at start-up the preview, drawn before torch is imported,
  is part of it: `previewing`);
- ``ready``: a session is on screen and nothing runs;
- ``busy``: an engine operation (a rebuild, a reset, a save...) runs in a worker; the phase before it comes back;
- ``running``: the trainer runs; ``stopping`` is a run asked to stop or pause at its next step
  (`stop_requested`; the phase stays ``running`` until the trainer says it has stopped);
- ``paused``: a run of N steps stopped before its end, to be resumed;
- ``error``: nothing could be opened.

The owner (the app) watches the phase through `on_change`.
"""

from __future__ import annotations

from collections.abc import Callable

PHASES = ("loading", "ready", "busy", "running", "paused", "error")
MAX_QUEUED = 16  # layer edits and undos queued behind the one being applied

LOADING_REASON = "the preset is still loading (PyTorch first: a few seconds at start-up)"
RUNNING_REASON = "training is running (s stops it, p pauses)"


class RunState:
    """The phase and the counters of the run; `on_change(phase)` is called when the phase changes."""

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self._phase = "loading"
        self.on_change = on_change
        self.previewing = False  # the layer table shows the preview of the load under way
        self.busy_label = ""  # what the engine worker does (phase "busy")
        self._before_busy = "ready"
        self.version = 0  # bumped when the model, weights or data change: views redraw what they show
        self.run_total = 0  # the steps of the run under way or paused (a run of N steps, across its pauses)
        self.done_before = 0  # the steps of that run done before its last resume
        self.pause_requested = False  # p: the run stops at its next step and can be resumed
        self.stop_requested = False  # s or p: the run stops at its next step ("stopping")
        self.pause_at: int | None = None  # a run that pauses when the session reaches this step (tests, screenshots)
        self.queued: list[Callable[[], None]] = []  # edits asked for while another one was being applied
        self._seen: dict[str, int] = {}  # the version each view shows
        self._last = {"status": -1.0, "live": 0.0}  # the run's clock at the last status / live-tensor refresh

    # -- the phase ---------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        if value not in PHASES:
            raise ValueError(f"unknown phase {value!r}")
        changed = value != self._phase
        self._phase = value
        if changed and self.on_change is not None:
            self.on_change(value)

    @property
    def running(self) -> bool:
        return self._phase == "running"

    @property
    def stopping(self) -> bool:
        """A run asked to stop (or pause) at its next step, not yet stopped."""
        return self._phase == "running" and self.stop_requested

    def refusal(self, has_session: bool = True) -> str | None:
        """Why an edit or an engine operation cannot be done now, or None when it can."""
        if not has_session or self._phase == "loading":
            return LOADING_REASON
        if self._phase == "running":
            return RUNNING_REASON
        if self._phase == "busy":
            return f"busy: {self.busy_label}"
        return None

    # -- loading and engine operations -----------------------------------------------------------------

    def start_loading(self) -> None:
        self.phase = "loading"

    def opened(self) -> None:
        """A new session is on screen: its run counters start afresh."""
        self.run_total = self.done_before = 0
        self.phase = "ready"

    def open_failed(self, *, has_session: bool) -> None:
        """A load failed: the current session stays (ready), or there is none (error)."""
        self.phase = "ready" if has_session else "error"

    def begin_busy(self, label: str) -> None:
        self._before_busy = self._phase
        self.busy_label = label
        self.phase = "busy"

    def end_busy(self) -> None:
        self.phase = self._before_busy

    def changed(self) -> int:
        """The model, weights or data changed: the new version."""
        self.version += 1
        return self.version

    def stale(self, view: str) -> bool:
        """Whether `view` (e.g. "tensors") shows an older version than the current one; it is then marked as
        showing the current one."""
        if self._seen.get(view) == self.version:
            return False
        self._seen[view] = self.version
        return True

    def due(self, what: str, now: float, interval: float) -> bool:
        """Rate limits while training (the status line, a live tensor): True at most once an `interval` of the
        run's clock `now` (a new run, whose clock starts again, is due at once)."""
        last = self._last[what]
        if now - last >= interval or now < last:
            self._last[what] = now
            return True
        return False

    # -- runs -------------------------------------------------------------------------------------------

    def start_run(self, steps: int) -> None:
        """A new run of `steps` steps."""
        self.run_total = steps
        self.done_before = 0
        self._run()

    @property
    def remaining(self) -> int:
        """The steps left of a paused run."""
        return self.run_total - self.done_before

    def resume(self) -> int:
        """Resume a paused run: the steps left (0: nothing left, the phase is ready again)."""
        remaining = self.remaining
        if remaining <= 0:
            self.phase = "ready"
            return 0
        self._run()
        return remaining

    def _run(self) -> None:
        self.pause_requested = False
        self.stop_requested = False
        self.phase = "running"

    def request_pause(self) -> bool:
        if not self.running:
            return False
        self.pause_requested = True
        self.stop_requested = True
        return True

    def request_stop(self) -> str:
        """s: "stopping" (a run stops at its next step), "stopped" (a paused run ends now) or "" (nothing runs)."""
        self.pause_requested = False
        if self.running:
            self.stop_requested = True
            return "stopping"
        if self._phase == "paused":
            self.phase = "ready"
            self.run_total = self.done_before = 0
            return "stopped"
        return ""

    def finished(self, reason: str, run_steps: int) -> int:
        """The trainer stopped after `run_steps` steps of this slice of the run: paused (p asked for it and
        steps are left) or ready. The steps of the whole run done so far."""
        done = self.done_before + run_steps
        self.stop_requested = False
        if reason == "stopped" and self.pause_requested and done < self.run_total:
            self.done_before = done
            self.phase = "paused"
        else:
            self.pause_requested = False
            self.phase = "ready"
        return done

    def end_run(self) -> None:
        """After a run that is not paused (finished, failed, or reset): no run of N steps any more."""
        if self._phase != "paused":
            self.run_total = self.done_before = 0

    def failed(self) -> None:
        self.stop_requested = self.pause_requested = False
        self.phase = "ready"
        self.run_total = self.done_before = 0

    def reset(self) -> None:
        """The weights are reset: a paused run is forgotten."""
        self.run_total = self.done_before = 0
        self.pause_requested = self.stop_requested = False
        self.phase = "ready"

    def progress(self, run_steps: int | None) -> tuple[int, int] | None:
        """(done, total) of the run of N steps under way or paused, for the status line; None without one."""
        if self._phase not in ("running", "paused") or not self.run_total:
            return None
        done = self.done_before + (run_steps if run_steps is not None and self._phase == "running" else 0)
        return done, self.run_total

    # -- the edit queue ---------------------------------------------------------------------------------

    def queue(self, retry: Callable[[], None]) -> bool:
        """Queue an edit asked for while another one is applied (keys pressed quickly: u u u); False when it
        cannot wait (not busy, or the queue is full): the caller refuses it."""
        if self._phase == "busy" and len(self.queued) < MAX_QUEUED:
            self.queued.append(retry)
            return True
        return False

    def next_queued(self) -> Callable[[], None] | None:
        """The next queued edit, once nothing else is applied or runs."""
        if self.queued and self._phase not in ("busy", "loading", "running"):
            return self.queued.pop(0)
        return None

    def clear_queue(self) -> None:
        """An edit failed: those queued behind it would apply to what the user did not see."""
        self.queued.clear()
