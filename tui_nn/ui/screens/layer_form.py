"""A layer's arguments in a form generated from the catalogue, validated as you type, with a live
preview of the shapes the model would get."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui_nn import engine

from ..safe import Shown, Text
from ..widgets.forms import ArgsForm

if TYPE_CHECKING:
    from tui_nn.engine import Session


class LayerFormScreen(ModalScreen["dict[str, Any] | None"]):
    """Returns the new arguments (only those that differ from the defaults), or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, title: str, type_name: str, args: dict[str, Any],
                 preview: Callable[[dict[str, Any]], Text]) -> None:
        super().__init__()
        self.title_text = title
        self.type_name = type_name
        self.args = dict(args)
        self.preview_fn = preview

    def compose(self):  # noqa: ANN201
        lt = engine.CATALOGUE[self.type_name]
        with Vertical(classes="dialog", id="layer-form-dialog"):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            yield Shown(Text(lt.doc, style="italic"), markup=False)
            with VerticalScroll(id="layer-form-scroll"):
                if lt.args:
                    yield ArgsForm(lt.args, self.args, id="layer-args")
                else:
                    yield Shown(Text("(no arguments)", style="dim"), markup=False)
            yield Shown("", id="layer-preview", markup=False)
            yield Shown(Text("enter / ctrl+s: apply   tab: next field   esc: cancel   * required", style="dim"),
                         classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        forms = self.query(ArgsForm)
        if forms:
            forms.first().focus_first()
        self._preview()

    def _form(self) -> ArgsForm | None:
        forms = self.query(ArgsForm)
        return forms.first() if forms else None

    def current_args(self) -> dict[str, Any] | None:
        form = self._form()
        if form is None:
            return {}
        return form.args() if form.valid else None

    def _preview(self) -> None:
        form = self._form()
        out = self.query_one("#layer-preview", Static)
        if form is not None and not form.valid:
            out.update(Text(f"✗ {form.first_error()}", style="bold red"))
            return
        try:
            out.update(self.preview_fn(self.current_args() or {}))
        except Exception as err:  # noqa: BLE001 - the preview must never take the form down
            out.update(Text(f"✗ {err}", style="red"))

    def on_args_form_changed(self, event: ArgsForm.Changed) -> None:
        event.stop()
        self._preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        args = self.current_args()
        if args is None:
            self.app.bell()
            self._preview()
            return
        self.dismiss(args)

    def action_cancel(self) -> None:
        self.dismiss(None)


def preview_text(s: Session, path: str | None, type_name: str, insert: bool, args: dict[str, Any]) -> Text:
    """What the model would look like with these arguments (shape check on the meta device)."""
    model = s.spec.copy()
    if insert:
        seeded = engine.default_layer(type_name).layers  # a new block holds an Identity, as when inserted
        target = engine.insert_layer(model, path, engine.LayerSpec(type_name, dict(args),
                                                           layers=[x.copy() for x in seeded]))
    else:
        assert path is not None
        engine.set_args(model, path, args)
        target = path
    report = engine.check_model(model, tuple(s.inputs.shape), optimizer=s.training.optimizer.type,
                         optimizer_args=s.training.optimizer.args)
    text = Text()
    row = next((r for r in report.layers if r.path == target), None)
    err = report.error
    if err is not None and (err.path or str(err.layer)) == target:
        text.append(f"✗ {err.message}", style="bold red")
        if err.hint:
            text.append(f"\n  {err.hint}", style="red")
        return text
    if row is not None:
        text.append(f"layer {target}: {engine.fmt_shape(row.input_shape)} → {engine.fmt_shape(row.output_shape)}",
                    style="bold green")
        text.append(f"   {row.params:,} parameters")
        if row.detail:
            text.append(f"\n  {row.detail}", style="dim")
    if err is not None:
        text.append(f"\n⚠ then layer {err.path or err.layer} ({err.type}) fails: {err.message}", style="yellow")
        if err.fix is not None:
            text.append(f"\n  (after applying, f: {err.fix.text})", style="dim")
    else:
        text.append(f"\nmodel output {engine.fmt_shape(report.output_shape)}, {report.total_params:,} parameters",
                    style="dim")
    return text
