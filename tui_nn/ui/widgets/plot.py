"""The loss curve: a textual-plotext plot fed from the engine's bounded LossHistory.

Redraw cost stays bounded however long the run: the history keeps at most a few thousand buckets, and
the plot draws at most about two points per column (bucket means averaged down), at most 4 times a
second, and only while visible.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from textual.reactive import reactive
from textual_plotext import PlotextPlot

REDRAW_INTERVAL = 0.25  # seconds: 4 redraws a second keep the terminal output under 20 KB/s (docs/performance.md)


def downsample(steps: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` points: neighbouring points averaged (steps: the last step of each group)."""
    if len(steps) <= n or n < 2:
        return steps, values
    edges = np.linspace(0, len(steps), n + 1).astype(int)
    counts = np.diff(edges)
    sums = np.add.reduceat(values, edges[:-1])
    return steps[edges[1:] - 1], sums / counts


_MOUNTED: "weakref.WeakSet[LossPlot]" = weakref.WeakSet()


class LossPlot(PlotextPlot):
    """Loss per step; `log` toggles a logarithmic y axis."""

    log: reactive[bool] = reactive(False)

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._series: tuple[np.ndarray, np.ndarray] | None = None
        self._test: tuple[np.ndarray, np.ndarray] | None = None  # (steps, test loss): a second series
        self._dirty = True
        self.draws = 0  # how many times the figure was rebuilt (tests read it)
        self._rendered: tuple[tuple[Any, ...], Any] | None = None  # (draws, size, theme) -> the built plot

    def on_mount(self) -> None:
        super().on_mount()
        _MOUNTED.add(self)
        self.set_interval(REDRAW_INTERVAL, self._tick)
        self._draw()

    def on_unmount(self) -> None:
        _MOUNTED.discard(self)

    @staticmethod
    def mounted_in(app: Any) -> list["LossPlot"]:
        """The plots mounted in `app`, without walking the DOM (a query costs milliseconds, 15 times a second)."""
        return [p for p in list(_MOUNTED) if p.is_attached and p.app is app]

    def set_series(self, series: tuple[np.ndarray, ...] | None) -> None:
        """(steps, mean, ...) as `LossHistory.series()` returns it; drawn at the next tick."""
        if series is None:
            self._series = None
        else:
            self._series = (np.asarray(series[0]), np.asarray(series[1], dtype=np.float64))
        self._dirty = True

    def set_test(self, series: tuple[np.ndarray, ...] | None) -> None:
        """(steps, test loss) of the test split's evaluations, drawn beside the training loss."""
        new = None if series is None or len(series[0]) == 0 else (np.asarray(series[0]),
                                                                   np.asarray(series[1], dtype=np.float64))
        old = self._test
        if new is None and old is None:
            return
        if new is not None and old is not None and len(new[0]) == len(old[0]) and np.array_equal(new[0], old[0]):
            return
        self._test = new
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

    def render(self) -> Any:
        """The built figure, cached until the next `_draw` or a new size: a repaint (a toast, a tab switch) does not
        rebuild it. plotext's build() log-scales the figure's data in place, so a figure is never built twice."""
        key = (self.draws, self.size.width, self.size.height, self.app.theme)
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        if self._rendered is not None and self._rendered[0][0] == self.draws:  # built already, at another size
            self._draw(refresh=False)
            key = (self.draws, *key[1:])
        result = super().render()
        self._rendered = (key, result)
        return result

    def _draw(self, refresh: bool = True) -> None:
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
            if refresh:
                self.refresh()
            return
        steps, values = self._series
        finite = np.isfinite(values)
        steps, values = steps[finite], values[finite]
        if len(steps) == 0:
            if refresh:
                self.refresh()
            return
        steps, values = downsample(steps, values, max(2 * width, 20))
        if self.log:
            values = np.maximum(values, 1e-12)
            plt.yscale("log")
        else:
            plt.yscale("linear")
        test = self._test
        if test is not None:
            tf = np.isfinite(test[1]) & (test[1] > 0 if self.log else True)
            tsteps, tvalues = downsample(test[0][tf], test[1][tf], max(width, 10))
            plt.plot(steps.tolist(), values.tolist(), marker="braille", label="train")
            if len(tsteps):
                plt.plot(tsteps.tolist(), np.maximum(tvalues, 1e-12 if self.log else -np.inf).tolist(),
                         marker="braille", color="orange", label="test")
        else:
            plt.plot(steps.tolist(), values.tolist(), marker="braille")
        if len(steps) == 1:
            plt.xlim(max(int(steps[0]) - 1, 0), int(steps[0]) + 1)
        if refresh:
            self.refresh()

    def action_toggle_log(self) -> None:
        self.log = not self.log
