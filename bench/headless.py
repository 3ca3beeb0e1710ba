"""Goal 2: headless `tui-nn run` (the Trainer, as cmd_run calls it) over a hand-written loop, same process."""

from __future__ import annotations

from .measure import alternating_ratio, line
from .models import HandLoop, load


def measure(name: str, quick: bool = False, device: str = "cpu", label: str | None = None) -> str:
    from tui_nn.engine.session import Session
    from tui_nn.engine.trainer import Trainer

    session = Session(load(name), device=device)
    trainer = Trainer(session)

    def ours(n: int) -> None:
        trainer.run(n, report=lambda r: None)  # what `tui-nn run` does, minus printing

    hand = HandLoop(name, device=device)
    # a CNN step on one CPU thread takes 5-25 ms: 0.5 s slices hold only 20-90 steps and 6 of them are noise on a
    # shared machine, so the CPU CNN gets 12 slices of 1.5 s (the other lines and --quick are as before)
    long = not quick and name == "cnn" and device == "cpu"
    slices, seconds = (2, 0.2) if quick else (12, 1.5) if long else (6, 0.5)
    med, lo, hi = alternating_ratio(ours, hand.run, slices=slices, seconds=seconds)
    return line(label or f"headless_run_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f})", ">= 0.98", med >= 0.98)
