"""Learning-rate schedules: the preset table, and training equal to a hand-written loop with torch's scheduler."""

import pytest
import torch
from torch import nn

from tui_nn.engine.errors import PresetError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.schedules import current_lr, set_scheduler
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from .test_trainer import MLP

BASE = MLP.format(optimizer='{ type = "SGD", lr = 0.2, momentum = 0.5 }', batch=5, seed=3)

SCHEDULES = [
    ('{ type = "StepLR", step_size = 4, gamma = 0.5 }', torch.optim.lr_scheduler.StepLR, {"step_size": 4, "gamma": 0.5}),
    ('{ type = "ExponentialLR", gamma = 0.9 }', torch.optim.lr_scheduler.ExponentialLR, {"gamma": 0.9}),
    ('{ type = "CosineAnnealingLR", T_max = 10, eta_min = 0.01 }', torch.optim.lr_scheduler.CosineAnnealingLR,
     {"T_max": 10, "eta_min": 0.01}),
    ('{ type = "MultiStepLR", milestones = [3, 7, 8], gamma = 0.5 }', torch.optim.lr_scheduler.MultiStepLR,
     {"milestones": [3, 7, 8], "gamma": 0.5}),
    ('{ type = "LinearLR", start_factor = 0.25, total_iters = 6 }', torch.optim.lr_scheduler.LinearLR,
     {"start_factor": 0.25, "total_iters": 6}),
    ('{ type = "CosineAnnealingWarmRestarts", T_0 = 3, T_mult = 2, eta_min = 0.01 }',
     torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, {"T_0": 3, "T_mult": 2, "eta_min": 0.01}),
]


def hand_written_with(scheduler_cls, kwargs, steps):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(20, 6, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    sched = scheduler_cls(opt, **kwargs)
    order = torch.Generator().manual_seed(3)
    perm, pos, losses, lrs = None, 0, [], []
    for _ in range(steps):
        if perm is None or pos + 5 > 20:
            perm, pos = torch.randperm(20, generator=order), 0
        idx = perm[pos:pos + 5]
        pos += 5
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
    return losses, lrs


@pytest.mark.parametrize("table,cls,kwargs", SCHEDULES, ids=[s[1].__name__ for s in SCHEDULES])
def test_schedule_equals_torch_scheduler_stepped_once_per_step(table, cls, kwargs):
    p = loads_preset(BASE + f"scheduler = {table}\n")
    assert p.training.scheduler == CallSpec(cls.__name__, {k: v for k, v in kwargs.items()})
    s = Session(p)
    lrs = []
    for _ in range(15):
        train(s, 1)
        lrs.append(current_lr(s)[0])
    want_losses, want_lrs = hand_written_with(cls, kwargs, 15)
    assert [v for v in s.history.series()[1]] == want_losses
    assert lrs == want_lrs
    assert dumps_preset(p).count("scheduler = {") == 1 and loads_preset(dumps_preset(p)) == p


def test_step_lr_halves_every_step_size_steps():
    s = Session(loads_preset(BASE + 'scheduler = { type = "StepLR", step_size = 10, gamma = 0.5 }\n'))
    train(s, 25)
    assert current_lr(s) == [0.2 * 0.25]


@pytest.mark.parametrize("table,field,words", [
    ('{ type = "StepLR" }', "training.scheduler.step_size", 'needs "step_size"'),
    ('{ type = "StepLR", step_size = 0 }', "training.scheduler.step_size", "must be >= 1"),
    ('{ type = "StepLR", step_size = 2, gama = 0.5 }', "training.scheduler.gama", 'did you mean "gamma"'),
    ('{ type = "StepLr", step_size = 2 }', "training.scheduler.type", 'did you mean "StepLR"'),
    ('"CosineAnnealingLR"', "training.scheduler.T_max", 'needs "T_max"'),
    ('{ type = "ExponentialLR", gamma = -1 }', "training.scheduler.gamma", "must be >= 0"),
    ('{ type = "MultiStepLR", milestones = 3 }', "training.scheduler.milestones", "a list of integers"),
    ('{ type = "MultiStepLR", milestones = [3, 0.5] }', "training.scheduler.milestones", "a list of integers"),
    ('{ type = "MultiStepLR", milestones = [0, 3] }', "training.scheduler.milestones", "must be >= 1"),
    ('{ type = "LinearLR", start_factor = 0 }', "training.scheduler.start_factor", "must be > 0"),
    ('{ type = "CosineAnnealingWarmRestarts", T_0 = 2, T_mult = 0 }', "training.scheduler.T_mult", "must be >= 1"),
])
def test_schedule_errors_name_the_field(table, field, words):
    with pytest.raises(PresetError) as info:
        loads_preset(BASE + f"scheduler = {table}\n", "s.toml")
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_schedule_and_reset_optimizer_each_step_are_refused_together():
    with pytest.raises(PresetError) as info:
        loads_preset(BASE + 'scheduler = { type = "ExponentialLR", gamma = 0.9 }\nreset_optimizer_each_step = true\n')
    assert info.value.field == "training.scheduler"


def test_set_scheduler_and_reset_restart_the_schedule():
    s = Session(loads_preset(BASE))
    train(s, 3)
    assert s.scheduler is None and current_lr(s) == [0.2]
    set_scheduler(s, CallSpec("ExponentialLR", {"gamma": 0.5}))
    train(s, 2)
    assert current_lr(s) == [0.05]
    s.reset()
    assert current_lr(s) == [0.2] and s.scheduler.last_epoch == 0
    with pytest.raises(PresetError):
        set_scheduler(s, CallSpec("StepLR", {}))
    set_scheduler(s, None)
    assert s.scheduler is None


def test_changing_device_keeps_the_schedule_position():
    s = Session(loads_preset(BASE + 'scheduler = { type = "StepLR", step_size = 2, gamma = 0.5 }\n'))
    train(s, 5)
    lr, epoch = current_lr(s), s.scheduler.last_epoch
    s.set_device("cpu")
    assert current_lr(s) == lr and s.scheduler.last_epoch == epoch
    _, rest = train(s, 5)
    _, whole = train(Session(loads_preset(BASE + 'scheduler = { type = "StepLR", step_size = 2, gamma = 0.5 }\n')),
                     10)
    assert rest == whole[5:]


def test_process_runner_continues_schedule_and_metrics_exactly():
    """Runs split between the trainer process and this one give the losses of one uninterrupted run, with the
    schedule, the accuracy and the test evaluations carried across."""
    from tui_nn.engine.training.runner import ProcessRunner

    text = '''
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
out_features = 2
[data]
dataset = { name = "moons", samples = 60, noise = 0.1, test_fraction = 0.25 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.05 }
scheduler = { type = "StepLR", step_size = 3, gamma = 0.7 }
batch_size = 9
seed = 1
'''
    whole_session = Session(loads_preset(text))
    _, want = train(whole_session, 20)
    s = Session(loads_preset(text))
    got: list[float] = []
    r = ProcessRunner(threads=1)
    try:
        fin = r.run(s, 12, report=lambda p: got.extend(p.losses.tolist()), should_stop=lambda: False, every=4)
        assert fin.reason == "done" and fin.evaluation is not None and fin.evaluation.step == 12
        assert s.scheduler.last_epoch == 12
        assert [e.step for e in s.metrics.evals] == [4, 8, 12]
        assert [step for step, _ in s.metrics.accuracy.points] == [4, 8, 12]
    finally:
        r.close()
    _, rest = train(s, 8)
    assert got + rest == want
    assert current_lr(s) == current_lr(whole_session)
    assert len(s.runs) == 1 and s.runs.runs[0].step == 20
