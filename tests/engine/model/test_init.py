"""Init schemes are torch.nn.init's functions with torch's defaults: every test builds the same layers with
torch.nn and calls torch.nn.init by hand (never through tui_nn) and compares the tensors bit for bit."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tui_nn.engine.errors import PresetError, WeightError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.model.init import _trunc_normal_acceptance
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

SEED = 7

# (TOML keys of the layer, the same layer in torch.nn, the input shape)
LAYERS = {
    "Linear": ('type = "Linear"\nin_features = 5\nout_features = 4', lambda: nn.Linear(5, 4), [2, 5]),
    "Conv2d": ('type = "Conv2d"\nin_channels = 4\nout_channels = 6\nkernel_size = 3\ngroups = 2',
               lambda: nn.Conv2d(4, 6, 3, groups=2), [2, 4, 5, 5]),
    "Conv1d": ('type = "Conv1d"\nin_channels = 3\nout_channels = 2\nkernel_size = [2]',
               lambda: nn.Conv1d(3, 2, (2,)), [2, 3, 6]),
    "LayerNorm": ('type = "LayerNorm"\nnormalized_shape = [3, 4]', lambda: nn.LayerNorm([3, 4]), [2, 3, 4]),
    "BatchNorm1d": ('type = "BatchNorm1d"\nnum_features = 4', lambda: nn.BatchNorm1d(4), [3, 4]),
    "PReLU": ('type = "PReLU"\nnum_parameters = 3', lambda: nn.PReLU(3), [2, 3]),
}

# (init as TOML, the torch.nn.init function, its keyword arguments as torch takes them)
SCHEMES = [
    ('"zeros"', nn.init.zeros_, {}),
    ('"ones"', nn.init.ones_, {}),
    ('{ scheme = "constant", val = -0.25 }', nn.init.constant_, {"val": -0.25}),
    ('"uniform"', nn.init.uniform_, {}),
    ('{ scheme = "uniform", a = -0.5, b = 0.25 }', nn.init.uniform_, {"a": -0.5, "b": 0.25}),
    ('"normal"', nn.init.normal_, {}),
    ('{ scheme = "normal", mean = 1.5, std = 0.01 }', nn.init.normal_, {"mean": 1.5, "std": 0.01}),
    ('"trunc_normal"', nn.init.trunc_normal_, {}),
    ('{ scheme = "trunc_normal", mean = 0.06, std = 0.02, a = -0.04, b = 0.04 }', nn.init.trunc_normal_,
     {"mean": 0.06, "std": 0.02, "a": -0.04, "b": 0.04}),
    ('"xavier_uniform"', nn.init.xavier_uniform_, {}),
    ('{ scheme = "xavier_uniform", gain = 1.6666666666666667 }', nn.init.xavier_uniform_,
     {"gain": nn.init.calculate_gain("tanh")}),
    ('"xavier_normal"', nn.init.xavier_normal_, {}),
    ('{ scheme = "xavier_normal", gain = 0.5 }', nn.init.xavier_normal_, {"gain": 0.5}),
    ('"kaiming_uniform"', nn.init.kaiming_uniform_, {}),
    ('{ scheme = "kaiming_uniform", a = 2.23606797749979 }', nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
    ('"kaiming_normal"', nn.init.kaiming_normal_, {}),
    ('{ scheme = "kaiming_normal", mode = "fan_out", nonlinearity = "relu" }', nn.init.kaiming_normal_,
     {"mode": "fan_out", "nonlinearity": "relu"}),
    ('{ scheme = "kaiming_uniform", a = 0.2, nonlinearity = "leaky_relu", mode = "fan_in" }',
     nn.init.kaiming_uniform_, {"a": 0.2, "nonlinearity": "leaky_relu", "mode": "fan_in"}),
    ('{ scheme = "kaiming_normal", nonlinearity = "selu" }', nn.init.kaiming_normal_, {"nonlinearity": "selu"}),
    ('"orthogonal"', nn.init.orthogonal_, {}),
    ('{ scheme = "orthogonal", gain = -2.0 }', nn.init.orthogonal_, {"gain": -2.0}),
]
FAN = {nn.init.xavier_uniform_, nn.init.xavier_normal_, nn.init.kaiming_uniform_, nn.init.kaiming_normal_,
       nn.init.orthogonal_}


def preset(layers: list[str], input_shape: list[int], seed: int = SEED, extra: str = "") -> str:
    body = "".join(f"[[model.layers]]\n{layer}\n" for layer in layers)
    return f"[model]\ninput_shape = {input_shape}\n{body}{extra}[training]\nseed = {seed}\n"


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


CASES = [(layer, scheme) for layer in LAYERS for scheme in range(len(SCHEMES))
         if not (SCHEMES[scheme][1] in FAN and layer in ("BatchNorm1d", "PReLU"))]


@pytest.mark.parametrize("layer,k", CASES, ids=[f"{layer}-{SCHEMES[k][0]}" for layer, k in CASES])
def test_each_scheme_is_the_torch_function_on_the_weight_and_the_bias_keeps_its_default(layer, k):
    toml, make, shape = LAYERS[layer]
    init, fn, kwargs = SCHEMES[k]
    s = Session(loads_preset(preset([f"{toml}\ninit = {init}"], shape)))
    torch.manual_seed(SEED)
    hand = nn.Sequential(make())
    fn(hand[0].weight, **kwargs)  # the one line a PyTorch user writes; the bias is left as the constructor drew it
    assert_same(state(s.model), state(hand))


@pytest.mark.parametrize("layer", ["Linear", "Conv2d", "LayerNorm", "BatchNorm1d"])
def test_bias_in_the_table_is_constant_on_the_bias_after_the_weight(layer):
    toml, make, shape = LAYERS[layer]
    scheme = '"kaiming_normal"' if layer != "BatchNorm1d" else '"normal"'
    s = Session(loads_preset(preset([f"{toml}\ninit = {{ scheme = {scheme}, bias = 0.125 }}"], shape)))
    torch.manual_seed(SEED)
    hand = nn.Sequential(make())
    (nn.init.kaiming_normal_ if layer != "BatchNorm1d" else nn.init.normal_)(hand[0].weight)
    nn.init.constant_(hand[0].bias, 0.125)
    assert_same(state(s.model), state(hand))
    # "default" with a bias: the constructor's weight, the bias set
    s = Session(loads_preset(preset([f"{toml}\ninit = {{ scheme = \"default\", bias = 0 }}"], shape)))
    torch.manual_seed(SEED)
    hand = nn.Sequential(make())
    nn.init.zeros_(hand[0].bias)
    assert_same(state(s.model), state(hand))


def test_default_is_exactly_no_init_bit_for_bit():
    layers = [LAYERS["Conv2d"][0], 'type = "ReLU"', 'type = "Flatten"',
              'type = "Linear"\nin_features = 54\nout_features = 3', 'type = "BatchNorm1d"\nnum_features = 3']
    plain = Session(loads_preset(preset(layers, [2, 4, 5, 5])))
    default = Session(loads_preset(preset([f"{t}\ninit = \"default\"" for t in layers], [2, 4, 5, 5])))
    torch.manual_seed(SEED)
    hand = nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(54, 3), nn.BatchNorm1d(3))
    assert_same(state(default.model), state(plain.model))
    assert_same(state(default.model), state(hand))
    # and the losses of training: the same, step for step
    assert train(default, 4)[1] == train(plain, 4)[1]


def test_schemes_apply_in_layer_order_after_all_layers_are_built():
    layers = ['type = "Linear"\nin_features = 5\nout_features = 4\ninit = "xavier_normal"', 'type = "Tanh"',
              'type = "Linear"\nin_features = 4\nout_features = 2\n'
              'init = { scheme = "kaiming_uniform", nonlinearity = "tanh" }']
    s = Session(loads_preset(preset(layers, [3, 5])))
    torch.manual_seed(SEED)
    hand = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    nn.init.xavier_normal_(hand[0].weight)
    nn.init.kaiming_uniform_(hand[2].weight, nonlinearity="tanh")
    assert_same(state(s.model), state(hand))


def test_residual_init_is_each_weighted_body_layer_in_order():
    body = ('type = "Residual"\ninit = { scheme = "kaiming_normal", bias = 0 }\nlayers = [ '
            '{ type = "Linear", in_features = 4, out_features = 4 }, { type = "ReLU" }, '
            '{ type = "Residual", layers = [ { type = "Linear", in_features = 4, out_features = 4, init = "ones" } ] },'
            ' { type = "LayerNorm", normalized_shape = [2, 4] } ]')
    s = Session(loads_preset(preset([body], [3, 2, 4])))
    torch.manual_seed(SEED)
    lin1, lin2, ln = nn.Linear(4, 4), nn.Linear(4, 4), nn.LayerNorm([2, 4])
    for m in (lin1, lin2, ln):
        nn.init.kaiming_normal_(m.weight)
        nn.init.constant_(m.bias, 0.0)
    nn.init.ones_(lin2.weight)  # the inner layer's own init comes after its block's
    got = [p.detach() for p in s.model.parameters()]
    want = [lin1.weight, lin1.bias, lin2.weight, lin2.bias, ln.weight, ln.bias]
    assert all(torch.equal(a, b) for a, b in zip(got, want)) and len(got) == len(want)


KAIMING_NET = preset(['type = "Linear"\nin_features = 6\nout_features = 16\ninit = "kaiming_uniform"',
                      'type = "ReLU"', 'type = "Linear"\nin_features = 16\nout_features = 3\n'
                      'init = { scheme = "xavier_normal", bias = 0.0 }'], [20, 6], seed=3,
                     extra='[data]\ninputs = { generate = "randn", shape = [20, 6] }\n'
                           'targets = { generate = "randint", shape = [20], high = 3 }\n').replace(
    "[training]\n", '[training]\nloss = "CrossEntropyLoss"\noptimizer = { type = "SGD", lr = 0.1 }\n')


def test_training_from_an_init_gives_the_hand_written_loops_losses():
    fin, losses = train(Session(loads_preset(KAIMING_NET)), 5)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 6, generator=g), torch.randint(0, 3, (20,), generator=g)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.kaiming_uniform_(model[0].weight)
    nn.init.xavier_normal_(model[2].weight)
    nn.init.constant_(model[2].bias, 0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    want = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert losses == want  # bit-identical on CPU


def test_the_app_action_default_redraws_with_reset_parameters_and_others_keep_the_bias():
    s = Session(loads_preset(preset([LAYERS["Linear"][0]], [2, 5])))
    bias = s.get_param("0.bias").detach().clone()
    torch.manual_seed(11)
    s.init_layer("0", {"scheme": "kaiming_normal", "mode": "fan_out"})
    hand = nn.Linear(5, 4)
    with torch.no_grad():
        hand.bias.copy_(bias)
    torch.manual_seed(11)
    nn.init.kaiming_normal_(hand.weight, mode="fan_out")
    assert torch.equal(s.get_param("0.weight"), hand.weight) and torch.equal(s.get_param("0.bias"), bias)
    torch.manual_seed(12)
    s.init_layer("0", {"scheme": "default"})
    torch.manual_seed(12)
    hand.reset_parameters()
    assert torch.equal(s.get_param("0.weight"), hand.weight) and torch.equal(s.get_param("0.bias"), hand.bias)


def test_the_app_action_refuses_what_torch_refuses_and_changes_nothing():
    s = Session(loads_preset(preset([LAYERS["BatchNorm1d"][0]], [3, 4])))
    before = state(s.model)
    with pytest.raises(WeightError) as info:
        s.init_layer("0", {"scheme": "xavier_uniform"})
    assert "at least 2 dimensions" in str(info.value) and info.value.hint
    assert_same(state(s.model), before)


@pytest.mark.parametrize("init,field,words", [
    ('{ scheme = "kaiming_uniform", mode = "fan_inn" }', "init.mode", "expected one of fan_in, fan_out"),
    ('{ scheme = "kaiming_normal", nonlinearity = "Relu" }', "init.nonlinearity", "expected one of linear"),
    ('{ scheme = "kaiming_normal", a = "0.1" }', "init.a", "expected a number"),
    ('{ scheme = "xavier_uniform", gain = -1 }', "init.gain", "gain must be >= 0"),
    ('{ scheme = "xavier_normal", a = 1 }', "init.a", 'unknown key "a" for init xavier_normal'),
    ('{ scheme = "constant" }', "init.val", 'needs "val"'),
    ('{ scheme = "constant", val = 1, value = 2 }', "init.value", "repeats"),
    ('{ scheme = "trunc_normal", std = 0 }', "init.std", "std must be > 0"),
    ('{ scheme = "trunc_normal", a = 1, b = -1 }', "init.b", "a must be <= b"),
    ('{ scheme = "trunc_normal", mean = 5 }', "init.mean", "more than 2 std"),
    ('{ scheme = "trunc_normal", a = 0.6, b = 1e6 }', "init.b", "candidates for each value"),
    ('{ scheme = "zeros", bias = "0" }', "init.bias", "expected a number"),
    ('{ scheme = "zeros", bias = 1e39 }', "init.bias", "too large for float32"),
    ('{ scheme = "kaiming_uniform_" }', "init.scheme", 'did you mean "kaiming_uniform"'),
    ('"xavier"', "init", "expected one of: default, zeros"),
])
def test_init_tables_are_validated_with_torchs_names_and_bounds(init, field, words):
    with pytest.raises(PresetError) as info:
        loads_preset(preset([f"{LAYERS['Linear'][0]}\ninit = {init}"], [2, 5]))
    assert info.value.field == f"model.layers[0].{field}" and words in info.value.detail, info.value.detail


@pytest.mark.parametrize("layer,init,field,words", [
    ('type = "BatchNorm1d"\nnum_features = 4', '"kaiming_uniform"', "model.layers[0].init",
     "at least 2 dimensions"),
    ('type = "PReLU"', '{ scheme = "orthogonal", gain = 2 }', "model.layers[0].init.scheme", "at least 2 dimensions"),
    ('type = "ReLU"', '"normal"', "model.layers[0].init", "has no weight"),
    ('type = "BatchNorm1d"\nnum_features = 4\naffine = false', '"ones"', "model.layers[0].init", "has no weight"),
    ('type = "Linear"\nin_features = 4\nout_features = 4\nbias = false', '{ scheme = "zeros", bias = 0 }',
     "model.layers[0].init.bias", "has no bias"),
    ('type = "Residual"\nlayers = [ { type = "ReLU" } ]', '"zeros"', "model.layers[0].init", "no layer with a weight"),
    ('type = "Residual"\nlayers = [ { type = "BatchNorm1d", num_features = 4 } ]', '"xavier_normal"',
     "model.layers[0].init", "BatchNorm1d's weight has shape [4]"),
    ('type = "Linear"\nin_features = 4\nout_features = 4', '{ scheme = "xavier_uniform", gain = 3e38 }',
     "model.layers[0].init.gain", "too large for float32"),
])
def test_a_scheme_that_does_not_fit_the_layer_is_refused_at_load(layer, init, field, words):
    with pytest.raises(PresetError) as info:
        loads_preset(preset([f"{layer}\ninit = {init}"], [3, 4]))
    assert info.value.field == field and words in info.value.detail, info.value.detail


def test_init_tables_round_trip_and_the_old_value_key_is_read_as_val():
    text = preset([f"{LAYERS['Linear'][0]}\ninit = {{ scheme = \"constant\", value = 0.5, bias = -1 }}",
                   'type = "Linear"\nin_features = 4\nout_features = 4\n'
                   'init = { scheme = "kaiming_normal", a = 0.1, mode = "fan_out" }'], [2, 5])
    p = loads_preset(text)
    assert p.model.layers[0].init == {"scheme": "constant", "val": 0.5, "bias": -1.0}
    again = loads_preset(dumps_preset(p))
    assert [s.init for s in again.model.layers] == [s.init for s in p.model.layers]
    assert_same(state(Session(again).model), state(Session(p).model))


# -- generated: any accepted init table is the torch function; anything else is a PresetError ------------------

_NUM = st.one_of(st.floats(-4, 4, allow_nan=False), st.integers(-3, 3))
_VALUES = {"mode": st.sampled_from(["fan_in", "fan_out", "fan"]),
           "nonlinearity": st.sampled_from(["relu", "tanh", "leaky_relu", "selu", "linear", "sigmoid", "conv2d",
                                            "gelu"])}
_KEYS = {"uniform": ("a", "b"), "normal": ("mean", "std"), "trunc_normal": ("mean", "std", "a", "b"),
         "constant": ("val",), "xavier_uniform": ("gain",), "xavier_normal": ("gain",), "orthogonal": ("gain",),
         "kaiming_uniform": ("a", "mode", "nonlinearity"), "kaiming_normal": ("a", "mode", "nonlinearity"),
         "zeros": (), "ones": (), "default": ()}


@st.composite
def _tables(draw):
    """Mostly the scheme's own keys (each present or not), sometimes a key of another scheme."""
    scheme = draw(st.sampled_from(sorted(_KEYS)))
    keys = [k for k in _KEYS[scheme] + ("bias",) if draw(st.booleans())]
    if draw(st.integers(0, 9)) == 0:
        keys.append(draw(st.sampled_from(["a", "gain", "val", "mode", "std"])))
    return {"scheme": scheme, **{k: draw(_VALUES.get(k, _NUM)) for k in keys}}


def _toml_value(v):
    return f'"{v}"' if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(table=_tables(), layer=st.sampled_from(["Linear", "Conv2d", "LayerNorm", "BatchNorm1d"]))
def test_generated_init_tables_are_torch_or_refused(table, layer):
    toml, make, shape = LAYERS[layer]
    inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in table.items())
    try:
        s = Session(loads_preset(preset([f"{toml}\ninit = {{ {inner} }}"], shape)))
    except PresetError as err:
        assert err.field.startswith("model.layers[0].init"), err
        return
    scheme = table["scheme"]
    torch.manual_seed(SEED)
    hand = nn.Sequential(make())
    if scheme != "default":
        kwargs = {k: table[k] for k in _KEYS[scheme] if k in table}
        getattr(nn.init, scheme + "_")(hand[0].weight, **kwargs)
    if "bias" in table:
        nn.init.constant_(hand[0].bias, table["bias"])
    assert_same(state(s.model), state(hand))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(mean=st.floats(-3, 3), std=st.floats(0.01, 3), a=st.floats(-6, 6), width=st.floats(0, 12))
def test_the_trunc_normal_acceptance_estimate_matches_torchs_first_round(mean, std, a, width):
    """The load-time guard against a trunc_normal_ that would redraw for ever estimates the share of candidates
    torch's sampler keeps; here it is measured on torch's own first round of draws."""
    b = a + width
    if mean < a - 2 * std or mean > b + 2 * std:
        return  # refused before the estimate
    rate = _trunc_normal_acceptance(mean, std, a, b)
    n = 20_000
    g = torch.Generator().manual_seed(0)
    za, zb = (a - mean) / std, (b - mean) / std
    p = (1.0 + math.erf(zb / math.sqrt(2.0))) / 2.0 - (1.0 + math.erf(za / math.sqrt(2.0))) / 2.0
    if p > 0.3:
        x = torch.empty(n, dtype=torch.float64).normal_(mean, std, generator=g)
        kept = ((x >= a) & (x <= b)).double().mean().item()
    else:
        mode = max(a, min(mean, b))
        log_peak = -0.5 * ((mode - mean) / std) ** 2
        x = torch.empty(n, dtype=torch.float64).uniform_(a, b, generator=g)
        log_pdf = -0.5 * ((x - mean) / std) ** 2 - log_peak
        kept = (torch.empty(n, dtype=torch.float64).uniform_(generator=g).log() <= log_pdf).double().mean().item()
    assert abs(rate - kept) < 0.02 + 0.1 * kept, (rate, kept)


@pytest.mark.parametrize("init,field", [
    ('{ scheme = "normal", std = 3e38 }', "model.layers[0].init.std"),
    ('{ scheme = "normal", mean = 3.4e38, std = 1e37 }', "model.layers[0].init.std"),
    ('{ scheme = "kaiming_normal", a = 1e-30, nonlinearity = "leaky_relu" }', None),  # gain sqrt(2): fine
    ('{ scheme = "xavier_normal", gain = 1e38 }', "model.layers[0].init.gain"),
])
def test_a_scheme_whose_draws_would_overflow_float32_is_refused(init, field):
    text = preset([f"{LAYERS['Linear'][0]}\ninit = {init}"], [2, 5])
    if field is None:
        assert all(bool(torch.isfinite(p).all()) for p in Session(loads_preset(text)).model.parameters())
        return
    with pytest.raises(PresetError) as info:
        loads_preset(text)
    assert info.value.field == field and "too large for float32" in info.value.detail
