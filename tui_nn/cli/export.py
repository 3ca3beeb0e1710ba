"""`tui-nn export` and `tui-nn gradcheck`: the command-line side of "beyond the labs".

Same conventions as `cli.py`: exit 0 ok, 1 a model/data/preset error (or a gradient that disagrees),
2 a usage error; one clear message, never a traceback; torch is imported only when a command runs. Text from
outside (the preset's name, error messages) is printed through `cli.say` (control characters escaped).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXTRA_COMMANDS = ("export", "gradcheck")
MAX_GRADCHECK_ELEMENTS = 10**6  # per parameter: two forward passes each (the default checks 256)
MAX_GRADCHECK_SAMPLES = 2**31 - 1  # as a preset's batch_size


def add_parsers(sub: Any) -> None:
    from .output import MAX_STEPS, SEED, STEPS, int_in

    e = sub.add_parser("export", help="write a plain PyTorch script that trains a preset with the same losses")
    e.add_argument("preset", help="a preset file or a bundled preset name")
    e.add_argument("-o", "--output", metavar="FILE.py", help="write the script here (default: print it)")
    e.add_argument("--steps", type=STEPS, help=f"steps the script trains, 0..{MAX_STEPS} (default: the preset's)")
    e.add_argument("--seed", type=SEED, help="random seed, 0..2^63-1 (default: the preset's)")
    g = sub.add_parser("gradcheck", help="compare autograd's gradients with central differences (float64)")
    g.add_argument("preset", help="a preset file or a bundled preset name")
    g.add_argument("--json", action="store_true", help="print JSON")
    g.add_argument("--max-elements", type=int_in(1, MAX_GRADCHECK_ELEMENTS), default=256, metavar="N",
                   help=f"elements checked per parameter, evenly spread, 1..{MAX_GRADCHECK_ELEMENTS} (default 256)")
    g.add_argument("--samples", type=int_in(1, MAX_GRADCHECK_SAMPLES), default=64, metavar="N",
                   help="training samples used (default: the first 64)")


def dispatch(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if ns.command == "export":
        return cmd_export(ns.preset, output=ns.output, steps=ns.steps, seed=ns.seed)
    if ns.command == "gradcheck":
        return cmd_gradcheck(ns.preset, json_mode=ns.json, max_elements=ns.max_elements, samples=ns.samples)
    raise AssertionError(ns.command)  # pragma: no cover


def _fail(message: str, hint: str = "", *, json_mode: bool = False, err: Exception | None = None) -> int:
    from .output import _fail as fail
    from .output import error_object

    return fail(message, hint, json_mode=json_mode, payload=error_object(err) if err is not None else None)


def cmd_export(path: str, *, output: str | None = None, steps: int | None = None, seed: int | None = None) -> int:
    from ..engine.errors import EngineError
    from ..engine.files.export import export_script, write_script
    from ..engine.files.preset_read import load_preset
    from ..engine.text import printable
    from .output import EXIT_OK, say

    try:
        preset = load_preset(path)
        if seed is not None:
            preset.training.seed = seed
        if output is None:
            text = export_script(preset, steps=steps)
        else:
            written = write_script(preset, output, steps=steps)
    except EngineError as err:
        return _fail(err.message, err.hint)
    if output is None:
        sys.stdout.write(printable(text))  # the script holds outside text only as repr(): unchanged, a safety net
    else:
        n = preset.training.steps if steps is None else steps
        say(f"wrote {written} ({n} steps); run it with: python {written}")
    return EXIT_OK


def cmd_gradcheck(path: str, *, json_mode: bool = False, max_elements: int = 256, samples: int = 64) -> int:
    from ..engine.errors import EngineError
    from ..engine.files.preset_read import load_preset
    from ..engine.inspect.gradcheck import gradcheck_session
    from ..engine.training.session import Session
    from .output import EXIT_ERROR, EXIT_OK, dumps, say

    try:
        session = Session(load_preset(path), device="cpu")
        if session.report.error is not None:
            e = session.report.error
            if json_mode:
                print(dumps({"error": e.to_dict()}))
            else:
                say(f"tui-nn: error: shape error at {e}", file=sys.stderr)
            return EXIT_ERROR
        report = gradcheck_session(session, max_elements=max_elements, max_samples=samples)
    except EngineError as err:
        return _fail(err.message, err.hint, json_mode=json_mode, err=err)
    if json_mode:
        print(dumps(report.to_dict()))
    else:
        say(f"{session.preset.name}: gradient check", line=True)
        say(report.text())
    return EXIT_OK if report.ok else EXIT_ERROR
