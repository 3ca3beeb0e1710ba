"""A run as the train worker drives it, with no Textual in it: the trainer's run cut into slices of the autosave
interval (between two slices, a step boundary, the session is autosaved and the run goes on: the UI sees one
run), and a run that pauses exactly at a given step (a deterministic mid-run state for tests and screenshots)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tui_nn import engine

if TYPE_CHECKING:
    from tui_nn.engine import Finished, Progress, Session


def run_in_slices(run: Callable[..., Finished], session: Session, steps: int, *, pause_at: int | None,
                  interval: float | None, stopped: Callable[[], bool], report: Callable[[Progress], None],
                  autosave: Callable[[Session], object]) -> tuple[Finished, bool]:
    """Run `steps` steps with `run` (the runner's); `stopped()` says the user stopped or paused it. Returns what
    the trainer said for the whole run, and whether the run is to be shown paused (it reached `pause_at`).
    The trainer's errors are raised."""
    offset = 0  # steps done by the earlier slices of this run

    def forward(r: Progress | Finished) -> None:
        if isinstance(r, engine.Progress):
            report(replace(r, run_steps=r.run_steps + offset) if offset else r)

    run_steps = steps
    if pause_at is not None:  # pause exactly at that step
        run_steps = max(0, min(steps, pause_at - session.step))
    deadline = time.monotonic() + interval if interval else float("inf")

    def should_stop() -> bool:
        return stopped() or time.monotonic() >= deadline

    while True:
        finished = run(session, run_steps - offset, report=forward, should_stop=should_stop)
        offset += finished.run_steps
        if finished.reason == "stopped" and not stopped() and offset < run_steps:  # ended for an autosave
            if finished.run_steps:  # (a first slice can end before its first step: the trainer starting)
                autosave(session)
            deadline = time.monotonic() + interval if interval else float("inf")
            continue
        break
    finished = replace(finished, run_steps=offset)
    if run_steps < steps and finished.reason == "done":
        return replace(finished, reason="stopped"), True
    return finished, False
