import pytest
import torch

from tui_nn.engine.errors import PresetError
from tui_nn.engine.preset import dumps_preset, load_preset, loads_preset, save_preset
from tui_nn.engine.session import Session
from tui_nn.engine.spec import GeneratorSpec
from tui_nn.engine.trainer import train


def test_issue_example_loads(example_text):
    p = loads_preset(example_text, "example.toml")
    assert p.name == "Hand-set 3-3-3-3 network"
    assert p.description == "Shown in the app as the exercise's instructions."
    assert p.model.input_shape == (1, 3)
    assert [layer.type for layer in p.model.layers] == ["Linear", "ReLU", "Softmax"]
    assert p.model.layers[0].args == {"in_features": 3, "out_features": 3}
    assert p.model.layers[0].params["weight"][2] == [0.3, 0.7, 0.9]
    assert p.model.layers[2].args == {"dim": 1}
    assert p.data.inputs == [[0.1, 0.2, 0.7]] and p.data.targets == [1]
    t = p.training
    assert (t.loss.type, t.optimizer.type, t.optimizer.args, t.steps, t.batch_size, t.device, t.seed) == (
        "CrossEntropyLoss", "Adam", {"lr": 0.09}, 50, 0, "cpu", 0)
    s = Session(p)
    assert torch.allclose(s.model[0].weight, torch.tensor([[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]))


def test_defaults_only_model_section():
    p = loads_preset('[model]\ninput_shape = [2, 4]\n[[model.layers]]\ntype = "Linear"\nin_features = 4\n'
                     'out_features = 1\n', "m.toml")
    assert p.name == "m"
    assert (p.training.loss.type, p.training.optimizer.type, p.training.optimizer.args) == ("MSELoss", "SGD",
                                                                                            {"lr": 0.01})
    assert (p.training.device, p.training.seed) == ("cpu", 0)
    s = Session(p)
    assert tuple(s.inputs.shape) == (2, 4)  # random inputs of input_shape
    assert s.targets is not None and tuple(s.targets.shape) == (2, 1)
    fin, losses = train(s, 3)
    assert fin.ok and len(losses) == 3


def _err(text: str) -> PresetError:
    with pytest.raises(PresetError) as info:
        loads_preset(text, "bad.toml")
    return info.value


def _with(example: str, old: str, new: str) -> str:
    assert old in example
    return example.replace(old, new, 1)


@pytest.mark.parametrize("old,new,field,words", [
    ('type = "Softmax"', 'type = "Softmx"', "model.layers[2].type", 'did you mean "Softmax"'),
    ("out_features = 3", "out_feature = 3", "model.layers[0].out_feature", 'did you mean "out_features"'),
    ("out_features = 3", "out_features = 0", "model.layers[0].out_features", "must be >= 1"),
    ("out_features = 3", "out_features = 2.5", "model.layers[0].out_features", "expected an integer"),
    ("[training]", "[trainig]", "trainig", 'did you mean "training"'),
    ("steps = 50", "step = 50", "training.step", 'did you mean "steps"'),
    ("steps = 50", 'steps = "many"', "training.steps", "valid integer"),
    ("lr = 0.09", "lrr = 0.09", "training.optimizer.lrr", 'did you mean "lr"'),
    ('loss = "CrossEntropyLoss"', 'loss = "CrossEntropy"', "training.loss", 'did you mean "CrossEntropyLoss"'),
    ("input_shape = [1, 3]", "input_shape = [1, 4]", "data.inputs", "each sample must have shape [4]"),
    ("[[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]", "[[0.1, 0.3], [0.2, 0.2], [0.3, 0.7]]",
     "model.layers[0].weight", "expected shape [3, 3]"),
    ("[[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]", '[[0.1, 0.3, 0.4], [0.2, 0.2], [0.3, 0.7, 0.9]]',
     "model.layers[0].weight", "rows of different lengths"),
    ("[[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]", '[[0.1, 0.3, 0.4], [0.2, "x", 0.3], [0.3, 0.7, 0.9]]',
     "model.layers[0].weight", "expected numbers"),
    ("[[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]]", "[[0.1, 0.3, 0.4], [0.2, nan, 0.3], [0.3, 0.7, 0.9]]",
     "model.layers[0].weight", "finite"),
    ('name = "Hand-set 3-3-3-3 network"', 'name = "x"\nauthor = "me"', "preset.author", "unknown key"),
])
def test_errors_name_file_field_and_near_miss(example_text, old, new, field, words):
    err = _err(_with(example_text, old, new))
    assert err.source == "bad.toml"
    assert err.field == field
    assert words in str(err)
    assert str(err).startswith("bad.toml")


def test_toml_syntax_error_gives_line(example_text):
    err = _err(_with(example_text, "seed = 0", "seed = "))
    assert err.line == example_text.splitlines().index("seed = 0") + 1
    assert "line" in str(err)


def test_missing_model_section():
    err = _err('[preset]\nname = "x"\n')
    assert err.field == "model" and "required" in str(err)


def test_generators_and_loss_table():
    p = loads_preset('''
[model]
input_shape = [4, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 5
[data]
inputs = { generate = "randn", shape = [8, 3] }
targets = { generate = "randint", shape = [8], high = 5 }
[training]
loss = { type = "CrossEntropyLoss", label_smoothing = 0.1 }
batch_size = 4
''')
    assert p.data.inputs == GeneratorSpec("randn", (8, 3))
    assert p.data.targets == GeneratorSpec("randint", (8,), 0, 5)
    assert p.training.loss.args == {"label_smoothing": 0.1}
    s = Session(p)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(s.inputs, torch.randn(8, 3, generator=g))
    assert torch.equal(s.targets, torch.randint(0, 5, (8,), generator=g))


def test_load_save_load_is_the_same_experiment(example_text, tmp_path):
    p1 = loads_preset(example_text, "a.toml")
    path = tmp_path / "b.toml"
    save_preset(p1, path)
    p2 = load_preset(path)
    for p in (p1, p2):
        p.source = ""
    assert p1 == p2
    assert dumps_preset(p2) == path.read_text()
    # and the same experiment trains identically
    _, l1 = train(Session(p1), 10)
    _, l2 = train(Session(p2), 10)
    assert l1 == l2


def test_trained_weights_round_trip_exactly(example_text, tmp_path):
    s = Session(loads_preset(example_text))
    train(s, 7)
    path = tmp_path / "trained.toml"
    save_preset(s.current_preset(), path)
    s2 = Session(load_preset(path))
    for (_, a), (_, b) in zip(s.named_parameters(), s2.named_parameters()):
        assert torch.equal(a, b)


def test_residual_round_trip(tmp_path):
    text = '''
[model]
input_shape = [2, 4]
[[model.layers]]
type = "Residual"
layers = [ { type = "Linear", in_features = 4, out_features = 4 }, { type = "ReLU" } ]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 1
'''
    p = loads_preset(text)
    assert p.model.layers[0].layers[0].args == {"in_features": 4, "out_features": 4}
    path = tmp_path / "r.toml"
    save_preset(p, path)
    p2 = load_preset(path)
    p.source = p2.source = ""
    assert p == p2


def test_bundled_presets_all_load():
    from tui_nn.engine.preset import list_presets

    for stem, preset in list_presets():
        assert not isinstance(preset, Exception), f"{stem}: {preset}"
