"""Reopening a `.tuinn` session (session_file.py describes the format): its parts read through the bounded
archive reader (session_archive.py) and checked (the preset, state.json against session_schema.py, the history,
the data, the weights against the model, the optimizer state), then the session rebuilt around them in exactly
the state it was saved in. `check_session_bytes` runs the same checks on an archive in memory (saving uses it).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError, EngineError, PresetError
from ..shapes.budget import default_budget
from ..spec import CsvSpec, GeneratorSpec, Preset
from ..training.history import LossHistory
from ..training.metrics import Evaluation
from ..training.objectives import make_optimizer
from ..training.runs import RunRegistry
from ..training.schedules import make_scheduler, needs_momentum
from ..training.session import Session
from .preset_read import parse_toml, preset_from_dict
from .session_archive import (
    _ZIP_ERRORS,
    DATA_KEYS,
    FORMAT,
    MAX_TENSOR_BYTES,
    TENSOR_MEMBERS,
    VERSION,
    SessionFileError,
    _Archive,
    _check_end_record,
    _clean,
    _Entry,
    _Header,
)
from .session_schema import StateError, optimizer_state, parse_state, scheduler_state

# ---------------------------------------------------------------------------------------------
# loading: the parts


def _preset(text: str, source: str) -> Preset:
    """A preset from the archive; a CSV data table is taken as written (the data itself is in the archive, so
    the CSV file need not exist any more)."""
    raw = parse_toml(text, source)  # the same bounds as for preset files (size, nesting, huge numbers)
    table = raw.get("data", {}).pop("csv", None) if isinstance(raw.get("data"), dict) else None
    preset = preset_from_dict(raw, source)
    if table is not None:
        try:
            target = table["target"]
            features = table["features"]
            if not isinstance(features, list) or len(features) > 100_000:
                raise TypeError("features must be a list of column names")
            preset.data.csv = CsvSpec(path=str(table["path"]), features=[str(f) for f in features],
                                      target=[str(target)] if isinstance(target, str) else [str(t) for t in target],
                                      test_fraction=float(table.get("test_fraction", 0.0)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise PresetError(f"the csv table cannot be read: {err!r}", source=source, field="data.csv") from None
    return preset


_INT = re.compile(r"^-?[0-9]{1,19}$")


def _history(arc: _Archive, text: str, meta: Any) -> LossHistory:
    """history.csv (its rows counted before any is parsed) and state.json's history meta, as a LossHistory."""
    def bad(detail: str) -> SessionFileError:
        return arc.error("history.csv", f"history.csv: the history cannot be read: {detail}")

    if text.count("\n") > meta.capacity + 2:
        raise bad(f"more rows than the capacity of {meta.capacity}")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "step,loss,min,max,count,sum":
        raise bad("the first row is not step,loss,min,max,count,sum")
    rows = []
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if len(cells) != 6 or any(len(c) > 40 for c in cells):
            raise bad(f"row {i + 2}: expected 6 cells")
        if not (_INT.match(cells[0]) and _INT.match(cells[4])):
            raise bad(f"row {i + 2}: the step and the count must be integers")
        try:
            float(cells[1])  # the mean: written for people reading the CSV, derived again from sum / count
            rows.append((int(cells[0]), float(cells[2]), float(cells[3]), int(cells[4]), float(cells[5])))
        except ValueError as err:
            raise bad(f"row {i + 2}: {err}") from None
    try:
        return LossHistory.restore(meta.capacity, meta.width, meta.steps, meta.last, rows)
    except ValueError as err:
        raise bad(str(err)) from None


def _state_error(arc: _Archive, err: Any) -> SessionFileError:
    """A StateError (session_schema) as the file's refusal: "state.json: optimizer.param_groups[0].lr: ..."."""
    return arc.error("state.json", f"state.json: {err.field}: {err.message}" if err.field else
                     f"state.json {err.message}")


@dataclass
class _Parts:
    """Everything of an archive but the tensors' bodies, checked."""

    preset: Preset
    original: Preset
    state: Any  # session_schema.SessionState
    history: LossHistory
    runs: Any  # RunRegistry
    headers: dict[str, _Header]


def _read_parts(arc: _Archive) -> _Parts:
    where = arc.where
    fmt = arc.json("format.json")
    if not isinstance(fmt, dict) or fmt.get("format") != FORMAT:
        raise arc.error("", "not a tui-nn session file")
    if fmt.get("version") != VERSION:
        raise arc.error("", f"session format version {_clean(repr(fmt.get('version')), 40)} is not supported "
                            f"(this tui-nn reads version {VERSION})")
    arc.stage = "preset.toml"
    preset = _preset(arc.text("preset.toml") or "", f"{where}:preset.toml")
    arc.stage = "original.toml"
    original = _preset(arc.text("original.toml") or "", f"{where}:original.toml")
    raw_state = arc.raw("state.json")
    try:
        state = parse_state(raw_state or b"")
    except StateError as err:
        raise _state_error(arc, err) from None
    history = _history(arc, arc.text("history.csv") or "", state.history)
    runs = RunRegistry()
    items = arc.json("runs.json", required=False)
    if items is not None:
        try:
            runs.load_list(items)
        except EngineError as err:  # name the file and the member, as every other refusal here does
            raise arc.error("runs.json", f"runs.json: {err.message}") from None
    headers = {}
    for name in TENSOR_MEMBERS:
        h = arc.header(name)
        if h is not None:
            headers[name] = h
    _check_data(arc, headers["data.safetensors"], state)
    shape = headers["data.safetensors"]["inputs"].shape
    if tuple(shape[1:]) != tuple(preset.model.input_shape[1:]):  # a session's inputs always have the model's
        raise arc.error("data.safetensors", f"data.safetensors: the saved inputs have samples of shape "
                                            f"{list(shape[1:8])}, but preset.toml's model.input_shape is "
                                            f"{list(preset.model.input_shape)}")
    return _Parts(preset, original, state, history, runs, headers)


_RNG_BYTES: int | None = None


def _rng_bytes() -> int:
    global _RNG_BYTES
    if _RNG_BYTES is None:
        _RNG_BYTES = int(torch.Generator().get_state().numel())
    return _RNG_BYTES


def _check_data(arc: _Archive, h: _Header, state: Any) -> None:
    """data.safetensors' header: only the tensors a session saves, of the shapes and dtypes that fit together."""
    def bad(detail: str) -> SessionFileError:
        return arc.error("data.safetensors", f"data.safetensors: {detail}")

    for e in h.entries:
        if e.name not in DATA_KEYS:
            raise bad(f"\"{_clean(e.name, 60)}\" is not a tensor a session saves")
    for key in ("inputs", "batch_gen", "torch_rng"):
        if key not in h:
            raise bad(f"has no \"{key}\"")
    x = h["inputs"]
    if not x.dtype.is_floating_point or len(x.shape) < 1:
        raise bad("the saved inputs are not a float tensor")
    n = x.shape[0]
    if "targets" in h and (len(h["targets"].shape) < 1 or h["targets"].shape[0] != n):
        raise bad(f"the saved targets do not match the inputs ({n} samples)")
    if ("test_inputs" in h) != ("test_targets" in h):
        raise bad("the test inputs and targets do not come together")
    if "test_inputs" in h:
        tx, ty = h["test_inputs"], h["test_targets"]
        if not tx.dtype.is_floating_point or tx.shape[1:] != x.shape[1:]:
            raise bad("the saved test inputs do not have the inputs' sample shape")
        if len(ty.shape) < 1 or ty.shape[0] != tx.shape[0] or (
                "targets" in h and (ty.shape[1:] != h["targets"].shape[1:] or ty.dtype != h["targets"].dtype)):
            raise bad("the saved test targets do not match the test inputs and the targets")
    for key in ("batch_gen", "torch_rng"):
        e = h[key]
        if e.dtype != torch.uint8 or e.shape != (_rng_bytes(),):
            raise bad(f"\"{key}\" is not a random generator's state ({_rng_bytes()} bytes)")
    if "cuda_rng" in h and (h["cuda_rng"].dtype != torch.uint8 or len(h["cuda_rng"].shape) != 1
                            or h["cuda_rng"].shape[0] > 4096):
        raise bad("\"cuda_rng\" is not a CUDA generator's state")
    perm = h.by_name.get("batch_perm")
    if perm is not None and (perm.dtype != torch.int64 or len(perm.shape) != 1):
        raise bad("\"batch_perm\" is not a list of sample indices (int64)")
    # a mini-batch position past the end means "a new epoch next" (the last batch overshoots by less than its
    # size, itself less than the samples then)
    most = 2 * max(n, perm.shape[0] if perm is not None else 0)
    if state.batch_pos > most:
        raise arc.error("state.json", f"state.json: batch_pos: {state.batch_pos} is more than twice the "
                                      f"{max(n, perm.shape[0] if perm is not None else 0)} samples")


def _check_perm(arc: _Archive, perm: torch.Tensor | None, n: int, batch_pos: int) -> None:
    """A batch order still in use (its epoch not over) may only name samples that exist."""
    if perm is not None and batch_pos < perm.shape[0] and perm.numel() and (
            int(perm.min()) < 0 or int(perm.max()) >= n):
        raise arc.error("data.safetensors", f"data.safetensors: \"batch_perm\" names samples outside 0..{n - 1}")


def _weights_fit(arc: _Archive, h: _Header, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    missing = [k for k in sd if k not in h]
    extra = [e.name for e in h.entries if e.name not in sd]
    if missing or extra:
        detail = (f"missing \"{missing[0]}\"" if missing else f"unexpected \"{_clean(extra[0], 60)}\"")
        raise arc.error("weights.safetensors", f"the saved weights do not fit the model: {detail} "
                                               f"(weights.safetensors)")
    for k, v in sd.items():
        e = h[k]
        if e.shape != tuple(v.shape) or e.dtype != v.dtype:
            raise arc.error("weights.safetensors", f"the saved weights do not fit the model: \"{k}\" is "
                                                   f"{list(e.shape)} {e.dtype}, the model's {list(v.shape)} {v.dtype} "
                                                   f"(weights.safetensors)")
    return sd


def _optimizer_check(arc: _Archive, parts: _Parts, optimizer: Any, scheduler: Any, cycled: bool = False
                     ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The optimizer state dict (tensor references still to fill in) and the schedule state to load, checked
    against the fresh `optimizer` and `scheduler`; (None, None) parts where there is nothing to load."""
    state = parts.state
    h = parts.headers["optimizer.safetensors"]
    opt_sd = sched_sd = None
    try:
        if state.optimizer is not None and optimizer is not None:
            opt_sd, _ = optimizer_state(state.optimizer, optimizer, {e.name: (e.dtype, e.shape) for e in h.entries},
                                        cycled=cycled)
        elif h.entries:
            raise StateError("optimizer", "optimizer.safetensors holds tensors, but there is no optimizer state "
                                          "to use them")
        if state.scheduler is not None and scheduler is not None:
            sched_sd = scheduler_state(state.scheduler, scheduler, state.step)
    except StateError as err:
        raise _state_error(arc, err) from None
    return opt_sd, sched_sd


def _cycled(session: Any) -> bool:
    """Whether the session's schedule moves the optimizer's momentum (saved as progress, not as a setting)."""
    spec = session.training.scheduler
    return spec is not None and needs_momentum(spec)


def _fresh_optimizer(session: Any) -> tuple[Any, Any]:
    """A fresh optimizer and schedule over the session's parameters, made as `Session.new_optimizer` makes them,
    without touching the session's own."""
    params = list(session.model.parameters())
    if not params:
        return None, None
    o = session.training.optimizer
    opt = make_optimizer(o.type, params, o.args)
    return opt, make_scheduler(session.training.scheduler, opt)


def check_session_bytes(blob: bytes, where: str = "<session>", session: Any = None) -> None:
    """The loader's checks on a session archive in memory, without building a session: the directory, every
    member, the state against its schema, every tensor streamed and checked finite (nothing kept). With
    `session` (the one the bytes were made from) also that the weights are its model's and the optimizer and
    schedule state fit fresh ones of its settings. Raises the SessionFileError `load_session` would raise."""
    buf = io.BytesIO(blob)
    _check_end_record(buf, len(blob), where)
    try:
        zf = zipfile.ZipFile(buf)
    except _ZIP_ERRORS as err:
        raise SessionFileError(f"{where}: not a tui-nn session file ({err})") from None
    with zf:
        arc = _Archive(zf, where, len(blob), budget=None)  # the budget is the loading process's, not the file's
        parts = _read_parts(arc)
        if session is not None:
            _weights_fit(arc, parts.headers["weights.safetensors"], session.model)
            opt, sched = _fresh_optimizer(session)
            _optimizer_check(arc, parts, opt, sched, cycled=_cycled(session))
        for name, h in parts.headers.items():
            kept = arc.stream(h, lambda e: torch.empty(e.shape, dtype=e.dtype) if e.name == "batch_perm" else None)
            if name == "data.safetensors":
                _check_perm(arc, kept.get("batch_perm"), parts.headers[name]["inputs"].shape[0],
                            parts.state.batch_pos)


# ---------------------------------------------------------------------------------------------
# loading: the session


def load_session(path: str | os.PathLike[str], *, device: str | None = None) -> Any:
    """Reopen a session saved by `save_session`, in exactly the state it was saved in. Every refusal is an
    EngineError naming the file (a SessionFileError naming the member too, or the preset's PresetError)."""
    p = Path(path)
    where = str(p)
    try:
        if p.exists() and not p.is_file():  # a folder, a FIFO or a device: would fail, block or never end
            raise SessionFileError(f"{where}: not a regular file")
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            _check_end_record(fh, size, where)
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise SessionFileError(f"{where}: no such file") from None
    except SessionFileError:
        raise
    except MemoryError:
        raise SessionFileError(f"{where}: not a tui-nn session file that fits in memory") from None
    except _ZIP_ERRORS as err:
        raise SessionFileError(f"{where}: not a tui-nn session file ({err})") from None
    budget = min(default_budget("cpu"), MAX_TENSOR_BYTES * len(TENSOR_MEMBERS))
    arc: _Archive | None = None
    try:
        with zf:
            arc = _Archive(zf, where, size, budget=budget)
            return _load(arc, _read_parts(arc), device)
    except EngineError:
        raise
    except (MemoryError, RuntimeError) as err:  # an allocation refused (under a memory cap), or torch's own refusal
        member = arc.stage if arc is not None else ""
        what = "not enough memory to load it" if isinstance(err, MemoryError) or "memory" in str(err).lower() else \
            "cannot be loaded"
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        reason = f"{member}: {what} ({detail})" if member else f"not a tui-nn session file: {what} ({detail})"
        raise SessionFileError(f"{where}: {reason}", member=member, reason=reason) from None


def _load(arc: _Archive, parts: _Parts, device: str | None) -> Any:
    where = arc.where
    state = parts.state
    preset, original = parts.preset, parts.original
    if state.source is not None:
        preset.source = _clean(state.source)
    if state.original_source is not None:
        original.source = _clean(state.original_source)
    data_h = parts.headers["data.safetensors"]
    shape = data_h["inputs"].shape
    n = shape[0]

    # build the session around two placeholder samples of the saved shape (nothing is regenerated or re-read),
    # then check the memory budget for all of them before any tensor is read
    placeholder = preset.copy()
    placeholder.data = type(preset.data)(inputs=GeneratorSpec("zeros", (min(n, 2),) + tuple(shape[1:])))
    arc.stage = "preset.toml"
    try:
        session = Session(placeholder, device=device)
        session.report = session._check(session.spec, tuple(shape))
    except EngineError as err:  # too large for memory, a device that is not here, ...: name the file too
        if not err.message.startswith(where):
            err.message = f"{where}: {err.message}"
            err.args = (err.message,)
        raise
    session.preset.data = preset.data
    session.original = original
    dev = session.device
    on_cpu = dev.type == "cpu"
    weights_h = parts.headers["weights.safetensors"]
    sd = _weights_fit(arc, weights_h, session.model)
    session.optimizer = session.new_optimizer()  # with a fresh schedule, then both get their saved state
    opt_sd, sched_sd = _optimizer_check(arc, parts, session.optimizer, session.scheduler, cycled=_cycled(session))
    start_h = parts.headers.get("start.safetensors")
    params = dict(session.model.named_parameters())
    # the weights the history began from; a file whose model was edited after its first run (saved before
    # `Session.rebuild` forgot them) has some of another model: only those are dropped (never read), the session
    # loads
    if start_h is not None and not (set(start_h.by_name) == set(params) and all(
            start_h[k].shape == tuple(p.shape) and start_h[k].dtype == p.dtype for k, p in params.items())):
        start_h = None

    def fresh(e: _Entry) -> torch.Tensor:
        return torch.empty(e.shape, dtype=e.dtype)

    # the tensors, streamed: the weights straight into the model's own tensors (on the CPU)
    def into_model(e: _Entry) -> torch.Tensor:
        t = sd[e.name]
        return t if on_cpu and t.is_contiguous() else fresh(e)

    loaded = arc.stream(weights_h, into_model)
    with torch.no_grad():
        for k, t in loaded.items():
            if t is not sd[k]:
                sd[k].copy_(t)
    del loaded
    data = arc.stream(data_h, fresh)
    opt_tensors = arc.stream(parts.headers["optimizer.safetensors"], fresh)
    start = arc.stream(start_h, fresh) if start_h is not None else None
    _check_perm(arc, data.get("batch_perm"), n, state.batch_pos)

    arc.stage = "data.safetensors"
    session.inputs = data.pop("inputs").to(dev)
    session.targets = data["targets"].to(dev) if "targets" in data else None
    session.test_inputs = data["test_inputs"].to(dev) if "test_inputs" in data else None
    session.test_targets = data["test_targets"].to(dev) if "test_targets" in data else None
    session.data_error = None
    if session.targets is None:
        session.data_error = DataError(_clean(state.data_error or "the saved session has no targets"))

    arc.stage = "optimizer.safetensors"
    if opt_sd is not None:
        for entry in opt_sd["state"].values():
            for key, value in entry.items():
                if isinstance(value, dict) and "tensor" in value:
                    entry[key] = opt_tensors[value["tensor"]]
        try:
            session.optimizer.load_state_dict(opt_sd)
        except (ValueError, KeyError, TypeError, RuntimeError) as err:
            raise arc.error("state.json", f"state.json: the optimizer state does not fit: {str(err)[:300]}") from None
    if sched_sd is not None:
        try:
            session.scheduler.load_state_dict(sched_sd)
        except (TypeError, ValueError, KeyError) as err:
            raise arc.error("state.json", f"state.json: the schedule state does not fit: {str(err)[:300]}") from None
    arc.stage = "data.safetensors"
    try:
        session.step = state.step
        session.batch_pos = state.batch_pos
        session.batch_perm = data["batch_perm"].to(dev) if "batch_perm" in data else None
        session.batch_gen.set_state(data["batch_gen"])
        torch.set_rng_state(data["torch_rng"])
        if "cuda_rng" in data and dev.type == "cuda":  # pragma: no cover - needs a GPU
            torch.cuda.set_rng_state(data["cuda_rng"], dev)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise arc.error("data.safetensors", f"data.safetensors: the batch or RNG state cannot be restored: "
                                            f"{str(err)[:200]}") from None
    session.history.__dict__.update(parts.history.__dict__)
    if start is not None:
        session._start_weights = {k: v.to(dev) for k, v in start.items()}
    for step, value in state.accuracy:
        session.metrics.accuracy.add(step, value)
    session.metrics.evals = [Evaluation(s, lo, a, k) for s, lo, a, k in state.evals]
    session.runs.__dict__.update(parts.runs.__dict__)
    return session


__all__ = ["check_session_bytes", "load_session"]
