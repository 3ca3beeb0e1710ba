"""Building `nn.Module`s from specs, and reading/replacing/initialising/freezing their parameters."""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import Fix, LayerError, PresetError, WeightError, shown
from ..spec import BLOCKS, LayerSpec, ModelSpec
from .catalogue import CATALOGUE, full_args, pair, torch_kwargs
from .init import init_calls, weight_problem
from .modules import Concat, Residual, Sequential

BLOCK_MODULES = (Residual, Concat, Sequential)

_IMPLICIT_DIM = r"Implicit dimension choice for (log_)?softmax has been deprecated"


def _quiet_implicit_dim() -> None:
    """torch warns at every forward of Softmax/LogSoftmax(dim=None); the shape check reports it once, naming the
    dim torch picks (shapes/check.py `_torch_warning`): `tui-nn check` prints it and the app shows it, rather than a
    line on the terminal under the app's screen. An exported script (no tui_nn) shows torch's own warning."""
    if not any(f[0] == "ignore" and f[1] is not None and f[1].pattern == _IMPLICIT_DIM for f in warnings.filters):
        warnings.filterwarnings("ignore", message=_IMPLICIT_DIM, category=UserWarning)


def build_layer(spec: LayerSpec) -> nn.Module:
    """Construct one layer (on the current default device). Hand-set params are not applied here."""
    if spec.type == "Residual":
        return Residual(*[build_layer(s) for s in spec.layers], shortcut=[build_layer(s) for s in spec.shortcut])
    if spec.type == "Concat":
        return Concat(*[build_layer(s) for s in spec.layers], dim=full_args(CATALOGUE["Concat"], spec.args)["dim"])
    if spec.type == "Sequential":
        return Sequential(*[build_layer(s) for s in spec.layers])
    lt = CATALOGUE[spec.type]
    assert lt.cls is not None
    if spec.type == "Hardtanh":
        _check_hardtanh(spec.args)
    if spec.type in ("Softmax", "LogSoftmax") and spec.args.get("dim") is None:
        _quiet_implicit_dim()
    return lt.cls(**torch_kwargs(lt, spec.args))



def _check_hardtanh(args: dict[str, Any]) -> None:
    """torch.nn.Hardtanh asserts max_val > min_val (an AssertionError without words): a ValueError that says it."""
    lo, hi = args.get("min_val", -1.0), args.get("max_val", 1.0)
    if not hi > lo:
        raise ValueError(f"max_val must be greater than min_val (got min_val={lo}, max_val={hi}); torch.nn.Hardtanh "
                         "asserts max_val > min_val")


def iter_specs(layers: list[LayerSpec], prefix: str = "") -> Iterator[tuple[str, LayerSpec]]:
    """(module path in the built Sequential, spec) for every layer, the blocks' layers included (a Residual's body,
    then its shortcut)."""
    for i, spec in enumerate(layers):
        path = f"{prefix}{i}"
        yield path, spec
        if spec.type in BLOCKS:
            yield from iter_specs(spec.layers, f"{path}.body.")
        if spec.shortcut:
            yield from iter_specs(spec.shortcut, f"{path}.shortcut.")



def _field_for(path: str) -> str:
    """Module path '3.body.1' -> preset field 'model.layers[3].layers[1]' ('3.shortcut.0' -> '...shortcut[0]')."""
    parts = path.split(".")
    out = f"model.layers[{parts[0]}]"
    rest = parts[1:]
    while rest:
        # rest = ["body" | "shortcut", "i", ...]
        out += f".{'shortcut' if rest[0] == 'shortcut' else 'layers'}[{rest[1]}]"
        rest = rest[2:]
    return out



def construction_problem(spec: LayerSpec, err: BaseException, index: int, path: str) -> tuple[str, Fix | None]:
    """(hint, fix) for a layer torch's constructor refuses (`err`, torch's own exception): Conv's groups that do
    not divide both channel counts, padding = "same" with a stride. The fix is offered only when the layer it
    gives builds; `index` is the top-level index, `path` the layer's as the shape check writes it ("3.1")."""
    text = str(err)
    t = spec.type
    fix: Fix | None = None
    hint = "check the layer's arguments."
    lt = CATALOGUE.get(t)
    if lt is None or not t.startswith("Conv"):
        return hint, None
    a = full_args(lt, spec.args)
    if "divisible by groups" in text:
        cin, cout, groups = a["in_channels"], a["out_channels"], a["groups"]
        common = math.gcd(cin, cout)
        good = common if common <= groups else math.gcd(common, groups)  # divides both; O(log), whatever the sizes
        hint = (f"groups = {groups} splits the channels into {groups} groups, so in_channels ({cin}) and "
                f"out_channels ({cout}) must both be multiples of {groups}; {good} divides both.")
        fix = Fix(index, "groups", good, f"set groups = {good}", path=path)
    elif "same" in text and "strided" in text:
        dims = 1 if t == "Conv1d" else 2
        k, d = pair(a["kernel_size"], dims), pair(a["dilation"], dims)
        pad = [d[i] * (k[i] - 1) // 2 for i in range(dims)]
        value: Any = pad[0] if len(set(pad)) == 1 else pad
        hint = (f"torch's padding = \"same\" works only with stride 1 (stride is {a['stride']}); with a stride, "
                f"write the padding as a number: dilation*(kernel_size-1)//2 = {value} pads as \"same\" does for an "
                f"odd kernel, and the output is ceil(input/stride) long.")
        fix = Fix(index, "padding", value, f"set padding = {value}", path=path)
    if fix is not None:
        try:
            with torch.device("meta"):
                build_layer(LayerSpec(t, dict(spec.args, **{fix.arg: fix.value})))
        except Exception:  # noqa: BLE001 - a fix that does not build is not offered
            fix = None
    return hint, fix



def validate_params(model: ModelSpec, source: str = "<preset>") -> None:
    """Construct every layer on the meta device (allocates nothing) and check hand-set parameter shapes. A
    layer torch's constructor refuses is a LayerError at that layer, torch's words, a hint and a fix."""
    for path, spec in iter_specs(model.layers):
        field = _field_for(path)
        try:
            with torch.device("meta"):
                module = build_layer(spec) if spec.type not in BLOCKS else None
        except (ValueError, TypeError, RuntimeError) as err:
            if "overflow" in str(err).lower():
                continue  # a size question, not a format one: the memory budget refuses it, with the bytes
            where = path.replace(".body.", ".")
            hint, fix = construction_problem(spec, err, int(where.split(".")[0]), where)
            raise LayerError(f"layer {where} ({spec.type}) cannot be built: {shown(str(err), 300)}",
                             layer=int(where.split(".")[0]), path=where, type=spec.type, fix=fix, source=source,
                             field=field, hint=hint) from None
        if spec.init is not None:
            _check_init(spec, module, field, source)
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



def _check_init(spec: LayerSpec, module: nn.Module | None, field: str, source: str) -> None:
    """The layer's init scheme fits its weight and bias (PresetError naming the init key otherwise)."""
    assert spec.init is not None
    if module is None:  # a block: built here only for its init (its layers are checked anyway)
        try:
            with torch.device("meta"):
                module = build_layer(spec)
        except (ValueError, TypeError, RuntimeError):
            return  # a body layer that cannot be built: its own entry says why
    problem = init_problem(module, spec.init, spec.type)
    if problem is not None:
        key, message, hint = problem
        where = f"{field}.init" if key == "scheme" and len(spec.init) == 1 else f"{field}.init.{key}"
        raise PresetError(message, source=source, field=where, hint=hint)



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
            init_module(module, s.init, redraw_default=False)  # "default": the constructor's draw, kept
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



def init_targets(module: nn.Module) -> list[nn.Module]:
    """The layers an init scheme on `module` applies to: the layer itself; for a block, every layer inside it that
    has a weight, in order (a Residual's body, then its shortcut; nested blocks included)."""
    if isinstance(module, BLOCK_MODULES):
        return [m for m in module.modules() if not isinstance(m, (*BLOCK_MODULES, nn.Sequential, nn.ModuleList))
                and isinstance(getattr(m, "weight", None), nn.Parameter)]
    return [module]



def _has(module: nn.Module, name: str) -> bool:
    return isinstance(getattr(module, name, None), torch.Tensor)



def init_problem(module: nn.Module, init: dict[str, Any], what: str) -> tuple[str, str, str] | None:
    """(key, message, hint) when the scheme `init` cannot be applied to `module` (built on any device, the
    meta device included), named `what` ("Linear", "layer 2 (Linear)"); else None."""
    if isinstance(module, BLOCK_MODULES):
        targets = init_targets(module)
        if not targets and (init.get("scheme", "default") != "default" or "bias" in init):
            return ("scheme", f"{what} has no layer with a weight in its body", "set init on a layer with a weight")
        for m in targets:
            problem = init_problem(m, init, f"{what}'s {type(m).__name__}")
            if problem is not None:
                return problem
        return None
    weight = getattr(module, "weight", None)
    shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
    return weight_problem(init, what, shape, _has(module, "bias"))



def init_module(module: nn.Module, init: dict[str, Any], *, redraw_default: bool = True) -> None:
    """Apply an initialisation scheme (model/init.py) to one layer: the torch.nn.init function on its weight,
    then `nn.init.constant_` on its bias when the table sets `bias`; on a Residual block, to each layer of its
    body that has a weight. "default" redraws weight and bias with the layer's own `reset_parameters()` when
    `redraw_default` (the app's action on a built layer); a preset's "default" is no initialisation at all
    (build_model passes False). Refused as a WeightError, before any change, where torch would refuse it."""
    scheme = init.get("scheme", "default")
    problem = init_problem(module, init, type(module).__name__)
    if problem is not None:
        key, message, hint = problem
        raise WeightError(f"init {scheme}: {message}", hint=hint)
    for m in init_targets(module):
        if scheme == "default" and redraw_default:
            for sub in m.modules():
                reset = getattr(sub, "reset_parameters", None)
                if callable(reset):
                    reset()
        for name, fn, kwargs in init_calls(init):
            getattr(nn.init, fn)(getattr(m, name), **kwargs)



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
