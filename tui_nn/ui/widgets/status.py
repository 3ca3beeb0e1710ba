"""The status line: state, step, loss, speed, ETA, device, and a progress bar during a run of N steps.

The bar is drawn in the same line (block characters), so the line stays one row high at 80 columns.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def fmt_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_loss(v: float | None) -> str:
    if v is None or v != v:
        return "—"
    return f"{v:.5g}"


def text_bar(fraction: float, width: int) -> str:
    """A progress bar of `width` cells with eighth-cell resolution."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    bar = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part and full < width else "")
    return bar.ljust(width)


STATE_STYLE = {"running": "bold black on green", "paused": "bold black on yellow", "ready": "bold reverse",
               "loading": "bold reverse", "busy": "bold black on cyan", "error": "bold white on red"}


class StatusBar(Static):
    """One line; `show` redraws it."""

    def __init__(self, **kw: object) -> None:
        super().__init__("", markup=False, **kw)  # type: ignore[arg-type]
        self.progress: tuple[int, int] | None = None  # (done, total) while a run of N steps is under way
        self.text = Text()

    def show(self, *, state: str, step: int, loss: float | None, device: str, name: str = "",
             steps_per_s: float | None = None, eta: float | None = None, done: int | None = None,
             total: int | None = None, note: str = "", accuracy: float | None = None,
             test_accuracy: float | None = None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {state} ", style=STATE_STYLE.get(state, "bold reverse"))
        text.append(" step ", style="dim")
        text.append(f"{step}")
        if total:
            text.append(f" ({done}/{total})", style="dim")
        text.append("  loss ", style="dim")
        text.append(fmt_loss(loss), style="bold")
        if accuracy is not None:
            text.append("  acc ", style="dim")
            text.append(f"{accuracy:.1%}", style="bold")
        if test_accuracy is not None:
            text.append(f" test {test_accuracy:.1%}", style="dim")
        if steps_per_s is not None:
            text.append(f"  {steps_per_s:,.0f}/s", style="dim")
        if eta is not None:
            text.append(f"  ETA {fmt_eta(eta)}", style="dim")
        text.append("  " + device, style="cyan")
        self.progress = (done or 0, total) if (total and state in ("running", "paused")) else None
        if self.progress is not None:
            width = self.size.width or 80
            room = width - text.cell_len - 8
            if room >= 6:
                d, t = self.progress
                bar_w = min(room, 30)
                text.append("  ")
                text.append(text_bar(d / t, bar_w), style="green" if state == "running" else "yellow")
                text.append(f" {100 * d // t:>3}%", style="dim")
        if note:
            text.append("  " + note, style="yellow")
        elif name and self.progress is None:
            text.append("  " + name, style="dim italic")
        self.text = text
        self.update(text, layout=False)  # one row of fixed size: a repaint, not a relayout of the screen (15 Hz)
