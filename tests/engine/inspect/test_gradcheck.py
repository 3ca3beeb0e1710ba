"""Numerical gradient check: central differences in float64 agree with autograd to 1e-6 for every layer type
with parameters, and a wrong gradient is flagged."""

import pytest
import torch
from torch import nn

from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.inspect.gradcheck import check_gradients, gradcheck_session
from tui_nn.engine.model.build import iter_specs
from tui_nn.engine.model.catalogue import CATALOGUE
from tui_nn.engine.training.session import Session

NETWORKS = {
    "dense": '''
[model]
input_shape = [6, 5]
[[model.layers]]
type = "Linear"
in_features = 5
out_features = 7
[[model.layers]]
type = "BatchNorm1d"
num_features = 7
[[model.layers]]
type = "PReLU"
num_parameters = 7
[[model.layers]]
type = "LayerNorm"
normalized_shape = 7
[[model.layers]]
type = "Residual"
layers = [ { type = "Linear", in_features = 7, out_features = 7 }, { type = "Tanh" } ]
[[model.layers]]
type = "Dropout"
p = 0.3
[[model.layers]]
type = "Linear"
in_features = 7
out_features = 3
[training]
loss = "CrossEntropyLoss"
''',
    "conv1d": '''
[model]
input_shape = [4, 2, 9]
[[model.layers]]
type = "Conv1d"
in_channels = 2
out_channels = 3
kernel_size = 3
padding = 1
[[model.layers]]
type = "BatchNorm1d"
num_features = 3
[[model.layers]]
type = "PReLU"
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Linear"
in_features = 27
out_features = 2
[training]
loss = "MSELoss"
''',
    "conv2d": '''
[model]
input_shape = [3, 2, 6, 6]
[[model.layers]]
type = "Conv2d"
in_channels = 2
out_channels = 4
kernel_size = 3
stride = 1
padding = "same"
[[model.layers]]
type = "BatchNorm2d"
num_features = 4
[[model.layers]]
type = "SiLU"
[[model.layers]]
type = "AvgPool2d"
kernel_size = 2
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "LayerNorm"
normalized_shape = 36
[[model.layers]]
type = "Linear"
in_features = 36
out_features = 1
[training]
loss = "BCEWithLogitsLoss"
''',
    "conv3d": '''
[model]
input_shape = [3, 2, 4, 4, 4]
[[model.layers]]
type = "Conv3d"
in_channels = 2
out_channels = 3
kernel_size = 3
padding = 1
[[model.layers]]
type = "BatchNorm3d"
num_features = 3
[[model.layers]]
type = "Hardswish"
[[model.layers]]
type = "LocalResponseNorm"
size = 2
[[model.layers]]
type = "AvgPool3d"
kernel_size = 2
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Linear"
in_features = 24
out_features = 2
[[model.layers]]
type = "Softsign"
[training]
loss = "MSELoss"
''',
}


def test_the_networks_cover_every_layer_type_with_parameters():
    with_params = {name for name, lt in CATALOGUE.items() if lt.params} | {"Residual"}
    used = {spec.type for text in NETWORKS.values() for _, spec in iter_specs(loads_preset(text).model.layers)}
    assert with_params <= used, with_params - used


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_central_differences_agree_with_autograd_to_1e_6(name):
    s = Session(loads_preset(NETWORKS[name]))
    report = gradcheck_session(s, max_elements=40)
    assert report.ok, report.text()
    assert report.max_abs_error < 1e-6
    names = [p.name for p in report.params]
    assert names == [n for n, _ in s.model.named_parameters()]  # every parameter, by its torch name
    for p in report.params:
        assert p.checked == min(p.numel, 40) and p.max_abs_error < 1e-6
    assert report.samples == s.inputs.shape[0]


def test_a_wrong_backward_is_flagged():
    class Doubled(torch.autograd.Function):  # forward x * w, backward claims twice the true gradient of w
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * w

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g * w, 2 * (g * x).sum(0)

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
            self.lin = nn.Linear(3, 1)

        def forward(self, x):
            return self.lin(Doubled.apply(x, self.w))

    torch.manual_seed(0)
    report = check_gradients(Bad(), torch.randn(4, 3), torch.randn(4, 1), nn.MSELoss())
    flags = {p.name: p.ok for p in report.params}
    assert flags == {"w": False, "lin.weight": True, "lin.bias": True}
    bad = report.params[0]
    assert bad.analytic == pytest.approx(2 * bad.numeric, rel=1e-6)
    assert bad.max_rel_error == pytest.approx(0.5, rel=1e-6) and bad.worst_index is not None
    assert not report.ok and "DISAGREES" in report.text() and "1 parameter(s) disagree" in report.text()
    d = report.to_dict()
    assert d["ok"] is False and d["params"][0]["name"] == "w"


def test_the_check_changes_nothing_in_the_session():
    s = Session(loads_preset(NETWORKS["dense"]))
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    rng = torch.get_rng_state()
    s.model.train()
    report = gradcheck_session(s, max_elements=5)
    assert report.ok
    assert torch.equal(torch.get_rng_state(), rng)
    assert s.model.training and all(p.grad is None for p in s.model.parameters())
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, before[k]) and v.dtype == before[k].dtype, k


def test_frozen_layers_are_checked_and_marked():
    text = NETWORKS["dense"].replace('type = "Linear"\nin_features = 5', 'type = "Linear"\nfrozen = true\nin_features = 5')
    report = gradcheck_session(Session(loads_preset(text)), max_elements=3)
    frozen = {p.name for p in report.params if p.frozen}
    assert frozen == {"0.weight", "0.bias"} and report.ok


def test_large_parameters_are_sampled_and_errors_are_values():
    s = Session(loads_preset(NETWORKS["conv1d"]))
    report = gradcheck_session(s, max_elements=4, max_samples=2)
    w = next(p for p in report.params if p.name == "4.weight")
    assert (w.numel, w.checked) == (54, 4) and report.samples == 2
    with pytest.raises(EngineError):
        gradcheck_session(s, max_elements=0)
    broken = Session(loads_preset('[model]\ninput_shape = [1, 4]\n[[model.layers]]\ntype = "Linear"\n'
                                  'in_features = 3\nout_features = 2\n'))
    with pytest.raises(EngineError):
        gradcheck_session(broken)
