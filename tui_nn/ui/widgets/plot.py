"""The loss curve: a textual-plotext plot fed from the engine's bounded LossHistory.

Redraw cost stays bounded however long the run: the history keeps at most a few thousand buckets, and
the plot draws at most about two points per column (bucket means averaged down), at most 4 times a
second, and only while visible.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.reactive import reactive
from textual.strip import Strip
from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    from tui_nn.engine import Session

REDRAW_INTERVAL = 0.25  # seconds: 4 redraws a second keep the terminal output under 20 KB/s (docs/performance.md)


def eval_series(session: Session | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The test split's loss (steps, values) to draw over the training loss, or None."""
    if session is None:
        return None
    try:
        steps, loss, _acc = session.metrics.test_series()
    except Exception:  # noqa: BLE001
        return None
    return (steps, loss) if len(steps) else None


def downsample(steps: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `n` points: neighbouring points averaged (steps: the last step of each group)."""
    if len(steps) <= n or n < 2:
        return steps, values
    edges = np.linspace(0, len(steps), n + 1).astype(int)
    counts = np.diff(edges)
    sums = np.add.reduceat(values, edges[:-1])
    return steps[edges[1:] - 1], sums / counts


def nice_step(span: float, n: int) -> float:
    """A 1-2-2.5-5 x 10^k step that cuts `span` into about `n` intervals."""
    raw = span / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10.0 * mag


def fmt_tick(v: float, step: float | None = None) -> str:
    """A short, readable axis label: plain decimals for moderate numbers (as many as the step between ticks
    needs), scientific notation (1e-10, 2.5e+04 -> 2.5e4) for very small or very large ones."""
    if v == 0:
        return "0"
    a = abs(v)
    if a < 1e-3 or a >= 1e5:
        digits = 2
        if step is not None and step > 0:
            digits = min(3, max(0, int(math.floor(math.log10(a)) - math.floor(math.log10(step)))))
        mant, _, exp = f"{v:.{digits}e}".partition("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    if step is None or step <= 0:
        text = f"{v:.3g}"
        return text if "e" not in text else fmt_tick(v)
    decimals = max(0, -int(math.floor(math.log10(step) + 1e-9)))
    if round(step * 10 ** decimals) != step * 10 ** decimals:  # 2.5 x 10^k: one more decimal
        decimals += 1
    return f"{v:.{decimals}f}"


def linear_ticks(lo: float, hi: float, n: int) -> tuple[list[float], list[str]]:
    """About `n` round ticks inside [lo, hi] and their labels."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    if hi - lo <= abs(hi) * 1e-12 or hi == lo:
        return [lo], [fmt_tick(lo)]
    step = nice_step(hi - lo, n)
    first = math.ceil(lo / step - 1e-9)
    ticks = [k * step for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]
    ticks = [0.0 if abs(t) < step * 1e-9 else t for t in ticks]
    return ticks, [fmt_tick(t, step) for t in ticks]


def log_ticks(lo: float, hi: float, n: int) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over [lo, hi] (> 0): powers of ten (every k-th when there are many decades), or
    1-2-5 steps inside a decade, or round linear steps within a narrow range."""
    if not (lo > 0 and math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return [], []
    e0, e1 = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    decades = e1 - e0 + 1
    if decades >= 2:
        every = max(1, math.ceil(decades / max(n, 1)))
        exps = list(range(e1, e0 - 1, -every))[::-1]
        ticks = [10.0 ** e for e in exps]
        return ticks, [fmt_tick(t) if -3 <= e < 5 else f"1e{e}" for t, e in zip(ticks, exps, strict=True)]
    ticks = [m * 10.0 ** e for e in range(e0 - 1, e1 + 1) for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
    if len(ticks) >= 3:
        return ticks, [fmt_tick(t) for t in ticks]
    return linear_ticks(lo, hi, n)


_MOUNTED: "weakref.WeakSet[LossPlot]" = weakref.WeakSet()
_STYLES: dict[tuple[Any, ...], Style | None] = {}  # plotext's (fullground, style, background) -> Rich's style


def _hashable(c: Any) -> Any:
    return tuple(c) if isinstance(c, list) else c


def _cell_style(colors: tuple[Any, Any, Any]) -> Style | None:
    """The Rich style of a plotext cell's colors: exactly what Text.from_ansi makes of plotext's own escape
    codes for them (parsed once per distinct triple)."""
    key = tuple(_hashable(c) for c in colors)
    if key in _STYLES:
        return _STYLES[key]
    from plotext._utility import colors_to_ansi

    spans = Text.from_ansi(colors_to_ansi(*colors) + "x").spans
    style = spans[0].style if spans else None
    if isinstance(style, str):
        style = Style.parse(style)
    if len(_STYLES) < 4096:
        _STYLES[key] = style
    return style


Row = list[tuple[str, "Style | None"]]


def matrix_rows(matrix: Any) -> list[Row]:
    """A plotext character matrix (markers and per-cell colors, rows bottom-up) as rows of (text, Rich style)
    runs, top row first: what `Text.from_ansi(figure.build())` makes of it, without writing escape codes and
    parsing them back (that round trip was half of a redraw)."""
    rows: list[Row] = []
    for row in range(matrix.rows - 1, -1, -1):
        markers, fg, st, bg = (matrix.marker[row], matrix.fullground[row], matrix.style[row],
                               matrix.background[row])
        n = len(markers)
        runs: Row = []
        start = 0
        for col in range(1, n + 1):
            if col < n and fg[col] == fg[start] and st[col] == st[start] and bg[col] == bg[start]:
                continue
            runs.append(("".join(markers[start:col]), _cell_style((fg[start], st[start], bg[start]))))
            start = col
        rows.append(runs)
    return rows


def rows_text(rows: list[Row]) -> Text:
    """The rows as one Text, a newline after every row (the last too, as plotext's canvas and Text.from_ansi)."""
    plain: list[str] = []
    spans: list[Span] = []
    pos = 0
    for runs in rows:
        for piece, style in runs:
            if style is not None:
                spans.append(Span(pos, pos + len(piece), style))
            plain.append(piece)
            pos += len(piece)
        plain.append("\n")
        pos += 1
    return Text("".join(plain), spans=spans)


class LossPlot(PlotextPlot):
    """Loss per step; `log` toggles a logarithmic y axis."""

    log: reactive[bool] = reactive(False, repaint=False)  # watch_log redraws, and only a plot on screen

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._series: tuple[np.ndarray, np.ndarray] | None = None
        self._test: tuple[np.ndarray, np.ndarray] | None = None  # (steps, test loss): a second series
        self._dirty = True
        self.draws = 0  # how many times the figure was rebuilt (tests read it)
        self._rendered: tuple[tuple[Any, ...], Any] | None = None  # (draws, size, theme) -> the built rows
        self._strips: tuple[Any, list[Strip]] | None = None  # the rows as the screen's lines (render_line)

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

    def _shown(self) -> bool:
        """Whether this plot and every container above it are displayed (a plot on a hidden tab is not), read
        from the DOM: asking the compositor for a widget it did not draw rebuilds its whole map (~20 ms)."""
        node: Any = self
        while node is not None and node is not self.screen:
            if not node.display:
                return False
            node = node.parent
        return node is not None

    def _tick(self) -> None:
        if self._dirty and self.is_mounted and self._shown() and self.region.width > 0:
            self._draw()

    def _rows(self) -> list[Row] | None:
        """The built figure as rows of styled runs, cached until the next `_draw` or a new size: a repaint (a
        toast, a tab switch) does not rebuild it. plotext's build() log-scales the figure's data in place, so a
        figure is never built twice. None: plotext's internals are not as expected (PlotextPlot.render then)."""
        key = (self.draws, self.size.width, self.size.height, self.app.theme)
        if self._rendered is not None and self._rendered[0] == key:
            return self._rendered[1]
        if self._rendered is not None and self._rendered[0][0] == self.draws:  # built already, at another size
            self._draw(refresh=False)
            key = (self.draws, *key[1:])
        plot = self._plot
        try:
            width, height = self.size.width, self.size.height
            plot.plotsize(width, height)
            plot._set_size(width, height)
            plot.theme(self._get_plotext_theme_name(self.app.theme))
            plot._set_sizes()
            plot._build_matrix()
            rows: list[Row] | None = matrix_rows(plot.monitor.matrix)
        except AttributeError:  # a textual-plotext whose figure differs: its own (slower) path
            rows = None
        self._rendered = (key, rows)
        self._strips = None
        return rows

    def render(self) -> Any:
        """The figure as Rich Text (tests and the benchmark read it; the screen uses `render_line`)."""
        rows = self._rows()
        if rows is None:
            self._draw(refresh=False)
            return super().render()
        return rows_text(rows)

    def render_line(self, y: int) -> Strip:
        """Line y of the figure, made from the built rows directly: no Text to wrap and divide (Textual's path for
        a `render()` result, ~20 ms a frame for this plot); the same segments, tested against that path."""
        rows = self._rows()
        if rows is None:
            return super().render_line(y)
        base = self.visual_style.rich_style
        cache = self._strips
        if cache is None or cache[0] != (self._rendered[0] if self._rendered else None, base):
            width = self.size.width
            strips = []
            for runs in rows[:self.size.height]:
                segments = [Segment(piece, base + style if style is not None else base) for piece, style in runs]
                strips.append(Strip(segments).adjust_cell_length(width, base))
            cache = self._strips = ((self._rendered[0] if self._rendered else None, base), strips)
        strips = cache[1]
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, base)

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
        test_values = None
        if test is not None:
            tf = np.isfinite(test[1]) & (test[1] > 0 if self.log else True)
            tsteps, tvalues = downsample(test[0][tf], test[1][tf], max(width, 10))
            plt.plot(steps.tolist(), values.tolist(), marker="braille", label="train")
            if len(tsteps):
                test_values = np.maximum(tvalues, 1e-12) if self.log else tvalues
                plt.plot(tsteps.tolist(), np.maximum(tvalues, 1e-12 if self.log else -np.inf).tolist(),
                         marker="braille", color="orange", label="test")
        else:
            plt.plot(steps.tolist(), values.tolist(), marker="braille")
        if len(steps) == 1:
            plt.xlim(max(int(steps[0]) - 1, 0), int(steps[0]) + 1)
        self._ticks(steps, values, test_values, width)
        if refresh:
            self.refresh()

    def _ticks(self, steps: np.ndarray, values: np.ndarray, test_values: np.ndarray | None, width: int) -> None:
        """Readable ticks (plotext's own labels run to 0.00000000009 on a log axis): round numbers, at most
        3 significant digits, scientific notation for tiny and huge values. Over the plotted (downsampled) points
        only: a few microseconds."""
        lo, hi = float(values.min()), float(values.max())
        if test_values is not None and len(test_values):
            lo, hi = min(lo, float(test_values.min())), max(hi, float(test_values.max()))
        n_y = max(2, min(6, (self.size.height - 4) // 2))
        ticks, labels = log_ticks(lo, hi, n_y) if self.log else linear_ticks(lo, hi, n_y)
        if ticks:
            self.plt.yticks(ticks, labels)
        x0, x1 = float(steps.min()), float(steps.max())
        if x1 > x0:
            n_x = max(2, min(8, width // 10))
            step = max(1.0, nice_step(x1 - x0, n_x))
            xt = [k * step for k in range(math.ceil(x0 / step), int(math.floor(x1 / step)) + 1)]
            self.plt.xticks(xt, [fmt_tick(t, step) if t < 1e5 else fmt_tick(t) for t in xt])

    def action_toggle_log(self) -> None:
        self.log = not self.log
