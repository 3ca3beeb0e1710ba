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


def test_no_import_cycles_in_the_package_counting_imports_inside_functions():
    """Every `import` and `from ... import` anywhere in a module (a late import inside a function is still an
    edge for a reader), resolved to the package's modules; a package's __init__ is not a partner of its own
    submodules. The strongly connected components of more than one module are the cycles: none."""
    import ast
    import pathlib

    import tui_nn

    root = pathlib.Path(tui_nn.__file__).parent
    mods: dict[str, tuple[pathlib.Path, bool]] = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, (f, is_pkg) in mods.items():
        base = m.split(".") if is_pkg else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                b = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(b + ([node.module] if node.module else [])) if node.level else (node.module or "")
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                r = resolve(t) if t.split(".")[0] == "tui_nn" else None
                if r and r != m and not (mods[r][1] and m.startswith(r + ".")):
                    edges[m].add(r)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    assert cycles == []
