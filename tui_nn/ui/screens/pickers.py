"""Searchable pickers: layer types from the catalogue, presets (bundled or a file)."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui_nn import engine

from ..safe import Shown, Text, cell


class LayerPicker(ModalScreen["str | None"]):
    """Type to filter; up/down to choose; enter to pick."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("pagedown", "move(5)", "Next page", show=False),
        Binding("pageup", "move(-5)", "Previous page", show=False),
    ]

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="picker-dialog"):
            yield Shown(Text(f"Add a layer {self.where}", style="bold"), classes="dialog-title", line=True)
            yield Input(placeholder="type to search (e.g. conv, relu, norm)", id="picker-search")
            yield OptionList(id="picker-list")
            yield Shown("", id="picker-doc", markup=False)
            yield Shown(Text("↑↓ choose   enter: add   esc: cancel", style="dim"), classes="dialog-hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#picker-search", Input).focus()

    def _fill(self, query: str) -> None:
        q = query.strip().lower()
        lst = self.query_one("#picker-list", OptionList)
        lst.clear_options()
        options = []
        for lt in engine.CATALOGUE.values():
            hay = f"{lt.name} {lt.doc} {lt.category}".lower()
            if q and q not in hay:
                continue
            label = Text(f"{lt.name:<18}", style="bold")
            label.append(lt.category, style="dim")
            options.append(Option(label, id=lt.name))
        # names that start with the query first
        options.sort(key=lambda o: (not str(o.id).lower().startswith(q), 0))
        lst.add_options(options)
        if options:
            lst.highlighted = 0
        self._doc()

    def _doc(self) -> None:
        lst = self.query_one("#picker-list", OptionList)
        text = Text()
        if lst.highlighted is not None and lst.option_count:
            lt = engine.CATALOGUE[str(lst.get_option_at_index(lst.highlighted).id)]
            text.append(lt.doc)
            req = [a.name for a in lt.args if a.required]
            if req:
                text.append(f"\nneeds: {', '.join(req)}", style="dim")
        self.query_one("#picker-doc", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._pick()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._doc()

    def action_move(self, delta: int) -> None:
        lst = self.query_one("#picker-list", OptionList)
        if not lst.option_count:
            return
        cur = lst.highlighted or 0
        lst.highlighted = max(0, min(lst.option_count - 1, cur + delta))
        self._doc()

    def _pick(self) -> None:
        lst = self.query_one("#picker-list", OptionList)
        if lst.highlighted is None or not lst.option_count:
            self.app.bell()
            return
        self.dismiss(str(lst.get_option_at_index(lst.highlighted).id))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PresetPicker(ModalScreen["str | None"]):
    """Bundled presets: type to filter (names, file names and descriptions), up/down to choose, enter to open;
    or a file path. The description pane scrolls with pgup/pgdn (or tab to it and use the arrows)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("slash", "focus_path", "Type a path", show=False, priority=True),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("pagedown", "scroll_doc(1)", "Scroll the description down", show=False, priority=True),
        Binding("pageup", "scroll_doc(-1)", "Scroll the description up", show=False, priority=True),
    ]

    def __init__(self, presets: list[tuple[str, str, Any]]) -> None:
        """presets: (stem, path, Preset or PresetError)."""
        super().__init__()
        self.presets = presets
        self._by_stem = {stem: (stem, path, p) for stem, path, p in presets}
        self._shown: list[str] = []  # the stems listed now, in order

    def compose(self):  # noqa: ANN201
        with Vertical(classes="dialog", id="preset-dialog"):
            yield Shown(Text("Open a preset", style="bold"), classes="dialog-title", line=True)
            yield Input(placeholder="type to filter by name or description (e.g. conv, adam, lab003)",
                        id="preset-search", compact=True)
            with Horizontal(id="preset-body"):
                yield OptionList(id="preset-list")
                with VerticalScroll(id="preset-doc-scroll"):
                    yield Shown("", id="preset-doc", markup=False)
            yield Input(placeholder="…or a preset (.toml) or session (.tuinn) path, enter", id="preset-path",
                        compact=True)
            yield Shown(Text("type: filter   ↑↓ choose   enter: open   pgup/pgdn: scroll the description   "
                              "/: a file path   esc: cancel", style="dim"), classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self._fill("")
        if self.presets:
            self.query_one("#preset-search", Input).focus()
        else:
            self.query_one("#preset-path", Input).focus()

    @staticmethod
    def _haystack(stem: str, preset: Any) -> str:
        if isinstance(preset, Exception):
            return f"{stem} invalid".lower()
        return f"{stem} {preset.name} {preset.lab or ''} {preset.description}".lower()

    def _fill(self, query: str) -> None:
        terms = query.lower().split()
        lst = self.query_one("#preset-list", OptionList)
        lst.clear_options()
        self._shown = []
        options = []
        for stem, _path, preset in self.presets:
            hay = self._haystack(stem, preset)
            if any(t not in hay for t in terms):
                continue
            label = Text(stem, style="bold")  # names and descriptions come from files: Text, never markup
            if isinstance(preset, Exception):
                label.append("  ✗ invalid", style="red")
            elif preset.name:
                label.append("  " + preset.name, style="dim")
            options.append(Option(cell(label), id=stem))  # and printable (a row: one line)
            self._shown.append(stem)
        if options:
            lst.add_options(options)
            lst.highlighted = 0
        elif self.presets:
            lst.add_option(Option(Text("(no preset matches: change the filter, or / for a file path)", style="dim"),
                                  disabled=True))
        else:
            lst.add_option(Option(Text("(no bundled presets found)", style="dim"), disabled=True))
        self._doc()

    def _entry(self) -> tuple[str, str, Any] | None:
        lst = self.query_one("#preset-list", OptionList)
        if lst.highlighted is None or not self._shown or lst.highlighted >= len(self._shown):
            return None
        return self._by_stem.get(self._shown[lst.highlighted])

    def _doc(self) -> None:
        entry = self._entry()
        text = Text()
        if entry is not None:
            stem, path, preset = entry
            if isinstance(preset, Exception):
                text.append("This preset does not load:\n", style="bold red")
                text.append(str(preset))
            else:
                text.append(preset.name, style="bold")
                if preset.lab:
                    text.append(f"  (lab {preset.lab})", style="cyan")
                text.append(f"\n{stem}.toml", style="dim")
                text.append("\n\n" + (preset.description.strip() or "(no description)"))
        self.query_one("#preset-doc", Static).update(text)
        self.query_one("#preset-doc-scroll", VerticalScroll).scroll_home(animate=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "preset-search":
            event.stop()
            self._fill(event.value)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._doc()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._open()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "preset-search":
            self._open()
            return
        path = event.value.strip()
        if path:
            self.dismiss(path)

    def _open(self) -> None:
        entry = self._entry()
        if entry is None:
            self.app.bell()
            return
        self.dismiss(entry[1])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "focus_path":  # "/" types itself into the path field
            return self.focused is not self.query_one("#preset-path", Input)
        if action == "move":  # up/down in the search field move the highlight (the list handles its own keys)
            return self.focused is self.query_one("#preset-search", Input)
        return True

    def action_move(self, delta: int) -> None:
        lst = self.query_one("#preset-list", OptionList)
        if not self._shown:
            return
        cur = lst.highlighted or 0
        lst.highlighted = max(0, min(len(self._shown) - 1, cur + delta))
        self._doc()

    def action_scroll_doc(self, direction: int) -> None:
        doc = self.query_one("#preset-doc-scroll", VerticalScroll)
        if direction > 0:
            doc.scroll_page_down(animate=False)
        else:
            doc.scroll_page_up(animate=False)

    def action_focus_path(self) -> None:
        self.query_one("#preset-path", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
