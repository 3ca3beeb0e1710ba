"""The bundled lab presets: every exercise of the five lab notebooks has one, each loads, passes the shape
check (or fails it exactly where and how the notebook does), trains headless, and reproduces the numbers
the notebooks print, through the engine.

Expected values are the notebooks' printouts (tests/engine/lab_expectations.py); printed values carry 4
decimals, hence the 5e-5 tolerances.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tui_nn.engine.errors import INPUT_FIX
from tui_nn.engine.files.bundled import presets_dir
from tui_nn.engine.files.preset_read import list_presets, load_preset
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from . import lab_expectations as E

PRINTED = 5.01e-5  # a value printed with 4 decimals is within this of the true one
ROOT = Path(__file__).resolve().parents[2]

LAB_STEMS = sorted(p.stem for p in presets_dir().glob("lab*.toml"))
WORKING = [s for s in LAB_STEMS if s not in E.BROKEN]


def session(stem: str) -> Session:
    return Session.from_preset(load_preset(stem))


def trace(s: Session) -> list[torch.Tensor]:
    """Outputs of the layers in order (the input dropped)."""
    return [t for _, t in s.trace()[1:]]


def close(actual, expected, tol: float = PRINTED) -> bool:
    a = torch.as_tensor(actual, dtype=torch.float64).flatten()
    e = torch.as_tensor(expected, dtype=torch.float64).flatten()
    return a.shape == e.shape and bool(((a - e).abs() <= tol).all())


def apply_fix(s: Session, fix) -> None:  # noqa: ANN001 - a Fix
    spec = s.spec.copy()
    if fix.layer == INPUT_FIX:
        spec.input_shape = tuple(fix.value)
    else:
        spec.layers[fix.layer].args[fix.arg] = fix.value
    s.rebuild(spec)


# ------------------------------------------------------------------------------------------------- coverage


def test_every_exercise_has_a_preset():
    missing = [f"lab {lab}: {what} ({stem}.toml)" for lab, what, stem in E.EXERCISES if stem not in LAB_STEMS]
    assert not missing, "exercises without a preset:\n" + "\n".join(missing)
    for lab, _what, stem in E.EXERCISES:
        assert load_preset(stem).lab == lab, stem
    # every lab has presets, and no lab preset is left out of the exercise list
    assert {lab for lab, _, _ in E.EXERCISES} == {"000", "001", "002", "003", "004"}
    assert set(LAB_STEMS) == {stem for _, _, stem in E.EXERCISES}


def test_every_bundled_preset_loads():
    items = list_presets()
    assert items, "no bundled presets"
    broken = [f"{stem}: {p}" for stem, p in items if isinstance(p, Exception)]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("stem", LAB_STEMS)
def test_lab_preset_metadata(stem):
    p = load_preset(stem)
    assert p.name and len(p.name) <= 80
    assert p.lab == stem[3:6]
    text = p.description
    assert len(text) > 200, "the description should explain the exercise"
    assert "[" not in text and "]" not in text, "descriptions are plain text (no markup brackets)"
    first = text.strip().splitlines()[0]
    assert first.startswith(f"Lab {p.lab}"), "the first line (shown by `tui-nn presets`) names the lab"


# ------------------------------------------------------------------------------------------------- check + train


@pytest.mark.parametrize("stem", WORKING)
def test_lab_preset_checks_and_trains(stem):
    s = session(stem)
    assert s.report.error is None, str(s.report.error)
    if stem in E.NOT_TRAINABLE:  # autograd only: a backward pass runs, training is refused with the reason
        assert s.can_backward and math.isfinite(s.compute_gradients())
        assert "no parameters" in s.why_not_trainable()
        return
    assert s.trainable, s.why_not_trainable()
    assert s.loss_value() is not None and math.isfinite(s.loss_value())
    fin, losses = train(s, 3)
    assert fin.reason == "done", fin.message
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("stem", sorted(E.BROKEN))
def test_broken_lab_preset_fails_where_the_notebook_does(stem):
    layer, type_, message, arg, value = E.BROKEN[stem]
    p = load_preset(stem)
    report = check_model(p.model)
    err = report.error
    assert err is not None
    assert (err.layer, err.type, err.message) == (layer, type_, message)
    assert err.fix is not None and (err.fix.layer, err.fix.arg, err.fix.value) == (layer, arg, value)
    assert err.hint
    s = Session.from_preset(p)
    assert not s.trainable and s.forward() is None
    apply_fix(s, err.fix)  # the suggested fix makes it work
    assert s.report.error is None and s.trainable
    fin, losses = train(s, 3)
    assert fin.reason == "done" and len(losses) == 3


def test_classifier_16_alternative_fix_is_the_32x32_input():
    s = session("lab001-classifier-16")
    alt = [f for f in s.report.error.extra_fixes if f.layer == INPUT_FIX]
    assert alt and list(alt[0].value) == [1, 3, 32, 32]
    apply_fix(s, alt[0])
    assert s.report.error is None and tuple(s.report.output_shape) == E.L001_CLASSIFIER_32


# ------------------------------------------------------------------------------------------------- lab 000


def test_lab000_forward_trace_reproduces_the_notebook():
    s = session("lab000-shallow-forward")
    assert close(s.inputs, [E.L000_X], 1e-6)
    assert s.targets.tolist() == [E.L000_Y]
    hidden, relu, output, probs = trace(s)
    assert close(hidden, E.L000_HIDDEN)
    assert close(relu, E.L000_RELU)
    assert close(output, E.L000_OUTPUT)
    assert close(probs, E.L000_SOFTMAX)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    # the hidden layer holds the printed weights (to their 4 printed decimals)
    assert close(s.get_param("0.weight"), E.L000_W1) and close(s.get_param("0.bias"), E.L000_B1)
    # and the trace is what the hand computation W x + b, ReLU, ... gives
    x = s.inputs
    h = x @ s.get_param("0.weight").T + s.get_param("0.bias")
    o = torch.softmax(h.relu() @ s.get_param("2.weight").T + s.get_param("2.bias"), dim=1)
    assert torch.allclose(o, probs, atol=1e-6)


# ------------------------------------------------------------------------------------------------- lab 001


def test_lab001_neuron_without_bias():
    s = session("lab001-neuron-no-bias")
    assert s.model[0].bias is None
    out = s.forward().flatten().tolist()
    assert out[0] == 0.0  # an all-zero input gives exactly 0 without a bias
    assert out[1] == pytest.approx(E.L001_NEURON[1], abs=PRINTED)
    assert out[2] == pytest.approx(E.L001_NEURON[2], abs=PRINTED)
    assert s.get_param("0.weight").sum().item() == pytest.approx(E.L001_NEURON_SUM, abs=PRINTED)
    assert out[1] == pytest.approx(s.get_param("0.weight").sum().item(), abs=1e-6)
    fin, losses = train(s, 20)
    assert fin.reason == "done" and losses[-1] < 1e-3 * losses[0]


def test_lab001_linear_layer_is_x_at_transposed_plus_b():
    s = session("lab001-linear-10-5")
    x, w, b = s.inputs, s.get_param("0.weight"), s.get_param("0.bias")
    y = s.forward()
    assert close(y, [E.L001_LINEAR])
    assert torch.allclose(torch.mm(x, w.T) + b, y, atol=1e-6)
    # the notebook's wrong layouts: a broadcast 5x5 table, and an error
    assert close(torch.mm(w, x.T) + b, E.L001_WRONG_LAYOUT)
    assert close(torch.mm(w, x.T) + b.reshape(5, 1), [[v] for v in E.L001_LINEAR])
    with pytest.raises(RuntimeError, match=E.L001_WRONG_LAYOUT_ERROR.replace("(", r"\(").replace(")", r"\)")):
        torch.mm(w, x)


def test_lab001_mlps():
    s = session("lab001-mlp-no-activation")
    assert s.forward().item() == pytest.approx(E.L001_MLP, abs=PRINTED)
    assert s.report.total_params == 91
    # without activations the network is affine: f(2x) - f(0) == 2 (f(x) - f(0))
    m, x = s.model, s.inputs
    with torch.no_grad():
        f0 = m(torch.zeros_like(x))
        assert torch.allclose(m(2 * x) - f0, 2 * (m(x) - f0), atol=1e-5)
    s = session("lab001-mlp-relu")
    assert s.forward().item() == pytest.approx(E.L001_MLP_RELU, abs=PRINTED)
    torch.manual_seed(1)
    with torch.no_grad():
        assert bool((s.model(torch.randn(1000, 3)) >= 0).all())  # "output never gets < 0"


@pytest.mark.parametrize("stem, shape", [("lab001-conv-stride1", E.L001_CONV_STRIDE1),
                                         ("lab001-conv-stride2", E.L001_CONV_STRIDE2)])
def test_lab001_conv_output_shapes(stem, shape):
    s = session(stem)
    assert tuple(s.inputs.shape) == (1, 3, 9, 9)
    assert tuple(s.report.output_shape) == shape
    assert tuple(s.forward().shape) == shape
    assert s.report.total_params == 28
    n = shape[-1]
    assert s.report.layers[0].detail.endswith(f"= {n}")  # the output-size arithmetic


@pytest.mark.parametrize("size", [16, 32])
def test_lab001_convnet_keeps_the_size(size):
    s = session(f"lab001-convnet-{size}")
    assert [tuple(ly.output_shape) for ly in s.report.layers] == [E.L001_CONVNET[size]] * 6
    assert tuple(s.forward().shape) == E.L001_CONVNET[size]
    assert s.report.total_params == 252


def test_lab001_classifier_32_works():
    s = session("lab001-classifier-32")
    assert tuple(s.report.output_shape) == E.L001_CLASSIFIER_32
    assert tuple(s.forward().shape) == E.L001_CLASSIFIER_32
    assert tuple(s.report.layers[6].output_shape) == (1, 3072)
    assert s.report.total_params == 30982


def test_lab001_classifier_16_is_the_notebooks_error_in_pytorch_too():
    # the same model in plain PyTorch on a 16x16 input fails with the message the preset's check shows
    s = session("lab001-classifier-16")
    with pytest.raises(RuntimeError) as err:
        s.model(torch.rand(1, 3, 16, 16))
    assert str(err.value) == E.BROKEN["lab001-classifier-16"][2]
    assert s.report.layers[6].output_shape == (1, 768)


def test_lab001_gradient_check():
    s = session("lab001-gradient-check")
    s.compute_gradients()
    for name, index in (("2.weight", (0, 0)), ("0.weight", (1, 0)), ("0.bias", (0,))):
        analytic = s.get_param(name).grad[index].item()
        w = s.get_param(name)[index].item()
        eps = 1e-2
        s.set_param(name, w + eps, index)
        plus = s.loss_value()
        s.set_param(name, w - eps, index)
        minus = s.loss_value()
        s.set_param(name, w, index)
        numeric = (plus - minus) / (2 * eps)
        assert numeric == pytest.approx(analytic, rel=2e-3, abs=1e-4), name
    assert s.get_param("2.weight").grad[0, 0].item() == pytest.approx(-1.02657, abs=1e-5)  # as the description says
    fin, losses = train(s, 50)
    assert losses[-1] < 1e-4


# ------------------------------------------------------------------------------------------------- lab 002


def test_lab002_first_linear():
    s = session("lab002-first-linear")
    w = torch.tensor(E.L002_FIRST_W)
    b = torch.tensor(E.L002_FIRST_B)
    x = torch.tensor([E.L002_FIRST_X])
    assert torch.allclose(s.get_param("0.weight"), w) and torch.allclose(s.get_param("0.bias"), b)
    assert torch.allclose(s.forward(), x @ w.T + b, atol=1e-6)
    assert close(s.forward(), [0.4647, 0.4770])


def test_lab002_stacked_linear():
    s = session("lab002-stacked-linear")
    assert [tuple(ly.output_shape) for ly in s.report.layers] == [(1, 18), (1, 20), (1, 5)]
    assert s.report.total_params == 683


def test_lab002_heads():
    s = session("lab002-binary-head")
    assert close(s.inputs, [E.L002_SAMPLE8], 1e-6)
    assert s.forward().item() == pytest.approx(E.L002_BINARY, abs=PRINTED)
    s = session("lab002-multiclass-head")
    probs = s.forward()
    assert close(probs, E.L002_MULTICLASS)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert int(probs.argmax()) == 0
    # softmax sees only differences: a constant added to the last biases changes nothing
    b = s.get_param("2.bias").detach().clone()
    s.set_param("2.bias", b + 3.0)
    assert torch.allclose(s.forward(), probs, atol=1e-6)
    # CrossEntropyLoss on softmax outputs cannot go below log(1 + 3/e) (4 classes)
    s.set_param("2.bias", b)
    train(s, 300)
    assert s.loss_value() > math.log(1 + 3 / math.e) - 1e-4


def test_lab002_sigmoid_and_softmax_heads():
    sig = session("lab002-sigmoid-head")
    soft = session("lab002-softmax-one-output")
    p = sig.forward().item()
    assert 0 < p < 1
    assert soft.forward().item() == 1.0  # softmax over a single value
    # same seed, same layers before the head: the same score goes into both heads
    assert torch.allclose(trace(sig)[1], trace(soft)[1])
    assert soft.loss_value() == pytest.approx(100.0)  # BCELoss caps -log(0) at 100
    soft.compute_gradients()
    assert all(float(q.grad.abs().max()) == 0.0 for q in soft.model.parameters())
    fin, losses = train(soft, 5)
    assert losses == [pytest.approx(100.0)] * 5
    fin, losses = train(sig, 30)
    assert losses[-1] < losses[0] / 10


def test_lab002_cross_entropy_is_0_8130():
    s = session("lab002-cross-entropy")
    assert close(s.forward(), [E.L002_SCORES], 1e-7)  # the identity layer passes the scores through
    assert s.targets.tolist() == [[1.0, 0.0]]  # one-hot
    assert s.loss_value() == pytest.approx(E.L002_CROSS_ENTROPY, abs=PRINTED)
    # the notebook computes it in float64
    scores = torch.tensor([E.L002_SCORES], dtype=torch.float64)
    assert nn.CrossEntropyLoss()(scores, torch.tensor([[1.0, 0.0]], dtype=torch.float64)).item() == \
        pytest.approx(s.loss_value(), abs=1e-6)
    # the class index 0 means the same as the one-hot row (1, 0); the other class gives 0.5861
    p = load_preset("lab002-cross-entropy")
    p.data.targets = [0]
    assert Session(p).loss_value() == pytest.approx(E.L002_CROSS_ENTROPY, abs=PRINTED)
    p.data.targets = [[0.0, 1.0]]
    assert Session(p).loss_value() == pytest.approx(0.5861, abs=PRINTED)
    fin, losses = train(s, 50)
    assert losses[-1] < 0.05


# ------------------------------------------------------------------------------------------------- lab 003


def test_lab003_mse_linear():
    s = session("lab003-mse-linear")
    assert close(s.inputs, [E.L003_INPUT], 1e-6)
    assert close(s.forward(), [E.L003_PRED])
    assert s.loss_value() == pytest.approx(E.L003_MSE, abs=PRINTED)


def test_lab003_train_sgd_reproduces_the_ten_printed_losses():
    s = session("lab003-train-sgd")
    t = s.training
    assert (t.loss.type, t.optimizer.type, t.optimizer.args["lr"], t.steps) == ("MSELoss", "SGD", 0.1, 10)
    fin, losses = train(s, t.steps)
    assert fin.reason == "done"
    assert losses == pytest.approx(E.L003_TRAIN_LOSSES, rel=1e-5)
    # |x|^2 = 1, lr 0.1: the error shrinks by 0.8 each step, the loss by 0.64
    for a, b in zip(losses, losses[1:]):
        assert b / a == pytest.approx(0.64, rel=1e-4)


def test_lab003_sequential_models():
    s = session("lab003-sequential-3-20-2")
    assert [ly.type for ly in s.report.layers] == ["Linear", "ReLU", "Linear"]
    assert s.report.total_params == 122
    assert tuple(s.report.output_shape) == (16, 2)


def test_lab003_print_model_is_the_notebooks():
    from tui_nn.engine.model.build import model_text

    assert model_text(load_preset("lab003-sequential-3-20-2").model) == E.L003_PRINT_3_20_2
    assert model_text(load_preset("lab003-broken-sequential").model) == E.L003_PRINT_BROKEN


def test_lab003_hand_neuron_and_sigmoid_model():
    assert session("lab003-hand-neuron").forward().item() == E.L003_NEURON
    s = session("lab003-sigmoid-2-3-2")
    assert close(s.inputs, [E.L003_MODEL_X], 1e-6)
    assert close(s.forward(), [E.L003_MODEL_Y])
    names = [n for n, _ in s.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, values in E.L003_MODEL_PARAMS.items():  # the exact values named_parameters() printed (In 11)
        assert torch.equal(s.get_param(name).detach(), torch.tensor(values)), name


def test_lab003_seeded_network():
    s = session("lab003-seeded-fnn")
    assert s.training.seed == E.L003_SEED
    torch.manual_seed(E.L003_SEED)
    notebook_input = torch.randn((1, 10))
    assert torch.equal(s.inputs, notebook_input)  # the data generator draws the notebook's input
    assert close(s.forward(), [E.L003_SEEDED])
    assert s.report.total_params == 9794
    # the initial weights are the ones the notebook's order of draws gives (one stream: rng = "global")
    torch.manual_seed(E.L003_SEED)
    torch.randn((1, 10))
    ref = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 2))
    for (name, p), (_, q) in zip(s.named_parameters(), ref.named_parameters()):
        assert torch.equal(p, q), name
    # and it is repeatable
    assert torch.equal(session("lab003-seeded-fnn").forward(), s.forward())


OPTIM = ["lab003-optim-sgd", "lab003-optim-momentum", "lab003-optim-adagrad", "lab003-optim-rmsprop",
         "lab003-optim-adam"]
GD = ["lab003-gd-batch", "lab003-gd-minibatch", "lab003-gd-stochastic"]


def test_lab003_optimizer_presets_differ_only_in_the_optimizer():
    sessions = [session(stem) for stem in OPTIM + GD]
    first = sessions[0]
    for s in sessions[1:]:
        assert s.spec.layers == first.spec.layers
        assert torch.equal(s.inputs, first.inputs) and torch.equal(s.targets, first.targets)
        for (_, p), (_, q) in zip(s.named_parameters(), first.named_parameters()):
            assert torch.equal(p, q)
        assert (s.training.loss, s.training.seed) == (first.training.loss, first.training.seed)
    opts = [(s.training.optimizer.type, s.training.optimizer.args) for s in sessions[:5]]
    assert opts == [("SGD", {"lr": 0.1}), ("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adagrad", {"lr": 0.1}),
                    ("RMSprop", {"lr": 0.1}), ("Adam", {"lr": 0.1})]
    assert all(s.training.steps == 300 and s.training.batch_size == 0 for s in sessions[:5])
    gd = [(s.training.optimizer.to_value(), s.training.batch_size, s.training.steps) for s in sessions[5:]]
    # the same 100 epochs of plain SGD: 32 points per step, 8 per step, 1 per step
    assert gd == [({"type": "SGD", "lr": 0.1}, 0, 100), ({"type": "SGD", "lr": 0.1}, 8, 400),
                  ({"type": "SGD", "lr": 0.1}, 1, 3200)]


def test_lab003_optimizers_behave_as_the_descriptions_say():
    final = {}
    for stem in OPTIM:
        s = session(stem)
        fin, _ = train(s, s.training.steps)
        assert fin.reason == "done"
        final[stem.split("-")[-1]] = s.loss_value()
    assert final["sgd"] > 0.5  # stuck on the plateau
    assert final["momentum"] < 0.1 and final["adagrad"] < 0.1
    assert final["rmsprop"] < 0.01 and final["adam"] < 0.01
    assert final["adam"] == min(final.values())
    full = {}
    for stem in GD:
        s = session(stem)
        train(s, s.training.steps)
        full[stem.split("-")[-1]] = s.loss_value()
    assert full["stochastic"] < full["minibatch"] < full["batch"]
    assert full["batch"] > 0.5 and full["stochastic"] < 0.15


def test_lab003_activations():
    s = session("lab003-activations")
    x = s.inputs
    identity, act = trace(s)
    assert torch.equal(identity, x)
    assert torch.allclose(act, 1 / (1 + torch.exp(-x)))  # the notebook's m_sigmoid
    hand = {"Tanh": lambda v: (torch.exp(v) - torch.exp(-v)) / (torch.exp(v) + torch.exp(-v)),
            "ReLU": lambda v: torch.mul(v, (v > 0)),
            "Softmax": lambda v: torch.exp(v) / torch.sum(torch.exp(v))}
    for type_, f in hand.items():
        p = load_preset("lab003-activations")
        p.model.layers[1].type = type_
        out = Session(p).forward()
        assert torch.allclose(out, f(x), atol=1e-6), type_


# ------------------------------------------------------------------------------------------------- lab 004


def test_lab004_preset_is_the_notebooks_network():
    p = load_preset("lab004-hand-set-network")
    assert [ly.type for ly in p.model.layers] == ["Linear", "ReLU", "Linear", "Sigmoid", "Linear", "Softmax"]
    assert [p.model.layers[i].params["weight"] for i in (0, 2, 4)] == E.L004_W
    t = p.training
    assert (t.loss.type, t.optimizer.type, t.optimizer.args, t.steps) == ("CrossEntropyLoss", "Adam", {"lr": 0.09}, 50)
    assert t.reset_optimizer_each_step
    assert p.data.inputs == [[0.1, 0.2, 0.7]] and p.data.targets == [1]


def test_lab004_reproduces_the_printed_losses_and_settles_at_0_5514():
    s = session("lab004-hand-set-network")
    outputs = []
    losses = []
    for _ in range(50):
        fin, step_losses = train(s, 1)
        losses += step_losses
        outputs.append(s.forward()[0].tolist())
    # every loss the notebook printed (its loop ran 49 of the 50 steps), to its 4 decimals
    assert [f"{v:.4f}" for v in losses[:49]] == [f"{v:.4f}" for v in E.L004_LOSSES]
    # and the probabilities it printed after each step: to 1e-4, relative for the rows in scientific notation
    for step, (got, want) in enumerate(zip(outputs, E.L004_OUTPUTS), start=1):
        scientific = min(want) < 1e-3
        for g, w in zip(got, want):
            tol = 1e-4 * w if scientific and w < 0.99 else 1e-4
            assert abs(g - w) <= tol, (step, got, want)
    # the floor of CrossEntropyLoss on softmax outputs: -log(e / (e + 2))
    floor = math.log(1 + 2 / math.e)
    assert f"{floor:.4f}" == "0.5514"
    assert losses[-1] == pytest.approx(floor, abs=1e-4)
    probs = s.forward()[0]
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert probs[1].item() > 0.9999
    # the first hidden unit is dead (ReLU of a negative number), so its weights never move
    assert trace(s)[1][0, 0].item() == 0.0
    assert s.get_param("0.weight")[0].tolist() == pytest.approx(E.L004_W[0][0])


def test_lab004_persistent_adam_does_not_reproduce_the_notebook():
    p = load_preset("lab004-hand-set-network")
    p.training.reset_optimizer_each_step = False
    fin, losses = train(Session(p), 50)
    assert f"{losses[2]:.4f}" == "1.0550" != f"{E.L004_LOSSES[2]:.4f}"
    assert f"{losses[-1]:.4f}" == "0.5515"


def test_lab004_fixed_trains_to_zero():
    s = session("lab004-fixed")
    assert [ly.type for ly in s.spec.layers] == ["Linear", "ReLU", "Linear", "Sigmoid", "Linear"]
    assert not s.training.reset_optimizer_each_step
    fin, losses = train(s, s.training.steps)
    assert losses[-1] < 1e-3
    assert int(s.forward().argmax()) == 1


# ------------------------------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "tui_nn", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)


def test_cli_check_and_run_lab_presets():
    r = _cli("check", "lab002-cross-entropy", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["loss"] == pytest.approx(E.L002_CROSS_ENTROPY, abs=PRINTED)

    r = _cli("check", "lab001-classifier-16", "--json")
    assert r.returncode == 1
    err = json.loads(r.stdout)["error"]
    assert (err["layer"], err["message"]) == (7, E.BROKEN["lab001-classifier-16"][2])

    r = _cli("run", "lab003-train-sgd", "--steps", "3", "--every", "1", "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    steps = [line for line in lines if "step" in line and "event" not in line]
    assert [line["loss"] for line in steps] == pytest.approx(E.L003_TRAIN_LOSSES[:3], rel=1e-5)
    assert lines[-1]["event"] == "done" and lines[-1]["reason"] == "done"


# ------------------------------------------------------------------------------------------------- lab 002 tensors, lab 004 autograd


def test_lab002_tensors_shows_the_list_and_its_attributes():
    s = session("lab002-tensors")
    assert s.inputs.reshape(-1).tolist() == [float(v) for v in E.L002_LIST]
    notebook = torch.tensor(E.L002_LIST)
    shape, dtype, device = E.L002_LIST_ATTRS
    assert (tuple(notebook.shape), str(notebook.dtype), str(notebook.device)) == (shape, dtype, device)
    # the model's input: the same numbers with a batch dimension, as float32; the class-index target stays int64
    assert tuple(s.inputs.shape) == (1,) + shape and s.inputs.dtype == torch.float32 and str(s.inputs.device) == device
    assert s.targets.dtype == torch.int64


def test_lab004_autograd_reproduces_a_cubed_squared_mean_and_its_gradient():
    s = session("lab004-autograd")
    assert not s.trainable and s.can_backward  # no parameters: nothing to train, but autograd runs
    trace = dict(s.trace())
    z = s.compute_gradients()
    # the notebook's cells, in plain torch, on the preset's a
    a = torch.tensor(load_preset("lab004-autograd").data.inputs, requires_grad=True)
    y = a ** 3
    m = y ** 2
    mean = m.mean()
    mean.backward()
    assert torch.equal(trace["input"], a.detach()) and torch.equal(trace["0 Pow"], y.detach())
    assert torch.equal(trace["1 Pow"], m.detach()) and z == mean.item() and torch.equal(s.input_grad, a.grad)
    # every digit the notebook printed: a (4 decimals), y, m, z = 10.1785, a.grad and 3a^5/2
    printed = {"a": a.detach(), "y": y.detach(), "m": m.detach(), "z": torch.tensor(z), "grad": s.input_grad}
    assert {k: str(v) for k, v in printed.items()} == E.L004_PRINTED
    assert str((3 * (a.detach() ** 5)) / 2) == E.L004_PRINTED["grad"]
    assert close(a.detach(), E.L004_A, 5e-5) and close(y.detach(), E.L004_Y, 5e-5)
    assert torch.allclose(s.input_grad, torch.tensor(E.L004_GRAD), rtol=1e-4)
    assert z == pytest.approx(E.L004_Z, abs=5e-5)
