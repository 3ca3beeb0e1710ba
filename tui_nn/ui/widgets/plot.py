"""The loss curve: a textual-plotext plot fed from the engine's bounded LossHistory.

Redraw cost stays bounded however long the run: the history keeps at most a few thousand buckets, and
the plot draws at most about two points per column (bucket means averaged down), at most 10 times a
second, and only while visible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.reactive import reactive
from textual_plotext import PlotextPlot

REDRAW_INTERVAL = 0.1  # seconds


def downsample(steps: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` points: neighbouring points averaged (steps: the last step of each group)."""
    if len(steps) <= n or n < 2:
        return steps, values
    edges = np.linspace(0, len(steps), n + 1).astype(int)
    counts = np.diff(edges)
    sums = np.add.reduceat(values, edges[:-1])
    return steps[edges[1:] - 1], sums / counts


class LossPlot(PlotextPlot):
    """Loss per step; `log` toggles a logarithmic y axis."""

    log: reactive[bool] = reactive(False)

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._series: tuple[np.ndarray, np.ndarray] | None = None
        self._dirty = True
        self.draws = 0  # how many times the figure was rebuilt (tests read it)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(REDRAW_INTERVAL, self._tick)
        self._draw()

    def set_series(self, series: tuple[np.ndarray, ...] | None) -> None:
        """(steps, mean, ...) as `LossHistory.series()` returns it; drawn at the next tick."""
        if series is None:
            self._series = None
        else:
            self._series = (np.asarray(series[0]), np.asarray(series[1], dtype=np.float64))
        self._dirty = True

    @property
    def points(self) -> int:
        return 0 if self._series is None else len(self._series[0])

    def watch_log(self) -> None:
        self._dirty = True
        self._tick()

    def on_resize(self) -> None:
        self._dirty = True

    def _tick(self) -> None:
        if self._dirty and self.is_mounted and self.display and self.region.width > 0:
            self._draw()

    def _draw(self) -> None:
        self._dirty = False
        self.draws += 1
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        width = max(self.size.width, 20)
        title = "loss (log scale)" if self.log else "loss"
        plt.title(title)
        plt.xlabel("step")
        if self._series is None or len(self._series[0]) == 0:
            plt.title(f"{title}: no steps yet (n: one step, r: run)")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            self.refresh()
            return
        steps, values = self._series
        finite = np.isfinite(values)
        steps, values = steps[finite], values[finite]
        if len(steps) == 0:
            self.refresh()
            return
        steps, values = downsample(steps, values, max(2 * width, 20))
        if self.log:
            values = np.maximum(values, 1e-12)
            plt.yscale("log")
        else:
            plt.yscale("linear")
        plt.plot(steps.tolist(), values.tolist(), marker="braille")
        if len(steps) == 1:
            plt.xlim(max(int(steps[0]) - 1, 0), int(steps[0]) + 1)
        self.refresh()

    def action_toggle_log(self) -> None:
        self.log = not self.log
