"""Optimizer state for the tensor panel, a neuron in numbers, and the model over the input plane."""

import numpy as np
import pytest
import torch

from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.inspect.probes import MAX_GRID_SIDE, decision_grid, function_curve, neuron_equation, optimizer_state
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from ..conftest import EXAMPLE
from ..training.test_trainer import MLP


@pytest.mark.parametrize("optimizer,keys", [
    ('{ type = "SGD", lr = 0.1, momentum = 0.9 }', ["momentum_buffer"]),
    ('{ type = "Adagrad", lr = 0.1 }', ["step", "sum"]),
    ('{ type = "RMSprop", lr = 0.01 }', ["step", "square_avg"]),
    ('{ type = "Adam", lr = 0.01 }', ["step", "exp_avg", "exp_avg_sq"]),
])
def test_optimizer_state_lists_every_state_tensor_per_parameter(optimizer, keys):
    s = Session(loads_preset(MLP.format(optimizer=optimizer, batch=0, seed=0)))
    assert optimizer_state(s) == [] or optimizer.startswith('{ type = "Adagrad"')  # lazily created by torch
    train(s, 3)
    items = optimizer_state(s)
    names = [n for n, _ in s.model.named_parameters()]
    assert [label for label, _ in items] == [f"{n}: {k}" for n in names for k in keys]
    state = s.optimizer.state
    params = dict(s.model.named_parameters())
    for label, t in items:
        name, key = label.split(": ")
        assert torch.equal(t, state[params[name]][key])
    big = [t for label, t in items if not label.endswith(": step")]
    assert all(t.shape == params[label.split(": ")[0]].shape for (label, _), t in
               zip([i for i in items if not i[0].endswith(": step")], big))


def test_plain_sgd_has_no_state():
    s = Session(loads_preset(MLP.format(optimizer='{ type = "SGD", lr = 0.1 }', batch=0, seed=0)))
    train(s, 2)
    assert optimizer_state(s) == []


def test_a_neuron_in_numbers_matches_the_lab_by_hand():
    s = Session(loads_preset(EXAMPLE))
    eq = neuron_equation(s, "0", 2)
    # weight row 2 = (0.3, 0.7, 0.9), input (0.1, 0.2, 0.7): 0.03 + 0.14 + 0.63 + bias
    assert eq.weights == pytest.approx([0.3, 0.7, 0.9]) and eq.inputs == pytest.approx([0.1, 0.2, 0.7])
    bias = s.get_param("0.bias")[2].item()
    assert eq.bias == bias
    assert eq.output == pytest.approx(0.03 + 0.14 + 0.63 + bias, abs=1e-6)
    assert eq.output == s.trace()[1][1][0, 2].item()  # the number torch computed
    assert eq.activation == "ReLU" and eq.activated == max(eq.output, 0.0)
    lines = eq.text.splitlines()
    assert lines[1] == "y2 = Σ w2,i·xi + b2"
    assert lines[3].startswith("   = 0.3×0.1 + 0.7×0.2 + 0.9×0.7 + ")
    assert lines[4].startswith("   = 0.03 + 0.14 + 0.63 + ")
    assert lines[-1] == f"ReLU({eq.output:.6g}) = {eq.activated:.6g}"


def test_neuron_inside_a_residual_and_long_sums():
    text = '''
[model]
input_shape = [2, 20]
[[model.layers]]
type = "Residual"
layers = [ { type = "Linear", in_features = 20, out_features = 20 }, { type = "Tanh" } ]
[[model.layers]]
type = "Linear"
in_features = 20
out_features = 3
bias = false
'''
    s = Session(loads_preset(text))
    eq = neuron_equation(s, "0.body.0", 5, sample=1, max_terms=4)
    assert eq.activation == "Tanh" and eq.activated == pytest.approx(np.tanh(eq.output), abs=1e-6)
    assert "(16 more terms)" in eq.text
    x = s.inputs[1].double()
    w = s.get_param("0.body.0.weight")[5].detach().double()
    assert eq.output == pytest.approx(float(x @ w) + eq.bias, abs=1e-5)
    last = neuron_equation(s, 1, 0)
    assert last.bias is None and last.activation is None and "+ b0" not in last.text


@pytest.mark.parametrize("path,unit,sample,words", [
    ("1", 0, 0, "needs a Linear layer"),
    ("9", 0, 0, "no layer"),
    ("0", 3, 0, "outside 0..2"),
    ("0", 0, 4, "outside 0..0"),
])
def test_neuron_errors(path, unit, sample, words):
    s = Session(loads_preset(EXAMPLE))
    with pytest.raises(EngineError) as info:
        neuron_equation(s, path, unit, sample)
    assert words in str(info.value)


CLASSIFIER = '''
[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 8
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 8
out_features = {outputs}
[data]
dataset = {{ name = "{name}", samples = 100, test_fraction = 0.2 }}
[training]
loss = "{loss}"
optimizer = {{ type = "Adam", lr = 0.05 }}
'''


def test_decision_grid_classes_are_the_models_predictions():
    s = Session(loads_preset(CLASSIFIER.format(outputs=2, name="circles", loss="CrossEntropyLoss")))
    train(s, 100)
    grid = decision_grid(s, width=20, height=10)
    assert grid.values.shape == (10, 20) and grid.kind == "class" and grid.classes == 2
    assert grid.xs[0] == grid.bounds[0] and grid.xs[-1] == pytest.approx(grid.bounds[1])
    assert np.all(np.diff(grid.ys) > 0)
    # bounds: the data's extent plus 10%
    x = torch.cat([s.inputs, s.test_inputs])
    lo, hi = x[:, 0].min().item(), x[:, 0].max().item()
    assert grid.bounds[0] == pytest.approx(lo - 0.1 * (hi - lo))
    s.model.eval()
    with torch.no_grad():
        for i, j in [(0, 0), (3, 7), (9, 19)]:
            out = s.model(torch.tensor([[grid.xs[j], grid.ys[i]]], dtype=torch.float32))
            assert grid.values[i, j] == out.argmax(1).item()
            assert grid.confidence[i, j] == pytest.approx(torch.softmax(out, 1).max().item(), abs=1e-6)
    # a trained circle classifier puts class 1 in the middle and class 0 in the corners
    centre = decision_grid(s, 3, 3, bounds=(-1.0, 1.0, -1.0, 1.0))
    assert centre.values[1, 1] == 1 and centre.values[0, 0] == 0


def test_decision_grid_binary_and_regression():
    s = Session(loads_preset(CLASSIFIER.format(outputs=1, name="xor", loss="BCEWithLogitsLoss")))
    g = decision_grid(s, 4, 4)
    assert g.kind == "probability" and ((g.values >= 0) & (g.values <= 1)).all()
    s = Session(loads_preset(CLASSIFIER.format(outputs=1, name="plane", loss="MSELoss")))
    g = decision_grid(s, 5, 5, bounds=(-2, 2, -1, 1))
    assert g.kind == "value" and g.bounds == (-2.0, 2.0, -1.0, 1.0)
    s.model.eval()
    with torch.no_grad():
        assert g.values[4, 0] == pytest.approx(s.model(torch.tensor([[-2.0, 1.0]])).item(), abs=1e-6)


@pytest.mark.parametrize("kw,words", [
    ({"width": MAX_GRID_SIDE + 1}, "width must be an integer in 1..256"),
    ({"height": 0}, "height must be"),
    ({"bounds": (1.0, 0.0, 0.0, 1.0)}, "xmin < xmax"),
])
def test_decision_grid_is_bounded(kw, words):
    s = Session(loads_preset(CLASSIFIER.format(outputs=2, name="moons", loss="CrossEntropyLoss")))
    with pytest.raises(EngineError) as info:
        decision_grid(s, **kw)
    assert words in str(info.value)


def test_grid_and_curve_need_their_input_size():
    with pytest.raises(EngineError) as info:
        decision_grid(Session(loads_preset(EXAMPLE)))
    assert "2 input feature(s)" in str(info.value)
    s = Session(loads_preset(CLASSIFIER.replace("in_features = 2", "in_features = 1")
                             .replace("input_shape = [1, 2]", "input_shape = [1, 1]")
                             .format(outputs=1, name="sine", loss="MSELoss")))
    xs, ys = function_curve(s, points=11, bounds=(-1.0, 1.0))
    assert xs.tolist() == pytest.approx(np.linspace(-1, 1, 11).tolist())
    s.model.eval()
    with torch.no_grad():
        assert ys[10] == pytest.approx(s.model(torch.tensor([[1.0]])).item(), abs=1e-6)
    with pytest.raises(EngineError):
        function_curve(s, points=1)


def test_probes_leave_the_model_in_training_mode():
    s = Session(loads_preset(CLASSIFIER.format(outputs=2, name="moons", loss="CrossEntropyLoss")))
    s.model.train()
    decision_grid(s, 3, 3)
    s.set_loss(CallSpec("CrossEntropyLoss"))
    neuron_equation(s, "0", 0)
    assert s.model.training
