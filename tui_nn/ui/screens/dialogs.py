"""Small modal dialogs: an error, a text editor (one cell or a whole tensor), an initialisation scheme, a
data generator, and the file dialogs (saving a preset or a session, exporting). Every text that comes from
outside is shown literally."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, TextArea

from tui_nn import engine

from ..safe import Shown, Text, line, shown
from ..widgets.forms import ArgsForm

Apply = Callable[..., "str | None"]  # returns an error message (refused, dialog stays) or None (done)


def _hint(text: str) -> Shown:
    return Shown(Text(text, style="dim"), classes="dialog-hint", markup=False)


class ErrorModal(ModalScreen[None]):
    """An error: its title, the message and the hint, literally."""

    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.hint = hint

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog -error", id="error-dialog"):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            body = Text(self.message)
            if self.hint:
                body.append("\n\nhint: ", style="bold")
                body.append(self.hint)
            yield Shown(body, id="error-body", markup=False)
            yield _hint("enter / esc: close")

    def action_dismiss(self, result: Any = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class TextEditModal(ModalScreen[bool]):
    """Edit text and apply it; a refusal is shown inline and nothing changes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, title: str, help_text: str, initial: str, apply: Apply, *, multiline: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.help_text = help_text
        self.initial = initial
        self.apply_fn = apply
        self.multiline = multiline

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="edit-dialog"):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            yield Shown(Text(self.help_text), classes="dialog-help", markup=False)
            if self.multiline:
                yield TextArea(shown(self.initial), id="edit-area", soft_wrap=False, show_line_numbers=False)
            else:
                yield Input(line(self.initial), id="edit-input", select_on_focus=True)
            yield Shown("", id="edit-error", markup=False)
            if self.multiline:  # the text is selected on open: a paste or typing replaces it
                yield _hint("all selected: paste or type to replace   f7: select all   ctrl+s: apply   esc: cancel")
            else:
                yield _hint("enter: apply   esc: cancel")

    def on_mount(self) -> None:
        if self.multiline:
            area = self.query_one(TextArea)
            area.focus()
            area.select_all()  # a pasted matrix replaces the current values instead of going in front of them
        else:
            self.query_one(Input).focus()

    @property
    def text(self) -> str:
        if self.multiline:
            return self.query_one(TextArea).text
        return self.query_one(Input).value

    def action_apply(self) -> None:
        try:
            error = self.apply_fn(self.text)
        except Exception as err:  # noqa: BLE001 - any refusal is shown, the app stays
            error = str(err) or type(err).__name__
        if error:
            self.query_one("#edit-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        self.dismiss(True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_cancel(self) -> None:
        self.dismiss(False)


class InitModal(ModalScreen[bool]):
    """Apply an initialisation scheme to a layer's parameters."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    PARAMS = {"constant": ("value",), "uniform": ("a", "b"), "normal": ("mean", "std"), "xavier_uniform": ("gain",)}

    def __init__(self, title: str, apply: Apply) -> None:
        super().__init__()
        self.title_text = title
        self.apply_fn = apply

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="init-dialog"):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            with Horizontal(classes="pick-row"):
                yield Label("scheme")
                yield Select([(s, s) for s in engine.INIT_SCHEMES], value="default", allow_blank=False, compact=True,
                             id="init-scheme")
            yield ArgsForm(self._specs("default"), {}, id="init-args")
            yield Shown("", id="init-error", markup=False)
            yield _hint("enter / ctrl+s: apply   esc: cancel   (default: PyTorch's own init)")

    def on_mount(self) -> None:
        self.query_one("#init-scheme", Select).focus()

    def _specs(self, scheme: str) -> tuple[Any, ...]:
        defaults = {"value": 0.0, "a": 0.0, "b": 1.0, "mean": 0.0, "std": 1.0, "gain": 1.0}
        return tuple(engine.ArgSpec(n, engine.FLOAT, defaults[n], required=(n == "value"), doc="") for n in
                     self.PARAMS.get(scheme, ()))

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "init-scheme":
            return
        event.stop()
        old = self.query_one("#init-args", ArgsForm)
        await old.remove()
        form = ArgsForm(self._specs(str(event.value)), {}, id="init-args")
        await self.query_one("#init-dialog").mount(form, after=self.query_one(".pick-row"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()


    def action_apply(self) -> None:
        form = self.query_one("#init-args", ArgsForm)
        if not form.valid:
            self.query_one("#init-error", Static).update(Text("✗ " + (form.first_error() or ""), style="bold red"))
            return
        init = {"scheme": str(self.query_one("#init-scheme", Select).value)}
        init.update({k: float(v) for k, v in form.all_values().items()})
        error = self.apply_fn(init)
        if error:
            self.query_one("#init-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class GeneratorModal(ModalScreen[bool]):
    """Switch inputs or targets to a generator (rand, randn, zeros, ones, randint) with a shape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, title: str, kind: str, shape: tuple[int, ...], apply: Apply) -> None:
        super().__init__()
        self.title_text = title
        self.kind = kind
        self.shape = shape
        self.apply_fn = apply

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="gen-dialog"):
            yield Shown(Text(self.title_text, style="bold"), classes="dialog-title", line=True)
            with Horizontal(classes="pick-row"):
                yield Label("generator")
                kind = self.kind if self.kind in engine.GENERATORS else "randn"
                yield Select([(g, g) for g in engine.GENERATORS], value=kind,
                             allow_blank=False, compact=True, id="gen-kind")
            with Horizontal(classes="pick-row"):
                yield Label("shape")
                yield Input(", ".join(str(s) for s in self.shape), compact=True, id="gen-shape")
            with Horizontal(classes="pick-row"):
                yield Label("low, high")
                yield Input("0, 2", compact=True, id="gen-range")
            yield Shown("", id="gen-error", markup=False)
            yield _hint("enter: apply   esc: cancel   (low, high: randint only; the first dimension counts the "
                        "samples)")

    def on_mount(self) -> None:
        self.query_one("#gen-kind", Select).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()


    def action_apply(self) -> None:
        kind = str(self.query_one("#gen-kind", Select).value)
        try:
            shape = tuple(int(x) for x in self.query_one("#gen-shape", Input).value.replace(",", " ").split())
            low_high = [int(x) for x in self.query_one("#gen-range", Input).value.replace(",", " ").split()]
        except ValueError:
            self._error("the shape (and low, high) must be whole numbers, e.g. 16, 4")
            return
        if not shape or any(s < 1 for s in shape):
            self._error("the shape needs one or more positive sizes, e.g. 16, 4")
            return
        if len(low_high) != 2:
            self._error("low, high: two whole numbers")
            return
        error = self.apply_fn(kind, shape, low_high[0], low_high[1])
        if error:
            self._error(error)
            return
        self.dismiss(True)

    def _error(self, text: str) -> None:
        self.query_one("#gen-error", Static).update(Text("✗ " + text, style="bold red"))

    def action_cancel(self) -> None:
        self.dismiss(False)


class FileModal(ModalScreen[bool]):
    """Write a file: rows of choices and a path (its ids start with PREFIX), an inline refusal, enter writes.
    `submit(path)` returns a refusal or None (done)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]
    PREFIX = "file"
    HEADING = "Write a file"
    HINT = "enter: write   esc: cancel"

    def rows(self) -> Iterator[tuple[str, Widget]]:
        """(label, widget) for each row of the dialog, the path's Input (id PREFIX-path) among them."""
        raise NotImplementedError

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id=f"{self.PREFIX}-dialog"):
            yield Shown(Text(self.HEADING, style="bold"), classes="dialog-title", line=True)
            for label, widget in self.rows():
                with Horizontal(classes="pick-row"):
                    yield Label(label)
                    yield widget
            yield Shown("", id=f"{self.PREFIX}-error", markup=False)
            yield _hint(self.HINT)

    @property
    def path_input(self) -> Input:
        return self.query_one(f"#{self.PREFIX}-path", Input)

    def choice(self, name: str) -> Any:
        return self.query_one(f"#{self.PREFIX}-{name}", Select).value

    def submit(self, path: str) -> str | None:
        raise NotImplementedError

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        path = self.path_input.value.strip()
        error = "type a file name" if not path else self.submit(path)
        if error:
            self.query_one(f"#{self.PREFIX}-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class SaveModal(FileModal):
    """Save the current state as a preset file or a session: apply(path, with_weights, format)."""

    PREFIX = "save"
    HEADING = "Save as a preset or a session"
    HINT = "enter: save   esc: cancel   (a session keeps weights, optimizer, data, history, runs)"

    def __init__(self, path: str, apply: Apply) -> None:
        super().__init__()
        self.path = path
        self.apply_fn = apply

    def rows(self) -> Iterator[tuple[str, Widget]]:
        yield "file", Input(line(self.path), compact=True, id="save-path")  # a name made of a file's: printable
        yield "save as", Select([("preset (.toml)", "preset"), ("whole session (.tuinn)", "session")],
                                value="preset", allow_blank=False, compact=True, id="save-format")
        yield "weights", Select([("current weights", True), ("arguments only", False)], value=True,
                                allow_blank=False, compact=True, id="save-weights")

    def on_mount(self) -> None:
        self.path_input.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "save-format":
            return
        event.stop()
        path = self.path_input
        stem, dot, ext = path.value.rpartition(".")
        base = stem if dot and ext in ("toml", engine.SUFFIX.lstrip(".")) else path.value
        path.value = base + (engine.SUFFIX if event.value == "session" else ".toml")

    def submit(self, path: str) -> str | None:
        return self.apply_fn(path, bool(self.choice("weights")), str(self.choice("format")))


EXPORT_KINDS = [("PyTorch script (.py)", "script"), ("loss history (.csv)", "csv"),
                ("screenshot (.svg)", "svg")]


class ExportModal(FileModal):
    """Export what and where: apply(kind, path) returns a refusal or None."""

    PREFIX = "export"
    HEADING = "Export"

    def __init__(self, defaults: dict[str, str], apply: Callable[[str, str], str | None],
                 kind: str = "script") -> None:
        super().__init__()
        self.defaults = defaults
        self.apply_fn = apply
        self.kind = kind

    def rows(self) -> Iterator[tuple[str, Widget]]:
        yield "what", Select(EXPORT_KINDS, value=self.kind, allow_blank=False, compact=True, id="export-kind")
        yield "file", Input(line(self.defaults[self.kind]), compact=True, id="export-path")

    def on_mount(self) -> None:
        self.query_one("#export-kind", Select).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "export-kind":
            event.stop()
            path = self.path_input
            if path.value in map(line, self.defaults.values()):
                path.value = line(self.defaults[str(event.value)])

    def submit(self, path: str) -> str | None:
        return self.apply_fn(str(self.choice("kind")), path)
