"""Choosing the data (D): a generated data set or the columns of a CSV file. Outside text is shown literally."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from tui_nn import engine

from ..safe import Shown, Text, line
from .dialogs import _hint

if TYPE_CHECKING:
    from tui_nn.engine import DataSpec


DATASET_NAMES = ("xor", "circles", "moons", "blobs", "spiral", "sine", "plane")


class DatasetModal(ModalScreen[bool]):
    """Pick a generated data set or the columns of a CSV file; a refusal is shown inline (literally)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, data: DataSpec, apply: Callable[[dict[str, Any]], str | None]) -> None:
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


def dataset_spec(values: dict[str, Any], current: DataSpec) -> DataSpec:
    """The data the dialog's values describe (a generated data set or a CSV file's columns); ValueError or the
    engine's EngineError with the reason. A path typed here is relative to the working folder; the current CSV's
    own path keeps its base."""
    which, table = dataset_table(values)
    csv = current.csv
    base = csv.base if csv is not None and table.get("path") == csv.path else os.getcwd()
    if which == "csv":
        return engine.DataSpec(csv=engine.parse_csv(table, source="the CSV dialog", base=base))
    return engine.DataSpec(dataset=engine.parse_dataset(table, source="the data set dialog"))
