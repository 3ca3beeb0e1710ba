"""`drop_last` (issue 22, 1.7) and the loss a `target_loss` run ends with (1.8), against plain PyTorch loops.

The oracles are written with torch alone: torch.utils.data's BatchSampler (its drop_last) cuts each epoch's
order into mini-batches, the order being one `torch.randperm(n, generator)` an epoch from a generator seeded
with the seed (the README's contract; torch's RandomSampler draws a second, unused permutation when an epoch's
iterator runs out, so its order differs from the second epoch on); `torch.manual_seed(seed)` comes right before
the layers are built, and the losses must equal the engine's bit for bit.
"""

import re
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler

from tui_nn.engine.files.export import export_script
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.files.session_file import load_session, save_session
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

INPUTS = [[0.1, 0.9], [0.8, 0.2], [0.5, 0.5], [0.3, 0.7], [0.9, 0.6], [0.2, 0.1], [0.6, 0.4]]  # 7 samples
TARGETS = [0, 1, 2, 0, 1, 2, 1]
SEED = 5


def preset_text(*, drop_last: bool | None, shuffle: bool = True, steps: int = 6, batch_size: int = 3) -> str:
    extra = "" if drop_last is None else f"drop_last = {'true' if drop_last else 'false'}\n"
    return f"""
[model]
input_shape = [7, 2]
layers = [
  {{ type = "Linear", in_features = 2, out_features = 4 }},
  {{ type = "BatchNorm1d", num_features = 4 }},
  {{ type = "ReLU" }},
  {{ type = "Linear", in_features = 4, out_features = 3 }},
]

[data]
inputs = {INPUTS}
targets = {TARGETS}

[training]
loss = "CrossEntropyLoss"
optimizer = {{ type = "SGD", lr = 0.1 }}
steps = {steps}
batch_size = {batch_size}
shuffle = {'true' if shuffle else 'false'}
seed = {SEED}
{extra}"""


def plain_loop(*, drop_last: bool, shuffle: bool = True, steps: int = 6, batch_size: int = 3) -> list[float]:
    """A hand-written loop: torch's samplers, one optimizer step per mini-batch. Raises what torch raises."""
    x, y = torch.tensor(INPUTS), torch.tensor(TARGETS)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(SEED)
    model.train()
    losses: list[float] = []
    while len(losses) < steps:
        epoch = torch.randperm(len(x), generator=order).tolist() if shuffle else list(range(len(x)))
        for idx in BatchSampler(epoch, batch_size=batch_size, drop_last=drop_last):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


@pytest.mark.parametrize("shuffle", [True, False])
def test_drop_last_losses_equal_a_plain_torch_loop_with_batch_samplers_drop_last(shuffle):
    want = plain_loop(drop_last=True, shuffle=shuffle)  # 7 samples, batches of 3: 2 steps an epoch, 3 epochs
    fin, losses = train(Session(loads_preset(preset_text(drop_last=True, shuffle=shuffle))), 6)
    assert fin.reason == "done" and fin.run_steps == 6
    assert losses == want


def test_without_drop_last_the_batch_of_one_fails_at_step_3_as_in_torch():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as raised:
        plain_loop(drop_last=False)
    good = plain_loop(drop_last=True, steps=2)  # the steps before the last batch of the first epoch
    for drop_last in (None, False):  # the default is false
        fin, losses = train(Session(loads_preset(preset_text(drop_last=drop_last))), 6)
        assert fin.reason == "error" and fin.run_steps == 2
        assert str(raised.value) in fin.message
        assert losses == good


def test_drop_last_is_read_written_and_defaults_to_false():
    assert loads_preset(preset_text(drop_last=None)).training.drop_last is False
    p = loads_preset(preset_text(drop_last=True))
    assert p.training.drop_last is True
    text = dumps_preset(p)
    assert re.search(r"^drop_last = true$", text, re.MULTILINE)
    assert loads_preset(text).training.drop_last is True
    assert "drop_last" not in dumps_preset(loads_preset(preset_text(drop_last=False)))


def test_a_session_file_keeps_drop_last_and_continues_with_the_plain_loops_losses(tmp_path):
    want = plain_loop(drop_last=True, steps=7)  # step 5 starts the third epoch
    s = Session(loads_preset(preset_text(drop_last=True)))
    _, first = train(s, 3)  # stops inside the second epoch
    path = save_session(s, tmp_path / "run")
    again = load_session(path)
    assert again.training.drop_last is True
    _, rest = train(again, 4)
    assert first + rest == want


def test_the_exported_script_drops_the_last_batch_too(tmp_path):
    script = tmp_path / "drop_last.py"
    script.write_text(export_script(loads_preset(preset_text(drop_last=True)), steps=6))
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    printed = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", run.stdout, re.MULTILINE)]
    assert printed == plain_loop(drop_last=True)


# ---- 1.8: target_loss with mini-batches

N_TARGET = 8
X8 = [[i / 8, (7 - i) / 8] for i in range(N_TARGET)]
Y8 = [[(i % 3) / 2] for i in range(N_TARGET)]


def target_text(target: float) -> str:
    return f"""
[model]
input_shape = [{N_TARGET}, 2]
layers = [
  {{ type = "Linear", in_features = 2, out_features = 6 }},
  {{ type = "Tanh" }},
  {{ type = "Linear", in_features = 6, out_features = 1 }},
]

[data]
inputs = {X8}
targets = {Y8}

[training]
loss = "MSELoss"
optimizer = {{ type = "SGD", lr = 0.3 }}
steps = 200
batch_size = 3
seed = {SEED}
target_loss = {target!r}
"""


def plain_epochs(epochs: int) -> list[tuple[int, float, float]]:
    """A hand-written loop over mini-batches of 3 (8 samples: 3 steps an epoch, the last batch of 2); at each
    epoch's end (step, the last step's loss, the whole training set's loss in eval mode, without gradients)."""
    x, y = torch.tensor(X8), torch.tensor(Y8)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    loss_fn = nn.MSELoss()
    order = torch.Generator().manual_seed(SEED)
    out = []
    step = 0
    for _ in range(epochs):
        model.train()
        for idx in BatchSampler(torch.randperm(N_TARGET, generator=order).tolist(), 3, drop_last=False):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        with torch.no_grad():
            whole = loss_fn(model(x), y).item()
        out.append((step, loss.item(), whole))
    return out


def test_a_target_loss_run_on_mini_batches_ends_with_the_loss_that_met_the_target():
    epochs = plain_epochs(12)
    # a target the whole-set loss first meets at the end of epoch k, while that epoch's last batch loss is above it
    k = next(i for i in range(1, len(epochs))
             if epochs[i][2] < min(e[2] for e in epochs[:i]) and epochs[i][1] > epochs[i][2])
    step, batch_loss, whole = epochs[k]
    target = (whole + min(e[2] for e in epochs[:k])) / 2  # met at epoch k, by no epoch before it
    assert whole <= target < batch_loss
    fin, losses = train(Session(loads_preset(target_text(target))), 200)
    assert fin.reason == "target" and fin.step == step
    assert losses[-1] == pytest.approx(batch_loss, rel=1e-6)  # the step's own loss stays in the history
    assert fin.final_loss == pytest.approx(whole, rel=1e-6) and fin.final_loss <= target


def test_a_full_batch_target_run_ends_with_the_steps_own_loss():
    x, y = torch.tensor(X8), torch.tensor(Y8)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    want = []
    for _ in range(20):  # a hand-written full-batch loop
        opt.zero_grad(set_to_none=True)
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        want.append(loss.item())
    j = next(i for i in range(5, 20) if want[i] < min(want[:i]))
    target = want[j]
    fin, losses = train(Session(loads_preset(target_text(target).replace("batch_size = 3", "batch_size = 0"))), 200)
    assert fin.reason == "target" and fin.step == j + 1
    assert losses == want[:j + 1]
    assert fin.final_loss == want[j] == target
