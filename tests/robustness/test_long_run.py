"""Long runs: 10^6 steps of history keep memory growth under 50 MB.

CI: 10^6 steps recorded the way the trainer records them (history buckets, accuracy series, in chunks of
the trainer's buffer), plus a real training run of $TUI_NN_LONG_STEPS steps (CI: 50,000; the long command: 10^6).
Memory is the process's resident set (VmRSS), measured after a warm-up run.
"""

from __future__ import annotations

import gc
import os

import numpy as np

from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import BUFFER, Trainer

from . import counts

LIMIT_MB = 50.0
REAL_STEPS = int(os.environ.get("TUI_NN_LONG_STEPS", "50000"))
PRESET = """
[model]
input_shape = [4, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 2
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "SGD", lr = 0.001 }
"""


def rss_mb() -> float:
    gc.collect()
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_million_steps_of_history_stay_bounded() -> None:
    s = Session(loads_preset(PRESET), budget=2**28)
    Trainer(s).run(100)
    before = rss_mb()
    rng = np.random.default_rng(0)
    step = s.step
    while step < 10**6:
        n = min(BUFFER, 10**6 - step)
        s.history.extend(rng.random(n))
        step += n
        s.metrics.accuracy.add(step, 0.5)
    s.step = step
    grew = rss_mb() - before
    assert s.history.steps == 10**6
    counts.peak("long runs", "10^6 recorded steps: memory growth (MB)", round(grew, 2))
    print(f"10^6 recorded steps: +{grew:.2f} MB, {s.history.n} buckets")
    assert grew < LIMIT_MB
    assert s.history.n <= s.history.capacity


def test_a_long_real_run_keeps_memory_flat() -> None:
    s = Session(loads_preset(PRESET), budget=2**28)
    Trainer(s).run(2000)  # warm-up: allocator pools, the trainer's buffer
    before = rss_mb()
    fin = Trainer(s).run(REAL_STEPS)
    grew = rss_mb() - before
    assert fin.reason == "done" and s.history.steps == REAL_STEPS + 2000
    counts.peak("long runs", f"real run of {REAL_STEPS} steps: memory growth (MB)", round(grew, 2))
    print(f"{REAL_STEPS} real steps: +{grew:.2f} MB ({fin.steps_per_s:,.0f} steps/s)")
    assert grew < LIMIT_MB
