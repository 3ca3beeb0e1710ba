"""The Boundary tab: the model's prediction over the input plane, with the data points on it.

For a model with 2 input features, one `BoundaryView` draws `engine.decision_grid` as coloured cells
(background colours, one cell per character, only the widget's visible size is computed) and the
training (●) and test (○) points on top. For a model with 1 input feature, `CurvePlot` draws
`engine.function_curve` over the data points.

The grid is computed in a thread worker, never per step: a timer asks for a refresh at most
`REFRESH_INTERVAL` seconds apart, and only when the tab is visible and the weights may have changed
(the trainer process updates the shared weights in place, so reading them is safe).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.containers import Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui_nn import engine

from ..safe import Shown, Text

if TYPE_CHECKING:
    from tui_nn.engine import Session

REFRESH_INTERVAL = 0.25  # seconds: at most 4 grids a second

CLASS_COLORS = [(245, 147, 34), (8, 119, 189), (80, 180, 80), (200, 60, 160), (220, 200, 40), (120, 120, 230),
                (60, 200, 200), (200, 90, 60)]
BACKGROUND = (24, 24, 28)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0)
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def cell_colors(grid: Any) -> list[list[tuple[int, int, int]]]:
    """An RGB colour per grid cell, rows top (largest y) first."""
    values = np.asarray(grid.values, dtype=np.float64)
    h, w = values.shape
    out: list[list[tuple[int, int, int]]] = []
    if grid.kind == "class":
        k = max(int(grid.classes or 2), 2)
        conf = np.asarray(grid.confidence) if grid.confidence is not None else np.ones_like(values)
        strength = (conf - 1.0 / k) / (1.0 - 1.0 / k)
        for i in range(h - 1, -1, -1):
            out.append([_mix(BACKGROUND, CLASS_COLORS[int(values[i, j]) % len(CLASS_COLORS)],
                             0.25 + 0.6 * float(strength[i, j])) for j in range(w)])
    else:
        if grid.kind == "probability":
            norm = values
        else:
            finite = values[np.isfinite(values)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            norm = (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)
        for i in range(h - 1, -1, -1):
            row = []
            for j in range(w):
                v = float(norm[i, j]) if np.isfinite(norm[i, j]) else 0.5
                side = CLASS_COLORS[1] if v >= 0.5 else CLASS_COLORS[0]
                row.append(_mix(BACKGROUND, side, 0.2 + 1.3 * abs(v - 0.5)))
            out.append(row)
    return out


def point_cells(grid: Any, x: Any, labels: Any, width: int, height: int) -> dict[tuple[int, int], int]:
    """(row from the top, column) -> label for each point inside the grid's bounds."""
    out: dict[tuple[int, int], int] = {}
    if x is None or len(x) == 0:
        return out
    x0, x1, y0, y1 = grid.bounds
    xs = np.asarray(x, dtype=np.float64)
    cols = np.rint((xs[:, 0] - x0) / (x1 - x0) * (width - 1)).astype(int)
    rows = np.rint((y1 - xs[:, 1]) / (y1 - y0) * (height - 1)).astype(int)
    for k, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        if 0 <= r < height and 0 <= c < width:
            out[(r, c)] = int(labels[k]) if labels is not None else 0
    return out


def _labels(targets: Any, kind: str) -> Any:
    if targets is None:
        return None
    t = targets.detach().float().cpu()
    if kind == "class":
        if t.dim() >= 2 and t.shape[1] > 1:
            return t.argmax(1).numpy()
        return t.reshape(t.shape[0], -1)[:, 0].round().long().numpy()
    col = t.reshape(t.shape[0], -1)[:, 0].numpy()
    if kind == "probability":
        return (col >= 0.5).astype(int)
    mid = float(np.median(col)) if col.size else 0.0
    return (col >= mid).astype(int)


class BoundaryView(Widget, can_focus=True):
    """The decision grid as background colours, the data points on it."""

    DEFAULT_CSS = ""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.grid: Any = None
        self.train_points: dict[tuple[int, int], int] = {}
        self.test_points: dict[tuple[int, int], int] = {}
        self._strips: list[Strip] = []

    def set_grid(self, grid: Any, train: tuple[Any, Any], test: tuple[Any, Any]) -> None:
        self.grid = grid
        h, w = grid.values.shape
        self.train_points = point_cells(grid, train[0], _labels(train[1], grid.kind), w, h)
        self.test_points = point_cells(grid, test[0], _labels(test[1], grid.kind), w, h)
        colors = cell_colors(grid)
        strips = []
        for r, row in enumerate(colors):
            segs = []
            for c, rgb in enumerate(row):
                bg = Color.from_rgb(*rgb)
                if (r, c) in self.train_points:
                    fg = CLASS_COLORS[self.train_points[(r, c)] % len(CLASS_COLORS)]
                    segs.append(Segment("●", Style(color=Color.from_rgb(*_mix(fg, (255, 255, 255), 0.35)),
                                                   bgcolor=bg, bold=True)))
                elif (r, c) in self.test_points:
                    fg = CLASS_COLORS[self.test_points[(r, c)] % len(CLASS_COLORS)]
                    segs.append(Segment("○", Style(color=Color.from_rgb(*_mix(fg, (255, 255, 255), 0.5)),
                                                   bgcolor=bg, bold=True)))
                else:
                    segs.append(Segment(" ", Style(bgcolor=bg)))
            strips.append(Strip(segs, len(segs)))
        self._strips = strips
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y < len(self._strips):
            return self._strips[y].crop_extend(0, width, None)
        return Strip.blank(width)


class CurvePlot(PlotextPlot):
    """A 1-input model: its output over x (a line) and the data points."""

    def show_curve(self, xs: Any, ys: Any, data_x: Any, data_y: Any) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("model output over x (line) and the data (points)")
        if data_x is not None and len(data_x):
            plt.scatter(list(map(float, data_x)), list(map(float, data_y)), marker="dot", color="orange")
        plt.plot(list(map(float, xs)), list(map(float, ys)), marker="braille", color="cyan")
        self.refresh()


class BoundaryPane(Vertical):
    """The tab: a one-line caption, then the boundary (2 inputs) or the curve (1 input)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._shown: tuple[int, int, int, int] | None = None  # (version, step, width, height) drawn
        self._computing = False
        self._last = 0.0
        self.computed = 0  # grids computed (tests read it)

    def compose(self):  # noqa: ANN201
        yield Shown("", id="boundary-caption", markup=False)
        yield BoundaryView(id="boundary-view")
        yield CurvePlot(id="boundary-curve")

    def on_mount(self) -> None:
        self.query_one("#boundary-curve").display = False
        self.set_interval(REFRESH_INTERVAL, self.tick)

    def _caption(self, text: str) -> None:
        self.query_one("#boundary-caption", Static).update(Text(text, no_wrap=True, overflow="ellipsis"))

    def tick(self, force: bool = False) -> None:
        app: Any = self.app
        s = app.session
        if s is None or self._computing or not self.is_mounted or app.active_tab() != "boundary":
            return
        if app.run_state in ("loading", "busy"):
            return
        view = self.query_one(BoundaryView)
        width = max(min(view.size.width or self.size.width, 256), 4)
        height = max(min(view.size.height or max(self.size.height - 1, 4), 256), 2)
        key = (app.version, s.step, width, height)
        if key == self._shown and not force:
            return
        now = time.monotonic()
        if app.running and now - self._last < REFRESH_INTERVAL and not force:
            return
        self._last = now
        self._computing = True
        isolated = app.running  # a thread runner may be training this very model: predict with a copy
        self.run_worker(lambda: self._compute(s, key, isolated), thread=True, exclusive=True, group="boundary",
                        exit_on_error=False, name="boundary")

    def _compute(self, s: Session, key: tuple[int, int, int, int], isolated: bool = False) -> None:
        _, _, width, height = key
        dims = tuple(s.spec.input_shape[1:])
        try:
            if dims == (2,):
                grid = engine.decision_grid(s, width, height, isolated=isolated)
                result: Any = ("grid", grid, (s.inputs.detach().cpu().numpy(), s.targets),
                               (None if s.test_inputs is None else s.test_inputs.detach().cpu().numpy(),
                                s.test_targets))
            elif dims == (1,):
                xs, ys = engine.function_curve(s, 200, isolated=isolated)
                tx = s.inputs.detach().float().cpu().reshape(-1).numpy()
                ty = None if s.targets is None else s.targets.detach().float().cpu().reshape(
                    s.targets.shape[0], -1)[:, 0].numpy()
                result = ("curve", xs, ys, tx, ty)
            else:
                result = ("none", f"The boundary needs a model with 1 or 2 input features; this one takes "
                                  f"{list(dims)} per sample.")
        except Exception as err:  # noqa: BLE001 - shown in the caption
            result = ("none", getattr(err, "message", None) or f"{type(err).__name__}: {err}")
        try:
            self.app.call_from_thread(self._show, key, result)
        except Exception:  # noqa: BLE001 - the app is closing
            self._computing = False

    def _show(self, key: tuple[int, int, int, int], result: Any) -> None:
        self._computing = False
        self._shown = key
        self.computed += 1
        view = self.query_one(BoundaryView)
        curve = self.query_one(CurvePlot)
        kind = result[0]
        view.display = kind == "grid"
        curve.display = kind == "curve"
        if kind == "grid":
            grid = result[1]
            view.set_grid(grid, result[2], result[3])
            x0, x1, y0, y1 = grid.bounds
            what = {"class": f"{grid.classes} classes (brighter: more confident)",
                    "probability": "P(class 1): blue above 0.5", "value": "output value"}[grid.kind]
            self._caption(f"step {key[1]}  {what}  ● train ○ test  x {x0:.2g}..{x1:.2g} y {y0:.2g}..{y1:.2g}")
        elif kind == "curve":
            curve.show_curve(result[1], result[2], result[3], result[4])
            self._caption(f"step {key[1]}  model output (line) over the data (points)")
        else:
            self._caption(str(result[1]))
