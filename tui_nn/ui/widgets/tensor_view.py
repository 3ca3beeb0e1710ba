"""The tensor viewer: one widget that draws only the visible window of a tensor as a heatmap.

No widget per cell: `TensorView.render_line` builds one `Strip` per visible row from a 2-D slice of the
tensor (the last two dimensions; `[` and `]` step through the leading ones). Colours: blue for negative,
red for positive, stronger for larger magnitudes (scaled by the tensor's largest magnitude).
"""

from __future__ import annotations

import math
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from .. import keys
from ..safe import line
from .tensor_entries import TensorEntry

CELL = 9  # 8 characters + 1 space
LEVELS = 16
BASE = (38, 38, 46)
POS = (196, 58, 48)
NEG = (45, 100, 205)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> Color:
    return Color.from_rgb(*(round(x + (y - x) * t) for x, y in zip(a, b, strict=True)))


_POS_STYLES = [Style(color="white", bgcolor=_mix(BASE, POS, i / LEVELS)) for i in range(LEVELS + 1)]
_NEG_STYLES = [Style(color="white", bgcolor=_mix(BASE, NEG, i / LEVELS)) for i in range(LEVELS + 1)]
_NAN_STYLE = Style(color="black", bgcolor="magenta")
_CURSOR = Style(color="black", bgcolor="bright_yellow", bold=True)
_HEADER = Style(color="grey62")
_EMPTY = Style()


def torch_float32() -> Any:
    import torch

    return torch.float32


def fmt_value(v: float, decimals: int | None) -> str:
    """Eight characters at most."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    if decimals is None:
        return f"{v:.1e}"
    if decimals < 0:
        return str(int(v))
    return f"{v:.{decimals}f}"


def pick_decimals(maxabs: float, integer: bool) -> int | None:
    if integer:
        return -1 if maxabs < 1e7 else None
    if maxabs == 0:
        return 4
    if maxabs < 1e-3 or maxabs >= 1e4:
        return None
    if maxabs < 10:
        return 4
    if maxabs < 100:
        return 3
    if maxabs < 1000:
        return 2
    return 1


def describe_stats(t: Any) -> str:
    """shape, dtype, device and min/max/mean/std of a tensor."""
    import torch

    shape = "[" + ", ".join(str(s) for s in t.shape) + "]"
    dtype = str(t.dtype).replace("torch.", "")
    head = f"{shape} {dtype} {t.device}"
    if t.numel() == 0:
        return head + "  (empty)"
    f = t.detach().float()
    lo, hi = f.aminmax()  # NaN propagates: two finite ends mean every value is finite (one pass, no mask)
    n_bad = 0
    if not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        finite = torch.isfinite(f)
        n_bad = int((~finite).sum())
        f = f[finite]
    if f.numel() == 0:
        return head + f"  all {n_bad} values NaN/Inf"
    mn, mx = (float(f.min()), float(f.max())) if n_bad else (float(lo), float(hi))
    mean = float(f.mean())
    std = float(f.std()) if f.numel() > 1 else 0.0
    text = f"{head}  min {mn:.4g} max {mx:.4g} mean {mean:.4g} std {std:.4g}"
    if n_bad:
        text += f"  ({n_bad} NaN/Inf)"
    return text


class TensorView(Widget, can_focus=True):
    """Heatmap of a tensor: draws only the visible cells."""


    BINDINGS = keys.bindings("tensor")  # ui/keys.py

    class Request(Message):
        """The user asked to change the tensor shown (the app decides)."""

        def __init__(self, view: "TensorView", what: str, index: tuple[int, ...] | None = None) -> None:
            super().__init__()
            self.view = view
            self.what = what  # "cell", "all", "init", "freeze", "generator"
            self.index = index

    class CursorMoved(Message):
        def __init__(self, view: "TensorView") -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.entry: TensorEntry | None = None
        self._arr: Any = None  # numpy 2-D view of the current slice
        self._lead: tuple[int, ...] = ()  # leading dimensions (sliced)
        self._slice = 0
        self._nslices = 1
        self.cursor = (0, 0)
        self._top = 0
        self._left = 0
        self._scale = 1.0
        self._decimals: int | None = 4
        self._message = "nothing selected"
        self.stats = ""

    # -- data ------------------------------------------------------------------------------------

    def show(self, entry: TensorEntry | None) -> None:
        same = (entry is not None and self.entry is not None and entry.key == self.entry.key
                and entry.tensor is not None and self.entry.tensor is not None
                and tuple(entry.tensor.shape) == tuple(self.entry.tensor.shape))
        self.entry = entry
        if not same:
            self.cursor = (0, 0)
            self._top = self._left = 0
            self._slice = 0
        if entry is None or entry.tensor is None:
            self._arr = None
            self._message = line(entry.note) if entry is not None and entry.note else "nothing to show"  # drawn raw
            self.stats = ""
            self.refresh()
            return
        t = entry.tensor.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        self.stats = describe_stats(t)
        if t.numel() == 0:
            self._arr = None
            self._message = f"(empty tensor of shape {list(t.shape)})"
            self.refresh()
            return
        dims = t.dim()
        if dims == 0:
            t3 = t.reshape(1, 1, 1)
        elif dims == 1:
            t3 = t.reshape(1, 1, -1)
        else:
            t3 = t.reshape(-1, t.shape[-2], t.shape[-1])
        self._lead = tuple(t.shape[:-2]) if dims > 2 else ()
        self._full = t3
        self._nslices = t3.shape[0]
        self._slice = min(self._slice, self._nslices - 1)
        finite = t.float()
        lo, hi = (float(v) for v in finite.aminmax()) if finite.numel() else (0.0, 0.0)
        if math.isfinite(lo) and math.isfinite(hi):  # all finite (NaN propagates): no masked copy
            self._scale = max(abs(lo), abs(hi))
        else:
            finite = finite[finite.isfinite()]
            self._scale = float(finite.abs().max()) if finite.numel() else 0.0
        self._decimals = pick_decimals(self._scale, not t.is_floating_point())
        self._load_slice()

    def _load_slice(self) -> None:
        sl = self._full[self._slice]
        self._arr = sl.numpy() if sl.dtype.is_floating_point else sl.double().numpy()
        rows, cols = self._arr.shape
        r, c = self.cursor
        self.cursor = (min(r, max(rows - 1, 0)), min(c, max(cols - 1, 0)))
        self._clamp()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    @property
    def shape2d(self) -> tuple[int, int]:
        return (0, 0) if self._arr is None else tuple(self._arr.shape)  # type: ignore[return-value]

    def cursor_index(self) -> tuple[int, ...] | None:
        """The index of the cursor cell in the full tensor."""
        if self.entry is None or self.entry.tensor is None or self._arr is None:
            return None
        t = self.entry.tensor
        r, c = self.cursor
        if t.dim() == 0:
            return ()
        if t.dim() == 1:
            return (c,)
        lead: list[int] = []
        k = self._slice
        for d in reversed(self._lead):
            lead.append(k % d)
            k //= d
        return tuple(reversed(lead)) + (r, c)

    def cursor_value(self) -> float | None:
        if self._arr is None or self._arr.size == 0:
            return None
        r, c = self.cursor
        return float(self._arr[r, c])

    def slice_text(self) -> str:
        if not self._lead:
            return ""
        idx = self.cursor_index() or ()
        lead = ", ".join(str(i) for i in idx[:-2])
        return f"slice [{lead}, :, :] {self._slice + 1}/{self._nslices}   [ ] previous/next slice"

    # -- geometry --------------------------------------------------------------------------------

    def _row_header(self) -> int:
        rows = self.shape2d[0]
        return max(len(str(max(rows - 1, 0))) + 1, 3)

    def _visible(self) -> tuple[int, int]:
        width, height = self.size.width, self.size.height
        cols = max(1, (width - self._row_header()) // CELL)
        rows = max(1, height - 1)
        return rows, cols

    def _clamp(self) -> None:
        rows, cols = self._visible()
        r, c = self.cursor
        if r < self._top:
            self._top = r
        elif r >= self._top + rows:
            self._top = r - rows + 1
        if c < self._left:
            self._left = c
        elif c >= self._left + cols:
            self._left = c - cols + 1
        self._top = max(0, self._top)
        self._left = max(0, self._left)

    def on_resize(self) -> None:
        self._clamp()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return container.height

    # -- drawing ---------------------------------------------------------------------------------

    def _style(self, v: float) -> Style:
        if v != v or math.isinf(v):
            return _NAN_STYLE
        if self._scale <= 0:
            return _POS_STYLES[0]
        level = min(LEVELS, int(round(abs(v) / self._scale * LEVELS)))
        return _POS_STYLES[level] if v >= 0 else _NEG_STYLES[level]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._arr is None:
            if y == 0:
                return Strip([Segment(self._message[:width], _HEADER)]).extend_cell_length(width)
            return Strip.blank(width)
        rows, cols = self._arr.shape
        rh = self._row_header()
        vis_rows, vis_cols = self._visible()
        c0 = self._left
        c1 = min(cols, c0 + vis_cols)
        if y == 0:
            segs = [Segment(" " * rh, _HEADER)]
            for c in range(c0, c1):
                segs.append(Segment(f"{c:>{CELL - 1}} ", _HEADER))
            if c1 < cols:
                segs.append(Segment(" →", _HEADER))
            return Strip(segs).crop_extend(0, width, None)
        r = self._top + y - 1
        if r >= rows:
            if r == rows and rows == 0:
                return Strip([Segment("(empty)", _HEADER)]).crop_extend(0, width, None)
            return Strip.blank(width)
        more = "↓" if (y == vis_rows and r < rows - 1) else " "
        segs = [Segment(f"{r:>{rh - 1}}{more}", _HEADER)]
        row = self._arr[r]
        cr, cc = self.cursor
        for c in range(c0, c1):
            v = float(row[c])
            text = fmt_value(v, self._decimals)[:CELL - 1].rjust(CELL - 1)
            style = _CURSOR if (r == cr and c == cc and self.has_focus) else self._style(v)
            segs.append(Segment(text, style))
            segs.append(Segment(" ", _EMPTY))
        return Strip(segs).crop_extend(0, width, None)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- actions ---------------------------------------------------------------------------------

    def _set_cursor(self, r: int, c: int) -> None:
        rows, cols = self.shape2d
        if rows == 0 or cols == 0:
            return
        self.cursor = (max(0, min(rows - 1, r)), max(0, min(cols - 1, c)))
        self._clamp()
        self.refresh()
        self.post_message(self.CursorMoved(self))

    def action_move(self, dr: int, dc: int) -> None:
        r, c = self.cursor
        self._set_cursor(r + dr, c + dc)

    def action_page(self, direction: int) -> None:
        rows, _ = self._visible()
        r, c = self.cursor
        self._set_cursor(r + direction * rows, c)

    def action_home(self) -> None:
        self._set_cursor(0, 0)

    def action_end(self) -> None:
        rows, cols = self.shape2d
        self._set_cursor(rows - 1, cols - 1)

    def action_slice(self, delta: int) -> None:
        if self._nslices <= 1:
            return
        self._slice = (self._slice + delta) % self._nslices
        self._load_slice()

    def on_mouse_scroll_down(self) -> None:
        self.action_move(3, 0)

    def on_mouse_scroll_up(self) -> None:
        self.action_move(-3, 0)

    def action_edit_cell(self) -> None:
        self.post_message(self.Request(self, "cell", self.cursor_index()))

    def action_edit_all(self) -> None:
        self.post_message(self.Request(self, "all"))

    def action_init(self) -> None:
        self.post_message(self.Request(self, "init"))

    def action_freeze(self) -> None:
        self.post_message(self.Request(self, "freeze"))

    def action_generator(self) -> None:
        self.post_message(self.Request(self, "generator"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        e = self.entry
        if action in ("edit_cell", "edit_all"):
            return e is not None and e.editable
        if action in ("init", "freeze"):
            return e is not None and e.kind == "param"
        if action == "generator":
            return e is not None and e.kind == "data"
        if action == "slice":
            return self._nslices > 1
        return True
