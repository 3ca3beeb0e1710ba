"""Saving and reopening a whole session: one `.tuinn` file, written atomically.

A `.tuinn` file is a ZIP archive (open it with any unzip tool) holding:

- `format.json`: {"format": "tui-nn session", "version": 1};
- `preset.toml`: the spec and settings (the session's preset, as `tui-nn` reads presets), and
  `original.toml`: the preset the session started from;
- `weights.safetensors`: the model's state dict (parameters and buffers such as BatchNorm's running
  statistics); `optimizer.safetensors`: the optimizer's state tensors;
- `data.safetensors`: the training (and test) inputs and targets, the current mini-batch permutation and
  the RNG states (the batch-order generator and torch's global generator, which Dropout draws from);
- `state.json`: the step, the batch position, the optimizer's hyper-parameters and scalar state, the
  learning-rate schedule's state, the accuracy and test evaluations;
- `history.csv`: the loss history, one row per bucket (step, mean, min, max, count, sum, every float
  written so that it reads back exactly); `runs.json`: the runs compared.

Nothing is unpickled: tensors are safetensors, the rest TOML, JSON and CSV, and only these member
names are read. Reopening restores the exact state: training continues with the same losses as a run
that was never interrupted (same device, same torch).

The file's roles: this module writes (`session_bytes`, `save_session`, `Autosave`) and is where the
public names are imported from; `session_archive.py` reads the archive (its limits, the zip directory, the
safetensors headers, the streaming of tensors); `session_load.py` checks its parts and rebuilds the session
(`load_session`, `check_session_bytes`).

would not reopen (NaN or Inf weights, say) is refused with a clear error, and an autosave never replaces
the last good file with it.

Save between runs (when no trainer is updating the weights).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as st_save

from ..errors import EngineError
from ..training.history import LossHistory
from .atomic import atomic_write_bytes
from .preset_write import dumps_preset
from .session_archive import FORMAT, MEMBERS, SUFFIX, VERSION, SessionFileError
from .session_load import check_session_bytes, load_session

MIN_AUTOSAVE_INTERVAL = 5.0
_WORDS = {"weights.safetensors": "the weights", "optimizer.safetensors": "the optimizer state",
          "data.safetensors": "the data", "start.safetensors": "the start weights"}


class UnsavableSession(EngineError):
    """A session whose file would be refused when reopened (NaN or Inf weights, say): nothing was written."""

    def __init__(self, message: str, *, cause: SessionFileError, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.cause = cause


class AutosaveSkipped(UnsavableSession):
    """An autosave that was not written because the session would not reopen; the last good file is kept."""


# ---------------------------------------------------------------------------------------------
# helpers


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _history_csv(h: LossHistory) -> str:
    n = h.n
    lines = ["step,loss,min,max,count,sum"]
    for i in range(n):
        count = int(h._count[i])
        mean = float(h._sum[i]) / count if count else math.nan
        lines.append(f"{int(h._step[i])},{mean!r},{float(h._min[i])!r},{float(h._max[i])!r},{count},"
                     f"{float(h._sum[i])!r}")
    return "\n".join(lines) + "\n"


def _history_meta(h: LossHistory) -> dict[str, Any]:
    return {"capacity": h.capacity, "width": h.width, "steps": h.steps, "last": h.last}


def _json_safe(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _optimizer_parts(opt: torch.optim.Optimizer | None) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor]]:
    if opt is None:
        return None, {}
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, Any] = {}
    for idx, entry in sd["state"].items():
        items: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                name = f"{idx}.{key}"
                tensors[name] = _cpu(value)
                items[key] = {"tensor": name}
            else:
                items[key] = {"value": _json_safe(value)}
        state[str(idx)] = items
    return {"param_groups": _json_safe(sd["param_groups"]), "state": state}, tensors


# ---------------------------------------------------------------------------------------------
# saving


def session_bytes(session: Any) -> bytes:
    """The .tuinn archive of a session, as bytes."""
    preset = session.preset.copy()
    if preset.data.csv is not None:  # written as an absolute path: the archive can live anywhere
        preset.data.csv.path = os.path.abspath(preset.data.csv.resolved)
    original = session.original.copy()
    if original.data.csv is not None:
        original.data.csv.path = os.path.abspath(original.data.csv.resolved)

    if session.training.optimizer.type == "LBFGS" and session.optimizer_made and session.optimizer is not None \
            and session.optimizer.state:
        raise EngineError("a session trained with LBFGS cannot be saved yet: its state (the history of gradients "
                          "and steps it learns the curvature from) has no place in a session file",
                          hint="save the preset instead (tui-nn runs it again from the start); a session reset to "
                               "step 0 (R) saves")
    opt_meta, opt_tensors = _optimizer_parts(session.optimizer)
    data: dict[str, torch.Tensor] = {"inputs": _cpu(session.inputs),
                                     "batch_gen": session.batch_gen.get_state().clone(),
                                     "torch_rng": torch.get_rng_state().clone()}
    for key in ("targets", "test_inputs", "test_targets", "batch_perm"):
        value = getattr(session, key, None)
        if value is not None:
            data[key] = _cpu(value)
    device = session.inputs.device
    if device.type == "cuda":  # pragma: no cover - needs a GPU
        data["cuda_rng"] = torch.cuda.get_rng_state(device).clone()
    metrics = session.metrics
    scheduler = getattr(session, "scheduler", None)
    state = {
        "step": session.step,
        "batch_pos": session.batch_pos,
        "optimizer": opt_meta,
        "scheduler": _json_safe(scheduler.state_dict()) if scheduler is not None else None,
        "history": _history_meta(session.history),
        "accuracy": [[step, value] for step, value in metrics.accuracy.points],
        "evals": [[e.step, e.loss, e.accuracy, e.samples] for e in metrics.evals],
        "data_error": str(session.data_error) if session.data_error is not None else None,
        "device": str(device),
        "source": session.preset.source,  # where the preset came from (a file, a bundled name)
        "original_source": session.original.source,
        "torch": torch.__version__,
        "saved_at": time.time(),
    }
    weights = {k: _cpu(v) for k, v in session.model.state_dict().items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        def text(name: str, body: str) -> None:
            zf.writestr(name, body.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)

        def blob(name: str, tensors: dict[str, torch.Tensor]) -> None:
            zf.writestr(name, st_save(tensors), compress_type=zipfile.ZIP_STORED)

        text("format.json", json.dumps({"format": FORMAT, "version": VERSION}))
        text("preset.toml", dumps_preset(preset))
        text("original.toml", dumps_preset(original))
        text("state.json", json.dumps(state, indent=1))
        blob("weights.safetensors", weights)
        blob("optimizer.safetensors", opt_tensors)
        blob("data.safetensors", data)
        text("history.csv", _history_csv(session.history))
        text("runs.json", json.dumps(session.runs.to_list()))
        start = getattr(session, "_start_weights", None)
        if start is not None and session.step > 0:  # the weights the history began from (export from step 0)
            blob("start.safetensors", {k: _cpu(v) for k, v in start.items()})
    return buf.getvalue()


def save_session(session: Any, path: str | os.PathLike[str]) -> Path:
    """Write the session to `path` (".tuinn" is appended when missing), atomically. Returns the path."""
    p = Path(path)
    if p.suffix != SUFFIX:
        p = p.with_name(p.name + SUFFIX)
    if p.is_dir():
        raise EngineError(f"{p} is a folder; give a file name ending in {SUFFIX}")
    blob = session_bytes(session)
    try:
        check_session_bytes(blob, str(p), session)
    except SessionFileError as err:  # a file that could not be reopened is useless: nothing is written
        nonfinite = "NaN or Inf" in err.reason
        raise UnsavableSession(f"cannot save {p}: {_unloadable(err)}; a session file holding that could not be "
                               f"reopened, so nothing was written", cause=err,
                               hint="go back to a step whose values are finite (or reset the weights), then save"
                               if nonfinite else err.hint) from None
    try:
        atomic_write_bytes(p, blob)
    except OSError as err:
        raise EngineError(f"cannot save {p}: {err.strerror or err}") from None
    return p


def _unloadable(err: SessionFileError) -> str:
    """What makes a session's file unloadable, in words: "the weights hold NaN or Inf values (...)"."""
    m = re.match(r'^"(.*)" holds NaN or Inf values$', err.reason.removeprefix(f"{err.member}: "), re.S)
    if err.member in _WORDS and m:
        return f"{_WORDS[err.member]} hold NaN or Inf values ({err.member}: \"{m.group(1)}\")"
    return f"the file would be refused when reopened ({err.reason})"


class Autosave:
    """Saves a session to one file at most every `interval` seconds (at least 5), and only when it changed.
    What counts as a change is a token the caller gives (the app: the step and its edit counter; by default
    the step). The app calls it between runs and between the slices of a long run, and when quitting."""

    def __init__(self, path: str | os.PathLike[str], interval: float = 60.0) -> None:
        if not (isinstance(interval, (int, float)) and math.isfinite(interval)):
            raise EngineError(f"autosave interval must be a number of seconds; got {interval!r}")
        self.path = Path(path)
        self.interval = max(float(interval), MIN_AUTOSAVE_INTERVAL)
        self.last_time: float | None = None
        self.last_token: Any = None
        self.skipped: str | None = None  # why the last autosave was not written, while it was not

    @property
    def last_step(self) -> int | None:
        token = self.last_token
        return token[0] if isinstance(token, tuple) else token

    def due(self, session: Any, now: float | None = None, *, token: Any = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.last_token == (session.step if token is None else token):
            return False
        return self.last_time is None or now - self.last_time >= self.interval

    def maybe_save(self, session: Any, now: float | None = None, *, token: Any = None) -> bool:
        now = time.monotonic() if now is None else now
        if not self.due(session, now, token=token):
            return False
        return self.save_if_changed(session, token, now)

    def save_if_changed(self, session: Any, token: Any = None, now: float | None = None) -> bool:
        """Save now unless nothing changed since the last save (whatever the interval). A session whose file would
        not reopen (`save_session` refuses it) is not written: the last good autosave stays, and AutosaveSkipped
        says why (the next try comes after the interval, or when quitting)."""
        token = session.step if token is None else token
        if self.last_token == token:
            return False
        try:
            self.path = save_session(session, self.path)
        except UnsavableSession as err:
            self.last_time = time.monotonic() if now is None else now
            kept = (f"the last good autosave is kept ({_target(self.path)})" if _target(self.path).exists()
                    else "nothing was autosaved")
            self.skipped = f"{_unloadable(err.cause)}, so this state was not autosaved; {kept}"
            raise AutosaveSkipped(self.skipped, cause=err.cause) from None  # one line: the app shows it in its status
        self.skipped = None
        self.last_time = time.monotonic() if now is None else now
        self.last_token = token
        return True


def _target(path: Path) -> Path:
    return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)


__all__ = ["MEMBERS", "save_session", "load_session", "session_bytes", "check_session_bytes", "Autosave",
           "AutosaveSkipped",
           "SessionFileError", "UnsavableSession", "SUFFIX"]
