"""The Tensors tab: the list of tensors (widgets/tensor_entries.py) on the left, the heatmap of the one
chosen (widgets/tensor_view.py), its figures and the cursor's cell on the right."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from textual.containers import Horizontal, Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..safe import Shown, Text, cell
from .tensor_entries import TensorEntry, forward_trace, tensor_entries
from .tensor_view import TensorView, torch_float32

if TYPE_CHECKING:
    from torch import Tensor

    from tui_nn.engine import Session

    from ..run_state import RunState


class TensorList(OptionList):
    """The tensors one can look at: input, parameters, each layer's output, output, gradients."""



class TensorsPane(Horizontal):
    """List on the left; info, heatmap and the cursor cell on the right."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.entries: dict[str, TensorEntry] = {}
        self.current: str | None = None
        # a tensor the user chose that is absent for now (a run hides the forward trace and the optimizer
        # state): shown again as soon as it is back; `_fallback` is what stands in for it meanwhile
        self._wanted: str | None = None
        self._fallback: str | None = None
        self._trace: list[tuple[str, Tensor]] | None = None  # the forward trace, kept until the next change

    def forget_trace(self) -> None:
        """The model, weights or data changed: the next refresh runs the forward pass again."""
        self._trace = None

    def show_session(self, session: Session | None, runstate: RunState) -> None:
        """The list for the session, when it shows an older version than the run state's (none while the
        session is loading or busy); a forward pass that fails is said in a notice."""
        if session is None or runstate.phase in ("busy", "loading") or not runstate.stale("tensors"):
            return
        if self._trace is None and not runstate.running:
            self._trace, failure = forward_trace(session)
            if failure:
                self.notify(f"forward pass failed: {failure}", severity="error", markup=False)
        self.set_entries(tensor_entries(session, self._trace, running=runstate.running))

    def compose(self):  # noqa: ANN201
        yield TensorList(id="tensor-list")
        with Vertical(id="tensor-right"):
            yield Shown("", id="tensor-info", markup=False)
            yield TensorView(id="tensor-view")
            yield Shown("", id="tensor-cell", markup=False)

    @property
    def view(self) -> TensorView:
        return self.query_one("#tensor-view", TensorView)

    def set_entries(self, entries: list[TensorEntry | str], select: str | None = None) -> None:
        """Entries, with plain strings as section headings."""
        lst = self.query_one(TensorList)
        if select:
            self._wanted = None
        keep = select or self._wanted or self.current
        self.entries = {e.key: e for e in entries if isinstance(e, TensorEntry)}
        options: list[Option | None] = []
        for e in entries:
            if isinstance(e, str):
                options.append(Option(cell(Text(e, style="bold")), disabled=True))
            else:
                label = Text(e.label)
                if e.note and e.tensor is not None:
                    label.append(f" {e.note}", style="dim")
                options.append(Option(cell(label), id=e.key))
        lst.clear_options()
        lst.add_options(options)
        if keep not in self.entries:
            self._wanted = keep
            # the first entry of the same kind ("(none yet)" gradients -> the first gradient), else the first one
            kind = keep.split(":", 1)[0] + ":" if keep and ":" in keep else None
            same = next((k for k in self.entries if kind and k.startswith(kind)), None)
            keep = self._fallback = same or next(iter(self.entries), None)
        elif keep == self._wanted:
            self._wanted = self._fallback = None
        if keep is not None:
            lst.highlighted = lst.get_option_index(keep)
        self.select(keep)

    def select(self, key: str | None) -> None:
        self.current = key
        entry = self.entries.get(key) if key is not None else None
        self.view.show(entry)
        info = Text()
        if entry is not None:
            head, _, stats = (self.view.stats or "").partition("  ")
            info.append(entry.label, style="bold")
            info.append(f"  {head}")
            if entry.note:
                info.append(f"  {entry.note}", style="italic")
            info.append("\n" + stats.strip(), style="dim")
        self.query_one("#tensor-info", Static).update(info)
        self._cell()

    def _cell(self) -> None:
        v = self.view
        idx = v.cursor_index()
        val = v.cursor_value()
        text = Text()
        if idx is not None and val is not None:
            shown = str(np.float32(val)) if v.entry is not None and v.entry.tensor is not None and \
                v.entry.tensor.dtype == torch_float32() else repr(val)
            text.append(f"[{', '.join(str(i) for i in idx)}] = {shown}", style="bold")
            if v.entry is not None and v.entry.editable:
                text.append("   e edit  v paste all", style="dim")
            if v.slice_text():  # its own line (#tensor-cell: height auto), so it never runs off the right edge
                text.append("\n" + v.slice_text(), style="dim")
        self.query_one("#tensor-cell", Static).update(text)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id == self._fallback:
            self._fallback = None  # the echo of set_entries' own highlight
        elif event.option.id is not None:
            self._wanted = None  # the user moved on
        if event.option.id is not None and event.option.id != self.current:
            self.select(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.select(event.option.id)
            self.view.focus()

    def on_tensor_view_cursor_moved(self, event: TensorView.CursorMoved) -> None:
        event.stop()
        self._cell()
