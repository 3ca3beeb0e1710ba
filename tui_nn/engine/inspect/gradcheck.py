"""Numerical gradient check: central differences in float64 against autograd, per parameter.

For each parameter element checked, the loss is evaluated at w + eps and w - eps (a float64 copy of
the model, on the CPU, in training mode) and (L(w + eps) - L(w - eps)) / (2 eps) is compared with the
gradient autograd computes. Per parameter the largest absolute and relative errors are reported, and
the parameter is flagged when an element disagrees: |numeric - autograd| > atol + rtol * max(|numeric|,
|autograd|). Dropout draws the same mask in every evaluation (the RNG is re-seeded each time, inside
a fork, so the global RNG is untouched); BatchNorm uses the batch statistics as in training. The
session's model is never modified. Parameters are named by the layer paths `check` uses ("1.0.weight" for
the first layer of the Residual block at 1; torch's own name, "1.body.0.weight", is `torch_name`).

When a parameter disagrees, the forward pass is searched for a non-differentiable point central differences
may straddle: a pre-activation within KINK_TOL of a kink (ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh,
Hardsigmoid, Hardswish, ELU/SELU at 0, Softshrink/Hardshrink, Threshold, Pow at 0 with an exponent
below 2 or not whole), a tie in a max pool's window, an L1Loss output equal to its target. Where there is
one, the report says that it, not a wrong gradient, is the likely cause.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import EngineError
from ..model.paths import layer_path_of_param

EPS = 1e-6
ATOL = 1e-6
RTOL = 1e-6
MAX_ELEMENTS = 256  # elements checked per parameter (evenly spread when it has more)
MAX_SAMPLES = 64  # samples of the data used
KINK_TOL = 10.0  # a value within KINK_TOL * eps * max(1, its tensor's largest |value|) of a kink or a tie counts


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
    torch_name: str = ""  # the name in model.named_parameters() ("1.body.0.weight"); `name` is check's ("1.0.weight")
    layer: str = ""  # the layer's path as check writes it ("1.0")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layer": self.layer, "torch_name": self.torch_name or self.name,
                "shape": list(self.shape), "numel": self.numel, "checked": self.checked,
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
    kinks: list[str] = field(default_factory=list)  # non-differentiable points in the forward pass (the layers named)

    @property
    def likely_cause(self) -> str | None:
        """When a parameter disagrees and the forward pass has a kink or a tie: that it, not a wrong gradient, is
        the likely cause."""
        if self.ok or not self.kinks:
            return None
        return ("a non-differentiable point, not a wrong gradient: " + "; ".join(self.kinks)
                + ". Central differences straddle a kink or a tie there, where autograd takes one side; move the "
                  "inputs or weights slightly off it (or use a smooth activation) and check again")

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
                "likely_cause": self.likely_cause, "kinks": list(self.kinks),
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
            if self.likely_cause:
                lines.append(f"likely cause: {self.likely_cause}")
        else:
            lines.append(f"all gradients agree (tolerance: abs {self.atol:g} + rel {self.rtol:g})")
        return "\n".join(lines)


def _kink_points(module: nn.Module) -> list[float] | None:
    """Where an element-wise module is not differentiable (its kinks), or None for a smooth one."""
    name = type(module).__name__
    if name in ("ReLU", "LeakyReLU", "PReLU", "SELU", "RReLU"):
        return [0.0]
    if name == "ReLU6":
        return [0.0, 6.0]
    if name == "Hardtanh":
        return [float(module.min_val), float(module.max_val)]
    if name in ("Hardsigmoid", "Hardswish"):
        return [-3.0, 3.0]
    if name == "ELU":
        return [0.0] if float(module.alpha) != 1.0 else None
    if name in ("Softshrink", "Hardshrink"):
        return [-float(module.lambd), float(module.lambd)]
    if name == "Threshold":
        return [float(module.threshold)]
    if name == "Pow":
        e = float(module.exponent)
        return [0.0] if e < 2 and e not in (0.0, 1.0) or (e >= 2 and e != int(e)) else None
    return None


def _near(values: torch.Tensor, points: list[float], eps: float) -> tuple[int, float]:
    """How many of `values` lie within the tolerance of one of `points`, and the closest distance."""
    v = values.detach().reshape(-1)
    if v.numel() == 0:
        return 0, math.inf
    tol = KINK_TOL * eps * max(1.0, float(v.abs().max()))
    dist = torch.stack([(v - p).abs() for p in points]).amin(0)
    return int((dist <= tol).sum()), float(dist.min())


def _pool_ties(module: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> int:
    """Windows of a max pool (1-, 2- or 3-D) whose largest value is shared, within the tolerance, by another."""
    dims = {"MaxPool1d": 1, "MaxPool2d": 2, "MaxPool3d": 3}[type(module).__name__]
    if x.dim() < dims + 1:
        return 0

    def t(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims

    k, st, p, d = t(module.kernel_size), t(module.stride or module.kernel_size), t(module.padding), t(module.dilation)
    out = y.shape[-dims:]  # the pool's output (windows beyond it are not torch's)
    w = x.detach()
    pad: list[int] = []
    for i in reversed(range(dims)):  # -inf padding, and room for a ceil_mode window on the right
        pad += [p[i], p[i] + st[i]]
    w = torch.nn.functional.pad(w, pad, value=-math.inf)
    for i in range(dims):
        axis = x.dim() - dims + i  # the windows of earlier dims went to the end
        w = w.unfold(axis, d[i] * (k[i] - 1) + 1, st[i]).narrow(axis, 0, out[i])[..., ::d[i]]
    w = w.reshape(*w.shape[:x.dim()], -1)
    top = w.amax(-1, keepdim=True)
    finite = torch.isfinite(top)
    tol = KINK_TOL * eps * max(1.0, float(x.detach().abs().max()))
    ties = ((w >= top - tol) & finite).sum(-1) >= 2
    return int(ties.sum())


def _find_kinks(m: nn.Module, run: Any, eps: float, loss_fn: nn.Module, y: torch.Tensor) -> list[str]:
    """Non-differentiable points of the forward pass at the current weights: which layer, how many values."""
    found: list[str] = []
    hooks = []

    def hook(path: str, module: nn.Module) -> Any:
        def fn(mod: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            if x is None or not x.is_floating_point():
                return
            name = type(mod).__name__
            if name.startswith("MaxPool"):
                n = _pool_ties(mod, x, output[0] if isinstance(output, tuple) else output, eps)
                if n:
                    found.append(f"layer {path} ({name}): {n} window(s) with a tie for the largest value")
                return
            points = _kink_points(mod)
            if points is None:
                return
            n, closest = _near(x, points, eps)
            if n:
                where = ", ".join(f"{v:g}" for v in points)
                found.append(f"layer {path} ({name}): {n} input value(s) at or next to its kink at {where} "
                             f"(the closest {closest:.2g} away)")
        return fn

    for name, module in m.named_modules():
        if name and (_kink_points(module) is not None or type(module).__name__.startswith("MaxPool")):
            path = layer_path_of_param(name + ".x")
            hooks.append(module.register_forward_hook(hook(path, module)))
    try:
        with torch.no_grad():
            out = run()
    finally:
        for h in hooks:
            h.remove()
    if type(loss_fn).__name__ == "L1Loss" and isinstance(out, torch.Tensor) and out.shape == y.shape:
        n, closest = _near(out - y, [0.0], eps)
        if n:
            found.append(f"the loss (L1Loss): {n} output value(s) equal to their target, where |output - target| "
                         f"has its kink (the closest {closest:.2g} away)")
    return found


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

    def forward() -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return m(x)

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
            layer = layer_path_of_param(name)
            report.params.append(ParamCheck(
                name=f"{layer}.{name.rsplit('.', 1)[-1]}" if layer else name, shape=tuple(p.shape),
                numel=flat.numel(), checked=len(idx),
                max_abs_error=max(worst[0], 0.0), max_rel_error=max_rel, ok=ok, frozen=name in frozen,
                worst_index=where, numeric=worst[2] if worst[1] >= 0 else None,
                analytic=worst[3] if worst[1] >= 0 else None, torch_name=name, layer=layer))
    if not report.ok:
        report.kinks = _find_kinks(m, forward, eps, loss_fn, y)
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
