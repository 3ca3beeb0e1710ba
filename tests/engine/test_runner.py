"""The trainer process: same losses as in-process training, live shared weights, stop, crash handling."""

import os
import signal
import threading
import time

import pytest
import torch

from tui_nn.engine.preset import loads_preset
from tui_nn.engine.runner import ProcessRunner, ThreadRunner
from tui_nn.engine.session import Session
from tui_nn.engine.trainer import train

from .test_trainer import MLP

TEXT = MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=5, seed=3)


@pytest.fixture(scope="module")
def runner():
    r = ProcessRunner(threads=1)
    r.start()
    yield r
    r.close()


def collect(into):
    return lambda p: into.extend(p.losses.tolist())


def test_process_runs_continue_exactly_like_one_uninterrupted_run(runner):
    _, want = train(Session(loads_preset(TEXT)), 300)
    s = Session(loads_preset(TEXT))
    got: list[float] = []
    never = lambda: False  # noqa: E731
    assert runner.run(s, 100, report=collect(got), should_stop=never).reason == "done"
    assert ThreadRunner().run(s, 100, report=collect(got), should_stop=never).reason == "done"
    fin = runner.run(s, 100, report=collect(got), should_stop=never)
    assert (fin.reason, fin.step, s.step, len(s.history)) == ("done", 300, 300, 300)
    assert got == want
    assert s.get_param("0.weight").grad is not None  # gradients of the last backward pass came back


def test_weights_are_live_and_stop_keeps_last_completed_step(runner):
    s = Session(loads_preset(TEXT))
    w0 = s.get_param("0.weight").detach().clone()
    seen = threading.Event()
    changed = []

    def watch():
        time.sleep(0.3)
        changed.append(not torch.equal(w0, s.get_param("0.weight")))
        seen.set()

    threading.Thread(target=watch).start()
    fin = runner.run(s, None, report=lambda p: None, should_stop=seen.is_set)
    assert changed == [True]  # the UI process saw the trainer's updates while it ran
    assert fin.reason == "stopped" and s.step == fin.step == len(s.history)
    # the weights are those of step `fin.step`: replaying that many steps in-process gives the same tensors
    ref = Session(loads_preset(TEXT))
    train(ref, fin.step)
    for (_, a), (_, b) in zip(s.named_parameters(), ref.named_parameters()):
        assert torch.equal(a, b)


def test_nan_in_the_trainer_process_restores_finite_weights(runner):
    s = Session(loads_preset('[model]\ninput_shape = [8, 6]\n[[model.layers]]\ntype = "Linear"\nin_features = 6\n'
                             'out_features = 1\n[training]\noptimizer = { type = "SGD", lr = 1e6 }\n'))
    fin = runner.run(s, 200, report=lambda p: None, should_stop=lambda: False, interval=0)
    assert fin.reason == "nonfinite"
    assert all(bool(torch.isfinite(p).all()) for p in s.model.parameters())
    assert s.step == fin.restored_step == len(s.history)


def test_a_killed_trainer_process_is_an_error_value_and_the_next_run_restarts_it():
    r = ProcessRunner(threads=1)
    try:
        s = Session(loads_preset(TEXT))
        killed = []

        def kill_on_first_report(p):
            if not killed:
                killed.append(p.step)
                os.kill(r._proc.pid, signal.SIGKILL)

        fin = r.run(s, None, report=kill_on_first_report, should_stop=lambda: False)
        assert killed
        assert fin.reason == "error" and "stopped unexpectedly" in fin.message
        assert all(bool(torch.isfinite(p).all()) for p in s.model.parameters())
        fin = r.run(s, 5, report=lambda p: None, should_stop=lambda: False)
        assert fin.reason == "done"
    finally:
        r.close()


def test_a_stop_before_the_trainer_process_is_up_returns_at_once_and_the_next_run_trains():
    """A fresh trainer process spends seconds importing torch: a stop asked for meanwhile ends the run there
    (no step taken), instead of waiting for the process; the process's late answer does not confuse the next run."""
    r = ProcessRunner(threads=1)
    try:
        s = Session(loads_preset(MLP.format(optimizer='"SGD"', batch=0, seed=0)))
        fin = r.run(s, 10, report=lambda p: None, should_stop=lambda: True)
        assert fin.reason == "stopped" and fin.run_steps == 0 and s.step == 0
        assert not r._ready  # it returned before the process had answered
        fin = r.run(s, 5, report=lambda p: None, should_stop=lambda: False)
        assert fin.reason == "done" and s.step == 5
        _, want = train(Session(loads_preset(MLP.format(optimizer='"SGD"', batch=0, seed=0))), 5)
        assert s.history.series()[1].tolist() == want
    finally:
        r.close()


def test_a_trainer_process_started_before_torch_is_adopted_by_the_runner():
    """The app spawns the trainer process at its first frame (trainer_boot, no torch import) and the runner
    adopts it: the same process trains; one spawned for another thread count, or never taken, is ended."""
    from tui_nn.engine import trainer_boot

    trainer_boot.prestart(threads=1)
    proc = trainer_boot._started[0]
    r = ProcessRunner(threads=1)
    try:
        assert r._proc is proc and trainer_boot._started is None
        s = Session(loads_preset(TEXT))
        fin = r.run(s, 5, report=lambda p: None, should_stop=lambda: False)
        assert fin.reason == "done" and s.step == 5 and r._proc is proc and proc.is_alive()
    finally:
        r.close()
    trainer_boot.prestart(threads=1)
    other = trainer_boot._started[0]
    r2 = ProcessRunner(threads=2)  # not the thread count it was started for: ended, the runner spawns its own later
    assert r2._proc is None and not other.is_alive()
    trainer_boot.prestart(threads=1)
    left = trainer_boot._started[0]
    trainer_boot.discard()
    assert not left.is_alive() and trainer_boot._started is None
