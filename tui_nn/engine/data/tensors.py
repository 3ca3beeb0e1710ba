"""Data: materialising inputs and targets, and matching targets to the loss as PyTorch does."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import DataError
from ..spec import DataSpec, GeneratorSpec
from .tables import split_inputs, split_targets
from .targets import match_targets

MAX_GENERATED_ELEMENTS = 50_000_000


def tensor_to_list(t: torch.Tensor) -> Any:
    """Nested lists of the shortest decimals that read back to the same float32 values."""
    import numpy as np

    arr = t.detach().cpu().float().numpy()

    def conv(a: "np.ndarray") -> Any:
        if a.ndim == 0:
            return float(np.format_float_positional(a, unique=True, trim="0")) if np.isfinite(a) else float(a)
        return [conv(x) for x in a]

    return conv(arr)



def generate(g: GeneratorSpec, gen: torch.Generator) -> torch.Tensor:
    n = math.prod(g.shape)
    if n > MAX_GENERATED_ELEMENTS:
        raise DataError(f"a generated tensor of shape {list(g.shape)} has {n} elements; at most "
                        f"{MAX_GENERATED_ELEMENTS} are allowed")
    shape = tuple(g.shape)
    if g.kind == "rand":
        return torch.rand(shape, generator=gen)
    if g.kind == "randn":
        return torch.randn(shape, generator=gen)
    if g.kind == "zeros":
        return torch.zeros(shape)
    if g.kind == "ones":
        return torch.ones(shape)
    if g.kind == "randint":
        return torch.randint(g.low, g.high, shape, generator=gen)
    raise DataError(f"unknown generator {g.kind}")  # pragma: no cover - validated when loading



def materialise(source: Any, gen: torch.Generator) -> torch.Tensor | None:
    if source is None:
        return None
    if isinstance(source, GeneratorSpec):
        return generate(source, gen)
    t = torch.tensor(source)
    if t.dtype == torch.float64:
        t = t.float()
    return t



def make_inputs(data: DataSpec, input_shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """The inputs (float32) and the data generator (targets are drawn from it next). With data.rng == "global"
    the generator is torch's global one, seeded here (the layers are then built from the same stream)."""
    if getattr(data, "rng", "own") == "global":
        gen = torch.default_generator
        torch.manual_seed(seed)
    else:
        gen = torch.Generator().manual_seed(seed)
    if data.dataset is not None or data.csv is not None:  # a data set or a CSV file: its training split
        return split_inputs(data, input_shape, seed).float(), gen  # type: ignore[union-attr]
    x = materialise(data.inputs, gen)
    if x is None:
        x = torch.rand(tuple(input_shape), generator=gen)
    return x.float(), gen



def make_targets(data: DataSpec, loss: str, output_shape: tuple[int, ...] | None, n: int,
                 gen: torch.Generator, *, kind: str) -> torch.Tensor | None:
    """The targets as the loss expects them; without data.targets, random targets that fit the loss. `kind` is
    the loss's target kind (training.objectives.LOSSES[loss].kind)."""
    if output_shape is not None and (len(output_shape) == 0 or output_shape[0] != n):
        raise DataError(f"the model's output {list(output_shape)} does not have one row per sample ({n} samples): "
                        "a layer mixes up the batch dimension",
                        hint="keep dimension 0 for samples (Flatten's start_dim should be 1)")
    if data.dataset is not None or data.csv is not None:
        return match_targets(split_targets(data, gen.initial_seed()), loss, output_shape, n, kind=kind)  # type: ignore[arg-type]
    raw = materialise(data.targets, gen)
    if raw is None:
        if output_shape is None:
            return None
        if kind == "classification":
            classes = output_shape[1] if len(output_shape) > 1 else output_shape[0]
            return torch.randint(0, max(classes, 1), (n,) + tuple(output_shape[2:]), generator=gen)
        if kind == "binary":
            return torch.randint(0, 2, (n,) + tuple(output_shape[1:]), generator=gen).float()
        return torch.randn((n,) + tuple(output_shape[1:]), generator=gen)
    return match_targets(raw, loss, output_shape, n, kind=kind)
