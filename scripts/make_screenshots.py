"""Write the README's screenshots: the snapshot states at 80x24 and 120x40, as screenshots/*.svg.

    python scripts/make_screenshots.py [OUTPUT_FOLDER]

Same states as tests/ui/test_snapshots.py (seeded presets, a fixed number of training steps, no clock).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import os  # noqa: E402

os.environ.setdefault("TUI_NN_AUTOSAVE", "off")  # no "autosaved" note in the screenshots

from tests.ui.helpers import SCENARIOS, preset  # noqa: E402
from tui_nn.ui.app import PlaygroundApp  # noqa: E402

SIZES = [(80, 24), (120, 40)]


async def shoot(state: str, size: tuple[int, int]) -> str:
    name, run_before = SCENARIOS[state]
    app = PlaygroundApp(preset(name), clock=False)
    async with app.run_test(size=size) as pilot:
        await run_before(pilot)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return app.export_screenshot(title=f"tui-nn — {state.replace('_', ' ')}")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for state in SCENARIOS:
        for w, h in SIZES:
            svg = asyncio.run(shoot(state, (w, h)))
            path = out / f"{state}-{w}x{h}.svg"
            path.write_text(svg, encoding="utf-8")
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
