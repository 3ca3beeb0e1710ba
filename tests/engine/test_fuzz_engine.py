"""Random presets and random text: only the engine's own errors come out, never a crash.

CI runs a sample (the `max_examples` below); set TUI_NN_FUZZ_EXAMPLES for a long run.
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.conftest import EXAMPLE
from tui_nn.engine.errors import EngineError, PresetError
from tui_nn.engine.files.preset_read import loads_preset, preset_from_dict
from tui_nn.engine.model.catalogue import CATALOGUE
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

EXAMPLES = int(os.environ.get("TUI_NN_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ODD = st.sampled_from([0, 1, 2, 3, 4, -1, 16, 2**40, 0.5, -1.0, 1e30, True, "same", "x", [1, 2], [2, 2], [0, 0, 0]])


def value_for(kind):
    good = {
        "int": st.integers(-2, 6), "optional_int": st.integers(-2, 6),
        "float": st.floats(-2, 2, allow_nan=False), "optional_float": st.floats(0, 1),
        "bool": st.booleans(), "choice": st.sampled_from(["zeros", "none", "tanh", "mean", "zzz"]),
        "int_or_tuple": st.one_of(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=2, max_size=2)),
        "padding": st.one_of(st.integers(0, 2), st.sampled_from(["same", "valid"])),
        "float_pair": st.just([0.9, 0.99]),
    }[kind]
    return st.one_of(good, ODD) if kind != "float_pair" else good


@st.composite
def layer(draw, depth=0):
    name = draw(st.sampled_from(sorted(CATALOGUE)))
    out = {"type": name}
    for a in CATALOGUE[name].args:
        if a.required or draw(st.booleans()):
            out[a.name] = draw(value_for(a.kind))
    if name == "Residual" and depth < 2:
        out["layers"] = draw(st.lists(layer(depth + 1), max_size=2))
    if draw(st.integers(0, 9)) == 0:
        out["frozen"] = True
    return out


@st.composite
def preset_dict(draw):
    shape = [draw(st.sampled_from([1, 2, 4]))] + draw(st.lists(st.sampled_from([1, 2, 3, 4, 8]), min_size=1,
                                                                 max_size=3))
    return {
        "model": {"input_shape": shape, "layers": draw(st.lists(layer(), min_size=1, max_size=4))},
        "training": {"loss": draw(st.sampled_from(["MSELoss", "CrossEntropyLoss", "BCELoss", "NLLLoss",
                                                   "BCEWithLogitsLoss", "HuberLoss", "L1Loss"])),
                     "optimizer": draw(st.sampled_from(["SGD", "Adam", "RMSprop", "Adagrad", "AdamW"])),
                     "batch_size": draw(st.integers(0, 3))},
    }


@SETTINGS
@given(preset_dict())
def test_random_models_build_check_and_train_or_give_engine_errors(raw):
    try:
        session = Session(preset_from_dict(raw), budget=2**28)
        session.trace()
        try:
            session.loss_value()
        except EngineError:
            pass
        if session.trainable:
            fin = Trainer(session).run(2)
            assert fin.reason in ("done", "error", "nonfinite")
    except EngineError:
        pass


@SETTINGS
@given(st.text(max_size=400))
def test_random_text_gives_preset_errors_only(text):
    try:
        loads_preset(text)
    except PresetError as err:
        assert str(err).startswith("<string>")


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(EXAMPLE)), st.sampled_from(
    ["[", "]", "{", "}", "=", '"', "\n", "0", "-1", "1e999", "nan", "true", "[[model.layers]]", "Residual", ",",
     "99999999999999999999", "#", "'''", '"""', "\\u0000", "dim = 9", "1.5", "[]", ""])), max_size=6))
def test_mutated_example_gives_preset_errors_only(edits):
    text = EXAMPLE
    for pos, token in edits:
        text = text[:pos] + token + text[pos + 1:]
    try:
        Session(loads_preset(text), budget=2**28)
    except EngineError:
        pass


def test_deep_nesting_and_huge_files_are_refused_before_parsing():
    import pytest

    with pytest.raises(PresetError, match="nested more than"):
        loads_preset("x = " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(PresetError, match="too large"):
        loads_preset("#" * (17 * 1024 * 1024))
