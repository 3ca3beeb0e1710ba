"""Numerical gradient check: central differences in float64 agree with autograd to 1e-6 for every layer type
with parameters, and a wrong gradient is flagged."""

import copy

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
    names = [p.torch_name for p in report.params]
    assert names == [n for n, _ in s.model.named_parameters()]  # every parameter, by its torch name
    # and named as `check` names the layers: "1.0.weight", not "1.body.0.weight" (issue 22, 1.9)
    assert [p.name for p in report.params] == [n.replace(".body.", ".") for n in names]
    assert [p.layer for p in report.params] == [n.rsplit(".", 1)[0].replace(".body.", ".") for n in names]
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


# -- issue 22, 1.9: a failure at a kink or a tie says so; parameters named by check's layer paths -----------------

def _torch_gradcheck_fails(model, x, y, loss_fn):
    """Plain torch's verdict: torch.autograd.gradcheck of the loss as a function of the parameters (float64)."""
    m = copy.deepcopy(model).double()
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())

    def f(*ps):
        return loss_fn(torch.func.functional_call(m, dict(zip(names, ps)), (x.double(),)), y.double())

    return not torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-6, raise_exception=False)


def test_a_relu_at_its_kink_is_named_as_the_likely_cause_not_a_wrong_gradient():
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[0].bias.zero_()
    x, y = torch.tensor([[1.0, 1.0], [2.0, 1.0]]), torch.tensor([[0.5], [0.5]])
    assert net[0](x)[0, 0].item() == 0.0  # sample 0 sits on ReLU's kink
    assert _torch_gradcheck_fails(net, x, y, nn.MSELoss())  # torch's own gradcheck fails there too
    report = check_gradients(net, x, y, nn.MSELoss())
    assert not report.ok
    assert report.likely_cause is not None and "layer 1 (ReLU)" in report.likely_cause
    assert "kink" in report.likely_cause and "not a wrong gradient" in report.text()
    assert report.to_dict()["likely_cause"] == report.likely_cause


def test_a_tie_in_a_max_pool_is_named_as_the_likely_cause():
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.MaxPool2d(2), nn.Flatten())
    with torch.no_grad():
        net[0].weight.zero_()  # every value of the window equals the bias: a four-way tie
        net[0].bias.fill_(0.25)
    x, y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), torch.tensor([[1.0]])
    assert _torch_gradcheck_fails(net, x, y, nn.MSELoss())
    report = check_gradients(net, x, y, nn.MSELoss())
    assert not report.ok and "layer 1 (MaxPool2d)" in report.likely_cause and "tie" in report.likely_cause


def test_l1_loss_at_zero_error_is_a_kink_of_the_loss():
    net = nn.Sequential(nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.fill_(2.0)
        net[0].bias.fill_(0.0)
    # sample 0: output 2 within eps of its target (exactly on the kink both sides average to sign(0) = 0 and agree)
    x, y = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0 + 2.5e-7], [5.0]])
    assert _torch_gradcheck_fails(net, x, y, nn.L1Loss())
    report = check_gradients(net, x, y, nn.L1Loss())
    assert not report.ok and "L1Loss" in report.likely_cause and "kink" in report.likely_cause


def test_no_kink_no_tie_no_such_claim():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    report = check_gradients(net, torch.randn(5, 3), torch.randn(5, 1), nn.MSELoss())
    assert report.ok and report.likely_cause is None and "kink" not in report.text()


def test_parameters_inside_a_residual_block_have_checks_layer_paths():
    s = Session(loads_preset(next(t for t in NETWORKS.values() if "Residual" in t)))
    report = gradcheck_session(s, max_elements=3)
    nested = [p for p in report.params if ".body." in p.torch_name]
    assert nested and all(".body." not in p.name for p in nested)
    assert report.to_dict()["params"][0]["layer"] == report.params[0].layer
