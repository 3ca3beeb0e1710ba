"""A smoke run of the benchmark (`python -m bench --quick`): every measure prints one parseable line.
No timing is asserted here (these machines are shared and noisy); docs/performance.md has the figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(?P<name>[a-z0-9_]+): (?P<value>.+) \(goal (?P<goal>[^)]+)\)( ok| MISSED)?$")
EXPECTED = {"headless_run_lab004", "inapp_lab004", "plot_redraw_1e6", "plot_history_memory", "tensor_open_2048x2048",
            "tensor_page_scroll", "startup_first_frame", "startup_interactive", "ssh_bytes_per_s_80x24",
            "key_to_frame_p50", "key_to_frame_p95", "gpu", "startup_engine_ready", "headless_null_lab004",
            "startup_textual_frame"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the terminal measures use a Linux pty")
def test_bench_quick_prints_every_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln and not ln.startswith("#")]
    names = set()
    for ln in lines:
        m = LINE.match(ln)
        assert m, f"unparseable bench line: {ln!r}"
        names.add(m["name"])
    assert EXPECTED <= names, f"missing: {sorted(EXPECTED - names)}"
