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
    med, lo, hi = alternating_ratio(ours, hand.run, slices=2 if quick else 6, seconds=0.2 if quick else 0.5)
    return line(label or f"headless_run_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f})", ">= 0.98", med >= 0.98)
