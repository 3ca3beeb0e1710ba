"""UI tests: no autosave into the user's data folder (the autosave test turns it on, into tmp_path)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_autosave(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("TUI_NN_AUTOSAVE", "off")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path_factory.mktemp("autosave")))
