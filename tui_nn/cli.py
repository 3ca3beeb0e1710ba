"""The `tui-nn` command: the app by default, headless subcommands for scripts, CI and grading.

Exit codes: 0 ok, 1 a model/data/preset error, 2 a usage error. Errors print one message, never a
traceback. Torch is imported only by the subcommands that need it.

Every text that comes from outside (a preset's name, description and lab, layer types, error messages quoting a
file, a key or a file name) is printed through `say`, which escapes control characters
(tui_nn.engine.safe_text.printable); JSON output is escaped by json.dumps (ASCII only).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Callable, Sequence

from .engine.safe_text import printable  # pure Python: no torch import

SUBCOMMANDS = ("run", "check", "presets", "export", "gradcheck", "serve")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

MAX_SEED = 2**63 - 1  # as a preset's training.seed
MAX_STEPS = 10**12  # as a preset's training.steps
SESSION_SUFFIX = ".tuinn"  # tui_nn.engine.sessionio.SUFFIX (not imported here: that imports torch)


def say(text: Any = "", *, file: Any = None, line: bool = False) -> None:
    """print() for text that may come from outside: control characters escaped (`printable`); `line=True` for a
    single-line place (a list row), where newlines and tabs become spaces too."""
    print(printable(text, keep_newlines=not line), file=file)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]; anything else is a usage error (exit 2) naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number in [{low}, {high}], not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: a whole number in [{low}, {high}]")
        return value

    parse.__name__ = "whole number"
    return parse


SEED = int_in(0, MAX_SEED)
STEPS = int_in(0, MAX_STEPS)


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
    from .cli_extra import add_parsers  # export, gradcheck

    add_parsers(sub)
    from .serve import add_parser as add_serve_parser  # serve (no aiohttp import here)

    add_serve_parser(sub)
    return p


def _app_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tui-nn", description="Open the app (optionally on a preset).")
    p.add_argument("preset", nargs="?", help="a preset file or a bundled preset name")
    return p


def _nonfinite(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float replaced by null; in a dict, a key "<name>_nonfinite" beside it says
    which ("inf", "-inf" or "nan"), so the output stays standard JSON (no Infinity/NaN tokens)."""
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
                out[f"{key}_nonfinite"] = _nonfinite(value)
            else:
                out[key] = json_safe(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [None if isinstance(v, float) and not math.isfinite(v) else json_safe(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """The one JSON writer of the command line: standard JSON only (allow_nan=False after json_safe)."""
    return json.dumps(json_safe(obj), allow_nan=False)


def _json_int(n: int) -> int | float:
    """An integer as JSON carries it: beyond int64 a float (beyond a float, inf: null and "_nonfinite" in the
    output), never the 4300-digit text Python refuses to write."""
    if -2**63 <= n < 2**63:
        return n
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def error_object(err: Exception) -> dict[str, Any]:
    """The documented error shape, {"error": {"layer", "type", "message", "hint", "fix"}}, for an error that is
    not at a layer (layer/type/fix null), plus "field"/"source"/"line" for a preset error where known."""
    from .engine.errors import MemoryBudgetError, PresetError

    out: dict[str, Any] = {"layer": None, "type": None, "message": getattr(err, "message", str(err)),
                           "hint": getattr(err, "hint", ""), "fix": None}
    if isinstance(err, PresetError):
        out["field"] = err.field or None
        out["source"] = err.source
        if err.line is not None:
            out["line"] = err.line
    if isinstance(err, MemoryBudgetError):
        out["needed_bytes"] = _json_int(err.needed_bytes)
        out["budget_bytes"] = _json_int(err.budget_bytes)
    return {"error": out}


def _fail(message: str, hint: str = "", *, json_mode: bool = False, payload: dict[str, Any] | None = None) -> int:
    if json_mode:
        print(dumps(payload if payload is not None else {"error": {"layer": None, "type": None, "message": message,
                                                                   "hint": hint, "fix": None}}))
    else:
        say(f"tui-nn: error: {message}", file=sys.stderr)
        if hint:
            say(f"  hint: {hint}", file=sys.stderr)
    return EXIT_ERROR


def _fail_err(err: Exception, *, json_mode: bool = False) -> int:
    """_fail for an EngineError: in JSON mode the full error object (field, source where known)."""
    return _fail(getattr(err, "message", str(err)), getattr(err, "hint", ""), json_mode=json_mode,
                 payload=error_object(err) if json_mode else None)


def _quiet_stdout() -> None:
    """After a broken pipe (`tui-nn run ... | head`): send the rest of stdout, and the flush at exit, nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout without a file descriptor
        pass


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
        from .cli_extra import dispatch

        return dispatch(ns, _parser())
    _parser().print_help()
    return EXIT_USAGE


def _open_app(preset: str | None) -> int:
    if preset is not None:
        from pathlib import Path

        from .engine.bundled import bundled_presets, find_bundled

        if not Path(preset).exists() and find_bundled(preset) is None:
            from .engine.errors import did_you_mean  # no torch import

            names = [b.stem for b in bundled_presets()]
            return _fail(f"{preset}: no such file or bundled preset{did_you_mean(Path(preset).stem, names)}",
                         "`tui-nn presets` lists the bundled presets")
    try:
        from .ui import run_app
    except ImportError as err:  # pragma: no cover - the app is its own issue
        say(f"tui-nn: the app is not available: {err}", file=sys.stderr)
        return EXIT_ERROR
    return int(run_app(preset) or 0)


def _is_session(path: str) -> bool:
    return path.strip().endswith(SESSION_SUFFIX)


def _load(path: str, *, device: str | None = None, seed: int | None = None):  # noqa: ANN202
    """The session of a preset (a file or a bundled name), or the one saved in a session file (.tuinn)."""
    from .engine.errors import EngineError
    from .engine.preset import load_preset
    from .engine.session import Session

    if _is_session(path):
        from .engine.sessionio import load_session

        try:
            return load_session(path.strip(), device=device)
        except EngineError:
            raise
        except Exception as err:  # noqa: BLE001 - a hostile file must give a message, never a traceback
            raise EngineError(f"{path}: not a loadable tui-nn session file ({type(err).__name__}: {err})") from None
    preset = load_preset(path)
    if seed is not None:
        preset.training.seed = seed
    return Session(preset, device=device)


def cmd_presets() -> int:
    from .engine.preset import list_presets

    items = list_presets()
    if not items:
        print("no bundled presets found")
        return EXIT_OK
    stems = [printable(stem, keep_newlines=False) for stem, _ in items]
    width = max(len(stem) for stem in stems)
    for stem, (_, preset) in zip(stems, items):
        if isinstance(preset, Exception):
            line = f"(broken: {preset})"
        else:
            first = (preset.description.strip().splitlines() or [""])[0]
            line = preset.name + (f" - {first}" if first and first != preset.name else "")
        say(f"{stem.ljust(width)}  {line}", line=True)
    return EXIT_OK


def _layer_json(ly: Any) -> dict[str, Any]:
    return {"index": ly.index, "path": ly.path, "type": ly.type, "input_shape": list(ly.input_shape),
            "output_shape": list(ly.output_shape or ()), "params": ly.params, "trainable": ly.trainable,
            "detail": ly.detail or None}


def cmd_check(path: str, *, json_mode: bool = False) -> int:
    """The summary and the current loss (of a session file: of its current weights). Exit 1 on a preset, session,
    shape or data error (a loss that cannot be computed on the data); the summary is still printed for a shape or
    data error."""
    from .engine.errors import EngineError
    from .engine.shapes import fmt_shape, summary_table

    try:
        session = _load(path)
    except EngineError as err:
        return _fail_err(err, json_mode=json_mode)
    report = session.report
    if report.error is not None:
        e = report.error
        if json_mode:
            print(dumps({"error": e.to_dict()}))
        else:
            say(summary_table(report, details=True))
            print()
            say(f"shape error at {e}", file=sys.stderr)
        return EXIT_ERROR
    loss: float | None = None
    try:
        loss = session.loss_value()
    except EngineError as err:
        if session.data_error is None:
            session.data_error = err  # type: ignore[assignment]
    data_error = session.data_error
    if json_mode:
        doc: dict[str, Any] = {
            "input_shape": list(report.input_shape),
            "output_shape": list(report.output_shape) if report.output_shape is not None else None,
            "layers": [_layer_json(ly) for ly in report.layers],
            "total_params": report.total_params, "trainable_params": report.trainable_params,
            "memory_bytes": report.memory.total, "loss": loss,
            "data_error": str(data_error) if data_error else None,
        }
        if _is_session(path):
            doc["step"] = session.step  # a session file: the step its weights are at
        if data_error is not None:
            doc.update(error_object(data_error))
        print(dumps(doc))
        return EXIT_ERROR if data_error is not None else EXIT_OK
    say(f"{session.preset.name}  (input {fmt_shape(report.input_shape)}, output {fmt_shape(report.output_shape)})",
        line=True)
    if _is_session(path):
        say(f"session at step {session.step}", line=True)
    say(summary_table(report, details=True))
    if data_error is not None:
        say(f"data error: {data_error}", file=sys.stderr)
        return EXIT_ERROR
    if loss is not None:
        say(f"Loss ({session.training.loss.type}) of the current output: {loss:.6g}")
    return EXIT_OK


class _Bar:
    """A progress bar on stderr when it is a terminal."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty()

    def update(self, step: int, done: int, loss: float, rate: float) -> None:
        if not self.enabled:
            return
        if self.total:
            frac = min(done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            eta_s = f"{eta:.0f}s" if math.isfinite(eta) else "?"
            text = f"[{bar:<30}] {done}/{self.total} loss {loss:.6g} {rate:,.0f} steps/s ETA {eta_s}"
        else:
            text = f"step {step} loss {loss:.6g} {rate:,.0f} steps/s"
        sys.stderr.write("\r" + text[:120])
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _extra_metrics(r: Any) -> dict[str, Any]:
    """accuracy / test_loss / test_accuracy of a report, where there are such (classification, a test split)."""
    out: dict[str, Any] = {}
    if r.accuracy is not None:
        out["accuracy"] = r.accuracy
    ev = r.evaluation
    if ev is not None:
        out["test_loss"] = ev.loss
        if ev.accuracy is not None:
            out["test_accuracy"] = ev.accuracy
    return out


def cmd_run(path: str, *, steps: int | None, device: str | None, seed: int | None, every: int | None,
            json_mode: bool) -> int:
    from .engine.errors import EngineError
    from .engine.session import ShapeCheckFailed
    from .engine.trainer import Progress, Trainer, freeze_startup_objects

    try:
        session = _load(path, device=device, seed=seed)
    except EngineError as err:
        return _fail_err(err, json_mode=json_mode)
    n = session.training.steps if steps is None else steps
    bar = _Bar(n) if not json_mode else None
    pipe_closed = False  # the reader went away (`| head`): stop training at the next step, quietly

    def report(r: Progress) -> None:  # type: ignore[override]
        nonlocal pipe_closed
        if pipe_closed:
            return
        if json_mode:
            line = {"step": r.step, "loss": r.loss, "steps_per_s": round(r.steps_per_s, 1)}
            line.update(_extra_metrics(r))
            try:
                print(dumps(line), flush=False)
            except BrokenPipeError:  # the trainer turns exceptions from a report into a failed run: not this one
                pipe_closed = True
                _quiet_stdout()
        elif bar is not None:
            bar.update(r.step, r.run_steps, r.loss, r.steps_per_s)

    freeze_startup_objects()
    try:
        fin = Trainer(session).run(n, report=report, every=every,  # type: ignore[arg-type]
                                   should_stop=lambda: pipe_closed)
    except ShapeCheckFailed as err:
        e = err.error
        return _fail(str(e), json_mode=json_mode, payload={"error": e.to_dict()})
    except EngineError as err:
        return _fail_err(err, json_mode=json_mode)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        return 130
    if pipe_closed:
        return EXIT_ERROR
    if bar is not None:
        bar.close()
    if json_mode:
        out: dict[str, Any] = {"event": "done", "reason": fin.reason, "steps": fin.step, "final_loss": fin.final_loss,
                               "steps_per_s": round(fin.steps_per_s, 1)}
        out.update(_extra_metrics(fin))
        if fin.message:
            out["message"] = fin.message
            out["hint"] = fin.hint
        print(dumps(out))
    else:
        loss = "n/a" if fin.final_loss is None else f"{fin.final_loss:.6g}"
        say(f"{session.preset.name}: {fin.run_steps} steps in {fin.elapsed:.2f}s "
            f"({fin.steps_per_s:,.0f} steps/s), final loss {loss}", line=True)
        extra = _extra_metrics(fin)
        if extra:
            print("  " + ", ".join(f"{k.replace('_', ' ')} {v:.6g}" for k, v in extra.items() if v is not None))
        if fin.message:
            say(f"tui-nn: {fin.message}", file=sys.stderr)
            if fin.hint:
                say(f"  hint: {fin.hint}", file=sys.stderr)
    return EXIT_OK if fin.ok else EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
