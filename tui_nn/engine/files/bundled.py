"""Where the bundled presets live (no torch import: the command line uses this before the app starts)."""

from __future__ import annotations

from pathlib import Path


def presets_dir() -> Path:
    here = Path(__file__).resolve().parents[2]  # tui_nn/
    installed = here / "_presets"  # a wheel install: hatch copies presets/ here
    if installed.is_dir():
        return installed
    return here.parent / "presets"  # a checkout or an editable install


def bundled_presets() -> list[Path]:
    d = presets_dir()
    return sorted(d.glob("*.toml")) if d.is_dir() else []


def find_bundled(name: str) -> Path | None:
    stem = Path(name).stem if name.endswith(".toml") else name
    for p in bundled_presets():
        if p.stem == stem:
            return p
    return None
