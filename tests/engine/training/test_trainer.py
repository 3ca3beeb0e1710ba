"""The trainer gives exactly the losses of a hand-written PyTorch loop (same seed, model, data, loss, optimizer)."""

import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Finished, Progress, Trainer, train

MLP = '''
[model]
input_shape = [1, 6]
[[model.layers]]
type = "Linear"
in_features = 6
out_features = 16
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 16
out_features = 3
[data]
inputs = {{ generate = "randn", shape = [20, 6] }}
targets = {{ generate = "randint", shape = [20], high = 3 }}
[training]
loss = "CrossEntropyLoss"
optimizer = {optimizer}
batch_size = {batch}
seed = {seed}
'''


def hand_written(optimizer: str, args: dict, batch: int, seed: int, steps: int) -> list[float]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 6, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = getattr(torch.optim, optimizer)(model.parameters(), **args)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed)
    perm, pos = None, 0
    losses = []
    for _ in range(steps):
        if batch:
            if perm is None or pos + batch > 20:
                perm, pos = torch.randperm(20, generator=order), 0
            idx = perm[pos:pos + batch]
            pos += batch
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x, y
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


OPTIMIZERS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9}),
    ("Adam", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adadelta", {"lr": 1.0, "rho": 0.8}),  # pytorch/examples' MNIST recipe is Adadelta(lr=1.0)
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.005}),
    ("RAdam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.01}),
    ("Adamax", {"lr": 0.01}),
]


def _toml_table(name, args):
    inner = ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in args.items())
    return f'{{ type = "{name}", {inner} }}'


@pytest.mark.parametrize("batch", [0, 5, 1], ids=["full", "mini", "sgd1"])
@pytest.mark.parametrize("optimizer,args", OPTIMIZERS, ids=[f"{o}{i}" for i, (o, _) in enumerate(OPTIMIZERS)])
def test_losses_equal_hand_written_loop(optimizer, args, batch):
    seed = 3
    preset = loads_preset(MLP.format(optimizer=_toml_table(optimizer, args), batch=batch, seed=seed))
    fin, losses = train(Session(preset), 30)
    assert fin.reason == "done" and fin.step == 30
    assert losses == hand_written(optimizer, args, batch, seed, 30)  # bit-identical on CPU


def test_same_seed_same_losses_other_seed_differs():
    text = MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=4, seed=11)
    a = train(Session(loads_preset(text)), 20)[1]
    b = train(Session(loads_preset(text)), 20)[1]
    c = train(Session(loads_preset(text.replace("seed = 11", "seed = 12"))), 20)[1]
    assert a == b and a != c


def test_reports_are_bounded_and_include_first_and_last_step():
    preset = loads_preset(MLP.format(optimizer='"SGD"', batch=0, seed=0))
    reports: list = []
    fin = Trainer(Session(preset)).run(3000, report=reports.append, interval=3600)
    progress = [r for r in reports if isinstance(r, Progress)]
    assert progress[0].step == 1  # the first step is reported at once
    assert progress[-1].step == 3000  # and the last
    assert len(progress) <= 3  # with a long interval: first, buffer flushes, last; never per step
    assert sum(len(p.losses) for p in progress) == 3000
    assert fin.step == 3000


def test_every_k_reports():
    preset = loads_preset(MLP.format(optimizer='"SGD"', batch=0, seed=0))
    steps = []
    Trainer(Session(preset)).run(50, report=lambda r: steps.append(r.step), every=10)
    assert steps == [10, 20, 30, 40, 50]


def test_stop_leaves_weights_of_last_completed_step():
    preset = loads_preset(MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=0, seed=0))
    s = Session(preset)
    stop = threading.Event()
    snapshots = {}

    calls = {"n": 0}

    def should_stop():
        # called once before each step: record the weights then, stop before step 18
        snapshots[s.step] = [p.detach().clone() for p in s.model.parameters()]
        calls["n"] += 1
        return calls["n"] > 17 or stop.is_set()

    fin = Trainer(s).run(100, should_stop=should_stop)
    assert fin.reason == "stopped" and fin.step == 17 and len(s.history) == 17
    for p, q in zip(s.model.parameters(), snapshots[17]):
        assert torch.equal(p, q)
    # resuming continues exactly like an uninterrupted run
    _, rest = train(s, 13)
    _, whole = train(Session(preset), 30)
    assert rest == whole[17:]


def test_nan_loss_stops_and_restores_finite_weights():
    preset = loads_preset('[model]\ninput_shape = [8, 6]\n[[model.layers]]\ntype = "Linear"\nin_features = 6\n'
                          'out_features = 1\n[training]\noptimizer = { type = "SGD", lr = 1e6 }\n')
    s = Session(preset)
    fin = Trainer(s).run(200, interval=0)  # report (and snapshot) every step
    assert fin.reason == "nonfinite"
    assert "step" in fin.message and fin.restored_step is not None
    assert all(bool(torch.isfinite(p).all()) for p in s.model.parameters())
    assert s.step == fin.restored_step == len(s.history)
    steps, mean, _, _ = s.history.series()
    assert np.isfinite(mean).all()


DIVERGING = """
[model]
input_shape = [1, 6]
[[model.layers]]
type = "Linear"
in_features = 6
out_features = 1
[data]
inputs = {{ generate = "randn", shape = [20, 6] }}
targets = {{ generate = "randn", shape = [20, 1] }}
[training]
loss = "MSELoss"
optimizer = {{ type = "SGD", lr = 1.5, momentum = 0.5 }}
batch_size = {batch}
seed = 3
"""


@pytest.mark.parametrize("batch,every", [(0, None), (0, 1), (3, None)])
def test_nan_loss_restores_the_newest_weights_whose_loss_was_finite(batch, every):
    """The loss of step k is that of the weights after step k-1; when it is the first non-finite one, the
    weights after step k-1 are the bad ones and those of step k-2 (whose loss, step k-1's, was finite) are
    restored exactly, with the optimizer state of that step, so a run with a smaller learning rate goes on."""
    text = DIVERGING.format(batch=batch)
    s = Session(loads_preset(text))
    fin = Trainer(s).run(500, every=every)
    assert fin.reason == "nonfinite" and fin.restored_step is not None
    probe = Session(loads_preset(text))  # one step per run: the first run whose step is bad names k
    while Trainer(probe).run(1).reason != "nonfinite":
        pass
    k = probe.step + 1
    assert k > 3 and fin.restored_step == k - 2 == s.step == len(s.history)
    twin = Session(loads_preset(text))
    train(twin, k - 2)
    for (name, p), q in zip(s.model.named_parameters(), twin.model.parameters()):
        assert torch.equal(p, q), name
    # the optimizer state is that of step k-2 too: the next steps equal the twin's
    _, a = train(s, 1)
    _, b = train(twin, 1)
    assert a == b and math.isfinite(a[0])


def test_nan_at_the_first_step_keeps_the_starting_weights():
    s = Session(loads_preset(DIVERGING.format(batch=0)))
    with torch.no_grad():
        s.model[0].weight[0, 0] = float("inf")
    before = [p.detach().clone() for p in s.model.parameters()]
    fin = Trainer(s).run(10)
    assert fin.reason == "nonfinite" and fin.restored_step == 0 == s.step and "started from" in fin.message
    for p, q in zip(s.model.parameters(), before):
        assert torch.equal(p, q)


def test_step_exception_is_a_value_and_keeps_weights():
    preset = loads_preset(MLP.format(optimizer='"SGD"', batch=0, seed=0))
    s = Session(preset)
    train(s, 5)
    before = [p.detach().clone() for p in s.model.parameters()]

    def boom(*a, **k):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    s.loss_fn = boom  # a failing step (simulated out-of-memory)
    fin = Trainer(s).run(5)
    assert isinstance(fin, Finished) and fin.reason == "error"
    assert fin.message.startswith("out of memory")
    assert s.step == 5
    for p, q in zip(s.model.parameters(), before):
        assert torch.equal(p, q)


def test_target_loss_stops_early():
    preset = loads_preset(MLP.format(optimizer='{ type = "Adam", lr = 0.05 }', batch=0, seed=0))
    s = Session(preset)
    fin, losses = train(s, 5000, target_loss=0.5)
    assert fin.reason == "target"
    assert losses[-1] <= 0.5 and all(v > 0.5 for v in losses[:-1])


def test_reset_optimizer_each_step_matches_fresh_adam_loop():
    text = MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=0, seed=0) + \
        "reset_optimizer_each_step = true\n"
    _, losses = train(Session(loads_preset(text)), 10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 6, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    want = []
    for _ in range(10):
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(x), y)
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert losses == want


def test_untrainable_session_raises_engine_error():
    from tui_nn.engine.training.session import ShapeCheckFailed

    bad = loads_preset("[model]\ninput_shape = [1, 4]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 3\n"
                       "out_features = 2\n")
    with pytest.raises(ShapeCheckFailed) as info:
        Trainer(Session(bad)).run(3)
    assert info.value.error.layer == 0
    assert math.isnan(Session(bad).history.last)


def test_global_rng_reproduces_the_notebook_seeding_pattern():
    """`[data] rng = "global"`: torch.manual_seed(seed); x = torch.randn(...); model = ... (lab 003's pattern)."""
    text = MLP.format(optimizer='{ type = "SGD", lr = 0.1 }', batch=0, seed=5).replace("[data]", '[data]\nrng = "global"')
    s = Session(loads_preset(text))
    torch.manual_seed(5)
    x = torch.randn(20, 6)
    y = torch.randint(0, 3, (20,))
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    assert torch.equal(s.inputs, x) and torch.equal(s.targets, y)
    for (_, a), (_, b) in zip(s.named_parameters(), model.named_parameters()):
        assert torch.equal(a, b)
    from tui_nn.engine.files.preset_write import dumps_preset

    assert 'rng = "global"' in dumps_preset(s.preset)


@pytest.mark.parametrize("opt", ["{ type = \"Adam\", lr = 0.01, betas = [0.8, 0.9] }",
                                 "{ type = \"SGD\", lr = 0.1, momentum = 0.9 }", "{ type = \"RMSprop\", lr = 0.01 }"])
def test_a_snapshot_is_a_deep_copy_later_steps_cannot_change(opt):
    """train_state(copy=True) clones tensors itself (cheaper than copy.deepcopy): the same values and structure as
    a deepcopy, none of them shared with the live optimizer, gradients or batch order."""
    import copy

    text = f"""
[model]
input_shape = [8, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 2
[data]
inputs = {{ generate = "randn", shape = [8, 3] }}
targets = {{ generate = "randn", shape = [8, 2] }}
[training]
loss = "MSELoss"
optimizer = {opt}
batch_size = 4
shuffle = true
"""
    s = Session(loads_preset(text))
    Trainer(s).run(3, report=lambda r: None)
    snap = s.train_state(copy=True, weights=True)
    want = copy.deepcopy(s.train_state())

    def same(a, b):
        if isinstance(a, torch.Tensor):
            return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b

    assert same({k: v for k, v in snap.items() if k != "weights"}, want)
    Trainer(s).run(2, report=lambda r: None)  # later steps change the live state, not the snapshot
    assert same({k: v for k, v in snap.items() if k != "weights"}, want)
    assert not same(s.train_state()["optimizer"], want["optimizer"])


# -- a non-finite training state while the loss stays finite --------------------------------------------------------

# A dead ReLU: inputs and targets are large and positive and the (frozen) last layer's weights are all -1, so the
# gradient pushes every active unit's weights and bias down; a huge learning rate drives them to -inf, the ReLU then
# outputs 0 for every sample, the output is the last layer's bias (0) and the loss stays finite (10^4) forever.
# With momentum 0.99 the dead weights keep moving and overflow some steps later (step 1 with SGD lr 1e38).
DEAD_RELU = """
[model]
input_shape = [4, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 5
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Linear"
in_features = 5
out_features = 1
frozen = true
weight = [[-1.0, -1.0, -1.0, -1.0, -1.0]]
bias = [0.0]
[data]
inputs = [[10.0, 20.0, 30.0], [30.0, 10.0, 20.0], [20.0, 30.0, 10.0], [10.0, 10.0, 10.0]]
targets = [[100.0], [100.0], [100.0], [100.0]]
[training]
loss = "MSELoss"
optimizer = {optimizer}
batch_size = {batch}
seed = 1
"""


def dead_relu(optimizer: str = '{ type = "SGD", lr = 3e33, momentum = 0.99 }', batch: int = 0) -> str:
    return DEAD_RELU.format(optimizer=optimizer, batch=batch)


def first_bad_state_step(text: str, limit: int) -> int | None:
    """By hand, without the trainer: the first step after which a parameter, buffer or optimizer state tensor holds
    NaN or Inf (every loss before it finite), or None."""
    from tui_nn.engine.training.trainer import _Batches

    s = Session(loads_preset(text))
    batches, opt = _Batches(s, s.training.batch_size, s.training.shuffle), s.optimizer
    for step in range(1, limit + 1):
        xb, yb = batches.next()
        opt.zero_grad(set_to_none=True)
        loss = s.loss_fn(s.model(xb), yb)
        loss.backward()
        opt.step()
        assert math.isfinite(loss.item())
        state = list(s.model.state_dict().values()) + [v for st in opt.state.values() for v in st.values()]
        if not all(bool(torch.isfinite(t).all()) for t in state if t.is_floating_point()):
            return step
    return None


def all_state_finite(s: Session) -> bool:
    tensors = list(s.model.state_dict().values())
    if s.optimizer_made and s.optimizer is not None:
        tensors += [v for st in s.optimizer.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def test_the_dead_relu_example_reaches_inf_weights_with_a_finite_loss():
    """The example itself, by hand: the first layer's weights overflow while every loss stays finite."""
    k = first_bad_state_step(dead_relu(), 200)
    assert k is not None and k > 3
    assert first_bad_state_step(dead_relu('{ type = "SGD", lr = 1e38 }'), 5) == 1


@pytest.mark.parametrize("batch,every,snapshot_each", [(0, None, False), (0, 1, False), (0, 3, False),
                                                       (2, None, False), (2, 5, False), (0, 2, True),
                                                       (2, 1, True)])
def test_an_infinite_weight_with_a_finite_loss_stops_with_the_last_finite_weights(batch, every, snapshot_each,
                                                                                     monkeypatch):
    """The first step k whose weights are not finite: training stops ("nonfinite") at step k-1 with exactly its
    weights, optimizer state and mini-batch order (an uninterrupted run to k-1 and one more step agree); the history
    holds k-1 finite losses; the message names the parameter and the step."""
    import tui_nn.engine.training.trainer as trainer_mod

    if snapshot_each:  # a snapshot at every report: the replay starts from the newest, after the run's start
        monkeypatch.setattr(trainer_mod, "SNAPSHOT_INTERVAL", 0.0)
    text = dead_relu(batch=batch)
    k = first_bad_state_step(text, 300)
    assert k is not None and k > 3
    s = Session(loads_preset(text))
    reports: list = []
    fin = Trainer(s).run(300, every=every, report=reports.append)
    assert fin.reason == "nonfinite" and not fin.ok
    assert fin.restored_step == k - 1 == s.step == fin.step == len(s.history) == fin.run_steps
    assert "the parameter 0.weight became -inf" in fin.message and f"at step {k} " in fin.message
    assert f"step {k - 1} were restored" in fin.message and "lower the learning rate" in fin.hint
    assert fin.final_loss is not None and math.isfinite(fin.final_loss) and fin.final_loss == s.history.last
    assert all_state_finite(s)
    steps, mean, _, _ = s.history.series()
    assert np.isfinite(mean).all()
    # what the listener saw adds up to the history, and ends at the restored step
    seen = [v for r in reports if isinstance(r, Progress) for v in r.losses]
    assert len(seen) == k - 1 and [r.step for r in reports if isinstance(r, Progress)][-1] == k - 1
    twin = Session(loads_preset(text))
    train(twin, k - 1)
    for (name, p), q in zip(s.model.state_dict().items(), twin.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert s.batch_pos == twin.batch_pos
    _, a = train(s, 1)  # the optimizer state and the batch order are those of step k-1: the next step agrees
    _, b = train(twin, 1)
    assert a == b


def test_an_infinite_weight_at_the_first_step_keeps_the_starting_weights():
    s = Session(loads_preset(dead_relu('{ type = "SGD", lr = 1e38 }')))
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    fin = Trainer(s).run(20)
    assert fin.reason == "nonfinite" and fin.restored_step == 0 == s.step == len(s.history)
    assert "0.weight became -inf" in fin.message and "at step 1 " in fin.message and "started from" in fin.message
    assert fin.final_loss is None
    for k, v in s.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # the session is not stuck: a sane learning rate trains on from there
    from tui_nn.engine.spec import CallSpec

    s.set_optimizer(CallSpec("SGD", {"lr": 1e-4}))
    assert Trainer(s).run(5).reason == "done" and all_state_finite(s)


def test_an_infinite_optimizer_state_with_finite_weights_and_loss_stops_too():
    """Adam's second moment overflows (a gradient of 10^21 squared) while its update is 0 and the L1 loss finite: the
    session file holds the optimizer state, and the loader refuses Inf there too, so it is a bad step as well."""
    text = """
[model]
input_shape = [2, 1]
[[model.layers]]
type = "Linear"
in_features = 1
out_features = 1
[data]
inputs = [[1e21], [2e21]]
targets = [[0.0], [0.0]]
[training]
loss = "L1Loss"
optimizer = { type = "Adam", lr = 0.01 }
"""
    s = Session(loads_preset(text))
    fin = Trainer(s).run(5)
    assert fin.reason == "nonfinite" and fin.restored_step == 0 == s.step
    assert "the optimizer's exp_avg_sq of 0.weight became inf" in fin.message
    assert all_state_finite(s)


@pytest.mark.parametrize("text,every", [(None, None), (None, 4), ("first", None)])
def test_the_session_after_a_nonfinite_stop_saves_and_reopens(tmp_path, text, every):
    from tui_nn.engine.files.session_file import load_session, save_session

    text = dead_relu('{ type = "SGD", lr = 1e38 }') if text == "first" else dead_relu(batch=2)
    s = Session(loads_preset(text))
    fin = Trainer(s).run(300, every=every)
    assert fin.reason == "nonfinite"
    back = load_session(save_session(s, tmp_path / "after"))
    assert back.step == s.step == len(back.history)
    for k, v in s.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[k], v), k
    _, a = train(s, 1)
    _, b = train(back, 1)
    assert a == b


def test_a_run_from_non_finite_weights_trains_nothing_and_names_the_tensor():
    s = Session(loads_preset(dead_relu()))
    with torch.no_grad():
        s.model[0].bias[2] = float("nan")
    before = {k: v.clone() for k, v in s.model.state_dict().items()}
    reports: list = []
    fin = Trainer(s).run(10, report=reports.append)
    assert fin.reason == "nonfinite" and fin.restored_step == 0 == s.step and fin.run_steps == 0
    assert "the parameter 0.bias holds nan" in fin.message and "started from" in fin.message
    assert not [r for r in reports if isinstance(r, Progress)]
    for k, v in s.model.state_dict().items():
        assert torch.equal(v.isnan(), before[k].isnan()) and torch.equal(v.nan_to_num(), before[k].nan_to_num()), k


def test_the_state_check_tells_an_overflowing_sum_from_a_non_finite_value():
    """The fused check sums each tensor: finite values whose sum overflows are still finite."""
    from tui_nn.engine.training.trainer import all_finite, first_nonfinite

    big = torch.full((4,), 3e38)
    assert not math.isfinite(float(big.sum()))
    assert all_finite([("big", big), ("half", torch.full((8,), 60000.0, dtype=torch.float16))])
    for bad in (float("inf"), float("-inf"), float("nan")):
        t = torch.zeros(5)
        t[3] = bad
        assert not all_finite([("ok", torch.ones(2)), ("t", t)])
        label, value, n, size = first_nonfinite([("ok", torch.ones(2)), ("t", t)])
        assert label == "t" and (value == bad or math.isnan(value) and math.isnan(bad)) and (n, size) == (1, 5)
    a, b = torch.full((2,), float("inf")), torch.full((2,), float("-inf"))
    assert not all_finite([("a", torch.cat([a, b]))])  # inf + -inf: NaN, still not finite
