"""Where autosaves go (tui_nn/ui/autosave.py): TUI_NN_AUTOSAVE_DIR, else the XDG data folder's tui-nn/autosave."""

from pathlib import Path

import pytest

from tui_nn.ui.autosave import autosave_dir


def test_autosave_dir_follows_the_override_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUI_NN_AUTOSAVE_DIR", str(tmp_path / "here"))
    assert autosave_dir() == tmp_path / "here"
    monkeypatch.delenv("TUI_NN_AUTOSAVE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert autosave_dir() == tmp_path / "data" / "tui-nn" / "autosave"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert autosave_dir() == tmp_path / "home" / ".local" / "share" / "tui-nn" / "autosave"


def test_the_suffix_known_before_torch_is_the_engines() -> None:
    from tui_nn import engine
    from tui_nn.ui.startup import SESSION_SUFFIX

    assert engine.SUFFIX == SESSION_SUFFIX
