"""The status line: state, step, loss, speed, ETA, device, and a progress bar during a run of N steps.

The bar is drawn in the same line (block characters), so the line stays one row high at 80 columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..safe import Shown, Text, line

if TYPE_CHECKING:
    from tui_nn.engine import Progress, Session

    from ..run_state import RunState


class LossNow:
    """The loss the status line shows: the last reported while training, else the history's last, else the
    untrained model's (computed once per version of the model, weights and data)."""

    def __init__(self) -> None:
        self._initial: tuple[int, float | None] | None = None

    def value(self, s: Session | None, progress: Progress | None, running: bool, version: int) -> float | None:
        if s is None:
            return None
        if running and progress is not None:
            return float(progress.loss)
        if len(s.history):
            return float(s.history.last)
        if running:
            return None
        if self._initial is None or self._initial[0] != version:
            try:
                value = s.loss_value()
            except Exception:  # noqa: BLE001 - e.g. targets that do not fit the loss: no loss to show
                value = None
            self._initial = (version, value)
        return self._initial[1]


def accuracy_now(session: Session | None, progress: Progress | None) -> float | None:
    """The accuracy to show: of the last reported batch while training (`progress`), else the last recorded."""
    if progress is not None and getattr(progress, "accuracy", None) is not None:
        return float(progress.accuracy)
    if session is None:
        return None
    try:
        return session.metrics.accuracy.last
    except Exception:  # noqa: BLE001
        return None


def eval_accuracy(session: Session | None) -> float | None:
    if session is None:
        return None
    try:
        ev = session.metrics.last_eval
    except Exception:  # noqa: BLE001
        return None
    return None if ev is None or ev.accuracy is None else float(ev.accuracy)


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

BAR_MIN = 10  # the progress bar never gets narrower than this while a run of N steps is shown
BAR_MAX = 30
BAR_TRACK = "grey30"  # the bar's background: an empty bar is still visible
# Fields dropped first when the line does not fit (the note/name at the end is shortened before any of these):
DROP_ORDER = ("fraction", "test", "speed", "accuracy", "eta")


class StatusBar(Shown):
    """One line; `show` redraws it.

    What does not fit the width goes in a fixed order: the note (or the preset's name) at the end is shortened,
    then dropped; then the run fraction, the test accuracy, the speed, the accuracy and the ETA. The state, step,
    loss, device and (during a run of N steps) a progress bar of at least BAR_MIN cells always stay.
    """

    def __init__(self, **kw: object) -> None:
        super().__init__("", line=True, **kw)  # type: ignore[arg-type]
        self.progress: tuple[int, int] | None = None  # (done, total) while a run of N steps is under way
        self.text = Text()
        self._last: dict[str, object] | None = None

    def show_session(self, s: Session | None, rs: RunState, progress: Progress | None, *, clock: bool,
                     note: str, autosave_note: str, loss: float | None) -> None:
        """The line for the session and the run (`progress`: the last report of the run under way)."""
        state = rs.phase
        if s is None:
            self.show(state=state, step=0, loss=None, device="…", note=note)
            return
        if state == "busy":
            note = note or f"{rs.busy_label}…"
        sps = eta = None
        done, total = rs.progress(progress.run_steps if progress is not None else None) or (None, None)
        if progress is not None and total is not None and clock:
            sps = progress.steps_per_s
            eta = (total - done) / progress.steps_per_s if progress.steps_per_s > 0 else None
        if not note and state == "ready" and autosave_note:
            note = autosave_note
        if not note and s.report.error is not None and state == "ready":
            note = "shape error: f fixes it" if s.report.error.fix is not None else "shape error (Layers tab)"
        self.show(state=state, step=s.step, loss=loss, device=str(s.device), name=s.preset.name, steps_per_s=sps,
                  eta=eta, done=done, total=total, note=note, accuracy=accuracy_now(s, progress),
                  test_accuracy=eval_accuracy(s))

    def show(self, *, state: str, step: int, loss: float | None, device: str, name: str = "",
             steps_per_s: float | None = None, eta: float | None = None, done: int | None = None,
             total: int | None = None, note: str = "", accuracy: float | None = None,
             test_accuracy: float | None = None) -> None:
        device, name, note = line(device), line(name), line(note)  # from files and errors: printable, one line
        self._last = dict(state=state, step=step, loss=loss, device=device, name=name, steps_per_s=steps_per_s,
                          eta=eta, done=done, total=total, note=note, accuracy=accuracy,
                          test_accuracy=test_accuracy)
        width = self.size.width or 80
        self.progress = (done or 0, total) if (total and state in ("running", "paused")) else None
        # (key, text) in display order; `None` texts are absent
        fields: list[tuple[str, Text]] = []

        def add(key: str, *chunks: tuple[str, str]) -> None:
            t = Text()
            for chunk, style in chunks:
                t.append(chunk, style=style)
            fields.append((key, t))

        add("state", (f" {state} ", STATE_STYLE.get(state, "bold reverse")), (" step ", "dim"), (f"{step}", ""))
        if total:
            add("fraction", (f" ({done}/{total})", "dim"))
        add("loss", ("  loss ", "dim"), (fmt_loss(loss), "bold"))
        if accuracy is not None:
            add("accuracy", ("  acc ", "dim"), (f"{accuracy:.1%}", "bold"))
        if test_accuracy is not None:
            add("test", (f" test {test_accuracy:.1%}", "dim"))
        if steps_per_s is not None:
            add("speed", (f"  {steps_per_s:,.0f}/s", "dim"))
        if eta is not None:
            add("eta", (f"  ETA {fmt_eta(eta)}", "dim"))
        add("device", ("  " + device, "cyan"))
        bar_room = 2 + BAR_MIN + 5 if self.progress is not None else 0  # "  " + bar + " 100%"
        used = sum(t.cell_len for _, t in fields) + bar_room
        for key in DROP_ORDER:
            if used <= width:
                break
            for i, (k, t) in enumerate(fields):
                if k == key:
                    used -= t.cell_len
                    del fields[i]
                    break
        text = Text(no_wrap=True, overflow="ellipsis")
        for _, t in fields:
            text.append_text(t)
        tail = note or (name if self.progress is None else "")
        tail_style = "yellow" if note else "dim italic"
        left = width - used
        if self.progress is not None:
            d, t = self.progress
            # a note takes what the minimum bar leaves; without one the bar grows up to BAR_MAX
            if tail and left < 12:
                tail = ""  # no room for it: the bar takes the room
            want_tail = 2 + Text(tail).cell_len if tail else 0
            bar_w = BAR_MIN + max(0, min(BAR_MAX - BAR_MIN, left - want_tail))
            text.append("  ")
            colour = "green" if state == "running" else "yellow"
            text.append(text_bar(d / t, bar_w), style=f"{colour} on {BAR_TRACK}")  # the track shows at 0 % too
            text.append(f" {100 * d // t:>3}%", style="dim")
            left = width - text.cell_len
        if tail and left >= 12:  # a stub of a note ("  a lo…") says nothing: drop it
            piece = Text("  " + tail, style=tail_style)
            piece.truncate(left, overflow="ellipsis")
            text.append_text(piece)
        self.text = text
        self.update(text, layout=False)  # one row of fixed size: a repaint, not a relayout of the screen (15 Hz)

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(**self._last)  # type: ignore[arg-type]
