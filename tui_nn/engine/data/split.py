"""The train/test split: one seeded permutation (copied verbatim into exported scripts)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def split(x, y, test_fraction, g):
    """Shuffle the samples, then the first round(n * test_fraction) are the test split."""
    perm = torch.randperm(x.shape[0], generator=g)
    n_test = round(x.shape[0] * test_fraction)
    train, test = perm[n_test:], perm[:n_test]
    return x[train], y[train], x[test], y[test]



# ---------------------------------------------------------------------------------------------
# materialising a split


@dataclass
class Split:
    x_train: torch.Tensor  # [N, F] float32 (reshaped to the model's sample shape by the session)
    y_train: torch.Tensor  # [N] (or [N, T]) float32: class indices or values
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str  # "classification" or "regression" (CSV: "unknown", the loss decides)


__all__ = ['Split', 'split']
