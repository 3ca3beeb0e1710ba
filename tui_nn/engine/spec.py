"""The experiment as plain data: a dataclass config drives everything else.

A `Preset` is what a TOML file holds (see `files/preset_read.py` and `files/preset_write.py` for reading and writing it); the builder,
the shape checker and the trainer take these values, never raw dicts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

GENERATORS = ("rand", "randn", "zeros", "ones", "randint")
BLOCKS = ("Residual", "Concat", "Sequential")  # layer types that hold layers (`LayerSpec.layers`)


@dataclass
class LayerSpec:
    type: str
    args: dict[str, Any] = field(default_factory=dict)  # constructor arguments that differ from defaults
    params: dict[str, Any] = field(default_factory=dict)  # hand-set parameters (nested lists), by torch name
    frozen: bool = False
    init: dict[str, Any] | None = None  # {"scheme": "zeros"} / {"scheme": "constant", "val": 0.5} (model/init.py)
    layers: list["LayerSpec"] = field(default_factory=list)  # a block's layers: Residual/Sequential body, Concat branches
    shortcut: list[LayerSpec] = field(default_factory=list)  # Residual: the projection shortcut (empty: identity)

    def copy(self) -> "LayerSpec":
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        out.update(self.args)
        out.update(self.params)
        if self.frozen:
            out["frozen"] = True
        if self.init is not None:
            scheme = self.init.get("scheme", "default")
            out["init"] = scheme if len(self.init) == 1 else dict(self.init)
        if self.type in BLOCKS:
            out["layers"] = [layer.to_dict() for layer in self.layers]
        if self.shortcut:
            out["shortcut"] = [layer.to_dict() for layer in self.shortcut]
        return out


@dataclass
class ModelSpec:
    input_shape: tuple[int, ...]
    layers: list[LayerSpec] = field(default_factory=list)

    def copy(self) -> "ModelSpec":
        return copy.deepcopy(self)


@dataclass
class GeneratorSpec:
    kind: str  # one of GENERATORS
    shape: tuple[int, ...]
    low: int = 0
    high: int = 2

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"generate": self.kind, "shape": list(self.shape)}
        if self.kind == "randint":
            out["low"] = self.low
            out["high"] = self.high
        return out


TensorSource = Any  # nested list of numbers | GeneratorSpec | None


@dataclass
class DatasetSpec:
    """A generated data set (`[data] dataset = { name = "spiral", ... }`); see `data/generated.py`."""

    name: str
    samples: int = 200
    noise: float = 0.0
    test_fraction: float = 0.0
    classes: int | None = None  # blobs and spiral only (default 2)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "samples": self.samples, "noise": self.noise,
                               "test_fraction": self.test_fraction}
        if self.classes is not None:
            out["classes"] = self.classes
        return out


@dataclass
class CsvSpec:
    """Data read from a CSV file with a header (`[data] csv = { path = "f.csv", features = [...], target = "y" }`).

    `path` is kept as written (relative paths are relative to the preset file); `base` is the folder it is
    resolved against (not part of the experiment's identity, so not compared).
    """

    path: str
    features: list[str] = field(default_factory=list)
    target: list[str] = field(default_factory=list)
    test_fraction: float = 0.0
    base: str = field(default="", compare=False)

    @property
    def resolved(self) -> str:
        import os

        return self.path if os.path.isabs(self.path) or not self.base else os.path.join(self.base, self.path)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "features": list(self.features),
                               "target": self.target[0] if len(self.target) == 1 else list(self.target)}
        if self.test_fraction:
            out["test_fraction"] = self.test_fraction
        return out


@dataclass
class DataSpec:
    inputs: TensorSource = None
    targets: TensorSource = None
    # "own": data from torch.Generator().manual_seed(seed), then torch.manual_seed(seed) before the layers.
    # "global": torch.manual_seed(seed), then inputs, targets and the layers from that one stream (the notebook
    # pattern `torch.manual_seed(s); x = torch.randn(...); model = ...`).
    rng: str = "own"
    dataset: DatasetSpec | None = None  # instead of inputs/targets: a generated data set
    csv: CsvSpec | None = None  # instead of inputs/targets: columns of a CSV file


@dataclass
class CallSpec:
    """A loss or an optimizer: its torch class name and the arguments that differ from defaults."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_value(self) -> Any:
        return self.type if not self.args else {"type": self.type, **self.args}


@dataclass
class TrainingSpec:
    loss: CallSpec = field(default_factory=lambda: CallSpec("MSELoss"))
    optimizer: CallSpec = field(default_factory=lambda: CallSpec("SGD", {"lr": 0.01}))
    steps: int = 100
    batch_size: int = 0  # 0 = the whole data set every step
    shuffle: bool = True
    device: str = "cpu"
    seed: int = 0
    target_loss: float | None = None
    reset_optimizer_each_step: bool = False
    scheduler: CallSpec | None = None  # a learning-rate schedule, stepped once per training step
    target_accuracy: float | None = None  # stop once the training accuracy (of a step's batch) reaches this
    drop_last: bool = False  # mini-batches: drop an epoch's last, incomplete batch (torch's DataLoader drop_last)
    clip_grad_norm: float | None = None  # torch.nn.utils.clip_grad_norm_(params, max_norm) before each update
    clip_grad_value: float | None = None  # torch.nn.utils.clip_grad_value_(params, clip) before each update


@dataclass
class Preset:
    name: str
    model: ModelSpec
    description: str = ""
    lab: str | None = None
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    source: str = "<preset>"
    pending: tuple[str, ...] = ()  # a preview (`load_preset(..., checked=False)`): what was not read or checked

    def copy(self) -> "Preset":
        return copy.deepcopy(self)
