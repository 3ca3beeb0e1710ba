"""Goal 1: the app, headless (run_test, 80x24), training with the Train tab on screen (loss plot and status
live), over the hand-written loop of the same model, in the same run.

The app's trainer runs in its own process (engine/training/runner.py) with `runner.threads` torch threads; the
hand-written loop runs in this process with the same thread count, while the app is idle. The two
alternate in slices of a second; the app's rate in a slice is taken from its own reports
(Progress.step over the trainer's clock, Progress.elapsed, between a report early in the slice and the
last one), so the start and the stop of a run are not counted. Result: the median of the per-slice ratios.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from .measure import calibrate, line, steps_per_second
from .models import WORKLOADS, HandLoop


def preset_path(name: str) -> str:
    src = WORKLOADS[name]
    if "\n" not in src:
        return src  # a bundled preset name
    path = Path(tempfile.mkdtemp(prefix="tui-nn-bench-")) / f"{name}.toml"
    path.write_text(src)
    return str(path)


async def _wait(pilot, cond, timeout: float = 60.0) -> None:  # noqa: ANN001
    end = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > end:
            raise RuntimeError("timed out")
        await pilot.pause(0.02)


async def _measure(name: str, quick: bool, device: str = "cpu") -> tuple[float, float, float, float]:
    import torch

    from tui_nn.ui.app import PlaygroundApp

    app = PlaygroundApp(preset_path(name))
    # 20 slices of 1 s: the median of 6 of 1.5 s (runs A-G) moved by up to 9 % between runs of the same code
    slices = 2 if quick else 20
    seconds = 0.6 if quick else 1.0
    async with app.run_test(size=(80, 24)) as pilot:
        app.animation_level = "none"
        await _wait(pilot, lambda: app.loaded.is_set() and app.run_state == "ready")
        if str(app.session.device) != device:  # the device picker's path: the session moves to `device`
            app.choose_device(device)
            await _wait(pilot, lambda: str(app.session.device) == device and app.run_state == "ready")
        await pilot.press("3")  # the Train tab: the loss plot redraws while training
        threads = getattr(app.runner(), "threads", torch.get_num_threads())
        torch.set_num_threads(threads)
        hand = HandLoop(name, device=device)
        n = calibrate(hand.run, seconds)
        ratios: list[float] = []
        app_time = 0.0
        for _ in range(slices):
            app.train(10**9)
            await _wait(pilot, lambda: app.last_progress is not None and app.last_progress.elapsed > 0.2)
            a = app.last_progress
            await asyncio.sleep(seconds)
            b = app.last_progress
            app_rate = (b.step - a.step) / (b.elapsed - a.elapsed)
            app_time += b.elapsed - a.elapsed
            app.action_stop()
            await _wait(pilot, lambda: app.run_state not in ("running", "busy"))
            hand_rate = steps_per_second(hand.run, n)
            ratios.append(app_rate / hand_rate)
        assert app.query_one("LossPlot").draws > slices  # the plot did redraw while training
    return statistics.median(ratios), min(ratios), max(ratios), app_time


def measure(name: str, quick: bool = False, device: str = "cpu", label: str | None = None) -> str:
    med, lo, hi, t = asyncio.run(_measure(name, quick, device))
    return line(label or f"inapp_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f}; {t:.1f} s of app training)",
                ">= 0.95", med >= 0.95)
