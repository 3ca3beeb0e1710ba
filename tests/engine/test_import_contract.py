"""The engine is headless: importing it must not load Textual (or any UI module)."""

import subprocess
import sys


def test_engine_import_loads_no_textual():
    code = (
        "import sys\n"
        "import tui_nn.engine\n"
        "from tui_nn.engine import Session, load_preset, Trainer, check_model\n"
        "import tui_nn.engine.session, tui_nn.engine.trainer, tui_nn.engine.preset, tui_nn.engine.shapes\n"
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
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path
