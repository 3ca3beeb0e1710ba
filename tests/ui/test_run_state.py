"""The run state (tui_nn/ui/run_state.py) on its own: phases, what each allows, the counters, the edit queue."""

import subprocess
import sys

import pytest

from tui_nn.ui.run_state import LOADING_REASON, MAX_QUEUED, RUNNING_REASON, RunState


def test_it_imports_no_textual() -> None:
    code = "import sys, tui_nn.ui.run_state; print(any(m.startswith(('textual', 'rich')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_phases_and_their_refusals() -> None:
    seen: list[str] = []
    rs = RunState(on_change=seen.append)
    assert rs.phase == "loading" and rs.refusal() == LOADING_REASON
    rs.opened()
    assert rs.phase == "ready" and rs.refusal() is None
    assert rs.refusal(has_session=False) == LOADING_REASON
    rs.begin_busy("add ReLU")
    assert rs.phase == "busy" and rs.refusal() == "busy: add ReLU"
    rs.end_busy()
    assert rs.phase == "ready"
    rs.start_run(10)
    assert rs.running and rs.refusal() == RUNNING_REASON
    assert seen == ["ready", "busy", "ready", "running"]
    with pytest.raises(ValueError):
        rs.phase = "flying"


def test_a_paused_run_keeps_its_counters_and_resumes_with_the_rest() -> None:
    rs = RunState()
    rs.opened()
    rs.start_run(10)
    assert rs.progress(3) == (3, 10)
    assert rs.request_pause() and rs.stopping
    done = rs.finished("stopped", 4)
    assert done == 4 and rs.phase == "paused" and not rs.stopping
    rs.end_run()
    assert rs.progress(None) == (4, 10) and rs.remaining == 6
    assert rs.resume() == 6 and rs.running
    assert rs.progress(2) == (6, 10)
    assert rs.finished("done", 6) == 10 and rs.phase == "ready"
    rs.end_run()
    assert rs.progress(None) is None and rs.run_total == 0


def test_stop_ends_a_run_or_a_pause() -> None:
    rs = RunState()
    rs.opened()
    assert rs.request_stop() == ""
    rs.start_run(5)
    assert rs.request_stop() == "stopping" and rs.stopping
    rs.finished("stopped", 2)
    assert rs.phase == "ready"  # stopped, not paused: s asked for it
    rs.start_run(5)
    rs.request_pause()
    rs.finished("stopped", 1)
    assert rs.phase == "paused"
    assert rs.request_stop() == "stopped" and rs.phase == "ready" and rs.run_total == 0
    rs.start_run(3)
    rs.request_pause()
    rs.finished("stopped", 3)  # the last step came first: nothing left to pause
    assert rs.phase == "ready"


def test_a_failed_run_and_a_reset_forget_the_run() -> None:
    rs = RunState()
    rs.opened()
    rs.start_run(8)
    rs.failed()
    assert rs.phase == "ready" and rs.run_total == 0
    rs.start_run(8)
    rs.request_pause()
    rs.finished("stopped", 2)
    rs.reset()
    assert rs.phase == "ready" and rs.run_total == 0 and not rs.pause_requested


def test_edits_queue_only_behind_a_busy_edit_and_up_to_the_limit() -> None:
    rs = RunState()
    rs.opened()
    assert not rs.queue(lambda: None)  # nothing is applied: the edit is done at once, not queued
    rs.begin_busy("undo")
    done: list[int] = []
    for i in range(MAX_QUEUED + 3):
        rs.queue(lambda i=i: done.append(i))
    assert len(rs.queued) == MAX_QUEUED
    assert rs.next_queued() is None  # still busy
    rs.end_busy()
    edit = rs.next_queued()
    assert edit is not None
    edit()
    assert done == [0] and len(rs.queued) == MAX_QUEUED - 1
    rs.clear_queue()
    assert rs.next_queued() is None


def test_versions_views_and_rates() -> None:
    rs = RunState()
    assert rs.stale("tensors") and not rs.stale("tensors")
    rs.changed()
    assert rs.version == 1 and rs.stale("tensors")
    assert rs.due("status", 0.0, 0.2) and not rs.due("status", 0.1, 0.2) and rs.due("status", 0.25, 0.2)
    assert rs.due("status", 0.05, 0.2)  # a new run's clock starts again
    assert not rs.due("live", 0.1, 0.25) and rs.due("live", 0.3, 0.25)
