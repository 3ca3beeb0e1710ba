"""Hostile training: runs that drive the training state (parameters, buffers, optimizer state) to Inf or NaN while
the loss stays finite, through the trainer and through the save/reopen path.

Two generators. `test_injected_non_finite_state_*` writes an Inf or NaN into one random tensor of the training state
(a parameter, a BatchNorm running statistic, an optimizer moment) right after a random step k's optimizer step (a
global optimizer hook, so the replays meet it too): the trainer must stop at step k-1 with exactly the state of an
uninterrupted run to k-1, name the tensor and the step, and leave a session that saves, reopens and trains on
exactly like that run. `test_huge_learning_rates_*` trains random small MLPs with random optimizers, learning rates
up to 10^38 and data up to 10^20 in size: whatever happens (the loss overflows, a dead ReLU's weights overflow with a
finite loss, Adam's second moment overflows, a step raises), every floating tensor of the training state is finite
afterwards, the final loss is finite or None, and the session reopens. CI runs a sample (`CI_EXAMPLES` per target);
$TUI_NN_FUZZ_EXAMPLES sizes a long run.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.optim.optimizer import register_optimizer_step_post_hook

import tui_nn.engine.training.trainer as trainer_mod
from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.session_file import load_session, save_session
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer, train

from . import counts

CI_EXAMPLES = 25
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / f"tui-nn-hostile-training-{os.getpid()}"
WORK.mkdir(parents=True, exist_ok=True)

OPTIMIZERS = ['"SGD"', '{{ type = "SGD", lr = {lr}, momentum = 0.9 }}', '{{ type = "Adam", lr = {lr} }}',
              '{{ type = "AdamW", lr = {lr} }}', '{{ type = "RMSprop", lr = {lr} }}', '{{ type = "Adagrad", lr = {lr} }}',
              '{{ type = "SGD", lr = {lr} }}']
ACTIVATIONS = ["ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU"]


def floats(values: torch.Tensor) -> str:
    return repr(values.tolist())


@st.composite
def mlps(draw: Any, huge: bool) -> dict[str, Any]:
    """A random small MLP preset (Linear, activations, maybe BatchNorm1d and Dropout), its data and training."""
    n_in = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    n_out = draw(st.integers(1, 3))
    classify = draw(st.booleans()) and n_out > 1
    batchnorm = draw(st.booleans())
    batch = draw(st.sampled_from([0, 2, 3]))
    n = (batch or draw(st.integers(2, 4))) * draw(st.integers(1, 3))  # whole batches: BatchNorm sees 2 or more
    layers, width = [], n_in
    for w in widths:
        layers.append(f'type = "Linear"\nin_features = {width}\nout_features = {w}')
        if batchnorm:
            layers.append(f'type = "BatchNorm1d"\nnum_features = {w}')
        layers.append(f'type = "{draw(st.sampled_from(ACTIVATIONS))}"')
        if draw(st.integers(0, 4)) == 0:
            layers.append('type = "Dropout"\np = 0.25')
        width = w
    layers.append(f'type = "Linear"\nin_features = {width}\nout_features = {n_out}')
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    scale = 10.0 ** (draw(st.integers(0, 20)) if huge else 0)
    x = torch.randn(n, n_in, generator=gen) * scale
    if classify:
        y, loss = torch.randint(0, n_out, (n,), generator=gen), "CrossEntropyLoss"
    else:
        y = torch.randn(n, n_out, generator=gen) * scale
        loss = draw(st.sampled_from(["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"]))
    lr = 10.0 ** draw(st.integers(4, 38)) if huge else draw(st.sampled_from([0.001, 0.01, 0.1]))
    optimizer = draw(st.sampled_from(OPTIMIZERS)).format(lr=lr)
    text = (f"[model]\ninput_shape = [{n}, {n_in}]\n" + "".join(f"[[model.layers]]\n{x}\n" for x in layers)
            + f"[data]\ninputs = {floats(x)}\ntargets = {floats(y)}\n"
            + f'[training]\nloss = "{loss}"\noptimizer = {optimizer}\nbatch_size = {batch}\nseed = {seed % 97}\n'
            + f"shuffle = {str(draw(st.booleans())).lower()}\n")
    return {"text": text, "steps": draw(st.integers(1, 30)), "every": draw(st.sampled_from([None, 1, 2, 5])),
            "snapshot_each": draw(st.booleans())}


def run(case: dict[str, Any], session: Session, steps: int | None = None) -> trainer_mod.Finished:
    """Trainer.run, with a snapshot at each report when the case says so (the replay then starts mid-run)."""
    saved = trainer_mod.SNAPSHOT_INTERVAL
    trainer_mod.SNAPSHOT_INTERVAL = 0.0 if case["snapshot_each"] else saved
    try:
        return Trainer(session).run(case["steps"] if steps is None else steps, every=case["every"])
    finally:
        trainer_mod.SNAPSHOT_INTERVAL = saved


def state_tensors(s: Session) -> list[tuple[str, torch.Tensor]]:
    """The floating tensors a session file holds of the training state, named as the trainer's message names them:
    "the parameter 0.weight", "the buffer 1.running_var", "the optimizer's exp_avg of 0.weight"."""
    params = dict(s.model.named_parameters())
    out = [(f"the parameter {k}" if k in params else f"the buffer {k}", t)
           for k, t in s.model.state_dict().items() if t.is_floating_point() and t.numel()]
    opt = s.optimizer if s.optimizer_made else None
    if opt is not None:
        names = {id(p): k for k, p in params.items()}
        for group in opt.param_groups:
            for p in group["params"]:
                for key, v in opt.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel():
                        out.append((f"the optimizer's {key} of {names[id(p)]}", v))
    return out


def finite_state(s: Session) -> bool:
    tensors = [t for t in s.model.state_dict().values() if t.is_floating_point()]
    if s.optimizer_made and s.optimizer is not None:
        tensors += [v for st_ in s.optimizer.state.values() for v in st_.values()
                    if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def reopens(s: Session, name: str) -> Session | None:
    """The session saved and loaded again; None (a lost session) when the file cannot be loaded."""
    path = WORK / f"{name}-{random.getrandbits(32):08x}"
    try:
        return load_session(save_session(s, path))
    except EngineError:
        return None
    finally:
        for p in WORK.glob(path.name + "*"):
            p.unlink()


def same_state(a: Session, b: Session) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@SETTINGS
@given(case=mlps(huge=False), data=st.data())
def test_injected_non_finite_state_stops_at_the_step_before(case: dict[str, Any], data: Any) -> None:
    steps = case["steps"]
    k = data.draw(st.integers(1, steps), label="bad step")
    kind = data.draw(st.sampled_from(["", "the parameter", "the buffer", "the optimizer's"]), label="kind")
    pick = data.draw(st.integers(0, 10**6), label="tensor")
    where = data.draw(st.integers(0, 10**6), label="element")
    value = data.draw(st.sampled_from([math.inf, -math.inf, math.nan]), label="value")
    s = Session(loads_preset(case["text"]), budget=2**28)
    hit: dict[str, str] = {}

    def inject(_opt: Any, _args: Any, _kwargs: Any) -> None:  # after step k's optimizer step, replays included
        if s.step + 1 == k:
            tensors = [x for x in state_tensors(s) if x[0].startswith(kind)] or state_tensors(s)
            label, t = tensors[pick % len(tensors)]
            with torch.no_grad():
                t.view(-1)[where % t.numel()] = value
            hit["label"] = label

    handle = register_optimizer_step_post_hook(inject)
    try:
        fin = run(case, s)
    finally:
        handle.remove()
    assert fin.reason == "nonfinite", fin
    assert fin.restored_step == k - 1 == s.step == len(s.history) == fin.step, (fin, k)
    assert f"{hit['label']} became {value}" in fin.message and f"at step {k} " in fin.message, (fin.message, hit)
    assert finite_state(s)
    assert fin.final_loss is None or math.isfinite(fin.final_loss)
    twin = Session(loads_preset(case["text"]), budget=2**28)
    if k > 1:
        assert run(case, twin, k - 1).reason == "done"
    assert same_state(s, twin)
    back = reopens(s, "injected")
    lost = int(back is None)
    counts.add("saves", "lost sessions", lost)
    assert back is not None, "the session after the stop does not reopen"
    assert same_state(back, twin) and back.step == k - 1 == len(back.history)
    # the optimizer state and the batch order are step k-1's too: the next steps are the uninterrupted run's
    # (each from the same global RNG state: Dropout draws from it, and the three sessions share it)
    rng = torch.get_rng_state()
    after = []
    for x in (s, twin, back):
        torch.set_rng_state(rng)
        after.append(train(x, 2)[1])
    assert after[0] == after[1] == after[2]
    counts.add("training faults", "non-finite parameter runs")
    counts.add("training faults", f"injected into {hit['label'].split()[1]}: stopped at step k-1")


@SETTINGS
@given(case=mlps(huge=True))
def test_huge_learning_rates_leave_a_finite_session_that_reopens(case: dict[str, Any]) -> None:
    s = Session(loads_preset(case["text"]), budget=2**28)
    fin = run(case, s)
    assert finite_state(s), fin
    assert fin.final_loss is None or math.isfinite(fin.final_loss), fin
    assert s.step == fin.step == len(s.history)
    _, mean, _, _ = s.history.series()
    assert np.isfinite(mean).all()
    if fin.reason == "nonfinite":
        assert fin.restored_step == s.step and fin.message and "learning rate" in fin.hint
    back = reopens(s, "huge-lr")
    counts.add("saves", "lost sessions", int(back is None))
    assert back is not None, f"the session after {fin.reason!r} ({fin.message}) does not reopen"
    assert same_state(back, s) and back.step == s.step
    if fin.reason == "nonfinite" and "while the loss stayed finite" in fin.message:
        counts.add("training faults", "non-finite parameter runs")
    counts.add("training faults", f"huge learning rates: {fin.reason}, state finite, reopens")
