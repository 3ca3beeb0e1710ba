"""Numerical gradient check: central differences in float64 against autograd, per parameter.

For each parameter element checked, the loss is evaluated at w + eps and w - eps (a float64 copy of
the model, on the CPU, in training mode) and (L(w + eps) - L(w - eps)) / (2 eps) is compared with the
gradient autograd computes. Per parameter the largest absolute and relative errors are reported, and
the parameter is flagged when an element disagrees: |numeric - autograd| > atol + rtol * max(|numeric|,
|autograd|). Dropout draws the same mask in every evaluation (the RNG is re-seeded each time, inside
a fork, so the global RNG is untouched); BatchNorm uses the batch statistics as in training. The
session's model is never modified.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import EngineError

EPS = 1e-6
ATOL = 1e-6
RTOL = 1e-6
MAX_ELEMENTS = 256  # elements checked per parameter (evenly spread when it has more)
MAX_SAMPLES = 64  # samples of the data used


@dataclass
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    numel: int
    checked: int
    max_abs_error: float
    max_rel_error: float
    ok: bool
    frozen: bool = False
    worst_index: tuple[int, ...] | None = None  # the element with the largest absolute error
    numeric: float | None = None  # at worst_index
    analytic: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "numel": self.numel, "checked": self.checked,
                "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error, "ok": self.ok,
                "frozen": self.frozen, "worst_index": list(self.worst_index) if self.worst_index is not None else None,
                "numeric": self.numeric, "analytic": self.analytic}


@dataclass
class GradcheckReport:
    params: list[ParamCheck] = field(default_factory=list)
    loss: float = math.nan
    samples: int = 0
    eps: float = EPS
    atol: float = ATOL
    rtol: float = RTOL

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.params)

    @property
    def max_abs_error(self) -> float:
        return max((p.max_abs_error for p in self.params), default=0.0)

    @property
    def max_rel_error(self) -> float:
        return max((p.max_rel_error for p in self.params), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "loss": self.loss, "samples": self.samples, "eps": self.eps, "atol": self.atol,
                "rtol": self.rtol, "max_abs_error": self.max_abs_error, "max_rel_error": self.max_rel_error,
                "params": [p.to_dict() for p in self.params]}

    def text(self) -> str:
        rows = [("parameter", "shape", "checked", "max abs error", "max rel error", "")]
        for p in self.params:
            verdict = "ok" if p.ok else "DISAGREES"
            if p.frozen:
                verdict += " (frozen)"
            rows.append((p.name, "x".join(map(str, p.shape)) or "scalar", f"{p.checked}/{p.numel}",
                         f"{p.max_abs_error:.3e}", f"{p.max_rel_error:.3e}", verdict))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines = [f"Central differences (eps {self.eps:g}, float64) against autograd on {self.samples} sample(s); "
                 f"loss {self.loss:.6g}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        bad = [p for p in self.params if not p.ok]
        if not self.params:
            lines.append("the model has no parameters")
        elif bad:
            for p in bad:
                lines.append(f"{p.name}{list(p.worst_index or ())}: numeric {p.numeric!r}, autograd {p.analytic!r}")
            lines.append(f"{len(bad)} parameter(s) disagree (tolerance: abs {self.atol:g} + rel {self.rtol:g})")
        else:
            lines.append(f"all gradients agree (tolerance: abs {self.atol:g} + rel {self.rtol:g})")
        return "\n".join(lines)


def _indices(numel: int, limit: int) -> list[int]:
    if numel <= limit:
        return list(range(numel))
    return sorted(set(torch.linspace(0, numel - 1, limit, dtype=torch.float64).round().long().tolist()))


def check_gradients(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module, *,
                    eps: float = EPS, atol: float = ATOL, rtol: float = RTOL, max_elements: int = MAX_ELEMENTS,
                    seed: int = 0) -> GradcheckReport:
    """Compare autograd's gradients of loss_fn(model(inputs), targets) with central differences (float64 copy)."""
    if not (eps > 0 and math.isfinite(eps)):
        raise EngineError(f"eps must be a positive number; got {eps!r}")
    if max_elements < 1:
        raise EngineError(f"max_elements must be >= 1; got {max_elements}")
    m = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    m.train()
    x = inputs.detach().to("cpu")
    x = x.double() if x.is_floating_point() else x
    y = targets.detach().to("cpu")
    y = y.double() if y.is_floating_point() else y
    loss_fn = copy.deepcopy(loss_fn)
    named = list(m.named_parameters())
    frozen = {n for n, p in named if not p.requires_grad}
    for _, p in named:
        p.requires_grad_(True)

    def loss_at() -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the same Dropout mask in every evaluation
            value = loss_fn(m(x), y)
        return value if value.dim() == 0 else value.sum()

    try:
        m.zero_grad(set_to_none=True)
        loss = loss_at()
        loss.backward()
    except Exception as err:  # noqa: BLE001 - torch's message as a value
        from ..errors import friendly_error

        message, hint = friendly_error(err)
        raise EngineError(f"the loss cannot be computed: {message}", hint=hint) from None
    report = GradcheckReport(loss=float(loss.item()), samples=int(x.shape[0]) if x.dim() else 1, eps=eps, atol=atol,
                             rtol=rtol)
    with torch.no_grad():
        for name, p in named:
            analytic = (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
            flat = p.data.view(-1)
            worst = (-1.0, -1, 0.0, 0.0)
            max_rel = 0.0
            ok = True
            idx = _indices(flat.numel(), max_elements)
            for i in idx:
                orig = float(flat[i])
                flat[i] = orig + eps
                up = float(loss_at())
                flat[i] = orig - eps
                down = float(loss_at())
                flat[i] = orig
                num = (up - down) / (2 * eps)
                ana = float(analytic[i])
                err = abs(num - ana)
                scale = max(abs(num), abs(ana))
                rel = err / scale if scale > 0 else 0.0
                if not math.isfinite(err):
                    err, rel = math.inf, math.inf
                if err > atol + rtol * scale or not math.isfinite(err):
                    ok = False
                max_rel = max(max_rel, rel)
                if err > worst[0]:
                    worst = (err, i, num, ana)
            where = tuple(int(v) for v in torch.unravel_index(torch.tensor(worst[1]), tuple(p.shape))) \
                if worst[1] >= 0 and p.dim() else (() if worst[1] >= 0 else None)
            report.params.append(ParamCheck(
                name=name, shape=tuple(p.shape), numel=flat.numel(), checked=len(idx),
                max_abs_error=max(worst[0], 0.0), max_rel_error=max_rel, ok=ok, frozen=name in frozen,
                worst_index=where, numeric=worst[2] if worst[1] >= 0 else None,
                analytic=worst[3] if worst[1] >= 0 else None))
    return report


def gradcheck_session(session: Any, *, max_elements: int = MAX_ELEMENTS, max_samples: int = MAX_SAMPLES,
                      eps: float = EPS, atol: float = ATOL, rtol: float = RTOL) -> GradcheckReport:
    """Check the session's gradients on (the first `max_samples` of) its training data."""
    if not session.trainable:
        raise EngineError(session.why_not_trainable())
    if max_samples < 1:
        raise EngineError(f"max_samples must be >= 1; got {max_samples}")
    x = session.inputs[:max_samples]
    y = session.targets[:max_samples]
    return check_gradients(session.model, x, y, session.loss_fn, eps=eps, atol=atol, rtol=rtol,
                           max_elements=max_elements, seed=session.training.seed)


__all__ = ["check_gradients", "gradcheck_session", "GradcheckReport", "ParamCheck"]
