"""What the loss on the targets says of an output shape: used to verify a shape fix before it is offered
(shapes/fixes.py takes it as a callable, so that shapes need not know data or losses)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from ..data.targets import match_targets
from ..data.tensors import make_inputs, make_targets
from ..errors import EngineError
from ..shapes.fixes import TargetCheck
from ..spec import DataSpec
from .objectives import LOSSES, make_loss

MAX_CPU_ELEMENTS = 1 << 20  # outputs up to this many numbers are tried on the CPU (4 MiB of float32)


def target_check(data: DataSpec, loss: str, loss_args: dict[str, Any], input_shape: tuple[int, ...],
                 seed: int) -> TargetCheck:
    """The preset's own targets matched to an output shape as the session matches them (their values checked:
    class indices in range), or, without targets, targets drawn in that shape as the session draws them; the loss
    is then computed on the meta device (nothing allocated for the output). The data is made on the first call
    only (a network without a shape error never calls it)."""
    kind = LOSSES[loss].kind
    made: list[Any] = []

    def why(out: tuple[int, ...]) -> str | None:
        try:
            if not made:
                x, gen = make_inputs(data, input_shape, seed)
                n = int(x.shape[0]) if x.dim() else 1
                made.extend((n, make_targets(data, loss, None, n, gen, kind=kind), make_loss(loss, loss_args)))
            n, raw, loss_fn = made
            # a small output on the CPU (zeros: the loss's own checks, no decomposition, hence no torch._dynamo
            # import, as the meta device's cross_entropy would pay), a large one on the meta device
            device = "cpu" if math.prod(out) <= MAX_CPU_ELEMENTS else "meta"
            if raw is not None:
                t = match_targets(raw, loss, out, n, kind=kind).to(device)
            elif kind == "classification":
                t = torch.zeros((n,) + tuple(out[2:]), dtype=torch.long, device=device)
            else:
                t = torch.zeros((n,) + tuple(out[1:]), device=device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = loss_fn(torch.zeros(out, device=device), t)
            if value.dim() != 0:
                return f"the loss has shape {list(value.shape)}, not one number"
        except EngineError as err:
            return err.message
        except Exception as err:  # noqa: BLE001 - torch's own words
            text = str(err).strip()
            return text.splitlines()[0] if text else type(err).__name__
        return None

    return why


__all__ = ["target_check"]
