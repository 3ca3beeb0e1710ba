"""Runs compared: the registry keeps every run of a session; TensorBoard-style smoothing."""

import math

import numpy as np
import pytest

from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.runs import MAX_POINTS, Run, RunRegistry, _thin, ema_smooth
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from .test_trainer import MLP

TEXT = MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=5, seed=3)


def test_ema_smoothing_is_tensorboards():
    values = [1.0, 2.0, 3.0, float("nan"), 5.0]
    w = 0.6
    # TensorBoard: last = last * w + (1 - w) * v; smoothed = last / (1 - w ** n) over the finite values
    last, n, want = 0.0, 0, []
    for v in values:
        if math.isnan(v):
            want.append(v)
            continue
        last = last * w + (1 - w) * v
        n += 1
        want.append(last / (1 - w ** n))
    got = ema_smooth(values, w)
    assert got[0] == 1.0  # debiased: the curve starts at the first value
    assert np.allclose(got, want, equal_nan=True, rtol=0, atol=1e-15)
    assert np.array_equal(ema_smooth([3.0, 1.0, 2.0], 0.0), [3.0, 1.0, 2.0])
    assert ema_smooth([], 0.5).shape == (0,)
    for bad in (1.0, -0.1, float("nan"), "0.5", True):
        with pytest.raises(EngineError):
            ema_smooth([1.0], bad)


def test_every_run_is_kept_and_continued_runs_extend():
    s = Session(loads_preset(TEXT))
    train(s, 10)
    train(s, 5)  # same settings, continued: the same run
    assert len(s.runs) == 1
    run = s.runs.runs[0]
    assert (run.id, run.step, run.start_step, len(run.losses)) == (1, 15, 0, 15)
    assert run.losses.tolist() == s.history.series()[1].tolist() and run.final_loss == s.history.last
    assert run.label == "run 1: Adam lr=0.01, batch 5, seed 3" and run.reason == "done"
    s.set_optimizer(CallSpec("SGD", {"lr": 0.1}))
    train(s, 5)  # new settings: a new run that begins at step 15
    assert [r.id for r in s.runs] == [1, 2] and s.runs.runs[1].start_step == 15
    assert s.runs.runs[1].settings["optimizer"] == {"type": "SGD", "lr": 0.1}
    assert s.runs.runs[0].step == 15  # the first run is unchanged
    s.reset()
    train(s, 3)  # after a reset: a new run from step 0
    assert [r.id for r in s.runs] == [1, 2, 3] and s.runs.runs[2].start_step == 0 and s.runs.runs[2].step == 3


def test_seed_and_batch_size_changes_are_new_runs():
    s = Session(loads_preset(TEXT))
    train(s, 2)
    s.training.seed = 4
    s.reset()
    train(s, 2)
    s.training.batch_size = 10
    train(s, 2)
    assert [r.settings["seed"] for r in s.runs] == [3, 4, 4]
    assert [r.settings["batch_size"] for r in s.runs] == [5, 5, 10]


def test_run_records_round_trip_and_long_curves_are_thinned():
    steps = np.arange(1, 10_001, dtype=np.int64)
    means = np.linspace(1.0, 0.0, 10_000)
    s2, m2 = _thin(steps, means)
    assert len(s2) <= MAX_POINTS and s2[-1] == 10_000
    assert m2.mean() == pytest.approx(means.mean(), rel=1e-6)  # step-weighted averages keep the mean
    reg = RunRegistry()
    s = Session(loads_preset(TEXT))
    train(s, 4)
    reg.track(s)
    copy = RunRegistry()
    copy.load_list(reg.to_list())
    a, b = reg.runs[0], copy.runs[0]
    assert (a.id, a.label, a.settings, a.step) == (b.id, b.label, b.settings, b.step)
    assert a.losses.tolist() == b.losses.tolist()
    with pytest.raises(EngineError):
        Run.from_dict({"id": 1})
    with pytest.raises(EngineError):
        copy.get(99)
    copy.remove(1)
    assert len(copy) == 0


def test_the_settings_of_a_run_hold_every_blocks_layers_and_shortcut():
    """Two runs that differ only inside a Concat branch or a Residual's shortcut are told apart (issue 22 §2)."""
    from tui_nn.engine.training.runs import run_settings

    text = '''
[model]
input_shape = [2, 4, 8, 8]
[[model.layers]]
type = "Residual"
layers = [{ type = "Conv2d", in_channels = 4, out_channels = 4, kernel_size = 3, padding = 1, stride = 2 }]
shortcut = [{ type = "Conv2d", in_channels = 4, out_channels = 4, kernel_size = 1, stride = 2 }]
[[model.layers]]
type = "Concat"
layers = [{ type = "Conv2d", in_channels = 4, out_channels = 2, kernel_size = 1 }, { type = "Identity" }]
[training]
loss = "MSELoss"
optimizer = "SGD"
'''
    settings = run_settings(Session(loads_preset(text)))
    residual, concat = settings["model"]
    assert [d["type"] for d in residual["layers"]] == ["Conv2d"] and residual["shortcut"][0]["kernel_size"] == 1
    assert [d["type"] for d in concat["layers"]] == ["Conv2d", "Identity"]
    other = run_settings(Session(loads_preset(text.replace("out_channels = 2, kernel_size = 1",
                                                           "out_channels = 2, kernel_size = 3, padding = 1"))))
    assert other["model"] != settings["model"]
