"""Building `nn.Module`s from specs, and reading/replacing/initialising/freezing their parameters."""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import PresetError, WeightError
from ..spec import LayerSpec, ModelSpec
from .catalogue import CATALOGUE, torch_kwargs
from .modules import Residual


def build_layer(spec: LayerSpec) -> nn.Module:
    """Construct one layer (on the current default device). Hand-set params are not applied here."""
    if spec.type == "Residual":
        return Residual(*[build_layer(s) for s in spec.layers])
    lt = CATALOGUE[spec.type]
    assert lt.cls is not None
    return lt.cls(**torch_kwargs(lt, spec.args))



def iter_specs(layers: list[LayerSpec], prefix: str = "") -> Iterator[tuple[str, LayerSpec]]:
    """(module path in the built Sequential, spec) for every layer, Residual bodies included."""
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        yield path, spec
        if spec.type == "Residual":
            yield from iter_specs(spec.layers, f"{path}.body.")



def _field_for(path: str) -> str:
    """Module path '3.body.1' -> preset field 'model.layers[3].layers[1]'."""
    parts = path.split(".")
    out = f"model.layers[{parts[0]}]"
    rest = parts[1:]
    while rest:
        # rest = ["body", "i", ...]
        out += f".layers[{rest[1]}]"
        rest = rest[2:]
    return out



def validate_params(model: ModelSpec, source: str = "<preset>") -> None:
    """Construct every layer on the meta device (allocates nothing) and check hand-set parameter shapes."""
    for path, spec in iter_specs(model.layers):
        field = _field_for(path)
        try:
            with torch.device("meta"):
                module = build_layer(spec) if spec.type != "Residual" else None
        except (ValueError, TypeError, RuntimeError) as err:
            if "overflow" in str(err).lower():
                continue  # a size question, not a format one: the memory budget refuses it, with the bytes
            raise PresetError(f"{spec.type} cannot be built: {err}", source=source, field=field) from None
        if module is None:
            continue
        own = dict(module.named_parameters())
        for name, value in spec.params.items():
            if name not in own:
                raise PresetError(f"{spec.type} has no parameter \"{name}\" with these arguments "
                                  f"(has: {', '.join(own) or 'none'})", source=source, field=f"{field}.{name}")
            want = tuple(own[name].shape)
            got = _shape_of(value)
            if got != want and not (want == () and got in ((), (1,))):
                raise PresetError(f"expected shape {list(want)}{_shape_hint(spec, name)}; got {list(got)}",
                                  source=source, field=f"{field}.{name}")
            problem = _overflow(torch.tensor(value, dtype=torch.float64), own[name].dtype)
            if problem:
                raise PresetError(problem, source=source, field=f"{field}.{name}",
                                  hint=f"parameters are {_dtype_name(own[name].dtype)}: at most about "
                                       f"{torch.finfo(own[name].dtype).max:.4g} in size")



def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")



def _overflow(before: torch.Tensor, dtype: torch.dtype) -> str:
    """'' when `before` (float64 or integer values) stays finite cast to the parameter's `dtype`; else why not.

    Values finite as Python floats (1e39) become inf in float32, so finiteness is checked after the cast."""
    after = before.to(dtype)
    if not after.is_floating_point() or bool(torch.isfinite(after).all()):
        return ""
    bad = (~torch.isfinite(after)).nonzero()[0].tolist()
    where = f" at {bad}" if bad else ""
    value = before[tuple(bad)].item() if bad else before.item()
    return f"{value:g}{where} is too large for {_dtype_name(dtype)} (it would become {after[tuple(bad)].item()})"



def _shape_of(value: Any) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)



def _shape_hint(spec: LayerSpec, name: str) -> str:
    if spec.type == "Linear" and name == "weight":
        return " (out_features x in_features: one row per output neuron)"
    if spec.type.startswith("Conv") and name == "weight":
        return " (out_channels x in_channels/groups x kernel)"
    return ""



def build_model(spec: ModelSpec, *, seed: int | None = None, device: str | torch.device = "cpu") -> nn.Sequential:
    """The nn.Sequential for a spec: seeded init, then init schemes, hand-set params, frozen flags."""
    if seed is not None:
        torch.manual_seed(seed)
    model = nn.Sequential(*[build_layer(s) for s in spec.layers])
    apply_spec_params(model, spec)
    return model.to(device)



def apply_spec_params(model: nn.Module, spec: ModelSpec) -> None:
    modules = dict(model.named_modules())
    for path, s in iter_specs(spec.layers):
        module = modules[path]
        if s.init is not None:
            init_module(module, s.init)
        for name, value in s.params.items():
            param = getattr(module, name, None)
            if not isinstance(param, torch.Tensor):
                raise WeightError(f"layer {path} ({s.type}) has no parameter \"{name}\" to set")
            t64 = torch.tensor(value, dtype=torch.float64)
            problem = _overflow(t64, param.dtype)
            if problem:
                raise WeightError(f"layer {path} ({s.type}) hand-set {name}: {problem}")
            t = t64.to(param.dtype)
            if t.numel() != param.numel():
                raise WeightError(f"layer {path} ({s.type}): the hand-set {name} has shape {list(t.shape)} but the "
                                  f"layer's {name} has shape {list(param.shape)}",
                                  hint="drop the hand-set values, or change them to the new shape")
            with torch.no_grad():
                param.copy_(t.reshape(param.shape))
        if s.frozen:
            for p in module.parameters():
                p.requires_grad_(False)



def init_module(module: nn.Module, init: dict[str, Any]) -> None:
    """Apply an initialisation scheme to one layer's own parameters.

    "default" re-runs PyTorch's own `reset_parameters()`. xavier/kaiming apply to weights with at
    least two dimensions (biases are zeroed); the other schemes apply to every parameter.
    """
    scheme = init.get("scheme", "default")
    with torch.no_grad():
        if scheme == "default":
            for m in module.modules():
                reset = getattr(m, "reset_parameters", None)
                if callable(reset):
                    reset()
            return
        for name, p in module.named_parameters(recurse=True):
            if scheme == "zeros":
                p.zero_()
            elif scheme == "ones":
                p.fill_(1.0)
            elif scheme == "constant":
                p.fill_(float(init["value"]))
            elif scheme == "uniform":
                p.uniform_(float(init.get("a", 0.0)), float(init.get("b", 1.0)))
            elif scheme == "normal":
                p.normal_(float(init.get("mean", 0.0)), float(init.get("std", 1.0)))
            elif scheme in ("xavier_uniform", "kaiming_uniform"):
                if p.dim() >= 2:
                    if scheme == "xavier_uniform":
                        nn.init.xavier_uniform_(p, gain=float(init.get("gain", 1.0)))
                    else:
                        nn.init.kaiming_uniform_(p, a=math.sqrt(5))
                else:
                    p.zero_()
            else:  # pragma: no cover - validated by parse_init
                raise ValueError(f"unknown init scheme {scheme}")



def set_frozen(module: nn.Module, frozen: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(not frozen)



def get_param(model: nn.Module, name: str) -> torch.Tensor:
    params = dict(model.named_parameters())
    if name not in params:
        raise WeightError(f"no parameter named \"{name}\"; the model has: {', '.join(params) or 'none'}")
    return params[name]



def coerce_value(value: Any, shape: tuple[int, ...], what: str = "value") -> torch.Tensor:
    """A tensor (float64 on CPU) from a number/list/tensor, refused unless numeric, finite and of `shape`."""
    try:
        if isinstance(value, torch.Tensor):
            t = value.detach().to("cpu", torch.float64)
        else:
            from .args import check_numbers

            check_numbers(value, what)
            t = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        msg = getattr(err, "detail", str(err))
        raise WeightError(f"{what}: {msg}") from None
    if t.numel() == int(torch.Size(shape).numel()) and tuple(t.shape) != tuple(shape):
        if t.dim() == 0 or t.numel() == 1 or tuple(s for s in t.shape if s != 1) == tuple(s for s in shape if s != 1):
            t = t.reshape(shape)
    if tuple(t.shape) != tuple(shape):
        raise WeightError(f"{what}: expected shape {list(shape)}; got {list(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise WeightError(f"{what}: NaN or Inf is not allowed")
    return t



def set_param(model: nn.Module, name: str, value: Any, index: tuple[int, ...] | None = None) -> None:
    """Replace a parameter (or one element of it, at `index`) after validating shape and finiteness."""
    param = get_param(model, name)
    if index is not None:
        if len(index) != param.dim() or any(not (0 <= i < s) for i, s in zip(index, param.shape)):
            raise WeightError(f"{name}: index {list(index)} is outside shape {list(param.shape)}")
        what = f"{name}{list(index)}"
        t = _cast(coerce_value(value, (), what), param.dtype, what)
        with torch.no_grad():
            param[index] = t
        return
    t = _cast(coerce_value(value, tuple(param.shape), name), param.dtype, name)
    with torch.no_grad():
        param.copy_(t.to(param.device))



def _cast(t: torch.Tensor, dtype: torch.dtype, what: str) -> torch.Tensor:
    """`t` (float64) in the parameter's dtype, refused (WeightError) when that turns a value into inf."""
    problem = _overflow(t, dtype)
    if problem:
        raise WeightError(f"{what}: {problem}", hint=f"at most about {torch.finfo(dtype).max:.4g} in size")
    return t.to(dtype)



def model_text(spec: ModelSpec) -> str:
    """What `print(model)` shows, built on the meta device (allocates nothing)."""
    with torch.device("meta"):
        model = nn.Sequential(*[build_layer(s) for s in spec.layers])
    return str(model)
