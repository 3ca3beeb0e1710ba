"""The trainer process: same losses as in-process training, live shared weights, stop, crash handling."""

import os
import signal
import sys
import threading
import time

import pytest
import torch

from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.runner import ProcessRunner, ThreadRunner
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

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
    from tui_nn.engine.training import process as trainer_boot

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


# -- the trainer process ends with the app (engine/lifeline.py), SIGKILL included -------------------------------

PARENT = r'''
import os, subprocess, sys, threading, time
from tui_nn.engine.training import process as trainer_boot

where, hold = sys.argv[1], sys.argv[2] == "hold"
if where == "thread":  # as in the app: a thread worker starts the trainer process, then exits
    t = threading.Thread(target=trainer_boot.prestart, args=(1,))
    t.start()
    t.join()
else:
    trainer_boot.prestart(1)
proc, conn = trainer_boot._started[0], trainer_boot._started[1]
holder = None
if hold:  # another process holds the pipe too: its end of file cannot tell the trainer that its app went
    os.set_inheritable(conn.fileno(), True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], close_fds=False)
time.sleep(1.5)  # past the thread's exit, longer than the lifeline's interval
print(proc.pid, holder.pid if holder else 0, "alive" if proc.is_alive() else "dead", flush=True)
time.sleep(120)
'''


def _start_python(code: str, *args: str, env: dict | None = None):
    import subprocess

    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc for the process tree")
@pytest.mark.parametrize("where", ["thread", "main"])
def test_a_trainer_process_ends_when_its_app_is_killed(where):
    """The app starts its trainer process from a thread worker: the kernel's parent-death signal follows that
    thread and would end the trainer as soon as the worker returns, so the trainer watches the app's pid. Here
    its app (a stand-in that starts it as the app does) outlives the starting thread, then gets SIGKILL while
    another process still holds the trainer's pipe: the trainer and the resource tracker go all the same."""
    from tests.cli.test_serve import alive, descendants, kill_all, kind, wait_gone

    parent = _start_python(PARENT, where, "hold")
    tree: list[int] = []
    holder = 0
    try:
        line = parent.stdout.readline().split()
        assert len(line) == 3, line
        trainer, holder, state = int(line[0]), int(line[1]), line[2]
        assert state == "alive"  # not ended with the thread that started it
        tree = [p for p in descendants(parent.pid) if p != holder]
        assert {kind(p) for p in tree} == {"trainer", "tracker"} and trainer in tree
        parent.kill()
        parent.wait(timeout=10)
        left = wait_gone(tree)
        assert not left, f"outlived their app: {left}"
        assert alive([holder])  # the pipe's other holder lives: its end of file did not do it
    finally:
        kill_all([*tree, holder] if holder else tree)
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()


CHILD = r'''
import sys, time
from tui_nn.engine.training import lifeline

kernel = sys.argv[2] == "pdeathsig"  # the kernel's signal alone (the watcher looks once an hour), or the watcher
lifeline.arm(int(sys.argv[1]), pdeathsig=kernel, interval=3600 if kernel else 0.5)
print("armed", flush=True)
time.sleep(120)
'''

MIDDLE = r'''
import subprocess, sys, os
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]])
print(child.pid, flush=True)
child.wait()
'''


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc for the process tree")
@pytest.mark.parametrize("how", [pytest.param("pdeathsig", marks=pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")), "watcher"])
def test_an_armed_process_ends_with_its_parent_by_either_mechanism(how):
    """The kernel's signal (Linux) and the pid watcher (everywhere) each end the child on their own."""
    from tests.cli.test_serve import alive, kill_all, wait_gone

    middle = _start_python(MIDDLE, CHILD, how)
    child = 0
    try:
        child = int(middle.stdout.readline())
        assert middle.stdout.readline().strip() == "armed"  # the child shares its parent's stdout
        time.sleep(1.0)  # two of the watcher's intervals
        assert alive([child])  # armed, its parent alive: it stays
        middle.kill()
        middle.wait(timeout=10)
        assert not wait_gone([child])
    finally:
        kill_all([child] if child else [])
        middle.stdout.close()


def test_arming_against_a_parent_that_is_gone_ends_the_process_at_once():
    import subprocess

    code = "import os; from tui_nn.engine.training import lifeline; lifeline.arm(2 if os.getppid() != 2 else 3); print('on')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGTERM and "on" not in out.stdout


def test_the_lifeline_variable():
    import subprocess

    from tui_nn.engine.training.lifeline import ENV, parse_pid

    assert parse_pid("1234") == 1234
    for bad in (None, "", "0", "1", "-5", "12a", " 12", "١٢", "9" * 11, "4294967296"):
        assert parse_pid(bad) is None, bad
    code = ("import os; from tui_nn.engine.training.lifeline import ENV, arm_from_env; "
            "print(arm_from_env() == os.getppid(), ENV in os.environ)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, ENV: str(os.getpid())})
    assert out.stdout.split() == ["True", "False"]  # armed against this process; not passed on to its children
    unset = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", "from tui_nn.engine.training.lifeline import arm_from_env as a; print(a())"],
                         capture_output=True, text=True, timeout=60, env=unset)
    assert out.stdout.strip() == "None"  # not served: nothing armed


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc for the process tree")
def test_killing_the_app_ends_its_trainer_process_and_resource_tracker():
    """`python -m tui_nn PRESET` in a terminal (a pty), its trainer process pre-started behind the preview, then
    kill -9 of the app: the trainer and the resource tracker go too."""
    import fcntl
    import pty
    import struct
    import subprocess
    import termios

    from tests.cli.test_serve import PRESET, cmdline, descendants, kill_all, wait_for_kinds, wait_gone

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    app = subprocess.Popen([sys.executable, "-m", "tui_nn", PRESET], stdin=slave, stdout=slave, stderr=slave,
                           env={**os.environ, "TERM": "xterm-256color"}, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # the app's output, read so that it never blocks on a full terminal
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    tree: list[int] = []
    try:
        tree = wait_for_kinds(app.pid, {"trainer", "tracker"})
        assert len(tree) == 2, [cmdline(p) for p in tree]
        app.kill()
        app.wait(timeout=10)
        left = wait_gone(tree)
        assert not left, f"outlived the app: {[cmdline(p) for p in left]}"
    finally:
        kill_all(tree + descendants(app.pid))
        if app.poll() is None:
            app.kill()
            app.wait(timeout=10)
        os.close(master)


def test_a_trainer_process_started_from_a_thread_that_exits_lives_on_and_trains():
    """In this process: started from a short-lived thread (as the app's load worker does), the trainer process
    is still there after the thread has gone and the runner adopts it."""
    from tui_nn.engine.training import process as trainer_boot

    t = threading.Thread(target=trainer_boot.prestart, args=(1,))
    t.start()
    t.join()
    proc = trainer_boot._started[0]
    time.sleep(1.0)
    r = ProcessRunner(threads=1)
    try:
        assert r._proc is proc and proc.is_alive()
        s = Session(loads_preset(TEXT))
        assert r.run(s, 5, report=lambda p: None, should_stop=lambda: False).reason == "done"
    finally:
        r.close()


def _read_the_flag_for_ever(flag):  # the trainer process's every-step check, as fast as it goes
    while True:
        flag.is_set()


def test_a_stop_can_be_asked_after_the_trainer_process_was_killed_mid_check():
    """The stop flag takes no lock: a trainer process SIGKILLed in the middle of reading it (a multiprocessing
    Event's lock held for ever) must not block the app's next stop or quit. Each kill lands mid-read."""
    import signal
    import threading
    import time

    from tui_nn.engine.training.process import CTX, new_stop_event

    flag = new_stop_event()
    for _ in range(5):
        child = CTX.Process(target=_read_the_flag_for_ever, args=(flag,), daemon=True)
        child.start()
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        done = threading.Event()

        def ask() -> None:
            flag.set()
            flag.clear()
            done.set()

        threading.Thread(target=ask, daemon=True).start()
        assert done.wait(10), "set() blocked: the killed process held the flag's lock"
    flag.set()
    assert flag.is_set()
