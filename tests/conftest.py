import os

import pytest

# One torch thread keeps CPU results and timings stable on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _no_autosave(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test autosaves into the user's data folder (the autosave tests turn it on, into tmp_path)."""
    monkeypatch.setenv("TUI_NN_AUTOSAVE", "off")
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path_factory.mktemp("autosave")))
