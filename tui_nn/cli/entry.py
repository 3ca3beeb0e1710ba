"""The `tui-nn` command: the app by default, headless subcommands for scripts, CI and grading.

Exit codes: 0 ok, 1 a model/data/preset error, 2 a usage error. Errors print one message, never a
traceback. Torch is imported only by the subcommands that need it.

Every text that comes from outside (a preset's name, description and lab, layer types, error messages quoting a
file, a key or a file name) is printed through `say`, which escapes control characters
(tui_nn.engine.text.printable); JSON output is escaped by json.dumps (ASCII only).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from ..engine.text import printable
from .commands import _is_session, cmd_check, cmd_presets, cmd_run
from .output import EXIT_ERROR, EXIT_USAGE, MAX_STEPS, SEED, STEPS, _fail, _quiet_stdout, int_in, say

SUBCOMMANDS = ("run", "check", "presets", "export", "gradcheck", "serve")



class _Parser(argparse.ArgumentParser):
    """argparse, with its error messages (which quote what was typed: a file name, an argument) made printable."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        super().error(printable(message))



def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tui-nn",
        description="A terminal playground for PyTorch neural networks. Without a subcommand, opens the app.",
        epilog="Subcommands: run, check, presets, export, gradcheck, serve (tui-nn SUBCOMMAND --help). `tui-nn PRESET` opens the app on a "
               "preset (a file, or a bundled name from `tui-nn presets`).",
    )
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND")
    r = sub.add_parser("run", help="train a preset headless")
    r.add_argument("preset", help="a preset file, a bundled preset name, or a session file (.tuinn: training "
                                  "continues from its saved step)")
    r.add_argument("--steps", type=STEPS, help=f"steps to train, 0..{MAX_STEPS} (default: the preset's)")
    r.add_argument("--device", help="cpu, cuda:0, ... (default: the preset's)")
    r.add_argument("--seed", type=SEED, help=f"random seed, 0..2^63-1 (default: the preset's; not for a session, "
                                             "which continues with its saved random state)")
    r.add_argument("--every", type=int_in(1, MAX_STEPS), metavar="K",
                   help="report every K-th step (default: about 15 per second, plus the first and the last step)")
    r.add_argument("--json", action="store_true", help="JSON Lines on stdout: one object per report, then a "
                                                       "'done' object")
    c = sub.add_parser("check", help="shapes, parameter counts and the current loss of a preset")
    c.add_argument("preset", help="a preset file, a bundled preset name, or a session file (.tuinn: its current "
                                  "weights)")
    c.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("presets", help="list the bundled presets")
    from .export import add_parsers  # export, gradcheck

    add_parsers(sub)
    from .serve import add_parser as add_serve_parser  # serve (no aiohttp import here)

    add_serve_parser(sub)
    return p



def _app_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tui-nn", description="Open the app (optionally on a preset).")
    p.add_argument("preset", nargs="?", help="a preset file or a bundled preset name")
    return p



def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code. A reader that stops reading (a broken pipe) ends the
    command quietly with exit code 1, as Python's documentation recommends, without a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # a broken pipe shows here, not as "Exception ignored" at exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_ERROR



def _main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help")):
        ns = _app_parser().parse_args(args)
        return _open_app(ns.preset)
    ns = _parser().parse_args(args)
    if ns.command == "presets":
        return cmd_presets()
    if ns.command == "check":
        return cmd_check(ns.preset, json_mode=ns.json)
    if ns.command == "run":
        if ns.seed is not None and _is_session(ns.preset):
            _parser().error("--seed applies to a preset: a session file continues with its saved random state")
        return cmd_run(ns.preset, steps=ns.steps, device=ns.device, seed=ns.seed, every=ns.every, json_mode=ns.json)
    if ns.command == "serve":
        from .serve import dispatch as serve_dispatch

        return serve_dispatch(ns, _parser())
    if ns.command in ("export", "gradcheck"):
        from .export import dispatch

        return dispatch(ns, _parser())
    _parser().print_help()
    return EXIT_USAGE



def _open_app(preset: str | None) -> int:
    if preset is not None:
        from pathlib import Path

        from ..engine.files.bundled import bundled_presets, find_bundled

        if not Path(preset).exists() and find_bundled(preset) is None:
            from ..engine.errors import did_you_mean  # no torch import

            names = [b.stem for b in bundled_presets()]
            return _fail(f"{preset}: no such file or bundled preset{did_you_mean(Path(preset).stem, names)}",
                         "`tui-nn presets` lists the bundled presets")
    try:
        from ..ui import run_app
    except ImportError as err:  # pragma: no cover - the app is its own issue
        say(f"tui-nn: the app is not available: {err}", file=sys.stderr)
        return EXIT_ERROR
    return int(run_app(preset) or 0)



if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
