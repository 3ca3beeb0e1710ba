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


async def _built(pilot) -> None:  # noqa: ANN001
    from .helpers import wait_until

    await wait_until(pilot, lambda: pilot.app.built, what="the panes")


async def _previewed(pilot) -> None:  # noqa: ANN001
    from tui_nn.ui.widgets.layers import LayerTable

    from .helpers import wait_until

    await _built(pilot)
    table = pilot.app.query_one(LayerTable)
    await wait_until(pilot, lambda: table.row_count == 6, what="the preview")
    await pilot.pause()


def test_snapshot_first_frame(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The first frame (docs/performance.md, start-up): the tab names, the status line and the keys, drawn before
    the widget modules are imported; here the build after it never comes."""
    monkeypatch.setattr(PlaygroundApp, "_build", lambda self: None)
    app = PlaygroundApp("lab004-hand-set-network", clock=False)
    assert snap_compare(app, terminal_size=(80, 24))


def test_snapshot_preview(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The preset before torch has loaded: its layers, shapes and parameter counts by arithmetic, "loading
    PyTorch…" in the status line; here the load stops after the preview, as if torch were still importing."""
    monkeypatch.setattr(PlaygroundApp, "_load_thread", lambda self, path, initial: self._preview_preset(path))
    app = PlaygroundApp("lab004-hand-set-network", clock=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_previewed)
