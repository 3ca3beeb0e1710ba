"""Data: materialising inputs and targets, and matching targets to the loss as PyTorch does."""

from __future__ import annotations

import math
from typing import Any

import torch

from .errors import DataError
from .objectives import LOSSES
from .spec import DataSpec, GeneratorSpec

MAX_GENERATED_ELEMENTS = 50_000_000


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
        from .datasets import split_inputs

        return split_inputs(data, input_shape, seed).float(), gen  # type: ignore[union-attr]
    x = materialise(data.inputs, gen)
    if x is None:
        x = torch.rand(tuple(input_shape), generator=gen)
    return x.float(), gen


def make_targets(data: DataSpec, loss: str, output_shape: tuple[int, ...] | None, n: int,
                 gen: torch.Generator) -> torch.Tensor | None:
    """The targets as the loss expects them; without data.targets, random targets that fit the loss."""
    if output_shape is not None and (len(output_shape) == 0 or output_shape[0] != n):
        raise DataError(f"the model's output {list(output_shape)} does not have one row per sample ({n} samples): "
                        "a layer mixes up the batch dimension",
                        hint="keep dimension 0 for samples (Flatten's start_dim should be 1)")
    if data.dataset is not None or data.csv is not None:
        from .datasets import split_targets

        return match_targets(split_targets(data, gen.initial_seed()), loss, output_shape, n)  # type: ignore[arg-type]
    raw = materialise(data.targets, gen)
    if raw is None:
        if output_shape is None:
            return None
        kind = LOSSES[loss].kind
        if kind == "classification":
            classes = output_shape[1] if len(output_shape) > 1 else output_shape[0]
            return torch.randint(0, max(classes, 1), (n,) + tuple(output_shape[2:]), generator=gen)
        if kind == "binary":
            return torch.randint(0, 2, (n,) + tuple(output_shape[1:]), generator=gen).float()
        return torch.randn((n,) + tuple(output_shape[1:]), generator=gen)
    return match_targets(raw, loss, output_shape, n)


def match_targets(raw: torch.Tensor, loss: str, output_shape: tuple[int, ...] | None, n: int) -> torch.Tensor:
    """Targets converted and checked for `loss`, given the model output shape (batch of n samples)."""
    kind = LOSSES[loss].kind
    if raw.dim() == 0:
        raw = raw.reshape(1)
    if raw.shape[0] != n:
        raise DataError(f"there are {raw.shape[0]} targets but {n} input samples",
                        hint="give one target per input row (the first dimension counts samples)")
    if output_shape is None:
        return raw.float() if kind != "classification" or raw.is_floating_point() else raw.long()
    out = tuple(output_shape)
    out_n = (n,) + out[1:]
    if kind == "classification":
        if tuple(raw.shape) == out_n:  # probabilities / one-hot rows
            t = raw.float()
            if loss == "NLLLoss":
                raise DataError("NLLLoss takes class indices, not probability rows",
                                hint="give targets as class indices (e.g. targets = [1, 0, 2])")
            return t
        want = (n,) + out[2:]
        if tuple(raw.shape) != want:
            raise DataError(f"{loss} needs class indices of shape {list(want)} or probability rows of shape "
                            f"{list(out_n)}; the targets have shape {list(raw.shape)}",
                            hint="targets = [1, 0, 2] (one class index per sample) or one-hot rows")
        if raw.is_floating_point():
            if not bool(torch.all(raw == raw.round())):
                raise DataError(f"{loss} class indices must be whole numbers",
                                hint="use integers (class numbers), or probability rows with one entry per class")
        t = raw.long()
        classes = out[1] if len(out) > 1 else out[0]
        bad = (t < 0) | (t >= classes)
        ignore = -100
        bad &= t != ignore
        if bool(bad.any()):
            worst = int(t[bad][0])
            raise DataError(f"class index {worst} is out of range: the model outputs {classes} classes "
                            f"(valid indices 0..{classes - 1})",
                            hint=f"make the last layer output more classes, or use targets below {classes}")
        return t
    t = raw.float()
    if tuple(t.shape) != out_n:
        if t.numel() == math.prod(out_n):
            t = t.reshape(out_n)  # [N] targets for an [N, 1] output: what the user means
        else:
            try:
                b = torch.broadcast_shapes(tuple(t.shape), out_n)
                broadcast = f"; PyTorch would broadcast them to {list(b)} and compute a wrong loss"
            except RuntimeError:
                broadcast = ""
            raise DataError(f"targets have shape {list(t.shape)} but the model output has shape {list(out_n)}"
                            f"{broadcast}",
                            hint="give targets with one value per output unit, or change the last layer's size")
    if kind == "binary" and loss == "BCELoss":
        if bool(((t < 0) | (t > 1)).any()):
            raise DataError("BCELoss needs targets in [0, 1]",
                            hint="use 0/1 labels or probabilities (or MSELoss for other values)")
    return t
