"""Goal 2: headless `tui-nn run` (the Trainer, as cmd_run calls it) over a hand-written loop, same process."""

from __future__ import annotations

import time

from .measure import alternating_ratio, line
from .models import HandLoop, load


def measure(name: str, quick: bool = False, device: str = "cpu", label: str | None = None,
            goal: float = 0.98) -> str:
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import Trainer, freeze_startup_objects

    session = Session(load(name), device=device)
    trainer = Trainer(session)

    def ours(n: int) -> None:
        trainer.run(n, report=lambda r: None)  # what `tui-nn run` does, minus printing

    hand = HandLoop(name, device=device)
    freeze_startup_objects()  # as `tui-nn run` does before training (the hand-written loop, in this process, gains too)
    slices, seconds = (2, 0.2) if quick else SLICES
    med, lo, hi = alternating_ratio(ours, hand.run, slices=slices, seconds=seconds)
    return line(label or f"headless_run_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f})", f">= {goal}",
                med >= goal)


# 40 slices of 0.5 s. One slice's ratio ranges 0.8-1.2 on this shared machine; the median of 12 slices of 1.5 s
# (run G) put two identical hand-written loops 0.93-1.05x apart, the median of 40 of 0.5 s 0.99-1.02x
# (docs/performance.md, run H). A run's fixed cost (a snapshot, the last report: 1.5-5 ms) is 0.3-1 % of a slice.
SLICES = (40, 0.5)


def measure_null(name: str, quick: bool = False) -> str:
    """The method's own noise: two identical hand-written loops compared the same way (ideally 1.000x)."""
    from tui_nn.engine.training.trainer import freeze_startup_objects

    a, b = HandLoop(name), HandLoop(name)
    freeze_startup_objects()  # the same conditions as `measure`
    slices, seconds = (2, 0.2) if quick else SLICES
    med, lo, hi = alternating_ratio(a.run, b.run, slices=slices, seconds=seconds)
    return line(f"headless_null_{name}", f"{med:.3f}x (min {lo:.3f}, max {hi:.3f}; hand-written over hand-written: "
                "the noise of these ratios)", "informational", None)


def host_syncs(name: str, device: str, seconds: float = 2.0) -> str:
    """Goal 8's "no host sync per step": the trainer on `device` for about `seconds`, with torch's CUDA sync
    debug mode warning at every synchronising call; the syncs counted against the steps and the reports (each
    report moves the buffered losses to the host: one sync a report is the design)."""
    import warnings

    import torch

    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import Progress, Trainer

    session = Session(load(name), device=device)
    trainer = Trainer(session)
    trainer.run(5, report=lambda r: None)  # first-step set-up (cuDNN, the optimizer's state) not counted
    reports: list[object] = []
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fin = trainer.run(None, report=reports.append, should_stop=lambda: time.perf_counter() - t0 >= seconds)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum(1 for w in caught if "synchroniz" in str(w.message).lower())
    n_reports = sum(1 for r in reports if isinstance(r, Progress))
    ok = fin.run_steps > 0 and syncs <= 3 * n_reports + 10 and syncs < fin.run_steps / 10
    return line(f"gpu_host_syncs_{name}", f"{syncs} syncs in {fin.run_steps} steps ({n_reports} reports)",
                "no host sync per step", ok)
