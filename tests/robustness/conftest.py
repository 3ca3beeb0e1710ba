"""Shared by the robustness tests: the canary that a hostile file would create, and the printed counts (no test
autosaves into the user's folder: tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import counts


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A path that a pickle payload would create if anything unpickled it; it must never exist."""
    return tmp_path / "CANARY-code-was-executed"


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    if not counts.COUNTS:
        return
    terminalreporter.section("robustness counts")
    for line in counts.lines():
        terminalreporter.write_line(line)
    path = os.environ.get("TUI_NN_ROBUSTNESS_REPORT")
    if path:
        counts.write(path)
