"""The layer stack: one row per layer (call, input -> output shape, parameters), the shape error with
its hint and fix, and the totals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from tui_nn import engine

from .. import keys
from ..safe import Shown, Text, cell

MAX_PATH_WIDTH = 14  # cells of the "#" column at most (a path of 12 characters, e.g. "10.2.shortcut")

if TYPE_CHECKING:
    from tui_nn.engine import LayerSpec, Session


def short_shape(shape: Any) -> str:
    """Shapes in the layer rows, without spaces (long conv shapes still fit 80 columns)."""
    return "?" if shape is None else "[" + ",".join(str(s) for s in shape) + "]"


def _call_cell(spec: LayerSpec, depth: int, style: str = "") -> Text:
    """A layer row's call: indented by depth, like the PyTorch call, with its frozen and hand-set marks."""
    call = Text("  " * depth + engine.call_text(spec), style=style)
    if spec.frozen:
        call.append(" ❄frozen", style="cyan")
    if spec.params:
        call.append(" ✎", style="yellow")
    return call


class LayerTable(DataTable):
    """The layers. Keys act on the highlighted layer."""

    BINDINGS = keys.bindings("layers")  # ui/keys.py

    class EditRequested(Message):
        """Enter on a row: edit that layer's arguments (the app opens the form)."""

        def __init__(self, path: str | None) -> None:
            super().__init__()
            self.path = path

    class PathHighlighted(Message):
        """The cursor moved to another layer (the totals show its details)."""

        def __init__(self, path: str | None) -> None:
            super().__init__()
            self.path = path

    def __init__(self, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.paths: list[str] = []

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.EditRequested(self.selected_path))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.PathHighlighted(self.selected_path))

    def add_row(self, *cells: Any, **kw: Any) -> Any:
        """Every row goes in here: its cells (layer types and arguments come from a file) printable, one line."""
        return super().add_row(*(cell(c) for c in cells), **kw)

    def on_mount(self) -> None:
        self.add_column("#", key="idx", width=4)
        self.add_column("layer", key="layer")
        self.add_column("in → out", key="shape")
        self.add_column("params", key="params")

    def _fit_paths(self) -> None:
        """The "#" column as wide as the longest path (a block's "3.1.2"), at least 4 cells: a flat network's
        table keeps its width."""
        width = max(4, min(MAX_PATH_WIDTH, 2 + max((len(p) for p in self.paths), default=0)))
        column = self.columns.get(ColumnKey("idx"))
        if column is not None and column.width != width:
            column.width = width
            self._require_update_dimensions = True
            self.refresh()

    @property
    def selected_path(self) -> str | None:
        if not self.paths:
            return None
        row = min(max(self.cursor_row, 0), len(self.paths) - 1)
        return self.paths[row]

    def update_from(self, session: Session, select: str | None = None) -> None:
        """Rebuild the rows from the session's spec and shape report."""
        keep = select if select is not None else self.selected_path
        report = session.report
        rows = {r.path: r for r in report.layers}
        err = report.error
        err_path = (err.path or str(err.layer)) if err is not None else None
        self.clear()
        self.paths = []
        after_error = False
        for path, depth, spec in engine.flat_layers(session.spec.layers):
            row = rows.get(path)
            is_err = path == err_path
            style = "bold red" if is_err else ("dim" if after_error else "")
            call = _call_cell(spec, depth, style)
            if row is None:
                shape = Text("—", style="dim")
                params = Text("", style="dim")
            elif is_err:
                shape = Text(f"{short_shape(row.input_shape)} → ✗", style="bold red")
                params = Text(f"{row.params:,}" if row.params else "", style="red")
            else:
                out = short_shape(row.output_shape) if spec.type != "Residual" or row.output_shape else "…"
                shape = Text(f"{short_shape(row.input_shape)} → {out}")
                ptxt = f"{row.params:,}" if row.params else "0"
                params = Text(ptxt, style="dim" if not row.params else ("cyan" if row.trainable == 0 else ""))
            mark = Text(("✗ " if is_err else "  ") + path, style="bold red" if is_err else "dim")
            self.add_row(mark, call, shape, params, key=path)
            self.paths.append(path)
            if is_err:
                after_error = True
        self._fit_paths()
        if keep in self.paths:
            self.move_cursor(row=self.paths.index(keep), animate=False)
        elif err_path in self.paths and select is None:
            self.move_cursor(row=self.paths.index(err_path), animate=False)

    def show_preview(self, rows: list[Any]) -> None:
        """A preset's layers before torch has loaded (`shape_rules.preview` rows): shapes and parameter counts
        where arithmetic gives them, "…" where only the real check will tell. The session's rows replace them."""
        self.clear()
        self.paths = []
        for r in rows:
            call = _call_cell(r.spec, r.depth)
            if r.input_shape is None:
                shape = Text("…", style="dim")
            else:
                out = "…" if r.output_shape is None else short_shape(r.output_shape)
                shape = Text(f"{short_shape(r.input_shape)} → {out}")
            params = Text("…" if r.params is None else f"{r.params:,}", style="dim")
            self.add_row(Text("  " + r.path, style="dim"), call, shape, params, key=r.path)
            self.paths.append(r.path)
        self._fit_paths()


class ErrorPanel(Shown):
    """The shape error (PyTorch's message, the hint, the fix and its key), or a data problem."""

    def update_from(self, session: Session, running: bool = False) -> None:
        err = session.report.error
        text = Text()
        if err is not None:
            where = err.path or str(err.layer)
            text.append(f"✗ layer {where} ({err.type}): ", style="bold red")
            text.append(err.message, style="red")
            if err.hint:
                text.append("\n  hint: ", style="bold")
                text.append(err.hint)
            if err.fix is not None:
                text.append("\n  f", style="bold reverse")
                text.append(" fix: ", style="bold green")
                text.append(err.fix.text, style="green")
            alts = [f for f in err.extra_fixes if f.layer == engine.INPUT_FIX]
            if alts:
                text.append("\n  F", style="bold reverse")
                text.append(" alternative: ", style="bold green")
                text.append(alts[0].text, style="green")
        elif getattr(session, "data_error", None) is not None:
            de = session.data_error
            text.append("⚠ data: ", style="bold yellow")
            text.append(de.message, style="yellow")
            if de.hint:
                text.append("\n  hint: ", style="bold")
                text.append(de.hint)
            text.append("\n  (Data tab: 4)", style="dim")
        self.update(text)
        self.display = bool(text.plain)
        self.set_class(err is not None, "-error")


class Totals(Shown):
    """Parameters, trainable parameters, memory estimate; the highlighted layer's details."""

    def update_from(self, session: Session, path: str | None) -> None:
        report = session.report
        text = Text()
        text.append("params ", style="dim")
        text.append(f"{report.total_params:,}", style="bold")
        text.append("  trainable ", style="dim")
        text.append(f"{report.trainable_params:,}", style="bold")
        text.append("  mem ≈ ", style="dim")
        text.append(engine.fmt_bytes(report.memory.total), style="bold")
        text.append("  ")
        text.append(engine.fmt_shape(tuple(session.inputs.shape)))
        text.append(" → ", style="dim")
        text.append(engine.fmt_shape(report.output_shape))
        detail = ""
        if path is not None:
            try:
                spec = engine.get_layer(session.spec, path)
            except Exception:  # noqa: BLE001 - a stale path after an edit: no details
                spec = None
            if spec is not None:
                lt = engine.CATALOGUE.get(spec.type)
                row = next((r for r in report.layers if r.path == path), None)
                if row is not None and row.detail:
                    detail = f"{spec.type} output size: {row.detail}"
                else:
                    detail = f"{spec.type}: {lt.doc if lt else ''}"
        text.append("\n")
        text.append(detail, style="italic")
        self.update(text)
