"""Stopping at random steps: the weights equal a snapshot taken at that step, the history has that many points,
the worker is gone within 1 s; quitting during a run exits within 2 s.

Engine level, every stop is exact: the trainer (the thread runner) is stopped when the session reaches a chosen
step; the trainer process (the app's runner) is stopped after a random delay, wherever it is, and the weights
must then be exactly those of a replay at the step it reports. App level, `s` is pressed during runs.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import pytest
import torch

from tests.ui.helpers import loaded, wait_until
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.runner import ProcessRunner, ThreadRunner
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

from . import counts

STOPS = counts.kills(100)
# `s` pressed in the app: CI 10, the long run (TUI_NN_KILLS=300) 60
APP_STOPS = int(os.environ.get("TUI_NN_APP_STOPS", max(10, STOPS // 5) if "TUI_NN_KILLS" in os.environ else 10))
PRESET = """
[model]
input_shape = [16, 4]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 8
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Linear"
in_features = 8
out_features = 2
[data]
dataset = { name = "spiral", samples = 64, classes = 2 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.01 }
batch_size = 16
seed = 2
"""
PRESET = PRESET.replace("input_shape = [16, 4]", "input_shape = [16, 2]").replace("in_features = 4", "in_features = 2")
MAX_STEP = 400


def session() -> Session:
    return Session(loads_preset(PRESET), budget=2**28)


_SNAPSHOTS: list[dict[str, torch.Tensor]] = []
_REF: list[Session] = []


def snapshot(step: int) -> dict[str, torch.Tensor]:
    """The weights of an uninterrupted run at `step` (one reference run, a snapshot at every step)."""
    if not _REF:
        _REF.append(session())
        _SNAPSHOTS.append({k: v.clone() for k, v in _REF[0].model.state_dict().items()})
    ref = _REF[0]
    while len(_SNAPSHOTS) <= step:
        Trainer(ref).run(1)
        _SNAPSHOTS.append({k: v.clone() for k, v in ref.model.state_dict().items()})
    return _SNAPSHOTS[step]


def assert_at(s: Session, step: int, label: str) -> None:
    want = snapshot(step)
    got = s.model.state_dict()
    for k in want:
        assert torch.equal(got[k], want[k]), f"{label}: {k} is not the snapshot of step {step}"
    assert s.history.steps == step, f"{label}: the history has {s.history.steps} points, not {step}"


def test_stop_at_random_steps_thread_runner() -> None:
    rnd = random.Random(int(os.environ.get("TUI_NN_STOP_SEED", "3")))
    snapshot(0)
    for i in range(STOPS):
        k = rnd.randrange(0, MAX_STEP)
        s = session()
        # in pieces, as the app's pause and resume make them: stop at k, then maybe go on and stop again
        fin = ThreadRunner().run(s, None, report=lambda r: None, should_stop=lambda: s.step >= k)
        assert fin.reason == "stopped" and fin.step == k == s.step
        assert_at(s, k, f"stop {i}")
        counts.add("stopping", "exact stops (thread runner)")


def test_stop_after_random_delays_trainer_process() -> None:
    rnd = random.Random(5)
    snapshot(0)
    runner = ProcessRunner()
    try:
        n = max(STOPS // 5, 10)
        for i in range(n):
            s = session()
            delay = rnd.uniform(0.0, 0.15)
            t0 = time.perf_counter()
            fin = runner.run(s, MAX_STEP, report=lambda r: None,
                             should_stop=lambda: time.perf_counter() - t0 >= delay)
            assert fin.reason in ("stopped", "done")
            assert fin.step == s.step
            assert_at(s, s.step, f"process stop {i}")
            counts.add("stopping", "stops at random moments (trainer process)")
    finally:
        runner.close()


async def test_stop_in_the_app_and_the_worker_is_gone_within_1s(tmp_path: Any) -> None:
    """Timed from the stop request (the app running `s`'s action) to the train worker's end, both stamped as
    they happen: `pilot.press` itself waits for the app to look idle (~0.2 s here, over 1 s on a loaded CI
    machine), so the time around it is the test's, not the app's, and is only printed."""
    from tui_nn.ui.app import PlaygroundApp

    path = tmp_path / "stop.toml"
    path.write_text(PRESET)
    rnd = random.Random(9)
    app = PlaygroundApp(str(path))
    asked: list[float] = []
    action_stop = app.action_stop

    def stop_stamped() -> None:
        asked.append(time.perf_counter())
        action_stop()

    app.action_stop = stop_stamped  # type: ignore[method-assign]  # the binding looks the action up by name
    gone: list[float] = []
    around_press: list[float] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        snapshot(0)
        for i in range(APP_STOPS):
            await pilot.press("R") if i else None  # reset: every run starts from step 0
            await wait_until(pilot, lambda: app.run_state == "ready" and app.session.step == 0, what="the reset")
            app.train(10**9)
            target = rnd.randrange(5, 200)
            await wait_until(pilot, lambda: app.session.step >= target, what=f"step {target}")
            ended: list[float] = []
            waiter = threading.Thread(target=lambda: (app._train_idle.wait(30), ended.append(time.perf_counter())))
            waiter.start()
            asked.clear()
            t0 = time.perf_counter()
            await pilot.press("s")
            await wait_until(pilot, lambda: app.run_state == "ready" and not [
                w for w in app.workers if w.group == "train" and not w.is_finished], timeout=10, what="the stop")
            around_press.append(time.perf_counter() - t0)
            waiter.join(30)
            assert len(asked) == 1 and ended, "s did not reach the stop action, or the worker did not end"
            gone.append(ended[0] - asked[0])
            step = app.session.step
            assert_at(app.session, step, f"app stop {i}")
            counts.add("stopping", "app stops (s)")
    print("worker gone after the stop request:", ", ".join(f"{g * 1000:.0f} ms" for g in gone))
    print("press -> ready seen, with Pilot's own wait:", ", ".join(f"{g * 1000:.0f} ms" for g in around_press))
    counts.peak("stopping", "slowest app stop, worker gone (s)", max(gone))
    counts.peak("stopping", "median app stop, worker gone (s)", sorted(gone)[len(gone) // 2])
    counts.peak("stopping", "slowest press -> ready seen, Pilot's wait included (s)", max(around_press))
    assert max(gone) < 1.0, gone


@pytest.mark.parametrize("runner", ["process", "thread"])
async def test_quit_during_a_run_exits_within_2s(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    from tui_nn.ui.app import PlaygroundApp

    monkeypatch.setenv("TUI_NN_RUNNER", runner)
    path = tmp_path / "quit.toml"
    path.write_text(PRESET)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        app.train(10**9)
        await wait_until(pilot, lambda: app.session.step > 20, what="the run")
        proc = getattr(app.runner(), "_proc", None)
        t0 = time.perf_counter()
        await pilot.press("q")
    took = time.perf_counter() - t0
    print(f"quit during a run ({runner} runner): {took * 1000:.0f} ms")
    counts.peak("stopping", f"slowest quit during a run, {runner} runner (s)", took)
    assert took < 2.0
    if proc is not None:
        proc.join(2)
        assert not proc.is_alive(), "the trainer process outlived the app"
