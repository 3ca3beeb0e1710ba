"""Issue 22 §2, training: OneCycleLR, ReduceLROnPlateau, step_every, gradient clipping and LBFGS, each equal bit
for bit to a hand-written torch loop (written from torch's documentation, never from the engine)."""

import pytest
import torch
from torch import nn

from tui_nn.engine.errors import PresetError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.training.schedules import current_lr
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from .test_trainer import MLP

N, BATCH = 20, 5


def preset(optimizer='{ type = "SGD", lr = 0.2, momentum = 0.5 }', batch=BATCH, seed=3, extra=""):
    return loads_preset(MLP.format(optimizer=optimizer, batch=batch, seed=seed) + extra)


def loop(steps, *, make_opt, make_sched=None, every="step", batch=BATCH, seed=3, clip=None, lbfgs=False,
         plateau=False, shuffle=True):
    """The loop a PyTorch user writes: data from a seeded generator, the model after torch.manual_seed, batches
    from a randperm per epoch, zero_grad / forward / loss / backward / (clip) / step / (scheduler)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 6, generator=g)
    y = torch.randint(0, 3, (N,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    loss_fn = nn.CrossEntropyLoss()
    opt = make_opt(model.parameters())
    sched = make_sched(opt) if make_sched else None
    order = torch.Generator().manual_seed(seed)
    perm, pos, losses, lrs = None, 0, [], []
    full = batch <= 0 or batch >= N
    for _ in range(steps):
        if full:
            xb, yb = x, y
        else:
            if perm is None or pos >= N:
                perm, pos = (torch.randperm(N, generator=order) if shuffle else torch.arange(N)), 0
            idx = perm[pos:pos + batch]
            pos += batch
            xb, yb = x[idx], y[idx]
        if lbfgs:
            def closure(xb=xb, yb=yb):
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                return loss
            loss = opt.step(closure)
        else:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            if clip is not None:
                clip(model.parameters())
            opt.step()
        if sched is not None and (every == "step" or full or pos >= N):
            if plateau:
                sched.step(loss.item())
            else:
                sched.step()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
    return losses, lrs


def run(p, steps):
    s = Session(p)
    lrs = []
    for _ in range(steps):
        fin, _ = train(s, 1)
        assert fin.reason == "done", fin.message
        lrs.append(current_lr(s)[0])
    return s.history.series()[1], lrs


def sgd(params):
    return torch.optim.SGD(params, lr=0.2, momentum=0.5)


def test_one_cycle_lr_equals_torch():
    p = preset(extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 30, pct_start = 0.25, '
                     'anneal_strategy = "linear", three_phase = true }\nsteps = 30\n')
    got = run(p, 20)
    want = loop(20, make_opt=sgd, make_sched=lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.5, total_steps=30, pct_start=0.25, anneal_strategy="linear", three_phase=True))
    assert list(got[0]) == want[0] and got[1] == want[1]
    assert loads_preset(dumps_preset(p)) == p


def test_one_cycle_lr_refuses_more_steps_than_total_steps_at_load_and_stops_a_run_before_it():
    with pytest.raises(PresetError) as info:
        preset(extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 10 }\nsteps = 11\n')
    assert info.value.field == "training.scheduler.total_steps"
    s = Session(preset(extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 10 }\nsteps = 10\n'))
    fin, losses = train(s, 10)
    assert fin.reason == "done" and len(losses) == 10
    fin, losses = train(s, 3)  # torch would raise at the 11th scheduler.step(): stopped before the step
    assert fin.reason == "error" and "total_steps = 10" in fin.message and losses == [] and s.step == 10


def test_one_cycle_cycle_momentum_needs_momentum_or_betas():
    with pytest.raises(PresetError) as info:
        preset(optimizer='{ type = "Adagrad", lr = 0.1 }',
               extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 30 }\nsteps = 30\n')
    assert info.value.field == "training.scheduler.cycle_momentum"
    p = preset(optimizer='{ type = "Adagrad", lr = 0.1 }',
               extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 30, cycle_momentum = false }\nsteps = 30\n')
    with pytest.raises(ValueError):  # torch's own refusal, which the table check above stands for
        torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adagrad([nn.Parameter(torch.zeros(1))]), max_lr=0.5,
                                            total_steps=30)
    got = run(p, 6)
    want = loop(6, make_opt=lambda ps: torch.optim.Adagrad(ps, lr=0.1), make_sched=lambda o:
                torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=30, cycle_momentum=False))
    assert list(got[0]) == want[0] and got[1] == want[1]


@pytest.mark.parametrize("batch", [BATCH, 0])
def test_reduce_lr_on_plateau_on_the_training_loss(batch):
    p = preset(batch=batch, extra='scheduler = { type = "ReduceLROnPlateau", factor = 0.5, patience = 1, '
                                  'threshold = 0.05, cooldown = 1 }\n')
    got = run(p, 24)
    want = loop(24, make_opt=sgd, batch=batch, plateau=True, make_sched=lambda o:
                torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.05, cooldown=1))
    assert list(got[0]) == want[0] and got[1] == want[1]
    assert min(want[1]) < 0.2  # the schedule did reduce


def test_step_every_epoch_steps_at_each_epochs_end():
    p = preset(extra='scheduler = { type = "StepLR", step_size = 2, gamma = 0.5, step_every = "epoch" }\n')
    got = run(p, 17)
    want = loop(17, make_opt=sgd, every="epoch", make_sched=lambda o: torch.optim.lr_scheduler.StepLR(
        o, step_size=2, gamma=0.5))
    assert list(got[0]) == want[0] and got[1] == want[1]
    assert want[1][7] == 0.1 and want[1][6] == 0.2  # 4 steps an epoch: halved after the second epoch
    assert loads_preset(dumps_preset(p)) == p


def test_step_every_epoch_with_a_full_batch_is_every_step():
    text = 'scheduler = { type = "ExponentialLR", gamma = 0.9, step_every = "epoch" }\n'
    got = run(preset(batch=0, extra=text), 5)
    want = loop(5, make_opt=sgd, batch=0, make_sched=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9))
    assert list(got[0]) == want[0] and got[1] == want[1]


@pytest.mark.parametrize("key,value,clip", [
    ("clip_grad_norm", 0.05, lambda ps: torch.nn.utils.clip_grad_norm_(ps, 0.05)),
    ("clip_grad_value", 0.01, lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.01)),
])
def test_gradient_clipping_equals_torch(key, value, clip):
    p = preset(extra=f"{key} = {value}\n" + 'scheduler = { type = "StepLR", step_size = 3 }\n')
    got = run(p, 12)
    want = loop(12, make_opt=sgd, clip=clip, make_sched=lambda o: torch.optim.lr_scheduler.StepLR(o, 3))
    unclipped = loop(12, make_opt=sgd, make_sched=lambda o: torch.optim.lr_scheduler.StepLR(o, 3))
    assert list(got[0]) == want[0] and want[0] != unclipped[0]
    assert getattr(p.training, key) == value and loads_preset(dumps_preset(p)) == p


def test_both_clippings_and_bad_values_are_refused():
    with pytest.raises(PresetError) as info:
        preset(extra="clip_grad_norm = 1.0\nclip_grad_value = 0.5\n")
    assert info.value.field == "training.clip_grad_value"
    for bad in ("0", "-1.0", "nan"):
        with pytest.raises(PresetError) as info:
            preset(extra=f"clip_grad_norm = {bad}\n")
        assert info.value.field == "training.clip_grad_norm"


@pytest.mark.parametrize("args,kwargs,batch", [
    ("", {}, 0),
    ('lr = 0.5, max_iter = 4, history_size = 3, line_search_fn = "strong_wolfe"',
     {"lr": 0.5, "max_iter": 4, "history_size": 3, "line_search_fn": "strong_wolfe"}, BATCH),
    ("max_iter = 3, max_eval = 5, tolerance_grad = 1e-5, tolerance_change = 1e-7",
     {"max_iter": 3, "max_eval": 5, "tolerance_grad": 1e-5, "tolerance_change": 1e-7}, BATCH),
])
def test_lbfgs_passes_a_closure_and_reports_its_first_loss(args, kwargs, batch):
    p = preset(optimizer="{ type = \"LBFGS\"" + (", " + args if args else "") + " }", batch=batch)
    got = run(p, 6)
    want = loop(6, make_opt=lambda ps: torch.optim.LBFGS(ps, **kwargs), batch=batch, lbfgs=True)
    assert list(got[0]) == want[0]
    assert loads_preset(dumps_preset(p)) == p


def test_lbfgs_refuses_what_it_cannot_do_exactly():
    with pytest.raises(PresetError) as info:
        preset(optimizer='{ type = "LBFGS" }', extra="reset_optimizer_each_step = true\n")
    assert info.value.field == "training.reset_optimizer_each_step"
    with pytest.raises(PresetError) as info:
        preset(optimizer='{ type = "LBFGS" }', extra="clip_grad_norm = 1.0\n")
    assert info.value.field == "training.clip_grad_norm"
    with pytest.raises(PresetError) as info:
        preset(optimizer='{ type = "LBFGS", line_search_fn = "wolfe" }')
    assert info.value.field == "training.optimizer.line_search_fn"


SEQUENTIAL = ('scheduler = { type = "SequentialLR", milestones = [4, 9], schedulers = [ '
              '{ type = "LinearLR", start_factor = 0.1, total_iters = 4 }, '
              '{ type = "ExponentialLR", gamma = 0.8 }, '
              '{ type = "CosineAnnealingLR", T_max = 5, eta_min = 0.01 } ] }\n')


def test_sequential_lr_equals_torch():
    p = preset(extra=SEQUENTIAL)
    got = run(p, 16)
    L = torch.optim.lr_scheduler

    def make(o):
        return L.SequentialLR(o, schedulers=[L.LinearLR(o, start_factor=0.1, total_iters=4),
                                             L.ExponentialLR(o, gamma=0.8), L.CosineAnnealingLR(o, T_max=5, eta_min=0.01)],
                              milestones=[4, 9])
    want = loop(16, make_opt=sgd, make_sched=make)
    assert list(got[0]) == want[0] and got[1] == want[1]
    assert loads_preset(dumps_preset(p)) == p


def test_sequential_lr_per_epoch_equals_torch():
    p = preset(extra=SEQUENTIAL.replace("milestones = [4, 9]", 'milestones = [1, 2], step_every = "epoch"'))
    got = run(p, 17)
    L = torch.optim.lr_scheduler

    def make(o):
        return L.SequentialLR(o, schedulers=[L.LinearLR(o, start_factor=0.1, total_iters=4),
                                             L.ExponentialLR(o, gamma=0.8), L.CosineAnnealingLR(o, T_max=5, eta_min=0.01)],
                              milestones=[1, 2])
    want = loop(17, make_opt=sgd, make_sched=make, every="epoch")
    assert list(got[0]) == want[0] and got[1] == want[1]


@pytest.mark.parametrize("table,field,words", [
    ('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "StepLR", step_size = 2 } ] }',
     "training.scheduler.milestones", "one fewer"),
    (('{ type = "SequentialLR", milestones = [5, 3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "ExponentialLR", gamma = 0.5 }, { type = "ExponentialLR", gamma = 0.7 } ] }'),
     "training.scheduler.milestones", "increasing"),
    (('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "ReduceLROnPlateau" } ] }'), "training.scheduler.schedulers[1].type", "ReduceLROnPlateau"),
    (('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "SequentialLR", milestones = [], schedulers = [] } ] }'), "training.scheduler.schedulers[1].type",
     "inside"),
    (('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "StepLR" } ] }'), "training.scheduler.schedulers[1].step_size", 'needs "step_size"'),
    (('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "StepLR", step_size = 2, step_every = "epoch" } ] }'),
     "training.scheduler.schedulers[1].step_every", "the SequentialLR"),
    ('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, 3 ] }',
     "training.scheduler.schedulers[1]", "table"),
    (('{ type = "SequentialLR", milestones = [3], schedulers = [ { type = "ExponentialLR", gamma = 0.9 }, '
      '{ type = "StepLR", step_size = 2, gama = 1 } ] }'), "training.scheduler.schedulers[1].gama", "gamma"),
])
def test_sequential_lr_errors_name_the_field(table, field, words):
    with pytest.raises(PresetError) as info:
        preset(extra=f"scheduler = {table}\n")
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)


def test_reduce_lr_on_plateau_on_the_test_loss_per_epoch():
    """With a test split, the schedule is stepped with the test loss in eval mode (pytorch/examples' pattern:
    validate at the end of each epoch, then scheduler.step(val_loss))."""
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
out_features = 1
[data]
inputs = { generate = "randn", shape = [24, 2] }
targets = { generate = "randn", shape = [24, 1] }
[training]
optimizer = { type = "SGD", lr = 0.3 }
scheduler = { type = "ReduceLROnPlateau", patience = 0, factor = 0.5, step_every = "epoch" }
batch_size = 6
seed = 2
'''
    p = loads_preset(text)
    s = Session(p)
    x_test = torch.randn(10, 2, generator=torch.Generator().manual_seed(9))
    y_test = x_test.sum(1, keepdim=True)
    s.test_inputs, s.test_targets = x_test, y_test
    train(s, 24)
    got = s.history.series()[1]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(24, 2, generator=g)
    y = torch.randn(24, 1, generator=g)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    order = torch.Generator().manual_seed(2)
    losses, perm, pos = [], None, 0
    for _ in range(24):
        if perm is None or pos >= 24:
            perm, pos = torch.randperm(24, generator=order), 0
        idx = perm[pos:pos + 6]
        pos += 6
        opt.zero_grad()
        loss = nn.MSELoss()(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if pos >= 24:
            model.eval()
            with torch.no_grad():
                val = nn.MSELoss()(model(x_test), y_test).item()
            model.train()
            sched.step(val)
        losses.append(loss.item())
    assert list(got) == losses
    assert current_lr(s) == [opt.param_groups[0]["lr"]] and opt.param_groups[0]["lr"] < 0.3


def test_sequential_lr_schedules_are_typed_in_a_form_and_set_on_a_session():
    """The app's form shows SequentialLR's list as TOML inline tables and reads it back (argtext), and
    set_scheduler checks each table as a preset does."""
    from tui_nn.engine.model.argtext import validate_field, value_text
    from tui_nn.engine.spec import CallSpec
    from tui_nn.engine.training.schedules import SCHEDULERS, set_scheduler

    arg = SCHEDULERS["SequentialLR"].arg("schedulers")
    tables = [{"type": "LinearLR", "start_factor": 0.5, "total_iters": 2}, {"type": "ExponentialLR", "gamma": 0.9}]
    text = value_text(tables)
    assert text == '[{ type = "LinearLR", start_factor = 0.5, total_iters = 2 }, { type = "ExponentialLR", gamma = 0.9 }]'
    assert validate_field(arg, text) == (tables, None, False)
    assert validate_field(arg, "[{ type = ")[1].startswith("expected a TOML list")
    assert validate_field(arg, "3")[1].startswith("expected a list of schedule tables")
    s = Session(preset())
    set_scheduler(s, CallSpec("SequentialLR", {"schedulers": tables, "milestones": [2]}))
    train(s, 3)
    assert current_lr(s) == [0.2 * 0.9]
    with pytest.raises(PresetError) as info:
        set_scheduler(s, CallSpec("SequentialLR", {"schedulers": [{"type": "StepLR"}], "milestones": []}))
    assert info.value.field == "training.scheduler.schedulers[0].step_size"


def test_a_schedule_torch_refuses_with_the_optimizer_changes_nothing():
    """OneCycleLR's cycle_momentum with Adagrad, set in the app either way round: an EngineError naming the field,
    and the session keeps its settings."""
    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.spec import CallSpec
    from tui_nn.engine.training.schedules import set_scheduler

    one_cycle = CallSpec("OneCycleLR", {"max_lr": 0.5, "total_steps": 100})
    s = Session(preset(optimizer='{ type = "Adagrad", lr = 0.1 }'))
    with pytest.raises(EngineError) as info:
        set_scheduler(s, one_cycle)
    assert "training.scheduler.cycle_momentum" in str(info.value)
    assert s.training.scheduler is None and s.scheduler is None
    s = Session(preset(extra='scheduler = { type = "OneCycleLR", max_lr = 0.5, total_steps = 100 }\n'))
    before = s.training.optimizer
    with pytest.raises(EngineError) as info:
        s.set_optimizer(CallSpec("Adagrad", {"lr": 0.1}))
    assert "training.scheduler.cycle_momentum" in str(info.value)
    assert s.training.optimizer == before and type(s.optimizer).__name__ == "SGD"
