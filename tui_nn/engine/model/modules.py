"""The modules of the catalogue that torch.nn does not have: Pow (lab 004's x ** k) and the blocks, Residual,
Concat and Sequential. Each block keeps its layers in `body` (a layer inside block 3 is `3.body.1`), and a
Residual's projection shortcut in `shortcut` (`3.shortcut.0`)."""

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
    """x + body(x), or with a projection shortcut (ResNet's downsample) shortcut(x) + body(x). The two must have
    the same shape."""

    def __init__(self, *layers: nn.Module, shortcut: tuple[nn.Module, ...] | list[nn.Module] = ()) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(*shortcut) if shortcut else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return identity + self.body(x)


class Concat(nn.Module):
    """Parallel branches on the same input, concatenated: torch.cat([branch(x) for branch in body], dim)."""

    def __init__(self, *branches: nn.Module, dim: int = 1) -> None:
        super().__init__()
        self.body = nn.ModuleList(branches)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.body], dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Sequential(nn.Module):
    """Layers applied in order, as torch.nn.Sequential (kept in `body`, like the other blocks)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
