"""The runs compared (c): every run kept, several overlaid with a legend, smoothing and a log scale."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual_plotext import PlotextPlot

from ..safe import Shown, Text, cell
from .dialogs import _hint

if TYPE_CHECKING:
    from tui_nn.engine import Session


class RunsModal(ModalScreen[None]):
    """Every run of the session: select several (space) to overlay their loss curves, with a legend."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("l", "toggle_log", "Log scale"),
                Binding("x,delete", "remove", "Remove run"),
                Binding("plus,equals_sign", "smooth(0.1)", "Smoother", show=False),
                Binding("minus", "smooth(-0.1)", "Less smooth", show=False)]

    COLORS = ["cyan", "yellow", "green", "magenta", "blue", "red", "white"]  # plotext and Rich names

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.smoothing = 0.6
        self.log_scale = False
        self.draws = 0

    def compose(self):  # noqa: ANN201
        runs = self.session.runs.runs
        with Vertical(classes="dialog", id="runs-dialog"):
            yield Shown(Text("Runs compared", style="bold"), classes="dialog-title", line=True)
            with Horizontal(id="runs-body"):
                with Vertical(id="runs-side"):
                    yield SelectionList[int](*[Selection(cell(Text(r.label)), r.id, i >= len(runs) - 2)
                                               for i, r in enumerate(runs)], id="runs-list")
                    with Horizontal(classes="pick-row"):
                        yield Label("smoothing")
                        yield Input(f"{self.smoothing:g}", compact=True, id="runs-smoothing")
                    yield Shown("", id="runs-info", markup=False)
                yield PlotextPlot(id="runs-plot")
            yield _hint("space: select  l: log  +/-: smoothing  x: remove  esc: close")

    def on_mount(self) -> None:
        self.query_one("#runs-list").focus()
        self.redraw()

    @property
    def selected(self) -> list[int]:
        return list(self.query_one("#runs-list", SelectionList).selected)

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[int]) -> None:
        self.redraw()

    def on_input_changed(self, event: Input.Changed) -> None:
        try:
            value = float(event.value)
        except ValueError:
            return
        if 0.0 <= value < 1.0:
            self.smoothing = value
            self.redraw()

    def action_smooth(self, delta: float) -> None:
        self.smoothing = round(min(max(self.smoothing + delta, 0.0), 0.99), 2)
        self.query_one("#runs-smoothing", Input).value = f"{self.smoothing:g}"
        self.redraw()

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self.redraw()

    def action_remove(self) -> None:
        lst = self.query_one("#runs-list", SelectionList)
        idx = lst.highlighted
        if idx is None:
            return
        run_id = lst.get_option_at_index(idx).value
        self.session.runs.remove(run_id)
        lst.remove_option_at_index(idx)
        self.redraw()

    def action_close(self) -> None:
        self.dismiss(None)

    def redraw(self) -> None:
        self.draws += 1
        plot = self.query_one("#runs-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"loss{' (log)' if self.log_scale else ''}, smoothing {self.smoothing:g}")
        plt.xlabel("step")
        plt.yscale("log" if self.log_scale else "linear")
        info = Text()
        chosen = self.selected
        for n, run_id in enumerate(chosen):
            try:
                run = self.session.runs.get(run_id)
            except Exception:  # noqa: BLE001 - removed meanwhile
                continue
            steps = np.asarray(run.steps)
            if len(steps) == 0:
                continue
            values = np.asarray(run.smoothed(self.smoothing), dtype=np.float64)
            finite = np.isfinite(values)
            if self.log_scale:
                finite &= values > 0
            color = self.COLORS[n % len(self.COLORS)]
            plt.plot(steps[finite].tolist(), values[finite].tolist(), marker="braille", color=color,
                     label=f"run {run.id}")
            info.append(f"■ run {run.id}", style=color)
            info.append(f": to step {int(steps[-1])}, last {float(run.losses[-1]):.4g}\n")
        if not chosen:
            info.append("select runs with space", style="dim")
        self.query_one("#runs-info", Static).update(info)
        plot.refresh()
