"""The headless subcommands: presets, check, run."""

from __future__ import annotations

import math
import sys
from typing import Any

from ..engine.text import printable
from .output import EXIT_ERROR, EXIT_OK, SESSION_SUFFIX, _fail, _fail_err, _quiet_stdout, dumps, error_object, say


def _is_session(path: str) -> bool:
    return path.strip().endswith(SESSION_SUFFIX)



def _load(path: str, *, device: str | None = None, seed: int | None = None):  # noqa: ANN202
    """The session of a preset (a file or a bundled name), or the one saved in a session file (.tuinn)."""
    from ..engine.errors import EngineError
    from ..engine.files.preset_read import load_preset
    from ..engine.training.session import Session

    if _is_session(path):
        from ..engine.files.session_file import load_session

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
    from ..engine.files.preset_read import list_presets

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
    from ..engine.errors import EngineError
    from ..engine.shapes.summary import summary_table
    from ..engine.text import fmt_shape

    try:
        session = _load(path)
    except EngineError as err:
        return _fail_err(err, json_mode=json_mode)
    report = session.report
    if report.error is not None:
        report = _with_target_fixes(session, report)
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
    notes = _check_notes(session) if data_error is None else []
    if json_mode:
        doc: dict[str, Any] = {
            "input_shape": list(report.input_shape),
            "output_shape": list(report.output_shape) if report.output_shape is not None else None,
            "layers": [_layer_json(ly) for ly in report.layers],
            "total_params": report.total_params, "trainable_params": report.trainable_params,
            "memory_bytes": report.memory.total, "loss": loss, "loss_mode": "eval",
            "data_error": str(data_error) if data_error else None,
            "warnings": [w.to_dict() for w in report.warnings], "notes": notes,
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
    for w in report.warnings:
        say(f"warning at {w}", file=sys.stderr)
    for note in notes:
        say(f"note: {note}")
    if data_error is not None:
        say(f"data error: {data_error}", file=sys.stderr)
        return EXIT_ERROR
    if loss is not None:
        say(f"Loss ({session.training.loss.type}) of the current output: {loss:.6g} {_eval_note(session)}")
    return EXIT_OK



_MODE_LAYERS = ("Dropout", "BatchNorm")  # layers that act differently in training mode (type names start so)


def _eval_note(session: Any) -> str:
    """How check's loss is computed: in eval mode, which a training step is not where a layer acts differently."""
    from ..engine.model.build import iter_specs

    kinds = sorted({k for _, spec in iter_specs(session.spec.layers) for k in _MODE_LAYERS if spec.type.startswith(k)})
    if not kinds:
        return "(eval mode)"
    return (f"(eval mode: {' and '.join(kinds)} as in model.eval(); a training step's loss, step 1's included, is in "
            f"training mode and differs)")



def _with_target_fixes(session: Any, report: Any) -> Any:
    """The shape report with its fixes verified on the preset's targets too (the loss computes on them after the
    fix); the session's own report when the targets cannot be made."""
    from ..engine.errors import EngineError
    from ..engine.shapes.check import check_model
    from ..engine.training.target_check import target_check

    p = session.preset
    t = p.training
    try:
        check = target_check(p.data, t.loss.type, t.loss.args, tuple(p.model.input_shape), t.seed)
        return check_model(p.model, tuple(session.inputs.shape), optimizer=t.optimizer.type,
                           optimizer_args=t.optimizer.args, target_check=check)
    except EngineError:
        return report



def _check_notes(session: Any) -> list[str]:
    """What the engine does that a literal PyTorch loop would not: targets reshaped to the output's shape."""
    from ..engine.training.session import target_note

    p = session.preset
    note = target_note(p.data, tuple(p.model.input_shape), p.training.loss.type, p.training.seed, session.targets)
    return [note] if note else []



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
    from ..engine.errors import EngineError
    from ..engine.training.session import ShapeCheckFailed
    from ..engine.training.trainer import Progress, Trainer, freeze_startup_objects

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
