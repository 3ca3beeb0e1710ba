"""The experiment as plain data: a dataclass config drives everything else.

A `Preset` is what a TOML file holds (see `preset.py` for reading and writing it); the builder,
the shape checker and the trainer take these values, never raw dicts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

GENERATORS = ("rand", "randn", "zeros", "ones", "randint")


@dataclass
class LayerSpec:
    type: str
    args: dict[str, Any] = field(default_factory=dict)  # constructor arguments that differ from defaults
    params: dict[str, Any] = field(default_factory=dict)  # hand-set parameters (nested lists), by torch name
    frozen: bool = False
    init: dict[str, Any] | None = None  # {"scheme": "zeros"} / {"scheme": "constant", "value": 0.5}
    layers: list["LayerSpec"] = field(default_factory=list)  # Residual body

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
        if self.type == "Residual":
            out["layers"] = [layer.to_dict() for layer in self.layers]
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
class DataSpec:
    inputs: TensorSource = None
    targets: TensorSource = None


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


@dataclass
class Preset:
    name: str
    model: ModelSpec
    description: str = ""
    lab: str | None = None
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    source: str = "<preset>"

    def copy(self) -> "Preset":
        return copy.deepcopy(self)
