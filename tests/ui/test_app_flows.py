"""Pilot tests of flows the first review found missing: keys pressed faster than edits apply, the two
resets, editing one data cell, and training on after a NaN with a smaller learning rate."""

from __future__ import annotations

from typing import Any

import torch
from textual.widgets import Input

from tui_nn.ui.app import PlaygroundApp
from tui_nn.ui.screens.dialogs import ErrorModal, TextEditModal

from .helpers import loaded, preset, settle, train_steps, wait_until


def types(app: Any) -> list[str]:
    return [layer.type for layer in app.session.spec.layers]


async def test_undo_pressed_quickly_is_queued_not_refused() -> None:
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        for _ in range(3):  # three layers appended, one at a time
            app.add_layer_of_type("Tanh", None)
            await settle(pilot)
        assert types(app) == ["Linear", "ReLU", "Softmax", "Tanh", "Tanh", "Tanh"]
        app.clear_notifications()
        for _ in range(3):  # as three quick presses: the second and third come while the first is applied
            app.action_undo()
        assert len(app.runstate.queued) == 2
        await settle(pilot)
        await wait_until(pilot, lambda: not app.runstate.queued and app.run_state == "ready", what="the queue")
        await settle(pilot)
        assert types(app) == ["Linear", "ReLU", "Softmax"]
        assert not any("Cannot" in n.message for n in app._notifications)


async def test_r_resets_to_the_preset_and_ctrl_r_to_the_seeds_init() -> None:
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.training.session import Session

    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        hand_set = app.session.get_param("0.weight").detach().clone()
        await train_steps(pilot, 5)
        assert not app.session.get_param("0.weight").detach().equal(hand_set)
        await pilot.press("R")
        await settle(pilot)
        assert app.session.step == 0 and app.session.get_param("0.weight").detach().equal(hand_set)
        await pilot.press("ctrl+r")
        await settle(pilot)
        p = load_preset(preset("tiny"))
        for _, spec in [(0, p.model.layers[0])]:
            spec.params.clear()
        seeded = Session(p).get_param("0.weight").detach()
        assert app.session.get_param("0.weight").detach().equal(seeded)
        assert not seeded.equal(hand_set) and app.session.step == 0
        assert not app.session.spec.layers[0].params  # the hand-set values are gone from the spec
        await pilot.press("u")  # and undo brings them back
        await settle(pilot)
        assert app.session.get_param("0.weight").detach().equal(hand_set)


async def test_editing_one_input_cell_keeps_the_seeded_targets() -> None:
    app = PlaygroundApp(preset("diverge"))  # inputs and targets both drawn from the seed
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        before_x = app.session.inputs.clone()
        before_y = app.session.targets.clone()
        await pilot.press("4")
        await pilot.pause()
        app.query_one("#data-inputs-view").focus()
        await pilot.press("right", "e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextEditModal), what="the cell editor")
        await pilot.pause()
        app.screen.query_one(Input).value = "9"
        await pilot.press("enter")
        await settle(pilot)
        x = app.session.inputs
        assert float(x[0, 1]) == 9.0
        changed = (x != before_x).nonzero().tolist()
        assert changed == [[0, 1]]  # only that cell
        assert app.session.targets.equal(before_y)


async def test_after_a_nan_a_smaller_learning_rate_trains_on() -> None:
    app = PlaygroundApp(preset("diverge"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        body = str(app.screen.query_one("#error-body").render())
        assert "R resets" in body
        await pilot.press("escape")
        await settle(pilot)
        restored = app.session.step
        assert app.last_finished.restored_step == restored
        from tui_nn.engine.spec import CallSpec

        app.session.set_optimizer(CallSpec("SGD", {"lr": 0.01}))
        await train_steps(pilot, 20)
        assert app.last_finished.reason == "done" and app.session.step == restored + 20
        assert all(bool(torch.isfinite(p).all()) for _, p in app.session.named_parameters())


import pytest  # noqa: E402


@pytest.mark.parametrize("runner", ["process", "thread"])
async def test_the_boundary_follows_a_run_at_a_bounded_rate(runner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a run trains (in the trainer process, or in a thread as CUDA sessions do), the Boundary tab
    recomputes its grid from the live weights, never more often than REFRESH_INTERVAL allows."""
    import time

    from tui_nn.ui.widgets.boundary import REFRESH_INTERVAL

    monkeypatch.setenv("TUI_NN_RUNNER", runner)
    app = PlaygroundApp(preset("boundary"), clock=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("6")
        pane = app.query_one("#boundary")
        await wait_until(pilot, lambda: pane.computed > 0 and not pane._computing, what="the first grid")
        before = pane.computed
        app.train(10**7)
        t0 = time.monotonic()
        await wait_until(pilot, lambda: pane.computed >= before + 3 and app.session.step > 0,
                         what="grids recomputed during the run")
        assert app.running  # recomputed while training, not after
        assert pane._shown[1] > 0  # a grid of a step of this run
        await pilot.press("s")
        await settle(pilot)
        elapsed = time.monotonic() - t0
        assert pane.computed - before <= elapsed / REFRESH_INTERVAL + 2


async def test_the_chosen_tensor_stays_selected_through_a_step() -> None:
    """A forward-trace output (hidden while a run is under way) is shown again after the step, not the input."""
    app = PlaygroundApp(preset("tiny"))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("2")
        await pilot.pause()
        lst = app.query_one("#tensor-list")
        lst.highlighted = lst.get_option_index("trace:1")
        await pilot.pause()
        pane = app.query_one("#tensors")
        assert pane.current == "trace:1"
        for _ in range(3):
            await pilot.press("n")
            await settle(pilot)
        await wait_until(pilot, lambda: pane.current == "trace:1", what="the trace entry back")
        assert app.session.step == 3
        # "(none yet)" under Gradients, then a step: the gradients appear and one of them is shown (not the input)
        await pilot.press("R")
        await settle(pilot)
        lst.highlighted = lst.get_option_index("grad:none")
        await pilot.pause()
        assert pane.current == "grad:none"
        await pilot.press("n")
        await settle(pilot)
        await wait_until(pilot, lambda: (pane.current or "").startswith("grad:0."), what="a gradient shown")
