"""Sessions saved and reopened: exact state, training continues with the losses of an uninterrupted run."""

import io
import json
import os
import zipfile

import pytest
import torch

from tui_nn.engine.preset import load_preset, loads_preset
from tui_nn.engine.session import Session
from tui_nn.engine.sessionio import Autosave, SessionFileError, load_session, save_session, session_bytes
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.trainer import Trainer, train

FULL = '''
[preset]
name = "everything at once"

[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 12
init = "xavier_uniform"
[[model.layers]]
type = "BatchNorm1d"
num_features = 12
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Dropout"
p = 0.2
[[model.layers]]
type = "Residual"
layers = [ { type = "Linear", in_features = 12, out_features = 12 }, { type = "Tanh" } ]
[[model.layers]]
type = "Linear"
in_features = 12
out_features = 3
[data]
dataset = { name = "spiral", samples = 90, noise = 0.05, test_fraction = 0.2, classes = 3 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.02 }
scheduler = { type = "StepLR", step_size = 7, gamma = 0.7 }
batch_size = 16
seed = 4
'''


def _equal_state(a: Session, b: Session) -> None:
    for (k, v), (k2, v2) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    for key in ("inputs", "targets", "test_inputs", "test_targets", "batch_perm"):
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None and y is None) or torch.equal(x, y), key
    assert (a.step, a.batch_pos) == (b.step, b.batch_pos)
    assert torch.equal(a.batch_gen.get_state(), b.batch_gen.get_state())
    assert a.optimizer.state_dict()["param_groups"] == b.optimizer.state_dict()["param_groups"]
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert a.history.series()[1].tolist() == b.history.series()[1].tolist()
    assert a.preset == b.preset and a.original == b.original


@pytest.mark.parametrize("optimizer", ['{ type = "Adam", lr = 0.02 }', '{ type = "SGD", lr = 0.05, momentum = 0.9 }',
                                       '{ type = "RMSprop", lr = 0.01 }', '{ type = "Adagrad", lr = 0.05 }'])
def test_reopened_session_continues_exactly_like_an_uninterrupted_run(tmp_path, optimizer):
    p = loads_preset(FULL.replace('{ type = "Adam", lr = 0.02 }', optimizer))
    whole = Session(p)
    _, want = train(whole, 40)
    s = Session(p)
    fin = Trainer(s).run(13, every=5)
    assert fin.ok
    path = save_session(s, tmp_path / "run")
    assert path.name == "run.tuinn" and path.exists()
    torch.manual_seed(999)  # whatever happens to the global RNG in between
    s2 = load_session(path)
    _equal_state(s, s2)
    _, rest = train(s2, 27)
    assert s.history.series()[1].tolist() + rest == want  # Dropout, BatchNorm, StepLR, mini-batches: exact
    assert s2.step == 40 and len(s2.history) == 40
    for (_, a), (_, b) in zip(whole.model.state_dict().items(), s2.model.state_dict().items()):
        assert torch.equal(a, b)


def test_the_archive_holds_readable_parts(tmp_path):
    s = Session(loads_preset(FULL))
    Trainer(s).run(10, every=5)
    path = save_session(s, tmp_path / "x.tuinn")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"preset.toml", "weights.safetensors", "optimizer.safetensors", "data.safetensors", "state.json",
                "history.csv", "runs.json", "format.json"} <= names
        assert loads_preset(zf.read("preset.toml").decode()) == s.preset
        rows = zf.read("history.csv").decode().splitlines()
        assert rows[0] == "step,loss,min,max,count,sum" and len(rows) == 11
        assert float(rows[10].split(",")[1]) == s.history.last
        from safetensors.torch import load

        weights = load(zf.read("weights.safetensors"))
        assert torch.equal(weights["1.running_mean"], s.model[1].running_mean)
        state = json.loads(zf.read("state.json"))
        assert state["step"] == 10 and state["scheduler"]["last_epoch"] == 10
    s2 = load_session(path)
    assert [e.step for e in s2.metrics.evals] == [5, 10] and s2.metrics.evals == s.metrics.evals
    assert s2.metrics.accuracy.points == s.metrics.accuracy.points
    assert [r.to_dict() for r in s2.runs] == [r.to_dict() for r in s.runs]
    train(s2, 3)
    assert len(s2.runs) == 1 and s2.runs.runs[0].step == 13  # the reopened run goes on


def test_saves_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    s = Session(loads_preset(FULL))
    train(s, 3)
    path = save_session(s, tmp_path / "a.tuinn")
    good = path.read_bytes()
    train(s, 3)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Exception) as info:
        save_session(s, path)
    assert "No space left" in str(info.value)
    assert path.read_bytes() == good  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["a.tuinn"]


def test_a_csv_session_reopens_without_the_csv_file(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i / 10},{(i * 7 % 5) / 5},{i % 2}\n" for i in range(20)))
    (tmp_path / "p.toml").write_text('''
[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 2
[data]
csv = { path = "d.csv", features = ["a", "b"], target = "y", test_fraction = 0.25 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "SGD", lr = 0.5 }
batch_size = 4
''')
    s = Session(load_preset(tmp_path / "p.toml"))
    train(s, 4)
    path = save_session(s, tmp_path / "s.tuinn")
    csv.unlink()
    s2 = load_session(path)
    assert torch.equal(s2.inputs, s.inputs) and torch.equal(s2.test_targets, s.test_targets)
    assert s2.preset.data.csv.features == ["a", "b"] and os.path.isabs(s2.preset.data.csv.path)
    assert train(s2, 4)[1] == train(s, 4)[1]


def test_hand_edits_and_frozen_layers_are_kept(tmp_path):
    s = Session(loads_preset(FULL))
    s.set_param("0.weight", 0.25, (1, 1))
    s.freeze("5")
    s.set_optimizer(CallSpec("SGD", {"lr": 0.1}))
    path = save_session(s, tmp_path / "e")
    s2 = load_session(path)
    assert s2.get_param("0.weight")[1, 1].item() == 0.25
    assert not s2.get_param("5.weight").requires_grad and s2.preset.training.optimizer.type == "SGD"


@pytest.mark.parametrize("damage,words", [
    (lambda p: p.write_bytes(b"not a zip"), "not a tui-nn session file"),
    (lambda p: _rewrite(p, "format.json", b'{"format": "something else"}'), "not a tui-nn session file"),
    (lambda p: _rewrite(p, "format.json", b'{"format": "tui-nn session", "version": 99}'), "version 99"),
    (lambda p: _rewrite(p, "weights.safetensors", None), "weights.safetensors is missing"),
    (lambda p: _rewrite(p, "weights.safetensors", b"garbage"), "not a valid safetensors file"),
    (lambda p: _rewrite(p, "state.json", b"{"), "state.json is not valid JSON"),
    (lambda p: _rewrite(p, "history.csv", b"step,loss,min,max,count,sum\n1,x,1,1,1,1\n"), "history cannot be read"),
    (lambda p: _rewrite(p, "preset.toml", b'[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = "Linear"\n'
                                           b'in_features = 2\nout_features = 5\n'), "weights do not fit"),
])
def test_damaged_files_are_clear_errors(tmp_path, damage, words):
    s = Session(loads_preset(FULL))
    train(s, 2)
    path = save_session(s, tmp_path / "d.tuinn")
    damage(path)
    with pytest.raises(Exception) as info:
        load_session(path)
    from tui_nn.engine.errors import EngineError

    assert isinstance(info.value, EngineError)
    assert words in str(info.value)


def _rewrite(path, member, data):
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    if data is None:
        del items[member]
    else:
        items[member] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in items.items():
            zf.writestr(n, d)
    path.write_bytes(buf.getvalue())


def test_missing_file_and_folder_targets(tmp_path):
    with pytest.raises(SessionFileError) as info:
        load_session(tmp_path / "nope.tuinn")
    assert "no such file" in str(info.value)
    (tmp_path / "dir.tuinn").mkdir()
    from tui_nn.engine.errors import EngineError

    with pytest.raises(EngineError):
        save_session(Session(loads_preset(FULL)), tmp_path / "dir.tuinn")


def test_autosave_is_bounded_and_skips_unchanged_sessions(tmp_path):
    s = Session(loads_preset(FULL))
    auto = Autosave(tmp_path / "auto", interval=1.0)
    assert auto.interval == 5.0  # at least 5 seconds between saves
    assert auto.maybe_save(s, now=100.0) and auto.path.name == "auto.tuinn"
    assert not auto.maybe_save(s, now=200.0)  # nothing changed
    train(s, 2)
    assert not auto.maybe_save(s, now=102.0)  # too soon
    assert auto.maybe_save(s, now=105.0)
    assert load_session(auto.path).step == 2


def test_bytes_are_deterministic_in_content():
    s = Session(loads_preset(FULL))
    train(s, 2)
    a = zipfile.ZipFile(io.BytesIO(session_bytes(s)))
    b = zipfile.ZipFile(io.BytesIO(session_bytes(s)))
    for name in ("weights.safetensors", "data.safetensors", "optimizer.safetensors", "history.csv", "preset.toml"):
        assert a.read(name) == b.read(name)


def _edited_after_training(tmp_path):
    """Trained 3 steps (the history's start weights remembered), then a layer appended: another model."""
    s = Session(loads_preset(FULL))
    train(s, 3)
    assert s.has_start_weights
    from tui_nn.engine.spec import LayerSpec

    spec = s.preset.copy().model

    spec.layers.append(LayerSpec(type="Tanh"))
    s.rebuild(spec)
    return s


def test_a_model_edited_after_training_saves_a_session_that_loads(tmp_path):
    """Found by the long robustness run: the start weights of the model before the edit were saved with the new
    model, and the file was refused on loading ("start.safetensors does not fit the model")."""
    s = _edited_after_training(tmp_path)
    assert not s.has_start_weights  # they belonged to the model before the edit
    s.current_preset(at_start=True)  # the current weights then, no KeyError
    path = save_session(s, tmp_path / "edited.tuinn")
    back = load_session(path)
    assert back.step == s.step and [x.type for x in back.spec.layers] == [x.type for x in s.spec.layers]
    assert not back.has_start_weights


def test_start_weights_of_another_model_are_dropped_on_loading(tmp_path):
    """A file saved by the earlier version (start weights of the model before an edit): the session loads, the
    mismatching start weights are left out."""
    s = Session(loads_preset(FULL))
    train(s, 3)
    path = save_session(s, tmp_path / "s.tuinn")
    from safetensors.torch import save

    _rewrite(path, "start.safetensors", save({"0.weight": torch.zeros(5, 5)}))
    back = load_session(path)
    assert back.step == 3 and not back.has_start_weights
    assert torch.equal(back.model[0].weight, s.model[0].weight)  # the rest as saved
