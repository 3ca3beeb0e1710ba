"""Issue 22, 1.4: every fix the shape check offers makes the network valid. Each candidate is applied to a copy and
the whole network checked again (and the loss on the targets) before it is offered; the tests apply the offered
fix, build the session in torch and compute the loss on the targets, and the expected shapes come from plain
torch modules."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tui_nn.engine.errors import INPUT_FIX, INSERT
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.model.edits import apply_fix
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.training.target_check import target_check
from tui_nn.engine.spec import LayerSpec, ModelSpec
from tui_nn.engine.training.session import Session


def L(t, **args):
    return LayerSpec(t, args)


def _preset(model, loss="CrossEntropyLoss", targets=None):
    text = f'[model]\ninput_shape = {list(model.input_shape)}\n[[model.layers]]\ntype = "Identity"\n'
    if targets is not None:
        text += f"[data]\ntargets = {targets}\n"
    text += f'[training]\nloss = "{loss}"\n'
    preset = loads_preset(text, "gen.toml")
    preset.model = model.copy()
    return preset


def _offered(preset):
    """The report `tui-nn check` makes of the preset: the fixes verified with the loss on its targets."""
    t = preset.training
    check = target_check(preset.data, t.loss.type, t.loss.args, tuple(preset.model.input_shape), t.seed)
    return check_model(preset.model, tuple(preset.model.input_shape), target_check=check)


def _valid_after(preset, error, fix):
    """Apply `fix` to a copy of the preset, build the session in torch, compute the loss on its targets."""
    fixed = preset.copy()
    apply_fix(fixed.model, error, fix)
    s = Session(fixed)
    assert s.report.ok, (fix.text, str(s.report.error))
    assert s.data_error is None, (fix.text, str(s.data_error))
    loss = s.loss_value()
    assert loss is not None, fix.text
    return s


def test_conv_relu_linear_gets_insert_flatten_not_in_features_of_the_last_dimension():
    conv = nn.Conv2d(3, 4, 3)
    out = conv(torch.zeros(2, 3, 8, 8))  # plain torch: [2, 4, 6, 6], so Linear(144) needs a Flatten
    model = ModelSpec((2, 3, 8, 8), [L("Conv2d", in_channels=3, out_channels=4, kernel_size=3), L("ReLU"),
                                     L("Linear", in_features=out[0].numel(), out_features=10)])
    preset = _preset(model, targets=[1, 7])
    e = _offered(preset).error
    assert (e.layer, e.type) == (2, "Linear")
    assert (e.fix.arg, e.fix.value) == (INSERT, "Flatten") and e.fix.then == ()
    assert all(f.arg != "in_features" for f in (e.fix, *e.extra_fixes))  # [2, 4, 6, 10] fails on the targets
    s = _valid_after(preset, e, e.fix)
    assert s.report.output_shape == tuple(nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))(
        torch.zeros(2, 3, 8, 8)).shape)


def test_a_flatten_that_needs_in_features_too_is_one_fix_of_two_steps():
    model = ModelSpec((2, 3, 8, 8), [L("Conv2d", in_channels=3, out_channels=4, kernel_size=3), L("ReLU"),
                                     L("Linear", in_features=100, out_features=5)])
    preset = _preset(model, targets=[0, 4])
    e = _offered(preset).error
    assert e.fix.arg == INSERT and [(f.layer, f.arg, f.value) for f in e.fix.then] == [(3, "in_features", 144)]
    assert e.fix.text == "insert a Flatten layer before layer 2, then set in_features = 144"
    s = _valid_after(preset, e, e.fix)
    assert [sp.type for sp in s.spec.layers] == ["Conv2d", "ReLU", "Flatten", "Linear"]


def test_three_pools_reaching_1x1_do_not_get_a_kernel_size_that_moves_the_error():
    x = torch.zeros(1, 1, 4, 4)
    pool = nn.MaxPool2d(2)
    assert pool(pool(x)).shape[-2:] == (1, 1)  # plain torch: a third MaxPool2d(2) has nothing to pool
    with pytest.raises(RuntimeError):
        pool(pool(pool(x)))
    layers = [L("MaxPool2d", kernel_size=2)] * 3 + [L("Conv2d", in_channels=1, out_channels=2, kernel_size=2),
                                                     L("Flatten")]
    preset = _preset(ModelSpec((1, 1, 4, 4), [sp.copy() for sp in layers]), loss="MSELoss")
    e = _offered(preset).error
    assert (e.layer, e.type) == (2, "MaxPool2d")
    assert "layer 3 (Conv2d) fails next" in e.hint  # what kernel_size = 1 would do
    offered = [f for f in (e.fix, *e.extra_fixes) if f is not None]
    assert not any(f.arg == "kernel_size" for f in offered)
    assert offered, "an input size that fits every layer exists"
    for fix in offered:
        _valid_after(preset, e, fix)
    assert e.fix.layer == INPUT_FIX
    side = e.fix.value[-1]
    net = nn.Sequential(pool, pool, pool, nn.Conv2d(1, 2, 2), nn.Flatten())
    net(torch.zeros(e.fix.value))  # plain torch runs it
    with pytest.raises(RuntimeError):  # and the size is the smallest of its kind that does
        net(torch.zeros(1, 1, side - 1, side - 1))


def test_no_valid_change_means_no_fix_and_the_hint_says_which_layer_fails_next():
    # the input's shape is fixed by the data (3 features per sample): Linear(3, 4) -> Linear(5, 2) gets
    # in_features = 4; with targets of 3 classes that output of 2 classes fails at the loss
    model = ModelSpec((2, 3), [L("Linear", in_features=3, out_features=4), L("Linear", in_features=5, out_features=2)])
    preset = _preset(model, targets=[0, 2])
    e = _offered(preset).error
    assert e.fix is None and e.extra_fixes == ()
    assert 'with "set in_features = 4"' in e.hint and "the loss cannot be computed on the targets" in e.hint
    assert "class index 2 is out of range" in e.hint
    assert e.to_dict()["fix"] is None


def test_the_app_offers_the_fixes_check_offers_verified_on_the_targets():
    """The session (what the app shows) checks its fixes against the loss on its own targets too: the case above
    gets no `set in_features = 4` there either, and a fixable one gets the same fix as `tui-nn check`."""
    model = ModelSpec((2, 3), [L("Linear", in_features=3, out_features=4), L("Linear", in_features=5, out_features=2)])
    preset = _preset(model, targets=[0, 2])
    e = Session(preset).report.error
    assert e.fix is None and "the loss cannot be computed on the targets" in e.hint
    ok = _preset(model, targets=[0, 1])  # two classes: set in_features = 4 makes everything valid
    e = Session(ok).report.error
    assert (e.fix.arg, e.fix.value) == ("in_features", 4) and e.fix == _offered(ok).error.fix


# -- the property: over generated broken networks, an offered fix always yields a valid network ---------------------



@st.composite
def broken_networks(draw):
    """Small networks of the common kinds of mistake: channel and feature counts that do not match, spatial sizes
    too small for a kernel or a pool, a missing (or misplaced) Flatten; with random or given targets."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    size = draw(st.integers(2, 10))
    layers = []
    chans, spatial, flat = c, size, None
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "BatchNorm2d"]))
        off = draw(st.sampled_from([0, 0, 0, 1, -1]))  # mostly right, sometimes one off
        if kind == "Conv2d":
            k = draw(st.integers(1, 4))
            out = draw(st.integers(1, 5))
            layers.append(L("Conv2d", in_channels=max(1, chans + off), out_channels=out, kernel_size=k,
                            padding=draw(st.integers(0, 1))))
            chans = out
        elif kind == "MaxPool2d":
            layers.append(L("MaxPool2d", kernel_size=draw(st.integers(1, 3))))
        elif kind == "BatchNorm2d":
            layers.append(L("BatchNorm2d", num_features=max(1, chans + off)))
        elif kind == "Flatten":
            layers.append(L("Flatten"))
        elif kind == "Linear":
            guess = draw(st.sampled_from(["flat", "last", "any"]))
            feats = {"flat": chans * spatial * spatial, "last": spatial, "any": draw(st.integers(1, 40))}[guess]
            out = draw(st.integers(1, 6))
            layers.append(L("Linear", in_features=max(1, feats + off), out_features=out))
            flat = out
        else:
            layers.append(L("ReLU"))
    loss = draw(st.sampled_from(["CrossEntropyLoss", "MSELoss"]))
    targets = None
    if loss == "CrossEntropyLoss" and draw(st.booleans()):
        targets = [draw(st.integers(0, 3)) for _ in range(n)]  # class indices: the output must have the classes
    del flat
    return _preset(ModelSpec((n, c, size, size), layers), loss, targets)


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(broken_networks())
def test_an_offered_fix_always_yields_a_valid_network(preset):
    report = _offered(preset)
    if report.error is None:
        return
    e = report.error
    for fix in (e.fix, *e.extra_fixes):
        if fix is not None:
            _valid_after(preset, e, fix)
