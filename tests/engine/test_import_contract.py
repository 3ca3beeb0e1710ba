"""The engine is headless: importing it must not load Textual (or any UI module)."""

import subprocess
import sys


def test_engine_import_loads_no_textual():
    code = (
        "import sys\n"
        "import tui_nn.engine\n"
        "from tui_nn.engine import Session, load_preset, Trainer, check_model\n"
        "import tui_nn.engine.training.session, tui_nn.engine.training.trainer, tui_nn.engine.files.preset_read, tui_nn.engine.shapes.check\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'textual_plotext', 'plotext')"
        " or m.startswith('tui_nn.ui'))\n"
        "assert 'torch' in sys.modules\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_engine_sources_do_not_import_textual():
    import pathlib

    import tui_nn.engine

    root = pathlib.Path(tui_nn.engine.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path


def _loaded_after(imports: str, names: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        f"{imports}\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {names!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_a_preset_preview_needs_no_torch():
    """The app shows a preset before torch has loaded (docs/performance.md, start-up): reading every bundled
    preset without the torch checks, the preview's shapes and the layer table's text import no torch."""
    imports = (
        "from tui_nn.engine.files.bundled import bundled_presets\n"
        "from tui_nn.engine.files.preset_read import load_preset\n"
        "from tui_nn.engine.shapes.rules import preview, preview_input_shape\n"
        "from tui_nn.engine.model.argtext import call_text\nfrom tui_nn.engine.model.edits import scratch_preset\n"
        "for p in [*bundled_presets(), None]:\n"
        "    pr = load_preset(p, checked=False) if p else scratch_preset()\n"
        "    [call_text(r.spec) for r in preview(pr.model, preview_input_shape(pr))]"
    )
    assert _loaded_after(imports, ("torch", "numpy")) == []


def test_the_app_module_leaves_the_widgets_for_after_the_first_frame():
    """`tui_nn.ui.app` draws its first frame before the widget modules (numpy, plotext, torch) are imported."""
    assert _loaded_after("import tui_nn.ui.app", ("torch", "numpy", "plotext", "textual_plotext")) == []
