"""Goal 2: headless `tui-nn run` (the Trainer, as cmd_run calls it) over a hand-written loop, same process."""

from __future__ import annotations

from .measure import alternating_ratio, line
from .models import HandLoop, load


def measure(name: str, quick: bool = False, device: str = "cpu", label: str | None = None) -> str:
    from tui_nn.engine.session import Session
    from tui_nn.engine.trainer import Trainer, freeze_startup_objects

    session = Session(load(name), device=device)
    trainer = Trainer(session)

    def ours(n: int) -> None:
        trainer.run(n, report=lambda r: None)  # what `tui-nn run` does, minus printing

    hand = HandLoop(name, device=device)
    freeze_startup_objects()  # as `tui-nn run` does before training (the hand-written loop, in this process, gains too)
    slices, seconds = (2, 0.2) if quick else SLICES
    med, lo, hi = alternating_ratio(ours, hand.run, slices=slices, seconds=seconds)
    return line(label or f"headless_run_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f})", ">= 0.98", med >= 0.98)


# 40 slices of 0.5 s. One slice's ratio ranges 0.8-1.2 on this shared machine; the median of 12 slices of 1.5 s
# (run G) put two identical hand-written loops 0.93-1.05x apart, the median of 40 of 0.5 s 0.99-1.02x
# (docs/performance.md, run H). A run's fixed cost (a snapshot, the last report: 1.5-5 ms) is 0.3-1 % of a slice.
SLICES = (40, 0.5)


def measure_null(name: str, quick: bool = False) -> str:
    """The method's own noise: two identical hand-written loops compared the same way (ideally 1.000x)."""
    from tui_nn.engine.trainer import freeze_startup_objects

    a, b = HandLoop(name), HandLoop(name)
    freeze_startup_objects()  # the same conditions as `measure`
    slices, seconds = (2, 0.2) if quick else SLICES
    med, lo, hi = alternating_ratio(a.run, b.run, slices=slices, seconds=seconds)
    return line(f"headless_null_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f}; hand-written over hand-written: "
                "the noise of these ratios)", "informational", None)
