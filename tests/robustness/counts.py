"""Counters the robustness tests fill in; `conftest.py` prints them at the end of a run (and writes them as
JSON to $TUI_NN_ROBUSTNESS_REPORT), and `fuzz_run` copies them into its summary."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

COUNTS: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))


def add(group: str, key: str, n: int | float = 1) -> None:
    COUNTS[group][key] += n


def peak(group: str, key: str, value: float) -> None:
    COUNTS[group][key] = max(COUNTS[group].get(key, 0), value)


def examples(default: int) -> int:
    """Examples per fuzz target: the CI sample, or $TUI_NN_FUZZ_EXAMPLES for a long run."""
    return int(os.environ.get("TUI_NN_FUZZ_EXAMPLES", default))


def kills(default: int) -> int:
    return int(os.environ.get("TUI_NN_KILLS", default))


def as_dict() -> dict[str, dict[str, Any]]:
    return {g: dict(v) for g, v in sorted(COUNTS.items())}


def lines() -> list[str]:
    out = []
    for group, vals in as_dict().items():
        out.append(f"{group}: " + ", ".join(f"{k} {round(v, 3) if isinstance(v, float) else v}"
                                            for k, v in vals.items()))
    return out


def write(path: str) -> None:
    with open(path, "w") as fh:
        json.dump(as_dict(), fh, indent=1)
