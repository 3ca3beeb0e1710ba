"""A form generated from argument specs (the catalogue's ArgSpec), validated as you type."""

from __future__ import annotations

from typing import Any

from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from tui_nn import engine

from ..safe import Shown, Text, line

BOOL_OPTIONS = [("true", True), ("false", False)]


class ArgsForm(Vertical):
    """One row per argument: name, field, and the doc or the error."""


    class Changed(Message):
        def __init__(self, form: "ArgsForm", name: str) -> None:
            super().__init__()
            self.form = form
            self.name = name

        @property
        def control(self) -> "ArgsForm":
            return self.form

    def __init__(self, argspecs: Any, values: dict[str, Any] | None = None, *, name_width: int | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.argspecs = tuple(argspecs)
        self.initial = dict(values or {})
        self.values: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._omitted: set[str] = set()
        self._fields: dict[str, Any] = {}
        self._docs: dict[str, Static] = {}
        self._name_width = name_width

    def compose(self):  # noqa: ANN201
        for a in self.argspecs:
            with Horizontal(classes="arg-row"):
                label = Label(Text(a.name + ("*" if a.required else "")), classes="arg-name")
                if self._name_width:
                    label.styles.width = self._name_width
                yield label
                current = self.initial.get(a.name, a.default)
                if a.kind == "choice":
                    opts = [(c, c) for c in a.choices]
                    field: Any = Select(opts, value=current if current in a.choices else a.choices[0],
                                        allow_blank=False, compact=True, classes="arg-field")
                elif a.kind == "bool":
                    field = Select(BOOL_OPTIONS, value=bool(current), allow_blank=False, compact=True,
                                   classes="arg-field")
                else:
                    text = line(engine.value_text(self.initial[a.name])) if a.name in self.initial else ""
                    placeholder = "required" if a.required else f"{engine.value_text(a.default) or 'none'}"
                    field = Input(text, placeholder=placeholder, compact=True, classes="arg-field")
                field.arg_name = a.name  # type: ignore[attr-defined]
                self._fields[a.name] = field
                yield field
                doc = Shown(Text(a.doc or a.describe()), classes="arg-doc", markup=False)
                self._docs[a.name] = doc
                yield doc

    def on_mount(self) -> None:
        for a in self.argspecs:
            self._validate(a.name, post=False)

    def _text(self, name: str) -> str:
        field = self._fields[name]
        if isinstance(field, Select):
            # "no selection" is Select.NULL (Select.BLANK is Widget.BLANK, i.e. False: it matched a false value)
            return "" if field.is_blank() else engine.value_text(field.value)
        return field.value

    def _validate(self, name: str, post: bool = True) -> None:
        a = next(x for x in self.argspecs if x.name == name)
        value, error, omitted = engine.validate_field(a, self._text(name))
        doc = self._docs[name]
        if error:
            self.errors[name] = error
            self.values.pop(name, None)
            doc.update(Text(f"✗ {error}"))
            doc.add_class("-error")
            if doc.parent is not None:
                doc.parent.add_class("-error")
        else:
            self.errors.pop(name, None)
            self.values[name] = value
            if omitted:
                self._omitted.add(name)
            else:
                self._omitted.discard(name)
            doc.update(Text(a.doc or a.describe()))
            doc.remove_class("-error")
            if doc.parent is not None:
                doc.parent.remove_class("-error")
        if post:
            self.post_message(self.Changed(self, name))

    @property
    def valid(self) -> bool:
        return not self.errors

    def args(self) -> dict[str, Any]:
        """Arguments that differ from the defaults (required ones always)."""
        vals = {k: v for k, v in self.values.items() if k not in self._omitted}
        return engine.args_from_values(self.argspecs, vals)

    def all_values(self) -> dict[str, Any]:
        return dict(self.values)

    def first_error(self) -> str | None:
        for name, err in self.errors.items():
            return f"{name}: {err}"
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        name = getattr(event.input, "arg_name", None)
        if name in self._fields:
            event.stop()
            self._validate(name)

    def on_select_changed(self, event: Select.Changed) -> None:
        name = getattr(event.select, "arg_name", None)
        if name in self._fields:
            event.stop()
            self._validate(name)

    def focus_first(self) -> None:
        for a in self.argspecs:
            self._fields[a.name].focus()
            return
