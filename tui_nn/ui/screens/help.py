"""`?`: every key binding, by region, from the table of keys (ui/keys.py)."""

from __future__ import annotations

from typing import Any, Iterable

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen

from ..keys import KEY_NAMES
from ..safe import Shown, Text


def _keys(binding: Binding) -> str:
    out = []
    for k in binding.key.split(","):
        k = k.strip()
        k = KEY_NAMES.get(k, k)
        out.append(k)
    return " / ".join(out)


def bindings_text(sections: Iterable[tuple[str, list[Any]]]) -> Text:
    text = Text()
    for title, bindings in sections:
        text.append(f"{title}\n", style="bold underline")
        for b in bindings:
            if not isinstance(b, Binding) or not b.description:
                continue
            text.append(f"  {_keys(b):<22}", style="bold cyan")
            text.append(f"{b.tooltip or b.description}\n")
        text.append("\n")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[Any]]], intro: str = "") -> None:
        super().__init__()
        self.sections = sections
        self.intro = intro

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="help-dialog"):
            yield Shown(Text("Keys  (esc: close, ↑↓ scroll)", style="bold"), classes="dialog-title", line=True)
            with VerticalScroll(id="help-scroll"):
                text = Text(self.intro + "\n\n" if self.intro else "")
                text.append_text(bindings_text(self.sections))
                yield Shown(text, markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
