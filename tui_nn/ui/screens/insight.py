"""Dialogs of "Beyond the labs": a text report (gradient check, confusion matrix, a neuron in numbers),
the runs compared, choosing a data set or a CSV file, and exporting. Outside text is always literal."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual_plotext import PlotextPlot

from ..safe import Shown, Text, cell, line
from .dialogs import _hint


class ReportModal(ModalScreen[None]):
    """A title and a text (a Rich Text or a plain string, shown literally), scrollable."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: Text | str, *, dialog_id: str = "report-dialog") -> None:
        super().__init__()
        self.title_text = title
        self.body = Text(body) if isinstance(body, str) else body
        self.dialog_id = dialog_id

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog report-dialog", id=self.dialog_id):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            with VerticalScroll(id="report-scroll"):
                yield Shown(self.body, id="report-body", markup=False)
            yield _hint("enter / esc: close   arrows: scroll")

    def on_mount(self) -> None:
        self.query_one("#report-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)


def gradcheck_text(report: Any) -> Text:
    """The engine's report (largest absolute and relative error per parameter), flagged rows in bold red."""
    bad = [p.name for p in report.params if not p.ok]
    text = Text()
    for line in report.text().splitlines():
        flagged = any(line.startswith(name + " ") for name in bad)
        text.append(line + "\n", style="bold red" if flagged else "")
    return text


class RunsModal(ModalScreen[None]):
    """Every run of the session: select several (space) to overlay their loss curves, with a legend."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("l", "toggle_log", "Log scale"),
                Binding("x,delete", "remove", "Remove run"),
                Binding("plus,equals_sign", "smooth(0.1)", "Smoother", show=False),
                Binding("minus", "smooth(-0.1)", "Less smooth", show=False)]

    COLORS = ["cyan", "yellow", "green", "magenta", "blue", "red", "white"]  # plotext and Rich names

    def __init__(self, session: Any) -> None:
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

    def on_selection_list_selected_changed(self, event: Any) -> None:
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


DATASET_NAMES = ("xor", "circles", "moons", "blobs", "spiral", "sine", "plane")


class DatasetModal(ModalScreen[bool]):
    """Pick a generated data set or the columns of a CSV file; a refusal is shown inline (literally)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, data: Any, apply: Callable[[dict[str, Any]], "str | None"]) -> None:
        super().__init__()
        self.data = data
        self.apply_fn = apply

    def compose(self):  # noqa: ANN201
        ds = getattr(self.data, "dataset", None)
        csv = getattr(self.data, "csv", None)
        source = "csv" if csv is not None else (ds.name if ds is not None else "spiral")
        with Vertical(classes="dialog", id="dataset-dialog"):
            yield Shown(Text("Data set or CSV file", style="bold"), classes="dialog-title", line=True)
            with Horizontal(classes="pick-row"):
                yield Label("source")
                yield Select([(n, n) for n in DATASET_NAMES] + [("CSV file", "csv")], value=source,
                             allow_blank=False, compact=True, id="ds-source")
            rows = [("samples", "ds-samples", str(ds.samples if ds else 200)),
                    ("noise", "ds-noise", f"{ds.noise if ds else 0.1:g}"),
                    ("classes", "ds-classes", str(ds.classes) if ds and ds.classes else ""),
                    ("test frac.", "ds-test", f"{(csv or ds).test_fraction if (csv or ds) else 0.2:g}"),
                    ("CSV path", "csv-path", line(csv.path) if csv else ""),  # from a file: printable
                    ("features", "csv-features", line(", ".join(csv.features)) if csv else ""),
                    ("target(s)", "csv-target", line(", ".join(csv.target)) if csv else "")]
            for label, wid, value in rows:
                with Horizontal(classes="pick-row"):
                    yield Label(label)
                    yield Input(value, compact=True, id=wid,
                                placeholder="blobs/spiral only" if wid == "ds-classes" else "")
            yield Shown("", id="dataset-error", markup=False)
            yield _hint("ctrl+s / enter: apply (keeps the weights)   esc: cancel")

    def on_mount(self) -> None:
        self.query_one("#ds-source", Select).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": str(self.query_one("#ds-source", Select).value)}
        for wid in ("ds-samples", "ds-noise", "ds-classes", "ds-test", "csv-path", "csv-features", "csv-target"):
            out[wid] = self.query_one(f"#{wid}", Input).value.strip()
        return out

    def action_apply(self) -> None:
        try:
            error = self.apply_fn(self.values())
        except Exception as err:  # noqa: BLE001 - shown, the dialog stays
            error = getattr(err, "message", None) or str(err) or type(err).__name__
        if error:
            self.query_one("#dataset-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


def dataset_table(v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("dataset" | "csv", the preset table) from the dialog's values; ValueError with a reason."""

    def split_names(text: str) -> list[str]:
        return [n.strip() for n in text.split(",") if n.strip()]

    test = v.get("ds-test", "") or "0"
    try:
        test_fraction = float(test)
    except ValueError:
        raise ValueError(f"test fraction: a number in [0, 1), not {test!r}") from None
    if v["source"] == "csv":
        if not v.get("csv-path"):
            raise ValueError("CSV path: type the path of a CSV file with a header row")
        features, target = split_names(v.get("csv-features", "")), split_names(v.get("csv-target", ""))
        if not features or not target:
            raise ValueError("features and target(s): column names, separated by commas")
        return "csv", {"path": v["csv-path"], "features": features,
                       "target": target[0] if len(target) == 1 else target, "test_fraction": test_fraction}
    table: dict[str, Any] = {"name": v["source"], "test_fraction": test_fraction}
    try:
        table["samples"] = int(v.get("ds-samples") or 200)
        table["noise"] = float(v.get("ds-noise") or 0)
        if v.get("ds-classes"):
            table["classes"] = int(v["ds-classes"])
    except ValueError:
        raise ValueError("samples and classes: whole numbers; noise: a number") from None
    return "dataset", table


EXPORT_KINDS = [("PyTorch script (.py)", "script"), ("loss history (.csv)", "csv"),
                ("screenshot (.svg)", "svg")]


class ExportModal(ModalScreen[bool]):
    """Export what and where: apply(kind, path) returns a refusal or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, defaults: dict[str, str], apply: Callable[[str, str], "str | None"],
                 kind: str = "script") -> None:
        super().__init__()
        self.defaults = defaults
        self.apply_fn = apply
        self.kind = kind

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="export-dialog"):
            yield Shown(Text("Export", style="bold"), classes="dialog-title", line=True)
            with Horizontal(classes="pick-row"):
                yield Label("what")
                yield Select(EXPORT_KINDS, value=self.kind, allow_blank=False, compact=True, id="export-kind")
            with Horizontal(classes="pick-row"):
                yield Label("file")
                yield Input(line(self.defaults[self.kind]), compact=True, id="export-path")
            yield Shown("", id="export-error", markup=False)
            yield _hint("enter: write   esc: cancel")

    def on_mount(self) -> None:
        self.query_one("#export-kind", Select).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "export-kind":
            event.stop()
            path = self.query_one("#export-path", Input)
            if path.value in map(line, self.defaults.values()):
                path.value = line(self.defaults[str(event.value)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.query_one("#export-error", Static).update(Text("✗ type a file name", style="bold red"))
            return
        error = self.apply_fn(str(self.query_one("#export-kind", Select).value), path)
        if error:
            self.query_one("#export-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
