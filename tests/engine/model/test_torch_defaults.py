"""Arguments left to torch's own defaults behave as torch's do: Softmax/LogSoftmax without dim (torch's implicit
choice, with its warning shown as a hint naming the dim) and BatchNorm's momentum None (written "cumulative").
Each is compared with the same module made by hand with torch.nn."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tui_nn.engine.errors import PresetError
from tui_nn.engine.files.export import export_script
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.model.argtext import call_text
from tui_nn.engine.model.build import build_layer
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.spec import LayerSpec, ModelSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train


def torch_warning(module: nn.Module, x: torch.Tensor) -> str:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        module(x)
    return str(seen[-1].message)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5), log=st.booleans())
def test_softmax_without_dim_is_torchs_implicit_choice(shape, log):
    name = "LogSoftmax" if log else "Softmax"
    ours = build_layer(LayerSpec(name))
    theirs = (nn.LogSoftmax if log else nn.Softmax)()
    assert ours.dim is None
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(ours(x), theirs(x))
    report = check_model(ModelSpec(tuple(shape), [LayerSpec(name)]))
    assert report.ok and len(report.warnings) == 1
    w = report.warnings[0]
    dim = 0 if len(shape) in (1, 3) else 1  # torch.nn.functional._get_softmax_dim
    assert w.message == torch_warning(theirs, x)  # torch's own words
    assert f"torch picks dim = {dim} for this {len(shape)}-D input" in w.hint
    assert (w.fix.arg, w.fix.value) == ("dim", dim)
    assert torch.equal(ours(x), getattr(torch, "log_softmax" if log else "softmax")(x, dim=dim))


def test_an_explicit_dim_has_no_warning_and_a_3d_input_names_the_batch():
    assert check_model(ModelSpec((2, 3), [LayerSpec("Softmax", args={"dim": 1})])).warnings == []
    w = check_model(ModelSpec((2, 3, 4), [LayerSpec("Linear", args={"in_features": 4, "out_features": 4}),
                                          LayerSpec("LogSoftmax")])).warnings
    assert [(x.path, x.type) for x in w] == [("1", "LogSoftmax")] and "the batch dimension" in w[0].hint
    assert "log_softmax" in w[0].message
    assert call_text(LayerSpec("Softmax")) == "Softmax()"


SOFTMAX_3D = '''
[model]
input_shape = [4, 2, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 3
[[model.layers]]
type = "Softmax"
[data]
inputs = { generate = "randn", shape = [4, 2, 3] }
targets = { generate = "rand", shape = [4, 2, 3] }
[training]
optimizer = { type = "SGD", lr = 0.5 }
seed = 2
'''


def test_training_a_softmax_without_dim_gives_the_hand_written_loops_losses_and_no_stray_warning():
    with warnings.catch_warnings(record=True) as seen:  # the engine's filters stay in force
        fin, losses = train(Session(loads_preset(SOFTMAX_3D)), 4)
    assert not [w for w in seen if "Implicit dimension" in str(w.message)]
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(4, 2, 3, generator=g), torch.rand(4, 2, 3, generator=g)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(3, 3), nn.Softmax())  # as transcribed: dim 0 for this 3-D input
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    want = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            opt.zero_grad()
            loss = nn.MSELoss()(model(x), y)
            loss.backward()
            opt.step()
            want.append(loss.item())
    assert losses == want
    assert "nn.Softmax()," in export_script(loads_preset(SOFTMAX_3D))


BN = '''
[model]
input_shape = [6, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 2
[[model.layers]]
type = "BatchNorm1d"
num_features = 2
momentum = {momentum}
[data]
inputs = {{ generate = "randn", shape = [6, 3] }}
targets = {{ generate = "randn", shape = [6, 2] }}
[training]
optimizer = {{ type = "SGD", lr = 0.1 }}
batch_size = 2
shuffle = false
seed = 4
'''


@pytest.mark.parametrize("momentum", ['"cumulative"', "0.3"])
def test_batchnorm_momentum_cumulative_is_torchs_none(momentum):
    s = Session(loads_preset(BN.format(momentum=momentum)))
    value = None if momentum == '"cumulative"' else 0.3
    assert s.model[1].momentum == value
    fin, losses = train(s, 5)
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(6, 3, generator=g), torch.randn(6, 2, generator=g)
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2, momentum=value))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    want = []
    for step in range(5):
        i = (step % 3) * 2
        opt.zero_grad()
        loss = nn.MSELoss()(model(x[i:i + 2]), y[i:i + 2])
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert losses == want
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(s.model[1], name), getattr(model[1], name)), name
    model.eval()
    with torch.no_grad():
        assert s.loss_value() == nn.MSELoss()(model(x), y).item()  # eval mode: the running statistics


def test_batchnorm_momentum_cumulative_round_trips_and_exports_as_none():
    p = loads_preset(BN.format(momentum='"cumulative"'))
    assert p.model.layers[1].args["momentum"] == "cumulative"
    assert 'momentum = "cumulative"' in dumps_preset(p)
    assert loads_preset(dumps_preset(p)).model.layers[1].args == p.model.layers[1].args
    assert "nn.BatchNorm1d(num_features=2, momentum=None)" in export_script(p)
    assert call_text(p.model.layers[1]) == "BatchNorm1d(2, momentum=None)"


@pytest.mark.parametrize("momentum", ['"None"', '"none"', '"cumulativ"', "true", "1.5"])
def test_batchnorm_momentum_other_words_are_refused_with_the_field(momentum):
    with pytest.raises(PresetError) as info:
        loads_preset(BN.format(momentum=momentum))
    assert info.value.field == "model.layers[1].momentum"
    if momentum.startswith('"'):
        assert 'expected a number or "cumulative"' in info.value.detail and "momentum=None" in info.value.hint
