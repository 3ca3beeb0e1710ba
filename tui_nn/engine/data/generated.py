"""The playground's generated 2-D data sets (in the style of TensorFlow Playground), all seeded:

- classification, 2 features in about [-1, 1]: xor, circles, moons, blobs, spiral (labels 0, 1, ...);
- regression: sine (1 feature, y = sin(pi x)), plane (2 features, y = (x1 + x2) / 2).

`[data] dataset = { name = "spiral", samples = 200, noise = 0.1, test_fraction = 0.2 }` (blobs and
spiral also take `classes`).

Determinism: the generator functions below draw from `torch.Generator().manual_seed(seed)` (the data
generator of the session's contract); then one permutation drawn from the same generator shuffles the
samples and the first `round(samples * test_fraction)` of it form the test split (split.py). The generator
functions and `split` use only `torch` and `math`, so files/export.py copies their source into exported
scripts unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import DataError, PresetError, did_you_mean
from ..model.catalogue import CHOICE, FLOAT, INT, ArgSpec
from ..spec import DatasetSpec
from .split import Split, split

MAX_SAMPLES = 1_000_000



# ---------------------------------------------------------------------------------------------
# the generators (self-contained: copied verbatim into exported scripts)


def make_xor(n, noise, g, classes=None):
    p = torch.rand(n, 2, generator=g) * 2 - 1
    p = p + 0.05 * torch.sign(p)  # keep the points a little away from the axes
    y = (p[:, 0] * p[:, 1] >= 0).float()
    return p + noise * torch.randn(n, 2, generator=g), y



def make_circles(n, noise, g, classes=None):
    inner = torch.arange(n) < n // 2
    r = torch.rand(n, generator=g)
    r = torch.where(inner, r * 0.5, 0.7 + r * 0.3)
    a = torch.rand(n, generator=g) * (2 * math.pi)
    p = torch.stack([r * torch.cos(a), r * torch.sin(a)], 1)
    return p + noise * torch.randn(n, 2, generator=g), inner.float()



def make_moons(n, noise, g, classes=None):
    upper = torch.arange(n) < (n + 1) // 2
    t = torch.rand(n, generator=g) * math.pi
    px = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    py = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    p = (torch.stack([px, py], 1) - torch.tensor([0.5, 0.25])) * 0.6
    return p + noise * torch.randn(n, 2, generator=g), (~upper).float()



def make_blobs(n, noise, g, classes=2):
    k = torch.arange(n) % classes
    a = k.float() * (2 * math.pi / classes) + math.pi / 4
    centre = 0.5 * torch.stack([torch.cos(a), torch.sin(a)], 1)
    return centre + (0.15 + noise) * torch.randn(n, 2, generator=g), k.float()



def make_spiral(n, noise, g, classes=2):
    k = torch.arange(n) % classes
    t = torch.rand(n, generator=g)
    a = 1.75 * 2 * math.pi * t + k.float() * (2 * math.pi / classes)
    p = torch.stack([t * torch.sin(a), t * torch.cos(a)], 1)
    return p + noise * torch.randn(n, 2, generator=g), k.float()



def make_sine(n, noise, g, classes=None):
    x = torch.rand(n, 1, generator=g) * 2 - 1
    return x, torch.sin(math.pi * x[:, 0]) + noise * torch.randn(n, generator=g)



def make_plane(n, noise, g, classes=None):
    x = torch.rand(n, 2, generator=g) * 2 - 1
    return x, (x[:, 0] + x[:, 1]) / 2 + noise * torch.randn(n, generator=g)



@dataclass(frozen=True)
class DatasetInfo:
    name: str
    fn: Callable[..., Any]
    features: int
    task: str  # "classification" or "regression"
    doc: str
    takes_classes: bool = False



DATASETS: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("xor", make_xor, 2, "classification", "class 1 where x1 and x2 have the same sign"),
    DatasetInfo("circles", make_circles, 2, "classification", "a disc (class 1) inside a ring (class 0)"),
    DatasetInfo("moons", make_moons, 2, "classification", "two interleaved half circles"),
    DatasetInfo("blobs", make_blobs, 2, "classification", "Gaussian clusters, one per class", True),
    DatasetInfo("spiral", make_spiral, 2, "classification", "interleaved spiral arms, one per class", True),
    DatasetInfo("sine", make_sine, 1, "regression", "y = sin(pi x) for x in [-1, 1]"),
    DatasetInfo("plane", make_plane, 2, "regression", "y = (x1 + x2) / 2 for x in [-1, 1]^2"),
]}



# ---------------------------------------------------------------------------------------------
# preset tables


DATASET_ARGS = (
    ArgSpec("name", CHOICE, None, required=True, choices=tuple(DATASETS), doc="which data set"),
    ArgSpec("samples", INT, 200, min=1, max=MAX_SAMPLES, doc="number of samples (training + test)"),
    ArgSpec("noise", FLOAT, 0.0, min=0.0, max=10.0, doc="standard deviation of the Gaussian noise"),
    ArgSpec("test_fraction", FLOAT, 0.0, min=0.0, max=0.9, doc="share of the samples held out for testing"),
    ArgSpec("classes", INT, 2, min=2, max=10, doc="number of classes (blobs and spiral)"),
)



def _unknown(key: str, choices: list[str], field: str, source: str, what: str) -> PresetError:
    return PresetError(f"unknown key \"{key}\" for {what}{did_you_mean(key, choices)}; expected one of: "
                       f"{', '.join(choices)}", source=source, field=f"{field}.{key}")



def _test_fraction_fits(n: int, fraction: float, field: str, source: str) -> None:
    if n - round(n * fraction) < 1:
        raise PresetError(f"test_fraction {fraction:g} of {n} samples leaves no training sample", source=source,
                          field=f"{field}.test_fraction")



def parse_dataset(raw: Any, *, source: str = "<input>", field: str = "data.dataset") -> DatasetSpec:
    from ..model.args import check_arg

    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise PresetError("expected a table such as { name = \"spiral\", samples = 200, noise = 0.1 }",
                          source=source, field=field)
    specs = {a.name: a for a in DATASET_ARGS}
    for key in raw:
        if key not in specs:
            raise _unknown(key, list(specs), field, source, "a data set")
    if "name" not in raw:
        raise PresetError(f"a data set needs a \"name\": one of {', '.join(DATASETS)}", source=source,
                          field=f"{field}.name")
    values = {key: check_arg(specs[key], v, f"{field}.{key}", source) for key, v in raw.items()}
    info = DATASETS[values["name"]]
    if "classes" in values and not info.takes_classes:
        raise PresetError(f"the {info.name} data set has 2 classes; only blobs and spiral take \"classes\"",
                          source=source, field=f"{field}.classes")
    spec = DatasetSpec(values["name"], values.get("samples", 200), values.get("noise", 0.0),
                       values.get("test_fraction", 0.0), values.get("classes"))
    _test_fraction_fits(spec.samples, spec.test_fraction, field, source)
    return spec



def generate_dataset(spec: DatasetSpec, seed: int) -> Split:
    if spec.name not in DATASETS:
        raise DataError(f"unknown data set \"{spec.name}\"{did_you_mean(spec.name, DATASETS)}")
    info = DATASETS[spec.name]
    g = torch.Generator().manual_seed(seed)
    classes = spec.classes if spec.classes is not None else 2
    x, y = info.fn(spec.samples, spec.noise, g, classes)
    return Split(*split(x, y, spec.test_fraction, g), task=info.task)


__all__ = ['DATASETS', 'DatasetInfo', 'parse_dataset', 'generate_dataset']
