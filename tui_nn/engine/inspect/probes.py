"""Looking inside a session: optimizer state, one neuron in numbers, the model over the input plane.

- `optimizer_state(session)`: per parameter, the optimizer's state tensors (SGD momentum_buffer,
  Adagrad sum, RMSprop square_avg, Adam exp_avg / exp_avg_sq / step) as (label, tensor) pairs for the
  tensor panel.
- `neuron_equation(session, path, unit)`: y = sum_i w_i x_i + b for one output unit of a Linear layer,
  written out with the current numbers, then the following activation, as labs 000 and 004 do by hand.
- `decision_grid(session, width, height)`: the model's prediction over a grid of the 2-D input plane
  (a class, a probability or a value per cell) for the UI to draw; `function_curve` for 1-D inputs.

All of them run the model in eval mode without gradients and change nothing.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import EngineError
from ..model.build import iter_specs
from ..model.catalogue import CATALOGUE
from ..training.objectives import LOSSES

MAX_GRID_SIDE = 256  # cells per side of a decision grid
MAX_CURVE_POINTS = 4096


# ---------------------------------------------------------------------------------------------
# optimizer state


def optimizer_state(session: Any) -> list[tuple[str, torch.Tensor]]:
    """(label, tensor) for every state tensor of the optimizer, in the model's parameter order.

    Labels read "0.weight: exp_avg". Scalars kept as numbers by torch (a step count) come as 0-dim
    tensors. Empty before the first step (torch creates the state lazily)."""
    if not getattr(session, "optimizer_made", True):  # not made yet: no state either
        return []
    opt = session.optimizer
    if opt is None:
        return []
    out: list[tuple[str, torch.Tensor]] = []
    for name, p in session.model.named_parameters():
        state = opt.state.get(p)
        if not state:
            continue
        for key, value in state.items():
            if value is None:
                continue
            if isinstance(value, torch.Tensor):
                t = value.detach()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                t = torch.tensor(float(value))
            else:
                continue
            out.append((f"{name}: {key}", t))
    return out


# ---------------------------------------------------------------------------------------------
# a neuron in numbers


@dataclass
class NeuronEquation:
    path: str  # module path of the Linear layer ("0", "3.body.0")
    unit: int
    sample: int
    inputs: list[float]
    weights: list[float]
    bias: float | None
    output: float  # the layer's output for this unit, as torch computed it
    activation: str | None = None  # the following layer's type, when it is an activation
    activated: float | None = None  # its output for this unit
    text: str = ""


def _num(v: float) -> str:
    if v == 0:
        return "0"
    text = f"{v:.4g}"
    return f"({text})" if v < 0 else text


def _container_and_index(path: str) -> tuple[str, int]:
    parts = path.split(".")
    return ".".join(parts[:-1]), int(parts[-1])


def neuron_equation(session: Any, path: str | int, unit: int, sample: int = 0, *, max_terms: int = 8) -> NeuronEquation:
    """Output unit `unit` of the Linear layer at module path `path`, for input sample `sample`, in numbers."""
    path = str(path)
    specs = dict(iter_specs(session.spec.layers))
    if path not in specs:
        raise EngineError(f"no layer at \"{path}\"; layers are: {', '.join(specs) or 'none'}")
    spec = specs[path]
    if spec.type != "Linear":
        raise EngineError(f"layer {path} is a {spec.type}; a neuron in numbers needs a Linear layer")
    if session.report.error is not None:
        raise EngineError(f"the model does not run: {session.report.error.message}")
    modules = dict(session.model.named_modules())
    layer: nn.Linear = modules[path]
    if not (0 <= unit < layer.out_features):
        raise EngineError(f"unit {unit} is outside 0..{layer.out_features - 1} (the layer has {layer.out_features} "
                          "outputs)")
    parent_path, index = _container_and_index(path)
    parent = modules[parent_path] if parent_path else session.model
    nxt_module = parent[index + 1] if index + 1 < len(parent) else None
    nxt_path = f"{parent_path}.{index + 1}" if parent_path else str(index + 1)
    nxt_spec = specs.get(nxt_path) if nxt_module is not None else None
    is_act = nxt_spec is not None and CATALOGUE[nxt_spec.type].category == "activation"

    seen: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.update(x=i[0].detach(), y=o.detach()))]
    if is_act:
        hooks.append(nxt_module.register_forward_hook(lambda m, i, o: seen.update(a=o.detach())))
    model = session.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(session.inputs)
    except Exception as err:  # noqa: BLE001
        raise EngineError(f"the model does not run on its inputs: {err}") from None
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    x_all = seen["x"].reshape(-1, layer.in_features)
    rows = int(x_all.shape[0])
    if not (0 <= sample < rows):
        raise EngineError(f"sample {sample} is outside 0..{rows - 1}")
    x = x_all[sample].cpu().double().tolist()
    w = layer.weight.detach()[unit].cpu().double().tolist()
    b = float(layer.bias.detach()[unit]) if layer.bias is not None else None
    y = float(seen["y"].reshape(-1, layer.out_features)[sample, unit])
    activated = float(seen["a"].reshape(-1, layer.out_features)[sample, unit]) if "a" in seen else None

    n = len(x)
    shown = min(n, max_terms)
    more = f" + … ({n - shown} more terms)" if n > shown else ""
    sym = " + ".join(f"w{unit},{i}·x{i}" for i in range(shown)) + more + (f" + b{unit}" if b is not None else "")
    nums = " + ".join(f"{_num(w[i])}×{_num(x[i])}" for i in range(shown)) + more + \
        (f" + {_num(b)}" if b is not None else "")
    prods = " + ".join(_num(w[i] * x[i]) for i in range(shown)) + more + (f" + {_num(b)}" if b is not None else "")
    head = f"layer {path} (Linear), output unit {unit}, sample {sample}"
    lines = [head, f"y{unit} = Σ w{unit},i·xi + b{unit}" if b is not None else f"y{unit} = Σ w{unit},i·xi",
             f"   = {sym}", f"   = {nums}", f"   = {prods}", f"   = {y:.6g}"]
    act_name = nxt_spec.type if is_act and nxt_spec is not None else None
    if act_name is not None and activated is not None:
        if act_name in ("Softmax", "LogSoftmax"):
            lines.append(f"{act_name} over the {layer.out_features} outputs, unit {unit}: {activated:.6g}")
        else:
            lines.append(f"{act_name}({y:.6g}) = {activated:.6g}")
    return NeuronEquation(path=path, unit=unit, sample=sample, inputs=x, weights=w, bias=b, output=y,
                          activation=act_name, activated=activated, text="\n".join(lines))


# ---------------------------------------------------------------------------------------------
# decision boundary


@dataclass
class Grid:
    """The model over a grid of the input plane: values[i, j] is at (xs[j], ys[i]) (ys ascending)."""

    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray  # kind "class": class index; "probability": P(class 1); "value": the output
    kind: str
    confidence: np.ndarray | None = None  # kind "class": probability of the predicted class
    classes: int | None = None
    bounds: tuple[float, float, float, float] = (-1.0, 1.0, -1.0, 1.0)  # xmin, xmax, ymin, ymax


def _data_bounds(session: Any, dims: int) -> list[tuple[float, float]]:
    xs = [t for t in (session.inputs, getattr(session, "test_inputs", None)) if t is not None and t.numel()]
    if not xs:
        return [(-1.0, 1.0)] * dims
    x = torch.cat([t.reshape(t.shape[0], -1)[:, :dims].float().cpu() for t in xs])
    out = []
    for d in range(dims):
        lo, hi = float(x[:, d].min()), float(x[:, d].max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = -1.0, 1.0
        pad = (hi - lo) * 0.1 if hi > lo else 1.0
        out.append((lo - pad, hi + pad))
    return out


def _predict(session: Any, x: torch.Tensor, isolated: bool = False) -> torch.Tensor:
    """The model's outputs in eval mode. `isolated`: on a copy of the model (a run may be training it in
    another thread of this process: its train/eval mode must not be switched under it)."""
    model = copy.deepcopy(session.model) if isolated else session.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return torch.cat([model(x[i:i + 16384]) for i in range(0, int(x.shape[0]), 16384)])
    except Exception as err:  # noqa: BLE001
        raise EngineError(f"the model does not run on the grid: {err}") from None
    finally:
        model.train(was_training)


def _check_inputs(session: Any, dims: int, what: str) -> None:
    if session.report.error is not None:
        raise EngineError(f"the model does not run: {session.report.error.message}")
    if tuple(session.spec.input_shape[1:]) != (dims,):
        raise EngineError(f"{what} needs a model with {dims} input feature(s) per sample; this one takes "
                          f"{list(session.spec.input_shape[1:])}")


def decision_grid(session: Any, width: int = 64, height: int = 32,
                  bounds: tuple[float, float, float, float] | None = None, output: int = 0,
                  isolated: bool = False) -> Grid:
    """The prediction over a width x height grid of the 2-D input plane (at most 256 per side).

    Classification losses (CrossEntropyLoss, NLLLoss) give the arg-max class and its probability; the
    binary ones give P(class 1) (sigmoid of the output for BCEWithLogitsLoss); regression losses give
    output unit `output`. Default bounds: the data's extent plus 10%."""
    _check_inputs(session, 2, "a decision boundary")
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int) or not (1 <= v <= MAX_GRID_SIDE):
            raise EngineError(f"{name} must be an integer in 1..{MAX_GRID_SIDE}; got {v!r}")
    if bounds is None:
        (x0, x1), (y0, y1) = _data_bounds(session, 2)
    else:
        x0, x1, y0, y1 = (float(b) for b in bounds)
        if not all(math.isfinite(b) for b in (x0, x1, y0, y1)) or x1 <= x0 or y1 <= y0:
            raise EngineError(f"bounds must be finite with xmin < xmax and ymin < ymax; got {bounds!r}")
    xs = torch.linspace(x0, x1, width, dtype=torch.float64)
    ys = torch.linspace(y0, y1, height, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).float().to(session.inputs.device)
    out = _predict(session, pts, isolated).float().cpu()
    out = out.reshape(out.shape[0], -1)
    loss = session.training.loss.type
    kind = LOSSES[loss].kind if loss in LOSSES else "regression"
    confidence = None
    classes = None
    if kind == "classification" and out.shape[1] > 1:
        probs = out.exp() if loss == "NLLLoss" else torch.softmax(out, 1)
        conf, cls = probs.max(1)
        values, confidence, classes, what = cls.numpy().astype(np.float64), conf.numpy(), int(out.shape[1]), "class"
    elif kind == "binary":
        col = out[:, min(output, out.shape[1] - 1)]
        p = torch.sigmoid(col) if loss == "BCEWithLogitsLoss" else col.clamp(0, 1)
        values, what, classes = p.numpy().astype(np.float64), "probability", 2
    else:
        if not (0 <= output < out.shape[1]):
            raise EngineError(f"output {output} is outside 0..{out.shape[1] - 1}")
        values, what = out[:, output].numpy().astype(np.float64), "value"
    return Grid(xs=xs.numpy().astype(np.float64), ys=ys.numpy().astype(np.float64),
                values=values.reshape(height, width), kind=what,
                confidence=None if confidence is None else confidence.reshape(height, width).astype(np.float64),
                classes=classes, bounds=(x0, x1, y0, y1))


def function_curve(session: Any, points: int = 200, bounds: tuple[float, float] | None = None,
                   output: int = 0, isolated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(x, model output) over a line for a model with one input feature (regression on `sine`)."""
    _check_inputs(session, 1, "a function curve")
    if isinstance(points, bool) or not isinstance(points, int) or not (2 <= points <= MAX_CURVE_POINTS):
        raise EngineError(f"points must be an integer in 2..{MAX_CURVE_POINTS}; got {points!r}")
    lo, hi = bounds if bounds is not None else _data_bounds(session, 1)[0]
    xs = torch.linspace(float(lo), float(hi), points, dtype=torch.float64)
    out = _predict(session, xs.reshape(-1, 1).float().to(session.inputs.device), isolated)
    out = out.float().cpu().reshape(points, -1)
    if not (0 <= output < out.shape[1]):
        raise EngineError(f"output {output} is outside 0..{out.shape[1] - 1}")
    return xs.numpy().astype(np.float64), out[:, output].numpy().astype(np.float64)


__all__ = ["optimizer_state", "neuron_equation", "NeuronEquation", "decision_grid", "Grid", "function_curve"]
