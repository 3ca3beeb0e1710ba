"""Targets matched to the loss and the model's output (dtype and shape)."""

from __future__ import annotations

import math

import torch

from ..errors import DataError


def match_targets(raw: torch.Tensor, loss: str, output_shape: tuple[int, ...] | None, n: int, *,
                  kind: str) -> torch.Tensor:
    """Targets converted and checked for `loss`, given the model output shape (batch of n samples). `kind` is
    the loss's target kind ("classification", "binary" or "regression": training.objectives.LOSSES[loss].kind,
    passed by the caller so that data does not import training)."""
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
            t = t.reshape(out_n)  # [N] targets for an [N, 1] output: what the user means (reshape_note says so)
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



def reshape_note(raw_shape: tuple[int, ...], shape: tuple[int, ...], loss: str, *, kind: str) -> str | None:
    """What `match_targets` did when it reshaped the targets to the output's shape (value targets of [N] for an
    [N, 1] output), and what a literal PyTorch loop would do with them instead; None when it did not. `kind` as
    for match_targets."""
    raw_shape, shape = tuple(raw_shape), tuple(shape)
    if raw_shape == shape or kind == "classification" or len(raw_shape) == 0:
        return None
    if kind == "binary":
        instead = f"{loss} would refuse them (ValueError: a target size different to the input size)"
    else:
        try:
            b = list(torch.broadcast_shapes(raw_shape, shape))
            instead = (f"{loss} would broadcast them against the output to {b} (torch warns: \"Using a target size "
                       "that is different to the input size\") and compute a different loss")
        except RuntimeError:
            instead = f"{loss} would refuse them (the shapes do not broadcast)"
    return (f"targets of shape {list(raw_shape)} are reshaped to the output's shape {list(shape)}; in a literal "
            f"PyTorch loop without that reshape, {instead}")
