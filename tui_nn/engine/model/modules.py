"""The two modules of the catalogue that torch.nn does not have: Pow (lab 004's x ** k) and Residual blocks."""

from __future__ import annotations

import torch
from torch import nn


class Pow(nn.Module):
    """x ** exponent, element-wise: what lab 004's autograd example does to its tensor (a**3, then y**2)."""

    def __init__(self, exponent: float = 2.0) -> None:
        super().__init__()
        self.exponent = exponent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x ** self.exponent

    def extra_repr(self) -> str:
        return f"exponent={self.exponent}"


class Residual(nn.Module):
    """x + body(x). The body's output must have the input's shape."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
