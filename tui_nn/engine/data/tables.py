"""A preset's data tables (`[data] dataset = ...` or `[data] csv = ...`): parsed and checked against the model's
input shape, loaded once per seed and cached (the split), attached to a session (its training and test
samples), and described in one line for the app and the CLI.

The data sets themselves are in generated.py, CSV files in csvfile.py, the split in split.py.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from typing import Any

import torch

from ..errors import DataError, PresetError
from ..spec import CsvSpec, DatasetSpec, DataSpec
from .csvfile import _columns, _lock, csv_split, escaped, parse_csv
from .generated import DATASETS, generate_dataset, parse_dataset
from .split import Split
from .targets import match_targets


def check_fits(data: DataSpec, input_shape: tuple[int, ...], source: str) -> None:
    """The data's features per sample must fit model.input_shape (the first dimension counts samples)."""
    want = tuple(input_shape[1:])
    if data.dataset is not None:
        info = DATASETS[data.dataset.name]
        if want != (info.features,):
            raise PresetError(f"the {info.name} data set has {info.features} feature(s) per sample but "
                              f"model.input_shape is {list(input_shape)}: use input_shape = "
                              f"[{input_shape[0]}, {info.features}]", source=source, field="data.dataset")
    if data.csv is not None:
        n = len(data.csv.features)
        if math.prod(want) != n:
            raise PresetError(f"{n} feature column(s) per sample but model.input_shape is {list(input_shape)} "
                              f"({math.prod(want)} values per sample)", source=source, field="data.csv.features")



def parse_data_tables(dataset: Any, csv_table: Any, *, inputs: Any, targets: Any, source: str,
                      input_shape: tuple[int, ...]) -> tuple[DatasetSpec | None, CsvSpec | None]:
    """`[data] dataset` / `[data] csv` of a preset file, checked against each other and the model."""
    if dataset is not None and csv_table is not None:
        raise PresetError("give either dataset or csv, not both", source=source, field="data.csv")
    if dataset is None and csv_table is None:
        return None, None
    which = "dataset" if dataset is not None else "csv"
    for key, value in (("inputs", inputs), ("targets", targets)):
        if value is not None:
            raise PresetError(f"{key} cannot be combined with {which} (the {which} gives both inputs and targets)",
                              source=source, field=f"data.{key}")
    ds = parse_dataset(dataset, source=source) if dataset is not None else None
    cs = parse_csv(csv_table, source=source) if csv_table is not None else None
    check_fits(DataSpec(dataset=ds, csv=cs), input_shape, source)
    return ds, cs



_split_cache: "OrderedDict[tuple[Any, ...], Split]" = OrderedDict()



def _split_key(data: DataSpec, seed: int) -> tuple[Any, ...] | None:
    if data.dataset is not None:
        return ("dataset", tuple(sorted(data.dataset.to_dict().items())), seed)
    if data.csv is not None:
        path = data.csv.resolved
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # read_csv names the problem
            return None
        return ("csv", os.path.abspath(path), st.st_mtime_ns, st.st_size, tuple(data.csv.features),
                tuple(data.csv.target), data.csv.test_fraction, seed)
    return None



def load_split(data: DataSpec, seed: int) -> Split | None:
    """The train/test split of a dataset or CSV data spec (None for inline/generated tensors). Cached."""
    if data.dataset is None and data.csv is None:
        return None
    key = _split_key(data, seed)
    with _lock:
        hit = _split_cache.get(key) if key is not None else None
        if hit is not None:
            _split_cache.move_to_end(key)
            return hit
    result = generate_dataset(data.dataset, seed) if data.dataset is not None else csv_split(data.csv, seed)  # type: ignore[arg-type]
    if key is not None:
        with _lock:
            _split_cache[key] = result
            while len(_split_cache) > 8:
                _split_cache.popitem(last=False)
    return result



def sample_view(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Rows of features as the model's samples (e.g. 784 CSV columns as [1, 28, 28])."""
    want = tuple(input_shape[1:])
    if tuple(x.shape[1:]) != want and x.shape[1:].numel() == math.prod(want):
        return x.reshape((x.shape[0],) + want)
    return x



def split_inputs(data: DataSpec, input_shape: tuple[int, ...], seed: int) -> torch.Tensor | None:
    s = load_split(data, seed)
    return None if s is None else sample_view(s.x_train, input_shape).clone()



def split_targets(data: DataSpec, seed: int) -> torch.Tensor | None:
    s = load_split(data, seed)
    return None if s is None else s.y_train.clone()



def attach_test_split(session: Any, kind: str) -> None:
    """Set `session.test_inputs` / `session.test_targets` (None without a test split), matched to the loss
    (`kind`: its target kind, training.objectives.LOSSES[loss].kind)."""
    session.test_inputs = None
    session.test_targets = None
    data = session.preset.data
    if data.dataset is None and data.csv is None:
        return
    s = load_split(data, session.training.seed)
    if s is None or s.x_test.shape[0] == 0 or session.targets is None:
        return
    n = int(s.x_test.shape[0])
    out = session.report.output_shape
    out_n = (n,) + tuple(out[1:]) if out is not None else None
    try:
        y = match_targets(s.y_test.clone(), session.training.loss.type, out_n, n, kind=kind)
    except DataError:
        return  # the training targets were accepted, so this cannot differ; be safe anyway
    session.test_inputs = sample_view(s.x_test, session.spec.input_shape).clone().to(session.device)
    session.test_targets = y.to(session.device)



def task_of(data: DataSpec) -> str | None:
    """"classification"/"regression" for a generated data set, else None."""
    return DATASETS[data.dataset.name].task if data.dataset is not None else None



def describe(data: DataSpec) -> str:
    """One line naming the data: "spiral, 200 samples, noise 0.1, 20% test"."""
    if data.dataset is not None:
        d = data.dataset
        text = f"{d.name}, {d.samples} samples, noise {d.noise:g}"
        if d.classes is not None:
            text += f", {d.classes} classes"
        fraction = d.test_fraction
    elif data.csv is not None:
        c = data.csv
        text = (f"{escaped(os.path.basename(c.path))}: {_columns(list(c.features), 6)} -> "
                f"{_columns(list(c.target), 6)}")
        fraction = c.test_fraction
    else:
        return "inline or generated tensors"
    if fraction:
        text += f", {fraction:.0%} test"
    return text


__all__ = ['parse_data_tables', 'check_fits', 'load_split', 'attach_test_split', 'describe', 'task_of', 'sample_view']
