"""The performance benchmark (issue #6): one line per measure, `name: value (goal ...)`.

    python -m bench            # the full run (a few minutes)
    python -m bench --quick    # a smoke run for CI (under a minute; the figures are rough)
    python -m bench --only inapp,terminal

Every figure is a ratio or a latency taken within this run (these machines are shared and noisy:
never compare absolute times across runs). Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

GROUPS = ("headless", "inapp", "widgets", "terminal", "gpu")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short slices and few repeats (a CI smoke, < 60 s)")
    ap.add_argument("--only", help="comma-separated groups: " + ", ".join(GROUPS))
    args = ap.parse_args(argv)
    groups = args.only.split(",") if args.only else list(GROUPS)
    quick = args.quick

    import tempfile

    # the app's autosave (the real code path, once a minute during a run) writes into a scratch folder
    os.environ.setdefault("TUI_NN_AUTOSAVE_DIR", tempfile.mkdtemp(prefix="tui-nn-bench-autosave-"))

    import torch

    torch.set_num_threads(1)  # overhead checks on one torch thread (see docs/performance.md)
    print(f"# tui-nn bench{' --quick' if quick else ''}: {platform.node()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    workloads = ["lab004"] if quick else ["lab004", "mlp", "cnn"]
    if "headless" in groups:
        from .headless import measure, measure_null

        for name in workloads:
            print(measure(name, quick=quick), flush=True)
        print(measure_null(workloads[-1] if quick else "mlp", quick=quick), flush=True)
    if "inapp" in groups:
        from .inapp import measure as inapp

        for name in workloads:
            print(inapp(name, quick=quick), flush=True)
    if "widgets" in groups:
        from .widgets import measure as widgets

        for text in widgets(quick=quick):
            print(text, flush=True)
    if "terminal" in groups:
        from .terminal import measure as terminal

        for text in terminal(quick=quick):
            print(text, flush=True)
    if "gpu" in groups:
        from .measure import line

        if torch.cuda.is_available():  # goal 8: the MLP and the CNN on cuda:0, headless and in the app
            from .headless import host_syncs, measure
            from .inapp import measure as inapp_measure

            for name in ("mlp", "cnn"):
                print(measure(name, quick=quick, device="cuda:0", label=f"gpu_headless_{name}", goal=0.95),
                      flush=True)
                print(host_syncs(name, "cuda:0", seconds=0.5 if quick else 2.0), flush=True)
                print(inapp_measure(name, quick=quick, device="cuda:0", label=f"gpu_inapp_{name}"), flush=True)
            print(line("gpu_device", torch.cuda.get_device_name(0), "informational", None), flush=True)
        else:
            print(line("gpu", "n/a (no CUDA device on this machine)", "measured when a GPU machine is lent", None),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
