"""Faults in training: a step that raises, a simulated CUDA out-of-memory, a NaN loss, a trainer process that
dies. The app stays up, shows what happened, and keeps the last good weights (those of a replay to that step)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from textual.widgets import Static

from tests.ui.helpers import loaded, wait_until
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

from . import counts

PRESET = """
[model]
input_shape = [8, 4]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 6
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 6
out_features = 1
[training]
optimizer = { type = "Adam", lr = 0.01 }
seed = 5
"""
FAULT_AT = 7  # the step that fails (1-based)


def session() -> Session:
    return Session(loads_preset(PRESET), budget=2**28)


def replay(steps: int) -> dict[str, torch.Tensor]:
    s = session()
    if steps:
        Trainer(s).run(steps)
    return {k: v.clone() for k, v in s.model.state_dict().items()}


def oom() -> BaseException:
    return torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.11 GiB total "
                                       "capacity; 70.00 GiB already allocated)")


def inject(s: Session, where: str, make: Callable[[], BaseException] | None, at: int = FAULT_AT) -> None:
    """Make step `at` fail: raise in the forward pass, the backward pass or the optimizer step (before the update),
    or (make=None) turn the loss into NaN."""
    model = s.model
    first = model[0]

    def due() -> bool:
        return s.step + 1 == at

    if make is None:
        def nan(_m: Any, _i: Any, out: torch.Tensor) -> torch.Tensor:
            return out * float("nan") if due() else out
        first.register_forward_hook(nan)
    elif where == "forward":
        def fwd(_m: Any, _i: Any) -> None:
            if due():
                raise make()
        first.register_forward_pre_hook(fwd)
    elif where == "backward":
        def grad(_g: torch.Tensor) -> None:
            raise make()

        def bwd(_m: Any, _i: Any, out: torch.Tensor) -> None:
            if due():
                out.register_hook(grad)  # raises inside loss.backward()
        first.register_forward_hook(bwd)
    else:
        def pre_step(_opt: Any, _a: Any, _k: Any) -> None:
            if due():
                raise make()
        assert s.optimizer is not None
        s.optimizer.register_step_pre_hook(pre_step)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("where", ["forward", "backward", "optimizer"])
@pytest.mark.parametrize("fault", ["raise", "oom"])
def test_a_failing_step_keeps_the_last_good_weights(where: str, fault: str) -> None:
    s = session()
    inject(s, where, (lambda: RuntimeError("injected fault")) if fault == "raise" else oom)
    fin = Trainer(s).run(20)
    assert fin.reason == "error"
    assert s.step == FAULT_AT - 1 and fin.step == FAULT_AT - 1
    assert s.history.steps == FAULT_AT - 1
    assert same(s.model.state_dict(), replay(FAULT_AT - 1))
    if fault == "oom":
        assert fin.message.startswith("out of memory") and "smaller batch" in fin.hint
    else:
        assert "injected fault" in fin.message
    counts.add("training faults", f"{fault} in {where}: weights kept")


def test_a_nan_loss_restores_finite_weights_of_an_earlier_step() -> None:
    s = session()
    inject(s, "forward", None)
    fin = Trainer(s).run(20, every=3)
    assert fin.reason == "nonfinite" and fin.restored_step is not None
    assert fin.restored_step < FAULT_AT and s.step == fin.restored_step == s.history.steps
    assert same(s.model.state_dict(), replay(fin.restored_step))
    assert all(bool(torch.isfinite(p).all()) for p in s.model.parameters())
    counts.add("training faults", "NaN loss: weights restored")


async def _app_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, kind: str) -> tuple[Any, str]:
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal

    monkeypatch.setenv("TUI_NN_RUNNER", "thread")
    path = tmp_path / "faults.toml"
    path.write_text(PRESET)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        inject(app.session, "forward", {"raise": lambda: RuntimeError("injected fault"), "oom": oom,
                                        "nan": None}[kind])
        app.train(20)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        shown = str(app.screen.query_one("#error-body", Static).render())
        s = app.session
        want = replay(s.step)
        assert same(s.model.state_dict(), want)
        assert s.step == s.history.steps
        step = s.step
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.run_state == "ready"
        # and it trains on afterwards (the fault was one step's)
        app.train(3)
        await wait_until(pilot, lambda: app.run_state == "ready" and app.session.step >= step + 3 or
                         isinstance(app.screen, ErrorModal), what="training to go on")
        assert app.is_running
    return app, shown


@pytest.mark.parametrize("kind", ["raise", "oom", "nan"])
async def test_the_app_stays_up_and_shows_the_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, kind: str) -> None:
    _app, shown = await _app_fault(monkeypatch, tmp_path, kind)
    expect = {"raise": "injected fault", "oom": "out of memory", "nan": "the loss became nan"}[kind]
    assert expect in shown, shown
    counts.add("training faults", f"app: {kind} shown, app alive")


async def test_the_trainer_process_killed_mid_run(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL to the trainer process (the OS's OOM killer, say): the app reports it and trains on."""
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal

    monkeypatch.setenv("TUI_NN_RUNNER", "process")

    path = tmp_path / "faults.toml"
    path.write_text(PRESET)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        runner = app.runner()
        if getattr(runner, "kind", "") != "process":
            pytest.skip("the app runs the trainer in a thread here")
        app.train(10**9)
        await wait_until(pilot, lambda: app.session.step > 5, what="the run to start")
        os.kill(runner._proc.pid, signal.SIGKILL)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        shown = str(app.screen.query_one("#error-body", Static).render())
        assert "stopped unexpectedly" in shown
        await pilot.press("escape")
        await pilot.pause()
        step = app.session.step
        app.train(5)
        await wait_until(pilot, lambda: app.run_state == "ready" and app.session.step == step + 5,
                         what="a new trainer process to take over")
        assert all(bool(torch.isfinite(p).all()) for p in app.session.model.parameters())
        counts.add("training faults", "app: trainer process SIGKILLed, app alive, trains on")


# -- the same faults where the app really trains: its trainer process -------------------------------------------

FAULT_HOOKS = Path(__file__).resolve().parent / "fault_hooks"  # a sitecustomize the trainer process imports
# (N-th training forward pass in the trainer process, where, kind): each run of the app meets the next fault
PROCESS_FAULTS = [(7, "forward", "raise"), (12, "backward", "raise"), (17, "optimizer", "raise"),
                  (22, "forward", "oom"), (27, "backward", "oom"), (32, "optimizer", "oom")]
DIVERGES = PRESET.replace('optimizer = { type = "Adam", lr = 0.01 }', 'optimizer = { type = "SGD", lr = 1000000.0 }')


def _process_runner_env(monkeypatch: pytest.MonkeyPatch, plan: str | None) -> None:
    monkeypatch.delenv("TUI_NN_RUNNER", raising=False)  # the app's default: the trainer process
    if plan is not None:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAULT_HOOKS)] + (
            [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
        monkeypatch.setenv("TUI_NN_TEST_FAULT", plan)


async def test_faults_in_the_trainer_process_are_shown_and_the_last_good_weights_kept(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """With the default runner (the trainer process), a step that raises and a simulated CUDA out-of-memory, in
    the forward pass, the backward pass and the optimizer step: each is shown in the error dialog, the app stays
    up, the weights are exactly an uninterrupted run's at the last completed step, and training goes on from
    there (the trainer process lives on: the same process meets every fault)."""
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal

    _process_runner_env(monkeypatch, ",".join(f"{n}:{w}:{k}" for n, w, k in PROCESS_FAULTS))
    path = tmp_path / "faults.toml"
    path.write_text(PRESET)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        runner = app.runner()
        assert getattr(runner, "kind", "") == "process"
        pid = None
        for i, (n, where, kind) in enumerate(PROCESS_FAULTS):
            app.train(40)
            await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal), what=f"the dialog for {kind}")
            await pilot.pause()
            assert pid is None or runner._proc.pid == pid, "the trainer process was replaced"
            pid = runner._proc.pid
            shown = str(app.screen.query_one("#error-body", Static).render())
            expect = "out of memory" if kind == "oom" else "injected fault in the trainer process"
            assert expect in shown, shown
            s = app.session
            step = n - i - 1  # forward passes so far, less those of the failed steps
            assert s.step == step == s.history.steps, (where, kind, s.step, s.history.steps)
            assert app.last_finished.reason == "error" and app.last_finished.step == step
            assert same(s.model.state_dict(), replay(step)), f"{kind} in {where}: not the weights of step {step}"
            await pilot.press("escape")
            await pilot.pause()
            assert app.is_running and app.run_state == "ready"
            counts.add("training faults", f"app, trainer process: {kind} in {where}: shown, weights kept")
        # and it trains on, exactly as an uninterrupted run would have
        step = app.session.step
        await pilot.press("n")
        await wait_until(pilot, lambda: app.run_state == "ready" and app.session.step == step + 1,
                         what="one more step")
        assert same(app.session.model.state_dict(), replay(step + 1))
        assert app.is_running
    counts.add("training faults", "app, trainer process: trained on after the faults")


async def test_a_nan_loss_in_the_trainer_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A learning rate of 10^6: the loss overflows in the trainer process itself, no hook. The app shows it, stays
    up, and the weights are an uninterrupted run's at the step the trainer reports it restored (all finite)."""
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal

    _process_runner_env(monkeypatch, None)
    path = tmp_path / "diverges.toml"
    path.write_text(DIVERGES)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        assert getattr(app.runner(), "kind", "") == "process"
        app.train(50)
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        shown = str(app.screen.query_one("#error-body", Static).render())
        fin = app.last_finished
        assert fin.reason == "nonfinite" and fin.restored_step is not None, fin
        assert "the loss became" in shown and f"step {fin.restored_step}" in shown, shown
        s = app.session
        assert s.step == fin.restored_step == s.history.steps
        ref = Session(loads_preset(DIVERGES), budget=2**28)
        if fin.restored_step:
            Trainer(ref).run(fin.restored_step)
        assert same(s.model.state_dict(), ref.model.state_dict()), f"not the weights of step {fin.restored_step}"
        assert all(bool(torch.isfinite(p).all()) for p in s.model.parameters())
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.run_state == "ready"
    counts.add("training faults", "app, trainer process: NaN loss shown, finite weights of the restored step")


@pytest.mark.parametrize("every", [None, 4])
def test_an_infinite_weight_with_a_finite_loss_in_the_trainer_process(tmp_path: Path, every: int | None) -> None:
    """The dead-ReLU example (tests/engine/test_trainer.py) through ProcessRunner: the trainer process finds the
    first step whose weights are not finite, restores step k-1 in the shared tensors, and the app's session ends with
    exactly that step's weights, history and optimizer state; it saves, reopens and trains on like an uninterrupted
    run to k-1."""
    from tests.engine.training.test_trainer import dead_relu, first_bad_state_step
    from tui_nn.engine.files.session_file import load_session, save_session
    from tui_nn.engine.training.runner import ProcessRunner
    from tui_nn.engine.training.trainer import Progress, train

    text = dead_relu(batch=2)
    k = first_bad_state_step(text, 300)
    assert k is not None and k > 3
    s = Session(loads_preset(text), budget=2**28)
    runner = ProcessRunner(threads=1)
    reports: list[Any] = []
    try:
        fin = runner.run(s, 300, report=reports.append, should_stop=lambda: False, every=every)
    finally:
        runner.close(timeout=2.0)
    assert fin.reason == "nonfinite" and fin.restored_step == k - 1 == s.step == len(s.history), fin
    assert "the parameter 0.weight became -inf" in fin.message and f"at step {k} " in fin.message
    assert sum(len(r.losses) for r in reports if isinstance(r, Progress)) >= k - 1
    twin = Session(loads_preset(text), budget=2**28)
    train(twin, k - 1)
    assert same(s.model.state_dict(), twin.model.state_dict())
    assert all(bool(torch.isfinite(t).all()) for t in s.model.state_dict().values() if t.is_floating_point())
    back = load_session(save_session(s, tmp_path / "after-process"))
    assert same(back.model.state_dict(), twin.model.state_dict()) and back.step == k - 1 == len(back.history)
    a, b = train(s, 1)[1], train(twin, 1)[1]
    assert a == b
    counts.add("training faults", "trainer process: non-finite weight with a finite loss, step k-1 restored")
