"""Sessions saved and reopened: exact state, training continues with the losses of an uninterrupted run."""

import io
import json
import os
import zipfile

import pytest
import torch

from tui_nn.engine.files.preset_read import load_preset, loads_preset
from tui_nn.engine.files.session_file import Autosave, SessionFileError, load_session, save_session, session_bytes
from tui_nn.engine.spec import CallSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer, train

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


# -- hostile files (issue 14): the archive, the state, the autosave ---------------------------------------------

import math  # noqa: E402
import struct  # noqa: E402
import zlib  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tui_nn.engine.errors import EngineError  # noqa: E402
from tui_nn.engine.files.session_file import AutosaveSkipped, UnsavableSession, check_session_bytes

HYPO = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
_BASE: dict[str, dict[str, bytes]] = {}


def base_members() -> dict[str, bytes]:
    """The members of a saved session (trained 13 steps: Adam state, a StepLR schedule, evaluations, runs)."""
    if "full" not in _BASE:
        s = Session(loads_preset(FULL))
        Trainer(s).run(13, every=5)
        with zipfile.ZipFile(io.BytesIO(session_bytes(s))) as zf:
            _BASE["full"] = {n: zf.read(n) for n in zf.namelist()}
    return dict(_BASE["full"])


def pack(parts: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in parts.items():
            zf.writestr(name, body, compress_type=method)
    return buf.getvalue()


def with_state(change) -> bytes:  # noqa: ANN001
    parts = base_members()
    state = json.loads(parts["state.json"])
    change(state)
    parts["state.json"] = json.dumps(state).encode()
    return pack(parts)


def load_bytes(tmp_path, blob: bytes, name: str = "h.tuinn"):  # noqa: ANN001, ANN201
    p = tmp_path / name
    p.write_bytes(blob)
    return load_session(p)


def refused(tmp_path, blob: bytes, *words: str) -> SessionFileError:  # noqa: ANN001
    p = tmp_path / "refused.tuinn"
    p.write_bytes(blob)
    with pytest.raises(SessionFileError) as info:
        load_session(p)
    text = str(info.value)
    assert text.startswith(str(p)), text
    for w in words:
        assert w in text, (w, text)
    return info.value


@pytest.mark.parametrize("field,value,words", [
    ("step", -5, "state.json: step"),
    ("step", 10**300, "state.json: step"),
    ("step", True, "state.json: step"),
    ("step", 1.5, "state.json: step"),
    ("batch_pos", -1, "state.json: batch_pos"),
    ("batch_pos", 10**6, "state.json: batch_pos"),  # 72 samples: at most twice that
    ("device", "x" * 10_000, "state.json: device"),
    ("torch", ["2.13"], "state.json: torch"),
    ("saved_at", "yesterday", "state.json: saved_at"),
    ("accuracy", [[1, 0.5]] * 5000, "state.json: accuracy"),
    ("accuracy", [[1, 2.0]], "state.json: accuracy[0][1]"),
    ("evals", [[1, 0.5, 0.5, 10]] * 1_000_000, "state.json is too large"),  # was 18 s and 1.1 GB
    ("evals", [[1, 0.5, 0.5, 10]] * 100_000, "state.json: evals"),
    ("evals", [[1, 0.5, 0.5, -10]], "state.json: evals[0][3]"),
    ("history", {"capacity": 10**12, "width": 1, "steps": 13, "last": 0.5}, "state.json: history.capacity"),
    ("bogus", 1, "state.json: bogus"),
])
def test_state_fields_out_of_bounds_are_refused_naming_the_field(tmp_path, field, value, words):
    import time

    t0 = time.perf_counter()
    refused(tmp_path, with_state(lambda s: s.__setitem__(field, value)), words)
    assert time.perf_counter() - t0 < 20  # a generous bound: refusals come before the work


_PATHS = ["step", "batch_pos", "history.capacity", "history.width", "history.steps", "history.last", "accuracy",
          "evals", "device", "torch", "saved_at", "source", "data_error", "optimizer.param_groups.0.lr",
          "optimizer.param_groups.0.betas", "optimizer.param_groups.0.amsgrad", "optimizer.param_groups.0.params",
          "optimizer.state.0.exp_avg", "optimizer.state.0.step", "scheduler.gamma", "scheduler.last_epoch",
          "scheduler._last_lr", "scheduler._step_count", "scheduler.base_lrs", "optimizer.state", "scheduler",
          "optimizer", "history"]
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([10**300, -5, 0, 2**63]),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30)),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=12)


def _set(doc, path: str, value) -> None:  # noqa: ANN001
    keys = path.split(".")
    for k in keys[:-1]:
        doc = doc[int(k)] if isinstance(doc, list) else doc[k]
    if isinstance(doc, list):
        doc[int(keys[-1])] = value
    else:
        doc[keys[-1]] = value


@HYPO
@given(st.sampled_from(_PATHS), JSON_VALUE)
def test_random_state_values_load_cleanly_or_are_refused_naming_state_json(tmp_path_factory, path, value):
    """Any value of any type in any field of state.json: a SessionFileError naming the file and state.json (and
    nothing else escapes), or a session that loads and trains without an error."""
    tmp = tmp_path_factory.mktemp("state")
    blob = with_state(lambda s: _set(s, path, value))
    p = tmp / "s.tuinn"
    p.write_bytes(blob)
    try:
        s = load_session(p)
    except SessionFileError as err:
        assert str(err).startswith(f"{p}: state.json"), err
        return
    fin = Trainer(s).run(2)
    assert fin.reason in ("done", "nonfinite"), (path, value, fin.reason, fin.message)


HOSTILE_KEYS = ["get_lr", "optimizer", "step", "__class__", "__dict__", "state_dict", "load_state_dict",
                "_get_closed_form_lr", "base_lrs_x", "last_epoch_"]


@HYPO
@given(st.dictionaries(st.sampled_from(HOSTILE_KEYS), JSON_VALUE, min_size=1, max_size=5))
def test_scheduler_state_with_hostile_keys_cannot_replace_the_schedule(tmp_path_factory, hostile):
    """torch's LRScheduler.load_state_dict is `__dict__.update`: keys that are not a fresh schedule's never reach it,
    so the schedule keeps its methods and its optimizer, and the session goes on exactly as saved."""
    tmp = tmp_path_factory.mktemp("sched")
    good = load_bytes(tmp, pack(base_members()), "good.tuinn")
    s = load_bytes(tmp, with_state(lambda st_: st_["scheduler"].update(hostile)))
    assert s.scheduler.optimizer is s.optimizer
    assert type(s.scheduler).get_lr is torch.optim.lr_scheduler.StepLR.get_lr
    assert "get_lr" not in vars(s.scheduler) and type(s.scheduler) is torch.optim.lr_scheduler.StepLR
    assert s.scheduler.state_dict() == good.scheduler.state_dict()
    rng = torch.get_rng_state()
    rest = train(s, 3)[1]
    torch.set_rng_state(rng)
    assert rest == train(good, 3)[1]


@pytest.mark.parametrize("change,words", [
    (lambda s: s["scheduler"].update(step_size=0), "state.json: scheduler.step_size"),
    (lambda s: s["scheduler"].update(gamma="x"), "state.json: scheduler.gamma"),
    (lambda s: s["scheduler"].update(last_epoch=-3), "state.json: scheduler.last_epoch"),
    (lambda s: s["scheduler"].update(last_epoch=10**9), "state.json: scheduler.last_epoch"),
    (lambda s: s["scheduler"].update(_last_lr=[float("nan")]), "state.json: scheduler._last_lr"),
    (lambda s: s["scheduler"].update(_last_lr=[0.1, 0.2]), "state.json: scheduler._last_lr"),
    (lambda s: s["scheduler"].pop("last_epoch"), "state.json: scheduler.last_epoch"),
    (lambda s: s["optimizer"]["param_groups"][0].update(lr=-1.0), "state.json: optimizer.param_groups[0].lr"),
    (lambda s: s["optimizer"]["param_groups"][0].update(lr=1e400), "state.json: optimizer.param_groups[0].lr"),
    (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True), "optimizer.param_groups[0].amsgrad"),
    (lambda s: s["optimizer"]["param_groups"][0].update(capturable=True), "optimizer.param_groups[0].capturable"),
    (lambda s: s["optimizer"]["param_groups"][0].update(params=[0, 1]), "optimizer.param_groups[0].params"),
    (lambda s: s["optimizer"]["param_groups"].append(s["optimizer"]["param_groups"][0]), "optimizer.param_groups"),
    (lambda s: s["optimizer"]["state"]["0"].pop("exp_avg"), "state.json: optimizer.state.0"),
    (lambda s: s["optimizer"]["state"]["0"].update(momentum_buffer={"tensor": "0.exp_avg"}), "optimizer.state.0"),
    (lambda s: s["optimizer"]["state"]["0"].update(exp_avg={"tensor": "1.exp_avg"}), "optimizer.state.0.exp_avg"),
    (lambda s: s["optimizer"]["state"]["0"].update(step={"value": 3}), "optimizer.state.0.step"),
    (lambda s: s["optimizer"]["state"].update({"99": s["optimizer"]["state"]["0"]}), "optimizer.state.99"),
    (lambda s: s["optimizer"]["state"].update({"-1": {}}), "state.json: optimizer.state"),
])
def test_optimizer_and_schedule_state_must_be_the_optimizers_own(tmp_path, change, words):
    refused(tmp_path, with_state(change), words)


@pytest.mark.parametrize("schedule", ['{ type = "StepLR", step_size = 2, gamma = 0.5 }',
                                      '{ type = "ExponentialLR", gamma = 0.9 }',
                                      '{ type = "CosineAnnealingLR", T_max = 5, eta_min = 0.001 }'])
def test_every_schedule_round_trips_through_the_checks(tmp_path, schedule):
    s = Session(loads_preset(FULL.replace('{ type = "StepLR", step_size = 7, gamma = 0.7 }', schedule)))
    train(s, 4)
    back = load_bytes(tmp_path, session_bytes(s))
    assert back.scheduler.state_dict() == s.scheduler.state_dict()
    assert type(back.scheduler) is type(s.scheduler) and back.scheduler.optimizer is back.optimizer


def test_the_optimizer_state_of_every_optimizer_round_trips_through_the_checks(tmp_path):
    for opt in ('{ type = "SGD", lr = 0.05 }', '{ type = "SGD", lr = 0.05, momentum = 0.9, nesterov = true }',
                '{ type = "Adam", lr = 0.02, amsgrad = true }', '{ type = "AdamW", lr = 0.02 }',
                '{ type = "RMSprop", lr = 0.01, momentum = 0.5, centered = true }', '{ type = "Adagrad", lr = 0.05 }'):
        s = Session(loads_preset(FULL.replace('{ type = "Adam", lr = 0.02 }', opt)))
        train(s, 4)
        back = load_bytes(tmp_path, session_bytes(s))
        assert str(back.optimizer.state_dict()) == str(s.optimizer.state_dict()), opt
        rng = torch.get_rng_state()  # Dropout draws from the global generator: both go on from the saved state
        rest = train(back, 3)[1]
        torch.set_rng_state(rng)
        assert rest == train(s, 3)[1], opt


@pytest.mark.parametrize("csv,words", [
    ("step,loss,min,max,count,sum\n" + "".join(f"{i},1.0,1.0,1.0,1,1.0\n" for i in range(1, 5000)),
     "more rows than the capacity"),
    ("step,loss,min,max,count,sum\n1,1.0,1.0,1.0,1,1.0\n99999999999999999999,1,1,1,1,1\n", "must be integers"),
    ("step,loss,min,max,count,sum\n1,1.0,1.0,1.0,1,1.0\n3,1.0,1.0,1.0,1,1.0\n", "does not follow"),
    ("step,loss,min,max,count,sum\n1,1.0,1.0,1.0,0,1.0\n", "count 0"),
    ("step,loss,min,max,count,sum\n1,1.0,2.0,1.0,1,1.0\n", "min 2.0 is more than max"),
    ("x\n", "first row"),
])
def test_history_rows_are_checked_against_what_a_history_can_hold(tmp_path, csv, words):
    parts = base_members()
    state = json.loads(parts["state.json"])
    state["history"].update(capacity=4096, width=1, steps=1)
    parts["history.csv"], parts["state.json"] = csv.encode(), json.dumps(state).encode()
    refused(tmp_path, pack(parts), "history.csv: the history cannot be read", words)


def _runs(change) -> bytes:  # noqa: ANN001
    parts = base_members()
    runs = json.loads(parts["runs.json"])
    change(runs)
    parts["runs.json"] = json.dumps(runs).encode()
    return pack(parts)


@pytest.mark.parametrize("change,words", [
    (lambda r: r[0].update(id=1e400), "runs.json: run 1 of 1: a run record is malformed: id"),
    (lambda r: r[0].update(id=10**30), "id"),
    (lambda r: r[0].update(steps=[10**30] * len(r[0]["steps"])), "steps"),
    (lambda r: r[0].update(losses=[1.0] * 5000), "losses: 5000 points"),
    (lambda r: r[0]["settings"].pop("optimizer"), "settings.optimizer"),
    (lambda r: r[0]["settings"].update(seed="x"), "settings.seed"),
    (lambda r: r.append(dict(r[0])), "the same id"),
    (lambda r: r.extend([r[0]] * 10_001), "more than 10000"),
    (lambda r: r[0].update(junk=1), "unknown key"),
])
def test_runs_json_is_bounded_and_checked(tmp_path, change, words):
    refused(tmp_path, _runs(change), "runs.json", words)


def test_text_shown_from_a_file_has_its_control_characters_escaped(tmp_path):
    def change(r):  # noqa: ANN001
        r[0]["settings"]["preset"] = "evil\x1b[2J\x9bname"
        r[0]["reason"] = "done\x1b]0;title\x07"
    s = load_bytes(tmp_path, _runs(change))
    run = s.runs.runs[0]
    assert "\x1b" not in run.label and "\x9b" not in run.label and run.label.startswith("run 1: evil\\x1b[2J\\x9bname")
    assert "\x1b" not in run.reason and "\x07" not in run.reason and run.reason == "done\\x1b]0;title\\x07"


# -- the archive -----------------------------------------------------------------------------------------------


def _zeros_deflated(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of `size` (a multiple of 1 MiB) zero bytes, made by repeating one flushed block."""
    block = 1 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    crc, z = 0, bytes(block)
    for _ in range(size // block):
        crc = zlib.crc32(z, crc)
    return one * (size // block) + zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH), crc


def craft(members: list[dict]) -> bytes:
    """A zip archive written by hand, so that its directory can say what it likes: each member gives `name`,
    `data` (as stored), `method`, `crc`, `size` (the central directory's uncompressed size) and optionally `flags`."""
    out = io.BytesIO()
    central = []
    for m in members:
        off = out.tell()
        name = m["name"].encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.get("flags", 0), m["method"], 0, 0, m["crc"],
                              len(m["data"]), min(m["size"], 0xFFFFFFFF), len(name), 0) + name + m["data"])
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, m.get("flags", 0), m["method"], 0, 0,
                                   m["crc"], len(m["data"]), m["size"], len(name), 0, 0, 0, 0, 0, off) + name)
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0))
    return out.getvalue()


def stored(parts: dict[str, bytes]) -> list[dict]:
    return [{"name": n, "data": d, "method": 0, "crc": zlib.crc32(d), "size": len(d)} for n, d in parts.items()]


def test_a_crafted_archive_of_the_real_members_loads(tmp_path):
    """The control for the crafted archives below: written by hand but honest, it loads."""
    assert load_bytes(tmp_path, craft(stored(base_members()))).step == 13


@pytest.mark.parametrize("how,words", [
    ("duplicate", "weights.safetensors appears more than once"),
    ("encrypted", "state.json is encrypted"),
    ("bzip2", "compressed with method 12"),
    ("stored size lies", "state.json is damaged"),
    ("compressed size past the end", "more than the file holds"),
    ("more than deflate can give", "more than deflate can give"),
])
def test_directory_entries_are_checked_before_anything_is_inflated(tmp_path, how, words):
    members = stored(base_members())
    by = {m["name"]: m for m in members}
    if how == "duplicate":
        members.append(dict(by["weights.safetensors"]))
    elif how == "encrypted":
        by["state.json"]["flags"] = 1
    elif how == "bzip2":
        by["state.json"]["method"] = 12
    elif how == "stored size lies":
        by["state.json"]["size"] += 10
    elif how == "compressed size past the end":
        members.append({"name": "ignored", "data": b"", "method": 0, "crc": 0, "size": 0})
    elif how == "more than deflate can give":
        data, crc = zlib.compress(by["state.json"]["data"])[2:-4], zlib.crc32(by["state.json"]["data"])
        by["state.json"].update(data=data, method=8, crc=crc, size=len(data) * 2000)
    blob = craft(members)
    if how == "compressed size past the end":  # the central entry of history.csv claims 10 MB compressed
        entry = blob.rfind(b"history.csv") - 46
        assert blob[entry:entry + 4] == b"PK\x01\x02"
        blob = blob[:entry + 20] + struct.pack("<I", 10_000_000) + blob[entry + 24:]
    refused(tmp_path, blob, words)


def test_many_members_are_refused_from_the_end_record(tmp_path):
    members = stored(base_members()) + [{"name": f"x{i}", "data": b"", "method": 0, "crc": 0, "size": 0}
                                        for i in range(5000)]
    refused(tmp_path, craft(members), "not a tui-nn session file", "5010 members")


@pytest.mark.parametrize("member", ["data.safetensors", "weights.safetensors", "state.json", "history.csv"])
def test_a_member_whose_directory_lies_about_its_size_is_stopped_at_the_declared_size(tmp_path, member,
                                                                                         monkeypatch):
    """The directory says the member's real (small) size; its deflate stream inflates to 256 MiB of zeros. Reading
    stops at the declared size (the stream is never inflated further), and the refusal names the member."""
    import tracemalloc

    parts = base_members()
    data, _ = _zeros_deflated(256 << 20)
    members = stored(parts)
    for m in members:
        if m["name"] == member:
            m.update(data=data, method=8, crc=zlib.crc32(bytes(len(parts[member]))), size=len(parts[member]))
    tracemalloc.start()
    try:
        err = refused(tmp_path, craft(members), member)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak  # a few chunks, not 256 MiB
    assert err.member in (member, "state.json"), err


def test_safetensors_headers_are_checked_before_the_body(tmp_path):
    from safetensors.torch import load

    parts = base_members()
    good = parts["data.safetensors"]
    n = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + n])

    def with_header(h, body=None):  # noqa: ANN001, ANN202
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + (good[8 + n:] if body is None else body)

    cases = {
        "dtype": ({**header, "inputs": {**header["inputs"], "dtype": "F8_E4M3"}}, None, "has dtype"),
        "overlap": ({**header, "inputs": {**header["inputs"], "data_offsets": [0, header["inputs"]["data_offsets"][1]
                                                                               - header["inputs"]["data_offsets"][0]]}},
                    None, "does not start where"),
        "body longer": (header, good[8 + n:] + b"\0" * 64, "after the header"),
        "unknown tensor": ({**header, "zz": {"dtype": "U8", "shape": [0], "data_offsets": [len(good) - 8 - n] * 2}},
                           None, "not a tensor a session saves"),
        "float targets with 5 rows": (
            {**header, "targets": {**header["targets"], "shape": [5]}}, None, "does not take the"),
    }
    assert set(load(good)) >= {"inputs", "targets"}
    for label, (h, body, words) in cases.items():
        refused(tmp_path, pack({**parts, "data.safetensors": with_header(h, body)}), "data.safetensors", words)


def test_a_batch_order_naming_missing_samples_is_refused(tmp_path):
    from safetensors.torch import load, save

    parts = base_members()
    data = load(parts["data.safetensors"])
    data["batch_perm"] = data["batch_perm"] + 1000
    state = json.loads(parts["state.json"])
    state["batch_pos"] = 0
    refused(tmp_path, pack({**parts, "data.safetensors": save(data), "state.json": json.dumps(state).encode()}),
            "data.safetensors", "batch_perm")


# -- saving never writes a file that cannot be reopened ----------------------------------------------------------


def _poisoned(value: float = float("-inf")) -> Session:
    s = Session(loads_preset(FULL))
    train(s, 3)
    with torch.no_grad():
        s.model[0].weight[0, 0] = value
    s.step += 1  # what a run that ended "done" with a -inf weight leaves (the trainer now stops before that)
    return s


@pytest.mark.parametrize("value", [float("-inf"), float("nan")])
def test_save_refuses_weights_that_could_not_be_reopened(tmp_path, value):
    s = _poisoned(value)
    path = tmp_path / "x.tuinn"
    with pytest.raises(UnsavableSession) as info:
        save_session(s, path)
    text = str(info.value)
    assert "the weights hold NaN or Inf values" in text and '"0.weight"' in text and str(path) in text
    assert not path.exists() and os.listdir(tmp_path) == []
    good = Session(loads_preset(FULL))
    save_session(good, path)
    before = path.read_bytes()
    with pytest.raises(UnsavableSession):
        save_session(s, path)
    assert path.read_bytes() == before  # the explicit save left the old file as it was


def test_an_autosave_never_replaces_a_loadable_session(tmp_path):
    s = Session(loads_preset(FULL))
    train(s, 3)
    auto = Autosave(tmp_path / "auto.tuinn")
    assert auto.save_if_changed(s)
    good = auto.path.read_bytes()
    with torch.no_grad():
        s.model[0].weight[0, 0] = float("-inf")
    s.step += 1
    with pytest.raises(AutosaveSkipped) as info:
        auto.save_if_changed(s)
    text = str(info.value)
    assert "the weights hold NaN or Inf values" in text and "the last good autosave is kept" in text, text
    assert str(auto.path) in text and auto.skipped == text and "\n" not in text  # one line, for the status bar
    assert auto.path.read_bytes() == good and load_session(auto.path).step == 3
    assert sorted(os.listdir(tmp_path)) == ["auto.tuinn"]
    with pytest.raises(AutosaveSkipped):  # again when quitting: still kept
        auto.save_if_changed(s, now=100.0)
    assert not auto.maybe_save(s, now=101.0)  # during a run: tried again only after the interval
    with pytest.raises(AutosaveSkipped):
        auto.maybe_save(s, now=100.0 + auto.interval)
    assert auto.path.read_bytes() == good
    with torch.no_grad():  # fixed: the next autosave goes through
        s.model[0].weight[0, 0] = 0.5
    assert auto.save_if_changed(s) and auto.skipped is None and load_session(auto.path).step == 4


def test_check_session_bytes_is_the_loaders_check(tmp_path):
    s = Session(loads_preset(FULL))
    train(s, 5)
    check_session_bytes(session_bytes(s), "mem", s)  # a good session passes
    for member in ("optimizer.safetensors", "data.safetensors"):
        from safetensors.torch import load, save

        parts = base_members()
        tensors = load(parts[member])
        key = next(k for k, v in tensors.items() if v.is_floating_point())
        tensors[key] = torch.full_like(tensors[key], math.inf)
        blob = pack({**parts, member: save(tensors)})
        with pytest.raises(SessionFileError) as a:
            check_session_bytes(blob, "mem")
        b = refused(tmp_path, blob, member, "holds NaN or Inf values")
        assert a.value.reason == b.reason


def test_every_refusal_is_an_engine_error():
    assert issubclass(SessionFileError, EngineError) and issubclass(AutosaveSkipped, UnsavableSession)


def test_every_bundled_preset_saves_a_session_that_passes_the_checks_and_reopens(tmp_path):
    """The loader's checks are strict (the optimizer's own state entries, the schedule's own keys, the samples of
    the model's input shape, ...): every bundled preset, trained a few steps, still saves and reopens exactly."""
    from pathlib import Path

    presets = sorted((Path(__file__).resolve().parents[3] / "presets").glob("*.toml"))
    assert len(presets) > 40
    for path in presets:
        s = Session(load_preset(path), budget=2**28)
        if s.trainable:
            Trainer(s).run(3)
        saved = save_session(s, tmp_path / path.stem)
        back = load_session(saved)
        assert back.step == s.step and back.batch_pos == s.batch_pos, path.name
        for (k, v), (_, w) in zip(s.model.state_dict().items(), back.model.state_dict().items()):
            assert torch.equal(v, w), (path.name, k)
        if s.optimizer is not None:
            assert str(back.optimizer.state_dict()) == str(s.optimizer.state_dict()), path.name
