"""Goals 4 and 5, in the app headless (run_test, 80x24).

4. Loss plot: a LossHistory fed 10^6 steps, then one redraw the way training does it: `history.series()`,
   `LossPlot.set_series`, `_draw` (downsample + plotext figure) and the lines of the widget as the compositor
   asks for them (`render_line`: plotext builds its character matrix there). Memory: the history's arrays after 10^4 and after 10^6 steps.
5. Tensor panel: a Linear(2048, 2048) model; open its weight (`TensorsPane.select`: stats, scale, numpy view)
   and draw the visible rows (`render_line` for each), then page down once and draw again. Medians of repeats.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import line

BIG = """
[preset]
name = "bench 2048x2048"
[model]
input_shape = [1, 2048]
[[model.layers]]
type = "Linear"
in_features = 2048
out_features = 2048
[data]
inputs = { generate = "randn", shape = [1, 2048] }
targets = { generate = "randn", shape = [1, 2048] }
[training]
loss = "MSELoss"
optimizer = { type = "SGD", lr = 0.01 }
steps = 10
"""


def _lines(widget) -> None:  # noqa: ANN001
    """Render the widget's visible lines as the compositor would (render_line, or render + lines)."""
    for y in range(widget.size.height):
        widget.render_line(y)


async def _measure(quick: bool) -> list[str]:
    from tui_nn.engine.training.history import LossHistory
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.widgets.plot import LossPlot
    from tui_nn.ui.widgets.tensors import TensorsPane

    path = Path(tempfile.mkdtemp(prefix="tui-nn-bench-")) / "big.toml"
    path.write_text(BIG)
    app = PlaygroundApp(str(path))
    out: list[str] = []
    reps = 5 if quick else 15
    async with app.run_test(size=(80, 24)) as pilot:
        app.animation_level = "none"
        end = time.perf_counter() + 60
        while not (app.loaded.is_set() and app.run_state == "ready"):
            if time.perf_counter() > end:
                raise RuntimeError("the preset did not load")
            await pilot.pause(0.02)

        # -- 4: the loss plot with 10^6 steps of history
        await pilot.press("3")
        await pilot.pause(0.2)
        plot = app.query_one(LossPlot)
        rng = np.random.default_rng(0)
        h = LossHistory()
        h.extend(np.exp(-np.linspace(0, 5, 10**4)) + 0.01 * rng.random(10**4))
        mem_small = sum(a.nbytes for a in (h._step, h._sum, h._min, h._max, h._count))
        h.extend(np.exp(-np.linspace(5, 10, 10**6 - 10**4)) + 0.01 * rng.random(10**6 - 10**4))
        mem_big = sum(a.nbytes for a in (h._step, h._sum, h._min, h._max, h._count))
        assert len(h) == 10**6
        times = []
        for i in range(reps):
            plot.log = bool(i % 2)  # alternate scales: no cached figure can be reused
            t = time.perf_counter()
            plot.set_series(h.series())
            plot._draw()
            _lines(plot)  # the screen's lines (render_line), as the compositor asks for them
            times.append(time.perf_counter() - t)
            await pilot.pause()
        med = statistics.median(times) * 1000
        out.append(line("plot_redraw_1e6", f"{med:.1f} ms (median of {reps}; {plot.points} points kept of 10^6 "
                        f"steps)", "<= 30 ms", med <= 30))
        out.append(line("plot_history_memory", f"{mem_big / 1024:.0f} KiB at 10^6 steps, {mem_small / 1024:.0f} KiB "
                        f"at 10^4", "bounded", mem_big <= mem_small))

        # -- 5: the tensor panel on a 2048x2048 weight
        await pilot.press("2")
        await pilot.pause(0.2)
        pane = app.query_one(TensorsPane)
        view = pane.view
        opens, pages = [], []
        for _ in range(reps):
            pane.select(None)
            t = time.perf_counter()
            pane.select("param:0.weight")
            _lines(view)
            opens.append(time.perf_counter() - t)
            await pilot.pause()
            t = time.perf_counter()
            view.action_page(1)
            _lines(view)
            pages.append(time.perf_counter() - t)
            await pilot.pause()
        assert view.shape2d == (2048, 2048)
        o, pg = statistics.median(opens) * 1000, statistics.median(pages) * 1000
        out.append(line("tensor_open_2048x2048", f"{o:.1f} ms", "<= 50 ms", o <= 50))
        out.append(line("tensor_page_scroll", f"{pg:.1f} ms", "<= 20 ms", pg <= 20))
    return out


def measure(quick: bool = False) -> list[str]:
    return asyncio.run(_measure(quick))
