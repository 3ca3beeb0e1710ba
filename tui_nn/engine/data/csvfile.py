"""Your own data from a CSV file with a header: `[data] csv = { path = "f.csv", features = ["x1", "x2"],
target = "y" }` reads those columns (the file is only ever read); a bad row is an error naming the file and
its line.

Where a CSV file may be (checked at every read, after symlinks are resolved; `csv_location`):

- a path written in a preset file is relative to the preset's folder and must stay inside it (`../` out
  of it, an absolute path, or a symlink leading out of it are refused, with the field named and a hint:
  copy the CSV file next to the preset); saving the preset elsewhere (`rebase`) keeps the path relative
  when the file is inside the new folder and refuses the save otherwise;
- an absolute path (typed in the app's CSV dialog, or kept in a session file, which holds the data
  itself and reads the CSV again only to rebuild or export) must name a file whose name ends in `.csv`;
- the file must be a regular, non-empty file (FIFOs, devices and the zero-sized files of /proc are
  refused before anything is read), of at most MAX_CSV_BYTES.

Column names and paths with control characters (C0, DEL, C1, line/paragraph separators, bidi controls)
are refused, in the preset's csv table and in the file's header row. An error message quotes file
content only to identify the problem, at most a few dozen characters, control characters escaped
(`shown`).

Determinism: the generator functions below draw from `torch.Generator().manual_seed(seed)` (the data
generator of the session's contract); then one permutation drawn from the same generator shuffles the
samples and the first `round(samples * test_fraction)` of it form the test split. The generator
functions and `split` use only `torch` and `math`, so `export.py` copies their source into exported
scripts unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import os
import threading
from collections import OrderedDict
from pathlib import Path
from stat import S_ISREG
from typing import Any

import torch

from ..errors import PresetError, did_you_mean, quote, shown
from ..spec import CsvSpec, DataSpec
from ..text import first_control
from .generated import DATASET_ARGS, _test_fraction_fits, _unknown
from .split import Split, split

MAX_CSV_BYTES = 64 * 1024 * 1024

MAX_CSV_COLUMNS = 100_000



CSV_KEYS = ("path", "features", "target", "test_fraction")



class CsvError(PresetError):
    """A CSV file that cannot be used: names the file, and the line of a bad row."""



SHOWN_CHARS = 40  # the most characters of a name, a cell or a path an error message quotes



def control_char(text: str) -> str | None:
    """The first control character of `text` (safe_text.first_control; tab and newline included: a column name
    or a path has no use for them), or None."""
    m = first_control(text)
    return m.group() if m else None



def escaped(text: str, limit: int = SHOWN_CHARS) -> str:
    """A file name or a cell in an error message: every control character escaped (errors.shown, newlines and
    tabs too), at most `limit` characters."""
    return shown(text, limit, keep="")



def _no_control(text: str, what: str, *, source: str, field: str = "", line: int | None = None) -> None:
    ch = control_char(text)
    if ch is not None:
        raise CsvError(f"{what} {quote(text)} holds a control character ({quote(ch)[1:-1]}): names and paths must be "
                       f"plain text", source=source, field=field, line=line)



def _names(value: Any, field: str, source: str, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not value or len(value) > MAX_CSV_COLUMNS
            or not all(isinstance(v, str) and v.strip() for v in value)):
        raise PresetError(f"expected {what}: a column name or a list of column names", source=source, field=field)
    for i, v in enumerate(value):
        _no_control(v, "the column name", source=source, field=f"{field}[{i}]" if len(value) > 1 else field)
    names = [v.strip() for v in value]
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise PresetError(f"column {quote(name)} is named twice", source=source, field=f"{field}[{i}]")
        seen.add(name)
    return names



def parse_csv(raw: Any, *, source: str = "<input>", field: str = "data.csv", base: str | None = None,
              allow_absolute: bool | None = None) -> CsvSpec:
    """Validate a `csv = { ... }` table and read the file once (its header and rows are checked now).

    Without `base`, the table comes from the preset file `source`: its path must be relative to that file's
    folder and stay inside it. A caller that gives `base` resolves a path the user typed (the app's CSV dialog:
    relative to the working folder); it may then also be absolute (`allow_absolute`, which defaults to whether
    `base` is given). Either way `read_csv` applies the rule of `csv_location`."""
    from ..model.args import check_arg

    if not isinstance(raw, dict):
        raise PresetError("expected a table such as { path = \"data.csv\", features = [\"x1\", \"x2\"], "
                          "target = \"y\" }", source=source, field=field)
    for key in raw:
        if key not in CSV_KEYS:
            raise _unknown(key, list(CSV_KEYS), field, source, "csv")
    for key in ("path", "features", "target"):
        if key not in raw:
            raise PresetError(f"csv needs \"{key}\"", source=source, field=f"{field}.{key}")
    path = raw["path"]
    if not isinstance(path, str) or not path.strip() or len(path) > 4096:
        raise PresetError("expected the path of a CSV file", source=source, field=f"{field}.path")
    _no_control(path, "the path", source=source, field=f"{field}.path")
    if allow_absolute is None:
        allow_absolute = base is not None
    if os.path.isabs(path) and not allow_absolute:
        raise CsvError(f"{quote(path)} is an absolute path; a preset names its CSV file by a path relative to its "
                       "own folder (a regular file in that folder or below it, such as \"points.csv\")",
                       source=source, field=f"{field}.path", hint=OUTSIDE_HINT)
    features = _names(raw["features"], f"{field}.features", source, "the feature columns")
    target = _names(raw["target"], f"{field}.target", source, "the target column(s)")
    fraction = check_arg(DATASET_ARGS[3], raw.get("test_fraction", 0.0), f"{field}.test_fraction", source)
    if base is None:
        p = Path(source)
        base = str(p.resolve().parent) if source and not source.startswith("<") else os.getcwd()
    spec = CsvSpec(path, features, target, fraction, base=base)
    x, _ = read_csv(spec, source=source, field=field)
    _test_fraction_fits(int(x.shape[0]), fraction, field, source)
    return spec



OUTSIDE_HINT = ("copy the CSV file into the preset's folder (or a folder below it) and name it by a relative "
                "path, such as path = \"points.csv\"")



def _inside(path: str, root: str) -> bool:
    """Whether the real path `path` is `root` or below it (both absolute, symlinks resolved)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive (Windows)
        return False



def rebase(data: DataSpec, folder: str | os.PathLike[str]) -> DataSpec:
    """A copy whose CSV path is written relative to `folder` (where the preset is being saved), so that the saved
    preset loads: the CSV file must be inside `folder` (after symlinks), else the save is refused (CsvError)."""
    import copy

    out = copy.deepcopy(data)
    if out.csv is not None:
        target = os.path.realpath(out.csv.resolved)
        root = os.path.realpath(folder)
        if not _inside(target, root):
            raise CsvError(f"the CSV file {quote(target, 200)} is outside the folder the preset is saved in; a "
                           "preset names its CSV file by a path inside its own folder", source=escaped(root, 200),
                           field="data.csv.path",
                           hint="save the preset in the CSV file's folder (or a folder above it), or copy the CSV "
                                "file next to the preset and choose it again in the data dialog (D) before saving")
        out.csv.path = os.path.relpath(target, root)
        out.csv.base = root
    return out



# ---------------------------------------------------------------------------------------------
# reading CSV files


_csv_cache: "OrderedDict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]]" = OrderedDict()

_lock = threading.Lock()



def csv_location(spec: CsvSpec, *, source: str | None = None, field: str = "data.csv") -> str:
    """The real path (symlinks resolved) of the spec's CSV file, once the path passes the rule of the module
    docstring: no control characters; relative: inside the folder it is relative to; absolute: a `.csv` file.
    Raises CsvError naming the field. Nothing is opened."""
    path = spec.path
    where = source or "<csv>"
    if not isinstance(path, str) or not path or len(path) > 4096:
        raise CsvError("expected the path of a CSV file", source=where, field=f"{field}.path")
    _no_control(path, "the path", source=where, field=f"{field}.path")
    if os.path.isabs(path):
        real = os.path.realpath(path)
        if not real.lower().endswith(".csv"):
            raise CsvError(f"{quote(path, 200)} is an absolute path to a file whose name (after symlinks) does not "
                           "end in .csv; only a .csv file is read by an absolute path", source=where,
                           field=f"{field}.path", hint="name the CSV file something.csv, or put it in the "
                                                       "preset's folder and name it by a relative path")
        return real
    root = os.path.realpath(spec.base or os.getcwd())
    real = os.path.realpath(os.path.join(root, path))
    if not _inside(real, root):
        raise CsvError(f"{quote(path, 200)} leads outside {quote(root, 200)}, the folder it is relative to (after "
                       "\"..\" and symlinks); a CSV file must be in that folder or below it", source=where,
                       field=f"{field}.path", hint=OUTSIDE_HINT)
    return real



def _checked_file(spec: CsvSpec, source: str | None, field: str) -> tuple[str, os.stat_result, str]:
    """(real path, its stat, the name errors give the file) of a CSV file that may be read."""
    real = csv_location(spec, source=source, field=field)
    where = source or escaped(spec.resolved, 300)
    try:
        st = os.stat(real)
    except OSError as err:
        raise CsvError(f"cannot read {quote(spec.path, 200)}: {err.strerror or err}", source=where,
                       field=f"{field}.path") from None
    if not S_ISREG(st.st_mode):  # a FIFO or a device (/dev/stdin, /dev/zero) would block or never end
        raise CsvError(f"{quote(spec.path, 200)} is not a regular file", source=where, field=f"{field}.path")
    name = escaped(spec.resolved, 300)
    if st.st_size > MAX_CSV_BYTES:
        raise CsvError(f"the file is too large ({st.st_size} bytes; at most {MAX_CSV_BYTES})", source=name)
    if st.st_size == 0:  # also the files of /proc, which say 0 and would be generated on reading
        raise CsvError("the file is empty: a CSV file needs a header row naming its columns", source=name, line=1)
    return real, st, where



def _read_bytes(spec: CsvSpec, real: str, where: str, field: str) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)  # read only: the file is never modified
        with os.fdopen(fd, "rb") as fh:
            if not S_ISREG(os.fstat(fh.fileno()).st_mode):  # replaced since the check
                raise CsvError(f"{quote(spec.path, 200)} is not a regular file", source=where, field=f"{field}.path")
            blob = fh.read(MAX_CSV_BYTES + 1)
    except OSError as err:
        raise CsvError(f"cannot read {quote(spec.path, 200)}: {err.strerror or err}", source=where,
                       field=f"{field}.path") from None
    if len(blob) > MAX_CSV_BYTES:
        raise CsvError(f"the file is too large (more than {MAX_CSV_BYTES} bytes)", source=escaped(spec.resolved, 300))
    return blob



def csv_bytes(spec: CsvSpec, *, source: str | None = None, field: str = "data.csv") -> tuple[str, bytes]:
    """(real path, content) of the spec's CSV file, read under the same rule as `read_csv` (export's digest)."""
    real, _, where = _checked_file(spec, source, field)
    return real, _read_bytes(spec, real, where, field)



def read_csv(spec: CsvSpec, *, source: str | None = None, field: str = "data.csv") -> tuple[torch.Tensor,
                                                                                               torch.Tensor]:
    """(features [N, F], targets [N, T]) as float64, from the file (cached while it is unchanged)."""
    real, st, where = _checked_file(spec, source, field)
    key = (real, st.st_mtime_ns, st.st_size, tuple(spec.features), tuple(spec.target))
    with _lock:
        hit = _csv_cache.get(key)
        if hit is not None:
            _csv_cache.move_to_end(key)
            return hit
    blob = _read_bytes(spec, real, where, field)
    result = parse_csv_text(blob, spec.features, spec.target, escaped(spec.resolved, 300))
    with _lock:
        _csv_cache[key] = result
        while len(_csv_cache) > 4:
            _csv_cache.popitem(last=False)
    return result



def _columns(names: list[str], most: int = 12) -> str:
    """The header's columns as an error message lists them: the first `most`, each bounded and escaped."""
    text = ", ".join(escaped(n) for n in names[:most])
    return text + (f", … ({len(names)} columns)" if len(names) > most else "")



def _near(name: str, names: list[str]) -> str:
    """did_you_mean over the header (bounded: the first 1000 columns of at most 64 characters)."""
    return did_you_mean(name, [n for n in names[:1000] if len(n) <= 64])



def parse_csv_text(blob: bytes, features: list[str], target: list[str], source: str = "<csv>") -> tuple[
        torch.Tensor, torch.Tensor]:
    """Parse CSV bytes (UTF-8, a header row): the chosen columns as float64 tensors. Raises CsvError.

    `export.py` writes `csv_columns` (below) into scripts that read the file themselves: the two must select
    and convert exactly alike (the tests compare them)."""
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = blob[:err.start].count(b"\n") + 1
        raise CsvError(f"not UTF-8 text (byte {err.start})", source=source, line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 1  # where the header row begins (a quoted cell may hold line breaks)
    try:
        while header is None:
            before = reader.line_num
            row = next(reader, None)
            if row is None:
                break
            if row:
                header, header_line = row, before + 1
    except csv.Error as err:
        raise CsvError(f"not valid CSV: {escaped(str(err), 120)}", source=source, line=reader.line_num) from None
    if header is None:
        raise CsvError("the file is empty: a CSV file needs a header row naming its columns", source=source,
                       line=1)
    for i, cell in enumerate(header):
        ch = control_char(cell)
        if ch is not None:
            raise CsvError(f"column {i + 1} of the header, {quote(cell)}, holds a control character "
                           f"({quote(ch)[1:-1]}): "
                           "column names must be plain text", source=source, line=header_line)
    names = [h.strip() for h in header]
    where: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in where:
            raise CsvError(f"column {quote(name)} appears twice in the header (columns {where[name] + 1} and {i + 1})",
                           source=source, line=header_line)
        where[name] = i
    cols: list[int] = []
    for role, wanted in (("feature", features), ("target", target)):
        for name in wanted:
            if name not in where:
                raise CsvError(f"no {role} column {quote(name)} in the header{_near(name, names)}; the columns "
                               f"are: {_columns(names)}", source=source, line=header_line)
            cols.append(where[name])
    values: list[float] = []
    rows = 0
    width = len(names)
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            line = reader.line_num
            if len(row) != width:
                raise CsvError(f"expected {width} cells, as the header has; got {len(row)}", source=source, line=line)
            for c in cols:
                cell = row[c].strip()
                try:
                    v = float(cell)
                except ValueError:
                    what = "an empty cell" if not cell else quote(cell)
                    raise CsvError(f"column {quote(names[c])}: expected a number; got {what}", source=source,
                                   line=line) from None
                if not math.isfinite(v):
                    raise CsvError(f"column {quote(names[c])}: expected a finite number; got {quote(cell)}",
                                   source=source, line=line)
                values.append(v)
            rows += 1
    except csv.Error as err:
        raise CsvError(f"not valid CSV: {escaped(str(err), 120)}", source=source, line=reader.line_num) from None
    if rows == 0:
        raise CsvError("the file has a header but no data rows", source=source, line=header_line)
    table = torch.tensor(values, dtype=torch.float64).reshape(rows, len(cols))
    return table[:, :len(features)].contiguous(), table[:, len(features):].contiguous()



def csv_columns(path, features, target):
    """Rows [features..., targets...] of floats from a CSV file with a header, as tui-nn reads it (UTF-8, an
    optional BOM; blank lines skipped; cells stripped, then float())."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        header = next(row for row in reader if row)
        names = [h.strip() for h in header]
        cols = [names.index(name) for name in list(features) + list(target)]
        rows = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            rows.append([float(row[c].strip()) for c in cols])
    return rows



def csv_split(spec: CsvSpec, seed: int) -> Split:
    feats, targets = read_csv(spec)
    x = feats.float()
    y = targets.float()
    if y.shape[1] == 1:
        y = y[:, 0]
    g = torch.Generator().manual_seed(seed)
    return Split(*split(x, y, spec.test_fraction, g), task="unknown")


__all__ = ['CsvError', 'parse_csv', 'read_csv', 'parse_csv_text', 'rebase', 'csv_location', 'csv_bytes', 'csv_columns', 'control_char', 'escaped', 'MAX_CSV_BYTES']
