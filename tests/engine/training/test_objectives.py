"""Losses and optimizers: argument bounds, arguments invalid together, torch's refusals as EngineError values."""

import pytest
import torch

from tui_nn.engine.errors import EngineError
from tui_nn.engine.errors import PresetError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.objectives import (LOSSES, NOT_OFFERED, OPTIMIZERS, check_combination, make_loss,
                                               make_optimizer)
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train


def _params():
    return [torch.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("args,words", [
    ({"lr": 0.1, "nesterov": True}, "momentum > 0"),
    ({"lr": 0.1, "nesterov": True, "momentum": 0.9, "dampening": 0.5}, "dampening = 0"),
])
def test_sgd_nesterov_cross_checks(args, words):
    key, message, hint = check_combination("SGD", args)
    assert key == "nesterov" and words in message and "nesterov = false" in hint
    with pytest.raises(EngineError) as info:  # not torch's bare ValueError
        make_optimizer("SGD", _params(), args)
    assert words in info.value.message and info.value.hint


def test_sgd_nesterov_with_momentum_is_fine():
    assert check_combination("SGD", {"nesterov": True, "momentum": 0.9}) is None
    opt = make_optimizer("SGD", _params(), {"lr": 0.1, "nesterov": True, "momentum": 0.9})
    assert opt.defaults["nesterov"] is True


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas", [[0.9, 1.0], [1.0, 0.5]])
def test_adam_betas_below_one(name, betas):
    spec = OPTIMIZERS[name].arg("betas")
    assert spec.max == 1.0 and spec.max_open and "[0, 1)" in spec.describe()
    with pytest.raises(EngineError) as info:
        make_optimizer(name, _params(), {"betas": betas})
    assert "must be < 1" in info.value.message
    make_optimizer(name, _params(), {"betas": [0.0, 0.999]})  # 0 is allowed


def test_huber_delta_must_be_positive():
    spec = LOSSES["HuberLoss"].arg("delta")
    assert spec.min == 0.0 and spec.min_open
    with pytest.raises(EngineError) as info:
        make_loss("HuberLoss", {"delta": 0.0})
    assert "must be > 0" in info.value.message


def test_any_other_refusal_is_an_engine_error():
    """What torch raises while constructing (ValueError/TypeError) is a value with a hint, never a traceback."""
    with pytest.raises(EngineError) as info:
        make_optimizer("SGD", [], {"lr": 0.1})  # torch: "optimizer got an empty parameter list"
    assert "empty parameter list" in info.value.message and info.value.hint
    with pytest.raises(EngineError) as info:
        make_loss("MSELoss", {"reduction": "most"})  # torch: "most is not a valid value for reduction"
    assert "reduction" in str(info.value)
    with pytest.raises(EngineError):
        make_optimizer("Adam", _params(), {"no_such_argument": 1})


def test_a_refused_setting_changes_nothing_in_the_session():
    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.spec import CallSpec
    from tui_nn.engine.training.session import Session

    s = Session(loads_preset('[model]\ninput_shape = [1, 3]\n[[model.layers]]\ntype = "Linear"\nin_features = 3\n'
                             'out_features = 2\n[training]\noptimizer = { type = "SGD", lr = 0.1 }\n'))
    before_opt, before_loss = s.training.optimizer, s.training.loss
    with pytest.raises(EngineError):
        s.set_optimizer(CallSpec("SGD", {"lr": 0.1, "nesterov": True}))
    assert s.training.optimizer is before_opt
    with pytest.raises(EngineError):
        s.set_loss(CallSpec("HuberLoss", {"delta": 0.0}))
    assert s.training.loss is before_loss


# -- issue 14: a loss that cannot train, integers beyond int64, names quoted safely

@pytest.mark.parametrize("name", [n for n, o in LOSSES.items() if o.arg("reduction") is not None])
def test_reduction_none_is_refused_with_the_reason(name):
    """"none" gives a loss per element: training needs one number. Not offered (the form lists the choices), and
    refused with the reason and the two that work, whichever way it is set."""
    spec = LOSSES[name].arg("reduction")
    others = {"batchmean"} if name == "KLDivLoss" else set()  # KLDivLoss's own reduction (torch's too)
    assert "none" not in spec.choices and set(spec.choices) == {"mean", "sum"} | others
    with pytest.raises(EngineError) as info:
        make_loss(name, {"reduction": "none"})
    assert "scalar" in info.value.message and '"mean"' in info.value.hint and '"sum"' in info.value.hint


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 16**5000], ids=["2**63", "-2**63-1", "16**5000"])
def test_integer_arguments_beyond_int64_are_refused(value):
    for name in ("CrossEntropyLoss", "NLLLoss"):
        with pytest.raises(EngineError) as info:
            make_loss(name, {"ignore_index": value})
        assert "64-bit" in info.value.message and len(info.value.message) < 200
    make_loss("NLLLoss", {"ignore_index": 2**63 - 1})


def test_integers_no_float_holds_are_refused_not_raised():
    with pytest.raises(EngineError) as info:  # torch: OverflowError (int too large to convert to float)
        make_optimizer("SGD", _params(), {"lr": 10**400})
    assert "out of range" in info.value.message


def test_unknown_names_are_quoted_safely():
    for attempt in (lambda: make_loss("X\x1b[2J" + "y" * 1000, {}),
                    lambda: make_optimizer("X\x1b[2J", _params(), {}),
                    lambda: make_loss("MSELoss", {"k\x1b[31m": 1})):
        with pytest.raises(EngineError) as info:
            attempt()
        assert "\x1b" not in str(info.value) and "\\x1b" in str(info.value) and len(str(info.value)) < 300


# -- issue 22: class weights, the losses torch.nn users reach for next, each equal to torch's own

LOSS_PRESET = """
[model]
input_shape = [1, 4]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = {out}
{extra}
[data]
inputs = {{ generate = "randn", shape = [12, 4] }}
targets = {targets}
[training]
loss = {loss}
optimizer = {{ type = "SGD", lr = 0.1 }}
seed = 5
"""
LOG_SOFTMAX = '[[model.layers]]\ntype = "LogSoftmax"\ndim = 1'
SIGNS = [[1], [-1], [1], [1], [-1], [-1], [1], [-1], [1], [1], [-1], [1]]


def _hand_loss(loss_fn, out_features, targets, steps, *, log_softmax=False):
    """The plain torch loop over the same data (the engine's generators: inputs first, then targets)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(12, 4, generator=g)
    y = targets(g)
    torch.manual_seed(5)
    layers = [torch.nn.Linear(4, out_features)] + ([torch.nn.LogSoftmax(dim=1)] if log_softmax else [])
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


# name: (out_features, loss table, targets, extra layers, torch loss, torch targets from the generator)
LOSS_CASES = {
    "CrossEntropyLoss-weight": (3, '{ type = "CrossEntropyLoss", weight = [1.0, 2.5, 0.5] }',
                                '{ generate = "randint", shape = [12], high = 3 }', "",
                                lambda: torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.5, 0.5])),
                                lambda g: torch.randint(0, 3, (12,), generator=g)),
    "NLLLoss-weight": (3, '{ type = "NLLLoss", weight = [0.2, 1, 3] }',
                       '{ generate = "randint", shape = [12], high = 3 }', LOG_SOFTMAX,
                       lambda: torch.nn.NLLLoss(weight=torch.tensor([0.2, 1.0, 3.0])),
                       lambda g: torch.randint(0, 3, (12,), generator=g)),
    "BCEWithLogitsLoss-pos_weight": (2, '{ type = "BCEWithLogitsLoss", pos_weight = [3.0, 0.5] }',
                                     '{ generate = "randint", shape = [12, 2], high = 2 }', "",
                                     lambda: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 0.5])),
                                     lambda g: torch.randint(0, 2, (12, 2), generator=g).float()),
    "KLDivLoss-batchmean": (3, '{ type = "KLDivLoss", reduction = "batchmean" }',
                            '{ generate = "rand", shape = [12, 3] }', LOG_SOFTMAX,
                            lambda: torch.nn.KLDivLoss(reduction="batchmean"),
                            lambda g: torch.rand(12, 3, generator=g)),
    "HingeEmbeddingLoss": (1, '{ type = "HingeEmbeddingLoss", margin = 0.5 }', str(SIGNS), "",
                           lambda: torch.nn.HingeEmbeddingLoss(margin=0.5),
                           lambda g: torch.tensor(SIGNS, dtype=torch.float32)),
}


def loss_preset(name, loss=None):
    out, table, targets, extra, _, _ = LOSS_CASES[name]
    return loads_preset(LOSS_PRESET.format(out=out, loss=loss or table, targets=targets, extra=extra), f"{name}.toml")


@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_new_losses_train_as_a_hand_written_torch_loop(name):
    out, _, _, extra, make, targets = LOSS_CASES[name]
    fin, losses = train(Session(loss_preset(name)), 8)
    assert fin.reason == "done"
    assert losses == _hand_loss(make(), out, targets, 8, log_softmax=bool(extra))  # bit-identical on CPU


@pytest.mark.parametrize("loss,words", [
    ('{ type = "CrossEntropyLoss", weight = 1.0 }', "a list of numbers"),
    ('{ type = "CrossEntropyLoss", weight = [1.0, "a"] }', "a list of numbers"),
    ('{ type = "CrossEntropyLoss", weight = [] }', "a list of numbers"),
    ('{ type = "CrossEntropyLoss", weight = [1.0, -2.0, 1.0] }', "must be >= 0"),
    ('{ type = "CrossEntropyLoss", weight = [1.0, 1e39, 1.0] }', "float32"),
])
def test_class_weights_are_checked_naming_the_field(loss, words):
    with pytest.raises(PresetError) as info:
        loss_preset("CrossEntropyLoss-weight", loss)
    assert info.value.field == "training.loss.weight" and words in str(info.value)


def test_class_weights_of_the_wrong_length_get_torchs_words_before_training():
    """`tui-nn check` and the app compute the loss on the data before training (loss_value): torch's words."""
    s = Session(loss_preset("CrossEntropyLoss-weight", '{ type = "CrossEntropyLoss", weight = [1.0, 2.0] }'))
    with pytest.raises(EngineError) as info:
        s.loss_value()
    assert "weight tensor should be defined either for all 3 classes" in str(info.value)


def test_losses_whose_call_is_not_output_and_target_are_named_with_the_reason():
    assert set(NOT_OFFERED) == {"GaussianNLLLoss", "MarginRankingLoss", "CosineEmbeddingLoss"}
    for name in NOT_OFFERED:
        assert name not in LOSSES and hasattr(torch.nn, name)


def test_list_arguments_typed_in_a_form():
    """The app's forms read a list typed as "1, 2, 0.5" or "[3, 7]" (argtext.validate_field)."""
    from tui_nn.engine.model.argtext import validate_field
    from tui_nn.engine.training.schedules import SCHEDULERS

    weight = LOSSES["CrossEntropyLoss"].arg("weight")
    assert validate_field(weight, "1, 2, 0.5") == ([1.0, 2.0, 0.5], None, False)
    assert validate_field(weight, "[1 x]")[1] == "'x' is not a number"
    milestones = SCHEDULERS["MultiStepLR"].arg("milestones")
    assert validate_field(milestones, "[3, 7]") == ([3, 7], None, False)
    assert validate_field(milestones, "3") == ([3], None, False)
    assert validate_field(milestones, "3.5, 4")[1] == "'3.5' is not an integer"
