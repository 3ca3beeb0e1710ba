"""Snapshot tests (pytest-textual-snapshot) of the main states at 80x24 and 120x40.

Deterministic: seeded presets from tests/ui/presets, a fixed number of training steps before the
snapshot, and the clock (steps/s, ETA) hidden. Regenerate the baselines with
`pytest tests/ui/test_snapshots.py --snapshot-update`; tests/ui/make_screenshots.py writes the same
states to screenshots/ for the README.
"""

from __future__ import annotations

import pytest

from tui_nn.ui.app import PlaygroundApp

from .helpers import SCENARIOS, preset

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(SCENARIOS))
def test_snapshot(snap_compare, state: str, size: tuple[int, int]) -> None:  # noqa: ANN001
    name, run_before = SCENARIOS[state]
    app = PlaygroundApp(preset(name), clock=False)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
