"""Shared by the pilot tests, the snapshot tests and tests/ui/make_screenshots.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from textual.pilot import Pilot

PRESETS = Path(__file__).resolve().parent / "presets"


def preset(name: str) -> str:
    return str(PRESETS / f"{name}.toml")


async def wait_until(pilot: Pilot, cond: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll (no timing assertion: the timeout only guards against a hang)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


async def settle(pilot: Pilot) -> None:
    """Wait for workers (engine operations, training) to finish and their messages to be handled."""
    app: Any = pilot.app
    await wait_until(pilot, lambda: app.session is not None and app.run_state not in ("loading", "busy", "running"),
                     what="the app to be idle")
    await pilot.pause()
    await pilot.pause()


async def loaded(pilot: Pilot) -> None:
    app: Any = pilot.app
    app.animation_level = "none"
    await wait_until(pilot, lambda: app.loaded.is_set() and app.run_state == "ready", what="the preset to load")
    await pilot.pause()


async def train_steps(pilot: Pilot, steps: int) -> None:
    app: Any = pilot.app
    app.train(steps)
    await settle(pilot)


# -- the states the snapshot tests and the screenshots show -------------------------------------


async def state_fresh(pilot: Pilot) -> None:
    await loaded(pilot)


async def state_shape_error(pilot: Pilot) -> None:
    await loaded(pilot)


async def state_trained(pilot: Pilot) -> None:
    """A run of 60 steps, paused at step 30: the progress bar half way, the loss curve of 30 steps."""
    app: Any = pilot.app
    await loaded(pilot)
    app.train(60, pause_at=30)
    await wait_until(pilot, lambda: app.run_state == "paused", what="the pause at step 30")
    await pilot.pause()
    await pilot.press("3")
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause(0.3)  # the plot redraws on a 10 Hz timer


async def state_tensor(pilot: Pilot) -> None:
    await loaded(pilot)
    await train_steps(pilot, 5)
    await pilot.press("2")
    await pilot.pause()
    app: Any = pilot.app
    pane = app.query_one("#tensors")
    lst = app.query_one("#tensor-list")
    lst.highlighted = lst.get_option_index("param:0.weight")
    await pilot.pause()
    pane.view.focus()
    await pilot.press("down", "right")
    app.clear_notifications()
    await pilot.pause()


async def state_boundary(pilot: Pilot) -> None:
    """20 steps on a small xor problem, then the Boundary tab (6) with the grid of step 20."""
    app: Any = pilot.app
    await loaded(pilot)
    await train_steps(pilot, 20)
    await pilot.press("6")
    pane = app.query_one("#boundary")
    await wait_until(pilot, lambda: pane.computed > 0 and pane._shown is not None and pane._shown[1] == 20
                     and not pane._computing, what="the decision grid")
    app.clear_notifications()
    await pilot.pause()


SCENARIOS: dict[str, tuple[str, Callable[[Pilot], Any]]] = {
    "fresh": ("tiny", state_fresh),
    "shape_error": ("conv", state_shape_error),
    "training": ("regress", state_trained),
    "tensor": ("tiny", state_tensor),
    "boundary": ("boundary", state_boundary),
}
