"""Reading a `.tuinn` archive (session_file.py describes the format), bounded before anything is inflated.

Reading is bounded before anything is inflated: the archive's directory (at most MAX_ENTRIES entries,
each member stored or deflated, no name twice, each member's declared size under its kind's cap and
plausible for its compressed size, the tensors together within the memory budget), then the small
members (state.json against the schema in session_schema.py, in session_load.py), then only the 8-byte length and the JSON
header of each safetensors member: dtypes, shapes and offsets must add up to exactly the member's size,
and the weights must be the model's own state dict. Only then are the tensors streamed, in chunks, into
tensors allocated once (the model's own parameters for the weights), with a hard limit of the declared
size (a member whose directory entry lies is stopped there) and every float checked finite. Every
refusal is a SessionFileError naming the file and the member (or the part of the state).

"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from lzma import LZMAError
from typing import Any, Callable, Iterator

import torch

from ..errors import EngineError
from ..text import bounded

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
# what a damaged archive raises: zlib errors, an encrypted member (RuntimeError), besides BadZipFile and OSError
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, LZMAError, NotImplementedError,
               RuntimeError)
MAX_HISTORY_CAPACITY = 1 << 16  # loss-history buckets (a session uses 4096); more is a hostile file
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8}
DATA_KEYS = ("inputs", "targets", "test_inputs", "test_targets", "batch_perm", "batch_gen", "torch_rng", "cuda_rng")


class SessionFileError(EngineError):
    """A .tuinn file that cannot be read back: names the file and the member. `member` is the member (or "" for
    the archive itself) and `reason` what is wrong, without the file's name."""

    def __init__(self, message: str, *, hint: str = "", member: str = "", reason: str = "") -> None:
        super().__init__(message, hint=hint)
        self.member = member
        self.reason = reason or message


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
