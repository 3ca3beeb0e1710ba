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
    # 12 slices of 1.5 s: with 6 of 0.5 s (runs A-F) a CNN slice held 20-90 steps and an MLP slice ~160, and the
    # medians moved by 2-6 % between runs of the same code on this shared machine (docs/performance.md, run G)
    slices, seconds = (2, 0.2) if quick else (12, 1.5)
    med, lo, hi = alternating_ratio(ours, hand.run, slices=slices, seconds=seconds)
    return line(label or f"headless_run_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f})", ">= 0.98", med >= 0.98)
