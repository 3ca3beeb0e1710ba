"""Losses and optimizers: argument bounds, arguments invalid together, torch's refusals as EngineError values."""

import pytest
import torch

from tui_nn.engine.errors import EngineError
from tui_nn.engine.training.objectives import LOSSES, OPTIMIZERS, check_combination, make_loss, make_optimizer


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
    assert "none" not in spec.choices and set(spec.choices) == {"mean", "sum"}
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
