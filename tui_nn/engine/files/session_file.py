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

Reading is bounded before anything is inflated: the archive's directory (at most MAX_ENTRIES entries,
each member stored or deflated, no name twice, each member's declared size under its kind's cap and
plausible for its compressed size, the tensors together within the memory budget), then the small
members (state.json against the schema in session_schema.py), then only the 8-byte length and the JSON
header of each safetensors member: dtypes, shapes and offsets must add up to exactly the member's size,
and the weights must be the model's own state dict. Only then are the tensors streamed, in chunks, into
tensors allocated once (the model's own parameters for the weights), with a hard limit of the declared
size (a member whose directory entry lies is stopped there) and every float checked finite. Every
refusal is a SessionFileError naming the file and the member (or the part of the state).

Saving checks the new archive with the loader's own checks before anything is written: a session that
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
import struct
import time
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from lzma import LZMAError
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from safetensors.torch import save as st_save

from ..errors import EngineError, PresetError
from ..spec import CsvSpec, GeneratorSpec, Preset
from ..text import bounded
from ..training.history import LossHistory

FORMAT = "tui-nn session"
VERSION = 1
SUFFIX = ".tuinn"
MAX_TEXT_BYTES = 64 * 1024 * 1024  # runs.json
# preset.toml and original.toml: what a preset file may be (preset.MAX_FILE_BYTES, 16 MiB), as tui-nn writes it back
# (inline numbers written as floats: up to 1.5x); parsing is about 1 s per MiB
MAX_PRESET_BYTES = 32 * 1024 * 1024
MAX_TENSOR_BYTES = 16 * 1024 ** 3  # one safetensors member, whatever the memory budget
MEMBERS = ("format.json", "preset.toml", "original.toml", "state.json", "weights.safetensors",
           "optimizer.safetensors", "data.safetensors", "history.csv", "runs.json", "start.safetensors")
TENSOR_MEMBERS = ("weights.safetensors", "optimizer.safetensors", "data.safetensors", "start.safetensors")
MEMBER_LIMITS = {"format.json": 4096, "preset.toml": MAX_PRESET_BYTES, "original.toml": MAX_PRESET_BYTES,
                 "state.json": 16 * 1024 * 1024, "history.csv": 16 * 1024 * 1024, "runs.json": MAX_TEXT_BYTES,
                 **{name: MAX_TENSOR_BYTES for name in TENSOR_MEMBERS}}
MAX_ENTRIES = 64  # zip entries (a session writes at most 10)
MAX_DIRECTORY_BYTES = 1024 * 1024  # the zip's central directory
MAX_HEADER_BYTES = 16 * 1024 * 1024  # a safetensors member's JSON header
DEFLATE_MAX_RATIO = 1032  # deflate cannot inflate one byte to more than about 1032
MAX_TENSOR_RATIO = 200  # a deflated tensor member over RATIO_FLOOR bytes inflating more than this is a bomb
RATIO_FLOOR = 64 * 1024 * 1024
CHUNK = 1024 * 1024  # bytes inflated at a time (a multiple of every element size)
MIN_AUTOSAVE_INTERVAL = 5.0
# what a damaged archive raises: zlib errors, an encrypted member (RuntimeError), besides BadZipFile and OSError
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, LZMAError, NotImplementedError,
               RuntimeError)
MAX_HISTORY_CAPACITY = 1 << 16  # loss-history buckets (a session uses 4096); more is a hostile file
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8}
DATA_KEYS = ("inputs", "targets", "test_inputs", "test_targets", "batch_perm", "batch_gen", "torch_rng", "cuda_rng")
_WORDS = {"weights.safetensors": "the weights", "optimizer.safetensors": "the optimizer state",
          "data.safetensors": "the data", "start.safetensors": "the start weights"}


class SessionFileError(EngineError):
    """A .tuinn file that cannot be read back: names the file and the member. `member` is the member (or "" for
    the archive itself) and `reason` what is wrong, without the file's name."""

    def __init__(self, message: str, *, hint: str = "", member: str = "", reason: str = "") -> None:
        super().__init__(message, hint=hint)
        self.member = member
        self.reason = reason or message


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
    from .preset_write import dumps_preset

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
    from .atomic import atomic_write_bytes

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


# ---------------------------------------------------------------------------------------------
# loading: the archive


def _clean(text: str, limit: int = 4096) -> str:
    """Text from the file that the app shows: control characters escaped, bounded."""
    return bounded(text, limit)


@dataclass
class _Entry:
    """One tensor of a safetensors header."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass
class _Header:
    """A safetensors member's header, checked: the entries in the order of their bytes, which cover the body
    exactly."""

    member: str
    info: zipfile.ZipInfo
    offset: int  # 8 + the JSON header's length: where the tensors' bytes begin
    entries: list[_Entry]

    def __post_init__(self) -> None:
        self.by_name = {e.name: e for e in self.entries}

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> _Entry:
        return self.by_name[name]


def _check_end_record(fh: Any, size: int, where: str) -> None:
    """Before zipfile parses the central directory (all of it, into memory): the end record's entry count and
    directory size (and the zip64 record's, when there is one) must be those of a session's archive."""
    tail_len = min(size, 65536 + 22)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    i = tail.rfind(b"PK\x05\x06")
    if i < 0 or len(tail) - i < 22:
        return  # not a zip: zipfile says so
    counts = [struct.unpack("<HHI", tail[i + 8:i + 16])]
    if i >= 20 and tail[i - 20:i - 16] == b"PK\x06\x07":  # a zip64 locator: the zip64 end record's numbers count
        (offset,) = struct.unpack("<Q", tail[i - 12:i - 4])
        if offset + 56 <= size:
            fh.seek(offset)
            rec = fh.read(56)
            if rec[:4] == b"PK\x06\x06":
                counts.append(struct.unpack("<QQQ", rec[24:48]))
    for entries_here, entries, directory in counts:
        listed = max(entries_here, entries)
        if listed > MAX_ENTRIES:
            raise SessionFileError(f"{where}: not a tui-nn session file: its directory lists {listed} members (a "
                                   f"session has at most {len(MEMBERS)})", reason="too many members")
        if directory > MAX_DIRECTORY_BYTES:
            raise SessionFileError(f"{where}: not a tui-nn session file: its directory takes {directory} bytes",
                                   reason="the directory is too large")


class _Archive:
    """A session archive being read: the directory checked on opening, then each member read with a hard limit
    of its declared size. `stage` is the member being worked on (named by a refusal that comes from elsewhere)."""

    def __init__(self, zf: zipfile.ZipFile, where: str, archive_size: int, *, budget: int | None) -> None:
        self.zf = zf
        self.where = where
        self.stage = "format.json"
        self.infos: dict[str, zipfile.ZipInfo] = {}
        entries = zf.infolist()
        if len(entries) > MAX_ENTRIES:
            raise self.error("", f"not a tui-nn session file: it holds {len(entries)} members")
        tensor_bytes: dict[str, int] = {}
        for info in entries:
            name = info.filename
            if name not in MEMBERS:
                continue  # never inflated
            if name in self.infos:
                raise self.error(name, f"{name} appears more than once in the archive")
            if info.flag_bits & 0x1:
                raise self.error(name, f"{name} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.error(name, f"{name} is compressed with method {info.compress_type}; a session's members "
                                       f"are stored or deflated (save it again with tui-nn)")
            limit = MEMBER_LIMITS[name]
            if info.file_size > limit:
                raise self.error(name, f"{name} is too large ({info.file_size} bytes; at most {limit})")
            if info.compress_size > archive_size or info.header_offset + info.compress_size > archive_size:
                raise self.error(name, f"{name} is damaged: it claims {info.compress_size} compressed bytes, more "
                                       f"than the file holds")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise self.error(name, f"{name} is damaged: stored, but {info.file_size} bytes from "
                                       f"{info.compress_size}")
            if info.compress_type == zipfile.ZIP_DEFLATED:
                if info.file_size > info.compress_size * DEFLATE_MAX_RATIO + 1024:
                    raise self.error(name, f"{name} is damaged: it claims {info.file_size} bytes from "
                                           f"{info.compress_size} compressed, more than deflate can give")
                if (name in TENSOR_MEMBERS and info.file_size > RATIO_FLOOR
                        and info.file_size > MAX_TENSOR_RATIO * info.compress_size):
                    raise self.error(name, f"{name} is too large for its size in the archive: {info.file_size} bytes "
                                           f"from {info.compress_size} ({info.file_size // max(info.compress_size, 1)}"
                                           f":1; a session's tensors do not compress like that)")
            if name in TENSOR_MEMBERS:
                tensor_bytes[name] = info.file_size
            self.infos[name] = info
        total = sum(tensor_bytes.values())
        if budget is not None and total > budget:
            largest = max(tensor_bytes, key=tensor_bytes.__getitem__)
            raise self.error(largest, f"{largest} is too large to load: the session's tensors take {total} bytes "
                                      f"({tensor_bytes[largest]} in {largest}), more than the memory budget of "
                                      f"{budget} bytes", hint="free some memory, or set TUI_NN_MEMORY_BUDGET (bytes)")

    def error(self, member: str, reason: str, hint: str = "") -> SessionFileError:
        return SessionFileError(f"{self.where}: {reason}", member=member, reason=reason, hint=hint)

    @contextmanager
    def reading(self, name: str) -> Iterator[None]:
        """Whatever reading `name` raises becomes a SessionFileError naming it."""
        self.stage = name
        try:
            yield
        except SessionFileError:
            raise
        except MemoryError:
            raise self.error(name, f"{name}: not enough memory to read it") from None
        except _ZIP_ERRORS as err:
            if isinstance(err, RuntimeError) and "memory" in str(err).lower():
                raise self.error(name, f"{name}: not enough memory to read it "
                                       f"({str(err).splitlines()[0][:200]})") from None
            raise self.error(name, f"{name} is damaged: {str(err)[:300]}") from None

    def raw(self, name: str, required: bool = True) -> bytes | None:
        info = self.infos.get(name)
        if info is None:
            if required:
                raise self.error(name, f"{name} is missing")
            return None
        size = info.file_size
        out = bytearray()
        with self.reading(name), self.zf.open(info) as fh:
            while len(out) <= size:
                chunk = fh.read(min(CHUNK, size + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
        if len(out) != size:
            raise self.error(name, f"{name} is damaged: {len(out)} bytes where its directory entry says {size}")
        return bytes(out)

    def text(self, name: str, required: bool = True) -> str | None:
        data = self.raw(name, required)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(name, f"{name} is not UTF-8 text") from None

    def json(self, name: str, required: bool = True) -> Any:
        text = self.text(name, required)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise self.error(name, f"{name} is not valid JSON: {err}") from None
        except RecursionError:  # not a ValueError: deeply nested arrays exhaust the decoder's stack
            raise self.error(name, f"{name} is nested too deeply") from None

    # -- safetensors members: the header first, then the body streamed

    def header(self, name: str) -> _Header | None:
        info = self.infos.get(name)
        if info is None:
            if name in ("start.safetensors",):
                return None
            raise self.error(name, f"{name} is missing")

        def bad(detail: str) -> SessionFileError:
            return self.error(name, f"{name} is not a valid safetensors file: {detail}")

        with self.reading(name), self.zf.open(info) as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise bad("shorter than the 8 bytes of its header's length")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER_BYTES, info.file_size - 8):
                raise bad(f"a header of {n} bytes in a member of {info.file_size}")
            raw = fh.read(n)
        if len(raw) != n:
            raise bad("the header is cut short")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise bad(f"the header is not JSON ({str(err)[:100]})") from None
        if not isinstance(doc, dict):
            raise bad("the header is not a JSON object")
        entries = []
        for key, value in doc.items():
            if key == "__metadata__":
                continue
            if len(key) > 256:
                raise bad("a tensor name is longer than 256 characters")
            if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data_offsets"}:
                raise bad(f"\"{_clean(key, 60)}\" is not a tensor entry")
            dtype, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
            if dtype not in _DTYPES:
                raise bad(f"\"{_clean(key, 60)}\" has dtype {_clean(str(dtype), 20)!r}; a session holds "
                          f"{', '.join(_DTYPES)}")
            if not (isinstance(shape, list) and len(shape) <= 16
                    and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
                raise bad(f"\"{_clean(key, 60)}\" has no valid shape")
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                    isinstance(o, int) and not isinstance(o, bool) for o in offsets) and 0 <= offsets[0] <= offsets[1]):
                raise bad(f"\"{_clean(key, 60)}\" has no valid data offsets")
            t = _DTYPES[dtype]
            if math.prod(shape) * t.itemsize != offsets[1] - offsets[0]:
                raise bad(f"\"{_clean(key, 60)}\": shape {shape[:8]} of {dtype} does not take the "
                          f"{offsets[1] - offsets[0]} bytes its offsets give")
            entries.append(_Entry(key, t, tuple(shape), offsets[0], offsets[1]))
        entries.sort(key=lambda e: (e.begin, e.end))
        pos = 0
        for e in entries:
            if e.begin != pos:
                raise bad(f"\"{_clean(e.name, 60)}\" does not start where the previous tensor ends")
            pos = e.end
        if 8 + n + pos != info.file_size:
            raise bad(f"its tensors take {pos} bytes, but the member holds {info.file_size - 8 - n} after the header")
        return _Header(name, info, 8 + n, entries)

    def stream(self, h: _Header,
               dest: Callable[[_Entry], torch.Tensor | None] | None = None) -> dict[str, torch.Tensor]:
        """The tensors of `h`, inflated CHUNK bytes at a time straight into the tensors `dest` gives (CPU,
        contiguous, of the entry's dtype and shape; None or no `dest`: checked, then dropped), every float checked
        finite, and not a byte more than the header says."""
        out: dict[str, torch.Tensor] = {}
        scratch: bytearray | None = None
        with self.reading(h.member), self.zf.open(h.info) as fh:
            skip = h.offset
            while skip:
                got = len(fh.read(min(CHUNK, skip)))
                if not got:
                    raise self.error(h.member, f"{h.member} is damaged: cut short")
                skip -= got
            for e in h.entries:
                t = dest(e) if dest is not None else None
                if t is not None:
                    assert t.device.type == "cpu" and t.is_contiguous() and t.dtype == e.dtype
                    target = memoryview(t.reshape(-1).view(torch.uint8).numpy()) if e.nbytes else None
                floating = e.dtype.is_floating_point
                pos = 0
                while pos < e.nbytes:
                    k = min(CHUNK, e.nbytes - pos)
                    if t is not None:
                        view = target[pos:pos + k]  # type: ignore[index]
                    else:
                        scratch = scratch if scratch is not None else bytearray(CHUNK)
                        view = memoryview(scratch)[:k]
                    if fh.readinto(view) != k:
                        raise self.error(h.member, f"{h.member} is damaged: cut short in \"{_clean(e.name, 60)}\"")
                    if floating and not bool(torch.isfinite(torch.frombuffer(view, dtype=e.dtype)).all()):
                        raise self.error(h.member, f"{h.member}: \"{_clean(e.name, 60)}\" holds NaN or Inf values")
                    pos += k
                if t is not None:
                    out[e.name] = t
            if fh.read(1):
                raise self.error(h.member, f"{h.member} is damaged: longer than its header says")
        return out


# ---------------------------------------------------------------------------------------------
# loading: the parts


def _preset(text: str, source: str) -> Preset:
    """A preset from the archive; a CSV data table is taken as written (the data itself is in the archive, so
    the CSV file need not exist any more)."""
    from .preset_read import parse_toml, preset_from_dict

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
    from ..training.runs import RunRegistry
    from .session_schema import StateError, parse_state

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


def _optimizer_check(arc: _Archive, parts: _Parts, optimizer: Any, scheduler: Any
                     ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The optimizer state dict (tensor references still to fill in) and the schedule state to load, checked
    against the fresh `optimizer` and `scheduler`; (None, None) parts where there is nothing to load."""
    from .session_schema import StateError, optimizer_state, scheduler_state

    state = parts.state
    h = parts.headers["optimizer.safetensors"]
    opt_sd = sched_sd = None
    try:
        if state.optimizer is not None and optimizer is not None:
            opt_sd, _ = optimizer_state(state.optimizer, optimizer, {e.name: (e.dtype, e.shape) for e in h.entries})
        elif h.entries:
            raise StateError("optimizer", "optimizer.safetensors holds tensors, but there is no optimizer state "
                                          "to use them")
        if state.scheduler is not None and scheduler is not None:
            sched_sd = scheduler_state(state.scheduler, scheduler, state.step)
    except StateError as err:
        raise _state_error(arc, err) from None
    return opt_sd, sched_sd


def _fresh_optimizer(session: Any) -> tuple[Any, Any]:
    """A fresh optimizer and schedule over the session's parameters, made as `Session.new_optimizer` makes them,
    without touching the session's own."""
    from ..training.objectives import make_optimizer
    from ..training.schedules import make_scheduler

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
            _optimizer_check(arc, parts, opt, sched)
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
    from ..shapes.budget import default_budget

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
    from ..training.metrics import Evaluation
    from ..training.session import Session

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
    opt_sd, sched_sd = _optimizer_check(arc, parts, session.optimizer, session.scheduler)
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
        from ..errors import DataError

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


__all__ = ["save_session", "load_session", "session_bytes", "check_session_bytes", "Autosave", "AutosaveSkipped",
           "SessionFileError", "UnsavableSession", "SUFFIX"]
