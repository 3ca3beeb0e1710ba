"""The train worker's loop (tui_nn/ui/training.py) with a stand-in runner: slices, autosaves, the pause at a step."""

from types import SimpleNamespace

from tui_nn.engine import Finished
from tui_nn.ui.training import run_in_slices


class SliceRunner:
    """Does at most `per_slice` steps per call, then reports "stopped" as a trainer asked to stop does."""

    def __init__(self, per_slice: int) -> None:
        self.per_slice = per_slice
        self.calls: list[int] = []

    def run(self, session, steps, *, report, should_stop):
        self.calls.append(steps)
        done = min(steps, self.per_slice)
        session.step += done
        reason = "done" if done == steps else "stopped"
        return Finished(reason, session.step, done, 0.5, 0.0, 1.0)


def test_a_run_cut_in_slices_is_one_run_with_an_autosave_between_slices() -> None:
    session = SimpleNamespace(step=0)
    runner = SliceRunner(per_slice=4)
    saved: list[int] = []
    finished, paused = run_in_slices(runner.run, session, 10, pause_at=None, interval=60.0, stopped=lambda: False,
                                     report=lambda p: None, autosave=lambda s: saved.append(s.step))
    assert runner.calls == [10, 6, 2]
    assert saved == [4, 8]
    assert finished.reason == "done" and finished.run_steps == 10 and not paused


def test_a_stop_ends_the_run_and_a_pause_at_a_step_is_exact() -> None:
    session = SimpleNamespace(step=0)
    finished, paused = run_in_slices(SliceRunner(4).run, session, 10, pause_at=None, interval=60.0,
                                     stopped=lambda: True, report=lambda p: None, autosave=lambda s: None)
    assert finished.reason == "stopped" and finished.run_steps == 4 and not paused
    session = SimpleNamespace(step=5)
    finished, paused = run_in_slices(SliceRunner(100).run, session, 50, pause_at=12, interval=None,
                                     stopped=lambda: False, report=lambda p: None, autosave=lambda s: None)
    assert session.step == 12 and finished.reason == "stopped" and finished.run_steps == 7 and paused
