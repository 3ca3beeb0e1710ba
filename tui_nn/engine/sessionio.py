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
names are read, each up to a size limit. Reopening restores the exact state: training continues with
the same losses as a run that was never interrupted (same device, same torch).

Save between runs (when no trainer is updating the weights).
"""

from __future__ import annotations

import io
import json
import math
import os
import time
import tomllib
import zipfile
import zlib
from lzma import LZMAError
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import EngineError, PresetError
from .history import LossHistory
from .spec import CsvSpec, GeneratorSpec, Preset

FORMAT = "tui-nn session"
VERSION = 1
SUFFIX = ".tuinn"
MAX_TEXT_BYTES = 64 * 1024 * 1024
MAX_TENSOR_BYTES = 16 * 1024 ** 3
MEMBERS = ("format.json", "preset.toml", "original.toml", "state.json", "weights.safetensors",
           "optimizer.safetensors", "data.safetensors", "history.csv", "runs.json", "start.safetensors")
MIN_AUTOSAVE_INTERVAL = 5.0
# what a damaged archive raises: zlib/lzma errors, an unknown compression method (NotImplementedError),
# an encrypted member (RuntimeError), besides BadZipFile and OSError
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, LZMAError, NotImplementedError,
               RuntimeError)
MAX_HISTORY_CAPACITY = 1 << 20  # loss-history buckets (a session uses 4096); more is a hostile file


class SessionFileError(EngineError):
    """A .tuinn file that cannot be read back: names the file and the member."""


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


def _restore_history(h: LossHistory, text: str, meta: dict[str, Any], where: str) -> None:
    try:
        capacity = int(meta["capacity"])
        if capacity > MAX_HISTORY_CAPACITY:  # refused before anything of that size is allocated
            raise ValueError(f"capacity {capacity} is more than {MAX_HISTORY_CAPACITY}")
        fresh = LossHistory(capacity)
        rows = [line.split(",") for line in text.strip().splitlines()[1:] if line.strip()]
        if len(rows) > capacity:
            raise ValueError(f"{len(rows)} rows for a capacity of {capacity}")
        for i, row in enumerate(rows):
            if len(row) != 6:
                raise ValueError(f"row {i + 2}: expected 6 cells")
            fresh._step[i] = int(row[0])
            fresh._min[i] = float(row[2])
            fresh._max[i] = float(row[3])
            fresh._count[i] = int(row[4])
            fresh._sum[i] = float(row[5])
        fresh.n = len(rows)
        fresh.width = int(meta["width"])
        fresh.steps = int(meta["steps"])
        fresh.last = float(meta["last"])
        if fresh.n and int(fresh._step[fresh.n - 1]) != fresh.steps:
            raise ValueError("the last row does not end at the recorded step count")
    except (KeyError, TypeError, ValueError) as err:
        raise SessionFileError(f"{where}: the history cannot be read: {err}") from None
    h.__dict__.update(fresh.__dict__)


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


def _optimizer_state_dict(meta: dict[str, Any], tensors: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    try:
        groups = []
        for g in meta["param_groups"]:
            g = dict(g)
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
            groups.append(g)
        state: dict[int, dict[str, Any]] = {}
        for idx, items in meta["state"].items():
            entry: dict[str, Any] = {}
            for key, ref in items.items():
                if "tensor" in ref:
                    entry[key] = tensors[ref["tensor"]]
                else:
                    entry[key] = ref["value"]
            state[int(idx)] = entry
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SessionFileError(f"{where}: the optimizer state cannot be read: {err!r}") from None
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------------------------
# saving


def session_bytes(session: Any) -> bytes:
    """The .tuinn archive of a session, as bytes."""
    from .preset import dumps_preset

    preset = session.preset.copy()
    if preset.data.csv is not None:  # written as an absolute path: the archive can live anywhere
        preset.data.csv.path = os.path.abspath(preset.data.csv.resolved)
    original = session.original.copy()
    if original.data.csv is not None:
        original.data.csv.path = os.path.abspath(original.data.csv.resolved)

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
    from .storage import atomic_write_bytes

    p = Path(path)
    if p.suffix != SUFFIX:
        p = p.with_name(p.name + SUFFIX)
    if p.is_dir():
        raise EngineError(f"{p} is a folder; give a file name ending in {SUFFIX}")
    try:
        atomic_write_bytes(p, session_bytes(session))
    except OSError as err:
        raise EngineError(f"cannot save {p}: {err.strerror or err}") from None
    return p


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
        """Save now unless nothing changed since the last save (whatever the interval)."""
        token = session.step if token is None else token
        if self.last_token == token:
            return False
        self.path = save_session(session, self.path)
        self.last_time = time.monotonic() if now is None else now
        self.last_token = token
        return True


# ---------------------------------------------------------------------------------------------
# loading


def _read(zf: zipfile.ZipFile, name: str, where: str, limit: int, required: bool = True) -> bytes | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        if required:
            raise SessionFileError(f"{where}: {name} is missing") from None
        return None
    if info.file_size > limit:
        raise SessionFileError(f"{where}: {name} is too large ({info.file_size} bytes)")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except _ZIP_ERRORS as err:
        raise SessionFileError(f"{where}: {name} is damaged: {err}") from None
    if len(data) > limit:
        raise SessionFileError(f"{where}: {name} is too large")
    return data


def _text(zf: zipfile.ZipFile, name: str, where: str, required: bool = True) -> str | None:
    data = _read(zf, name, where, MAX_TEXT_BYTES, required)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SessionFileError(f"{where}: {name} is not UTF-8 text") from None


def _json(zf: zipfile.ZipFile, name: str, where: str, required: bool = True) -> Any:
    text = _text(zf, name, where, required)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SessionFileError(f"{where}: {name} is not valid JSON: {err}") from None
    except RecursionError:  # not a ValueError: deeply nested arrays exhaust the decoder's stack
        raise SessionFileError(f"{where}: {name} is nested too deeply") from None


def _tensors(zf: zipfile.ZipFile, name: str, where: str) -> dict[str, torch.Tensor]:
    from .shapes import default_budget

    # a member larger than the memory budget is refused before it is inflated (a zip bomb stays on disk)
    data = _read(zf, name, where, min(MAX_TENSOR_BYTES, max(default_budget("cpu"), 1 << 20)))
    assert data is not None
    try:
        tensors = st_load(data)
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        raise SessionFileError(f"{where}: {name} is not a valid safetensors file: {err}") from None
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise SessionFileError(f"{where}: {name}: \"{key}\" holds NaN or Inf values")
    return tensors


def _preset(text: str, source: str) -> Preset:
    """A preset from the archive; a CSV data table is taken as written (the data itself is in the archive, so
    the CSV file need not exist any more)."""
    from .preset import _prescan, preset_from_dict

    _prescan(text, source)  # nesting is capped before parsing, as for preset files
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"TOML syntax error: {err}", source=source) from None
    except RecursionError:
        raise PresetError("nested too deeply", source=source) from None
    table = raw.get("data", {}).pop("csv", None) if isinstance(raw.get("data"), dict) else None
    preset = preset_from_dict(raw, source)
    if table is not None:
        try:
            target = table["target"]
            preset.data.csv = CsvSpec(path=str(table["path"]), features=[str(f) for f in table["features"]],
                                      target=[str(target)] if isinstance(target, str) else [str(t) for t in target],
                                      test_fraction=float(table.get("test_fraction", 0.0)))
        except (KeyError, TypeError, ValueError) as err:
            raise PresetError(f"the csv table cannot be read: {err!r}", source=source, field="data.csv") from None
    return preset


def load_session(path: str | os.PathLike[str], *, device: str | None = None) -> Any:
    """Reopen a session saved by `save_session`, in exactly the state it was saved in."""
    from .session import Session

    p = Path(path)
    where = str(p)
    try:
        if p.exists() and not p.is_file():  # a folder, a FIFO or a device: would fail, block or never end
            raise SessionFileError(f"{where}: not a regular file")
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise SessionFileError(f"{where}: no such file") from None
    except _ZIP_ERRORS as err:
        raise SessionFileError(f"{where}: not a tui-nn session file ({err})") from None
    with zf:
        fmt = _json(zf, "format.json", where)
        if not isinstance(fmt, dict) or fmt.get("format") != FORMAT:
            raise SessionFileError(f"{where}: not a tui-nn session file")
        if fmt.get("version") != VERSION:
            raise SessionFileError(f"{where}: session format version {fmt.get('version')!r} is not supported "
                                   f"(this tui-nn reads version {VERSION})")
        preset = _preset(_text(zf, "preset.toml", where) or "", f"{where}:preset.toml")
        original = _preset(_text(zf, "original.toml", where) or "", f"{where}:original.toml")
        state = _json(zf, "state.json", where)
        if not isinstance(state, dict):
            raise SessionFileError(f"{where}: state.json is not an object")
        weights = _tensors(zf, "weights.safetensors", where)
        opt_tensors = _tensors(zf, "optimizer.safetensors", where)
        data = _tensors(zf, "data.safetensors", where)
        history_csv = _text(zf, "history.csv", where) or ""
        runs = _json(zf, "runs.json", where, required=False)
        start = _tensors(zf, "start.safetensors", where) if "start.safetensors" in zf.namelist() else None
    for key in ("inputs", "batch_gen", "torch_rng"):
        if key not in data:
            raise SessionFileError(f"{where}: data.safetensors has no \"{key}\"")
    if isinstance(state.get("source"), str):
        preset.source = state["source"]
    if isinstance(state.get("original_source"), str):
        original.source = state["original_source"]
    inputs = data["inputs"]
    if not inputs.is_floating_point() or inputs.dim() < 1:
        raise SessionFileError(f"{where}: the saved inputs are not a float tensor")

    # build the session around placeholder data of the saved shape (nothing is regenerated or re-read)
    placeholder = preset.copy()
    placeholder.data = type(preset.data)(inputs=GeneratorSpec("zeros", tuple(inputs.shape)))
    try:
        session = Session(placeholder, device=device)
    except EngineError as err:  # too large for memory, a device that is not here, ...: name the file too
        if not err.message.startswith(where):
            err.message = f"{where}: {err.message}"
            err.args = (err.message,)
        raise
    session.preset.data = preset.data
    session.original = original
    dev = session.device
    try:
        session.model.load_state_dict({k: v.to(dev) for k, v in weights.items()})
    except RuntimeError as err:
        raise SessionFileError(f"{where}: the saved weights do not fit the model: "
                               f"{str(err).splitlines()[0]}") from None
    session.inputs = inputs.to(dev)
    session.targets = data["targets"].to(dev) if "targets" in data else None
    session.test_inputs = data["test_inputs"].to(dev) if "test_inputs" in data else None
    session.test_targets = data["test_targets"].to(dev) if "test_targets" in data else None
    session.data_error = None
    if session.targets is None:
        from .errors import DataError

        session.data_error = DataError(state.get("data_error") or "the saved session has no targets")
    elif session.targets.shape[0] != session.inputs.shape[0]:
        raise SessionFileError(f"{where}: the saved targets do not match the inputs")

    session.optimizer = session.new_optimizer()  # with a fresh schedule, then both get their saved state
    if state.get("optimizer") is not None and session.optimizer is not None:
        try:
            session.optimizer.load_state_dict(_optimizer_state_dict(state["optimizer"], opt_tensors, where))
        except (ValueError, KeyError, RuntimeError) as err:
            raise SessionFileError(f"{where}: the optimizer state does not fit: {err}") from None
    if state.get("scheduler") is not None and session.scheduler is not None:
        try:
            session.scheduler.load_state_dict(state["scheduler"])
        except (TypeError, ValueError, KeyError) as err:
            raise SessionFileError(f"{where}: the schedule state does not fit: {err}") from None
    try:
        session.step = int(state["step"])
        session.batch_pos = int(state["batch_pos"])
        session.batch_perm = data["batch_perm"].to(dev) if "batch_perm" in data else None
        session.batch_gen.set_state(data["batch_gen"])
        torch.set_rng_state(data["torch_rng"])
        if "cuda_rng" in data and dev.type == "cuda":  # pragma: no cover - needs a GPU
            torch.cuda.set_rng_state(data["cuda_rng"], dev)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise SessionFileError(f"{where}: the batch or RNG state cannot be restored: {err}") from None
    _restore_history(session.history, history_csv, state.get("history") or {}, where)
    if start is not None:
        params = dict(session.model.named_parameters())
        # the weights the history began from; a file whose model was edited after its first run (saved before
        # `Session.rebuild` forgot them) has some of another model: only those are dropped, the session loads
        if set(start) == set(params) and all(start[k].shape == params[k].shape for k in params):
            session._start_weights = {k: v.to(dev) for k, v in start.items()}
    from .metrics import Evaluation

    try:
        for step, value in state.get("accuracy", []):
            session.metrics.accuracy.add(int(step), float(value))
        session.metrics.evals = [Evaluation(int(s), None if lo is None else float(lo), None if a is None else float(a),
                                            int(n)) for s, lo, a, n in state.get("evals", [])]
    except (TypeError, ValueError) as err:
        raise SessionFileError(f"{where}: the test evaluations cannot be read: {err}") from None
    if runs is not None:
        try:
            session.runs.load_list(runs)
        except EngineError as err:  # name the file and the member, as every other refusal here does
            raise SessionFileError(f"{where}: runs.json: {err.message}") from None
    return session


__all__ = ["save_session", "load_session", "session_bytes", "Autosave", "SessionFileError", "SUFFIX"]
