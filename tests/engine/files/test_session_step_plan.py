"""Session files keep what issue 22 §2's training settings need: clipping in the preset, ReduceLROnPlateau's
progress (its best loss starts infinite), OneCycleLR's cycled momentum; a session trained with LBFGS is refused
with a reason (its state has lists of tensors a session file has no place for)."""

import pytest

from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.session_file import save_session
from tui_nn.engine.files.session_load import load_session
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from ..training.test_trainer import MLP

CASES = {
    "plateau-per-epoch": MLP.format(optimizer='{ type = "SGD", lr = 0.2 }', batch=5, seed=1)
    + 'scheduler = { type = "ReduceLROnPlateau", patience = 1, factor = 0.5, step_every = "epoch" }\n',
    "one-cycle-adam-clip-norm": MLP.format(optimizer='{ type = "Adam", lr = 0.2 }', batch=5, seed=1)
    + 'scheduler = { type = "OneCycleLR", max_lr = 0.1, total_steps = 100 }\nclip_grad_norm = 0.5\n',
    "one-cycle-sgd-clip-value": MLP.format(optimizer='{ type = "SGD", lr = 0.2, momentum = 0.9 }', batch=0, seed=2)
    + 'scheduler = { type = "OneCycleLR", max_lr = 0.1, total_steps = 100 }\nclip_grad_value = 0.1\n',
    "sequential": MLP.format(optimizer='{ type = "SGD", lr = 0.2 }', batch=5, seed=3)
    + 'scheduler = { type = "SequentialLR", milestones = [5], schedulers = [ '
      '{ type = "LinearLR", start_factor = 0.2, total_iters = 5 }, { type = "CosineAnnealingLR", T_max = 20 } ] }\n',
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_saved_session_continues_exactly(name, tmp_path):
    text = CASES[name]
    _, whole = train(Session(loads_preset(text)), 14)
    s = Session(loads_preset(text))
    _, first = train(s, 7)
    reopened = load_session(save_session(s, tmp_path / "s.tuinn"))
    assert reopened.training == s.training
    _, rest = train(reopened, 7)
    assert first + rest == whole


def test_a_session_trained_with_lbfgs_is_refused_with_a_reason(tmp_path):
    s = Session(loads_preset(MLP.format(optimizer='{ type = "LBFGS", max_iter = 3 }', batch=5, seed=1)))
    save_session(s, tmp_path / "fresh.tuinn")  # nothing learnt yet: saved
    train(s, 2)
    with pytest.raises(EngineError) as info:
        save_session(s, tmp_path / "s.tuinn")
    assert "LBFGS" in str(info.value)
    assert not (tmp_path / "s.tuinn").exists()
