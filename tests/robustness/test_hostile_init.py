"""Hostile `init` entries: any value in a layer's `init` (scheme names one letter off, tables with keys of other
schemes, numbers at float32's edges and beyond, strings, booleans, lists, nested tables, control characters) on
any layer of the catalogue that has parameters, or none, alone or in a Residual block.

Each input is loaded, and what loads is built, initialised and trained for one step (the exported script's init
lines are written too). Only the project's errors may come out; a refusal names the file and the init field
(`model.layers[0].init...`), its text bounded and free of control characters; every input ends in bounded time
(a trunc_normal whose sampler would redraw for ever is refused at load); and what is accepted gives finite
weights: an init never makes a parameter inf or NaN.

CI runs a sample (`CI_EXAMPLES`); TUI_NN_FUZZ_EXAMPLES scales it for the long run.
"""

from __future__ import annotations

import os

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_nn.engine.errors import EngineError, PresetError
from tui_nn.engine.files.export import export_script
from tui_nn.engine.files.preset_read import preset_from_dict
from tui_nn.engine.model.init import INIT_SCHEMES
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from . import counts
from .test_fuzz_loaders import attempt

CI_EXAMPLES = 60
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
GROUP = "init tables"

LAYERS = [  # (layer entry, input shape)
    ({"type": "Linear", "in_features": 3, "out_features": 2}, [2, 3]),
    ({"type": "Linear", "in_features": 3, "out_features": 2, "bias": False}, [2, 3]),
    ({"type": "Conv2d", "in_channels": 2, "out_channels": 4, "kernel_size": 2, "groups": 2}, [2, 2, 3, 3]),
    ({"type": "Conv1d", "in_channels": 1, "out_channels": 2, "kernel_size": 1}, [2, 1, 4]),
    ({"type": "BatchNorm1d", "num_features": 3}, [2, 3]),
    ({"type": "BatchNorm1d", "num_features": 3, "affine": False}, [2, 3]),
    ({"type": "LayerNorm", "normalized_shape": [3]}, [2, 3]),
    ({"type": "PReLU"}, [2, 3]),
    ({"type": "ReLU"}, [2, 3]),
    ({"type": "Residual", "layers": [{"type": "Linear", "in_features": 3, "out_features": 3}, {"type": "Tanh"}]},
     [2, 3]),
    ({"type": "Residual", "layers": [{"type": "LayerNorm", "normalized_shape": 3}]}, [2, 3]),
]

KEYS = ["scheme", "a", "b", "mean", "std", "gain", "val", "value", "bias", "mode", "nonlinearity", "generator",
        "tensor", "sparsity", "Gain", "\x1b[2J", "a\nb", ""]
_EDGE = [0.0, -0.0, 1e-45, 1e-38, 3.4028234663852886e38, 3.4028235677973366e38, -3.4e38, 1.7976931348623157e308,
         2 ** 63 - 1, -(2 ** 63), 1e-300, 1e6, -1e6]
NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2 ** 63, 2 ** 63 - 1),
                    st.sampled_from(_EDGE), st.floats(-10, 10))
NAMES = st.one_of(st.sampled_from(INIT_SCHEMES),
                  st.sampled_from(["kaiming", "Kaiming_uniform", "xavier_uniform_", "eye", "dirac", "sparse",
                                   "fan_in", "fan_out", "relu", "leaky_relu", "tanh", "selu", "linear", "conv2d",
                                   "gelu", "trunc_normal", "orthogonal"]),
                  st.text(max_size=12))
VALUES = st.recursive(st.one_of(NUMBERS, NAMES, st.booleans()),
                      lambda inner: st.one_of(st.lists(inner, max_size=3),
                                              st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                      max_leaves=6)
TABLES = st.builds(lambda scheme, rest: {"scheme": scheme, **rest}, NAMES,
                   st.dictionaries(st.sampled_from(KEYS[1:]), st.one_of(NUMBERS, NAMES, VALUES), max_size=5))
INITS = st.one_of(NAMES, TABLES, VALUES)


def _named(err: EngineError) -> None:
    assert isinstance(err, PresetError), err
    assert err.field.startswith("model.layers[0].init") or err.field.startswith("model.layers[0].layers"), err
    text = str(err)
    assert len(text) < 2000 and "\x1b" not in text and all(c.isprintable() or c in "\n" for c in text), text


def _load_build_train(layer: dict, shape: list[int], init) -> None:
    entry = dict(layer, init=init)
    preset = preset_from_dict({"model": {"input_shape": shape, "layers": [entry]},
                               "training": {"optimizer": {"type": "SGD", "lr": 0.01}}}, "hostile.toml")
    counts.add(GROUP, "loaded")
    session = Session(preset)
    assert all(bool(torch.isfinite(p).all()) for p in session.model.parameters()), "an init made a weight inf/NaN"
    if session.trainable:
        train(session, 1)
        export_script(preset, steps=1)
        counts.add(GROUP, "trained and exported")


@SETTINGS
@given(layer=st.sampled_from(range(len(LAYERS))), init=INITS)
def test_hostile_init_entries_are_refused_by_name_or_work(layer, init):
    entry, shape = LAYERS[layer]
    attempt(GROUP, lambda: _load_build_train(entry, shape, init), where="hostile.toml", named=_named)
