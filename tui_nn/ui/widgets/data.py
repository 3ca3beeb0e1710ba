"""The Data tab (inputs and targets, inline or generated) and the Info tab (the exercise's text)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from tui_nn import engine

from ..safe import Shown, Text, line
from .tensor_entries import TensorEntry
from .tensor_view import TensorView

if TYPE_CHECKING:
    from tui_nn.engine import DeviceInfo, Session


def source_text(value: Any, data: Any = None) -> str:
    dataset = getattr(data, "dataset", None)
    csv = getattr(data, "csv", None)
    if dataset is not None:
        return f"data set {dataset.name} ({dataset.samples} samples)"
    if csv is not None:
        return f"CSV file {csv.path}"
    if value is None:
        return "random, from the seed"
    if isinstance(value, engine.GeneratorSpec):
        extra = f" low={value.low} high={value.high}" if value.kind == "randint" else ""
        return f"generator {value.kind} {list(value.shape)}{extra}"
    return "inline values"


EDIT_HINTS = ("e edit cell", "v edit all", "G generator", "D data set/CSV")


def wrap_groups(groups: tuple[str, ...] | list[str], width: int, sep: str = "  ") -> list[str]:
    """Key hints joined by `sep`, wrapped to `width` between groups (a group is never split)."""
    lines: list[str] = []
    cur = ""
    for g in groups:
        cand = g if not cur else cur + sep + g
        if cur and len(cand) > width:
            lines.append(cur)
            cur = g
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return lines


class DataPane(Horizontal):

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._heads: dict[str, tuple[Text, bool]] = {}  # key -> (title line, editable)

    def compose(self):  # noqa: ANN201
        with Vertical(id="data-inputs-box"):
            yield Shown("", id="data-inputs-head", classes="data-head", markup=False)
            yield TensorView(id="data-inputs-view")
        with Vertical(id="data-targets-box"):
            yield Shown("", id="data-targets-head", classes="data-head", markup=False)
            yield TensorView(id="data-targets-view")

    def update_from(self, session: Session, editable: bool) -> None:
        data = session.preset.data
        for key, tensor, src in (("inputs", session.inputs, data.inputs), ("targets", session.targets, data.targets)):
            title = Text()
            title.append(key, style="bold")
            if tensor is not None:
                title.append(" [" + ", ".join(str(s) for s in tensor.shape) + "]", style="bold")
            title.append(f"  {line(source_text(src, data))}", style="dim")  # a CSV file's name: printable
            self._heads[key] = (title, editable)
            note = ""
            if tensor is None:
                de = getattr(session, "data_error", None)
                note = f"no targets: {de.message}" if de is not None else "no targets"
            entry = TensorEntry(key=f"data:{key}", label=key, tensor=tensor, kind="data", editable=editable,
                                note=note)
            self.query_one(f"#data-{key}-view", TensorView).show(entry)
        self._draw_heads()

    def _draw_heads(self) -> None:
        """The title (wraps by words) and the key hints, wrapped between hints to the column's width."""
        texts: dict[str, tuple[Text, int]] = {}
        for key, (title, editable) in self._heads.items():
            head = self.query_one(f"#data-{key}-head", Static)
            width = head.content_size.width or max(20, (self.size.width or self.app.size.width) // 2 - 2)
            text = title.copy()
            hints = wrap_groups(EDIT_HINTS, width) if editable else ["(read-only while training)"]
            text.append("\n" + "\n".join(hints), style="dim")
            texts[key] = (text, len(text.wrap(self.app.console, width)))
        rows = max((n for _, n in texts.values()), default=1)
        for key, (text, n) in texts.items():  # both heads as high: the two tables start on the same row
            text.append("\n" * (rows - n))
            self.query_one(f"#data-{key}-head", Static).update(text)

    def on_resize(self) -> None:
        if self._heads:
            self.call_after_refresh(self._draw_heads)  # the heads' new widths are known after the layout


class InfoPane(VerticalScroll):
    """The preset's name, source and description (the exercise's instructions), and the model summary."""


    def compose(self):  # noqa: ANN201
        yield Shown("loading…", id="info-text", markup=False)

    def update_from(self, session: Session, devices: list[DeviceInfo]) -> None:
        p = session.preset
        text = Text()
        text.append(p.name or "(unnamed)", style="bold")
        if p.lab:
            text.append(f"   lab {p.lab}", style="cyan")
        text.append(f"\n{p.source}\n\n", style="dim")
        text.append(p.description.strip() or "(no description)")
        text.append("\n\nModel\n", style="bold")
        text.append(engine.summary_table(session.report))
        if devices:
            text.append("\n\nDevices\n", style="bold")
            text.append("\n".join(f"{d.name}: {d.label}" for d in devices))
        self.query_one("#info-text", Static).update(text)


class Instructions(VerticalScroll):
    """The description beside the layers on wide terminals."""


    def compose(self):  # noqa: ANN201
        yield Shown("", id="instructions-text", markup=False)

    def update_from(self, session: Session) -> None:
        p = session.preset
        self.border_title = Text(line(p.name))  # a Text, so the name is never read as markup; printable
        self.query_one("#instructions-text", Static).update(Text(p.description.strip() or "(no description)"))
