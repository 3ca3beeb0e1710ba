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


# -- optimizer arguments invalid together, init tables, PReLU init, float32 overflow, generator keys, prescan --

LINEAR = '[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "Linear"\nin_features = 3\nout_features = 1\n'


@pytest.mark.parametrize("optimizer,field,words", [
    ('{ type = "SGD", lr = 0.1, nesterov = true }', "training.optimizer.nesterov", "momentum > 0"),
    ('{ type = "SGD", lr = 0.1, nesterov = true, momentum = 0.9, dampening = 0.5 }', "training.optimizer.nesterov",
     "dampening = 0"),
    ('{ type = "Adam", betas = [0.9, 1.0] }', "training.optimizer.betas", "must be < 1"),
    ('{ type = "AdamW", betas = [1.0, 0.9] }', "training.optimizer.betas", "must be < 1"),
])
def test_optimizer_arguments_refused_at_parse_time(optimizer, field, words):
    err = _err(LINEAR + f"[training]\noptimizer = {optimizer}\n")
    assert err.field == field and words in err.detail and err.hint


def test_huber_delta_zero_refused_at_parse_time():
    err = _err(LINEAR + '[training]\nloss = { type = "HuberLoss", delta = 0.0 }\n')
    assert err.field == "training.loss.delta" and "must be > 0" in err.detail


@pytest.mark.parametrize("init,field,words", [
    ('{scheme="uniform", a=2, b=1}', "model.layers[0].init.b", "a must be <= b"),
    ('{scheme="uniform", a=2}', "model.layers[0].init.a", "a must be <= b"),
    ('{scheme="normal", std=-1}', "model.layers[0].init.std", "std >= 0"),
    ('{scheme="constant", value=1e39}', "model.layers[0].init.value", "too large for a float32"),
    ('{scheme="uniform", a=-3e38, b=3e38}', "model.layers[0].init.b", "too large for float32"),
])
def test_init_tables_torch_would_refuse(init, field, words):
    err = _err(LINEAR + f"init = {init}\n")
    assert err.field == field and words in err.detail


def test_init_uniform_equal_bounds_and_normal_zero_std_are_fine():
    for init in ('{scheme="uniform", a=0.5, b=0.5}', '{scheme="normal", mean=1, std=0}'):
        s = Session(loads_preset(LINEAR + f"init = {init}\n"))
        assert torch.all(s.model[0].weight == (0.5 if "uniform" in init else 1.0))


PRELU = '''
[model]
input_shape = [2, 3]
[[model.layers]]
type = "PReLU"
init = 0.1
[[model.layers]]
type = "PReLU"
num_parameters = 3
init = { scheme = "constant", value = 0.3 }
[[model.layers]]
type = "PReLU"
init = "zeros"
[[model.layers]]
type = "Residual"
layers = [ { type = "PReLU", init = 2 } ]
'''


def test_prelu_init_number_is_the_constructor_argument_and_round_trips(tmp_path):
    p = loads_preset(PRELU)
    a, b, c, r = p.model.layers
    assert (a.args, a.init) == ({"init": 0.1}, None)
    assert (b.args, b.init) == ({"num_parameters": 3}, {"scheme": "constant", "value": 0.3})
    assert (c.args, c.init) == ({}, {"scheme": "zeros"})
    assert r.layers[0].args == {"init": 2.0}
    s = Session(p)
    assert [p.tolist() for p in s.model.parameters()] == [[pytest.approx(0.1)], [pytest.approx(0.3)] * 3, [0.0],
                                                           [2.0]]
    path = tmp_path / "prelu.toml"
    save_preset(p, path)
    p2 = load_preset(path)
    p.source = p2.source = ""
    assert p == p2
    assert dumps_preset(p2) == path.read_text()


def test_prelu_init_both_set_writes_what_decides_the_weights():
    from tui_nn.engine.preset import preset_to_dict

    p = loads_preset(PRELU)
    p.model.layers[0].init = {"scheme": "default"}  # PReLU's default init is the constructor's slope
    p.model.layers[1].args["init"] = 0.7  # overwritten by the constant scheme anyway
    layers = preset_to_dict(p)["model"]["layers"]
    assert layers[0]["init"] == 0.1 and layers[1]["init"] == {"scheme": "constant", "value": 0.3}
    loads_preset(dumps_preset(p))  # reloads


def test_prelu_init_of_the_wrong_kind():
    err = _err('[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "PReLU"\ninit = true\n')
    assert err.field == "model.layers[0].init"


@pytest.mark.parametrize("where,text", [
    ("model.layers[0].weight", "weight = [[1.0, 1e39, 0.0]]\n"),
    ("model.layers[0].bias", "bias = [-1e39]\n"),
])
def test_hand_set_values_that_overflow_float32_are_refused(where, text):
    err = _err(LINEAR + text)
    assert err.field == where and "too large for float32" in err.detail and "inf" in err.detail


def test_hand_set_values_at_the_float32_limit_are_fine():
    s = Session(loads_preset(LINEAR + "weight = [[3.4028234e38, -3.4028234e38, 0.0]]\n"))
    assert bool(torch.isfinite(s.model[0].weight).all())


def test_data_that_overflows_float32_is_refused():
    err = _err(LINEAR + "[data]\ninputs = [[1.0, 2.0, 1e39], [0.0, 0.0, 0.0]]\n")
    assert err.field == "data.inputs" and "too large for float32" in err.detail


@pytest.mark.parametrize("data,field,suggest", [
    ('inputs = { generate="rand", shape=[2,3], hihg=3 }', "data.inputs.hihg", "high"),
    ('targets = { generate="randint", shape=[2,1], lwo=0 }', "data.targets.lwo", "low"),
])
def test_unknown_key_in_a_generator_names_the_generator_keys(data, field, suggest):
    err = _err(LINEAR + f"[data]\n{data}\n")
    assert err.field == field
    assert f'did you mean "{suggest}"' in err.detail
    assert "expected one of: generate, shape, low, high" in err.detail and "preset, model" not in err.detail


def test_unknown_keys_in_sections_still_name_the_section_keys():
    err = _err(LINEAR.replace("input_shape", "foo = 1\ninput_shape"))
    assert err.field == "model.foo" and "expected one of: input_shape, layers" in err.detail


def test_comments_with_apostrophes_do_not_count_as_nesting():
    """33 layers, each with a comment such as `# it's zero`: valid TOML, not 'nested too deep'."""
    layers = "".join(f'\n[[model.layers]]  # layer {i}: it\'s zero [\ntype = "ReLU"  # don\'t {{\n'
                     for i in range(33))
    p = loads_preset("# the model's input\n[model]\ninput_shape = [2, 3]\n" + layers)
    assert len(p.model.layers) == 33


@pytest.mark.parametrize("text", [
    'a = "x\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n',  # an escaped quote does not end a basic string
    'a = "\\\\"\nb = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n',  # an escaped backslash does
    "a = '\\'\nb = \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n",  # no escapes in a literal string
    "a = 'say \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
    'a = """\nit\'s "quoted" [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\"""\n"""\n',
    "a = '''it's \"\"\" [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ '''\n",
    'a = """x""""\nb = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n',  # up to two extra quotes end a multi-line string
    "a = '''x'''''\nb = '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
    '"key [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" = 1\n',
    "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ it's\na = '#'\nb = \"#\"  # ''' \"\"\"\n",
])
def test_prescan_skips_strings_and_comments(text):
    import tomllib

    from tui_nn.engine.preset import _prescan

    tomllib.loads(text)  # valid TOML
    _prescan(text, "t.toml")


def test_prescan_still_refuses_deep_nesting():
    from tui_nn.engine.preset import MAX_NESTING

    err = _err("a = " + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "\n")
    assert f"nested more than {MAX_NESTING}" in err.detail
    loads_preset(LINEAR + "[data]\ninputs = " + "[" * 2 + "1.0, 2.0, 3.0], [4.0, 5.0, 6.0" + "]" * 2 + "\n")


def _toml_depth(value, level=1):
    """Nesting depth of a parsed TOML value (the document itself is level 1)."""
    if isinstance(value, dict):
        return max([level] + [_toml_depth(v, level + 1) for v in value.values()])
    if isinstance(value, list):
        return max([level] + [_toml_depth(v, level + 1) for v in value])
    return level


def _toml_string(style, s):
    """`s` written as one of TOML's four kinds of string (with the escapes each needs)."""
    if style == 0:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if style == 1:
        return "'" + s.replace("'", "").replace("\n", "") + "'"
    if style == 2:
        return '"""' + s.replace("\\", "\\\\").replace('"', '\\"') + '"""'
    return "'" * 3 + s.replace("'", "") + "'" * 3


def _render(tree, in_table=False):
    """TOML text of a generated value: leaves, arrays (with comments and newlines, outside inline tables) and
    inline tables (unique keys, each quoted as a basic or a literal string)."""
    kind, body = tree
    if kind == "leaf":
        return body
    if kind == "array":
        return "[" + "".join(_render(value, in_table) + "," + ("" if in_table or comment is None else f" #{comment}\n")
                             for value, comment in body) + "]"
    return "{" + ", ".join(f"{_toml_string(style, f'k{i}' + key)} = {_render(value, True)}"
                           for i, ((style, key), value) in enumerate(body)) + "}"


def _toml_trees():
    from hypothesis import strategies as st

    tricky = st.text(alphabet="ab[]{}#'\"\\\n x", max_size=12)
    comment = st.one_of(st.none(), st.text(alphabet="ab[]{}'\"# \\", max_size=10))
    string = st.tuples(st.integers(0, 3), tricky).map(lambda t: ("leaf", _toml_string(*t)))
    leaf = st.one_of(st.integers(-5, 5).map(lambda n: ("leaf", str(n))), string, st.just(("leaf", "1.5")))
    key = st.tuples(st.integers(0, 1), st.text(alphabet="ab[]{}#'\" x", max_size=6))

    def extend(children):
        return st.one_of(st.lists(st.tuples(children, comment), max_size=3).map(lambda b: ("array", b)),
                         st.lists(st.tuples(key, children), max_size=3).map(lambda b: ("table", b)))

    return st.recursive(leaf, extend, max_leaves=30)


def test_prescan_never_refuses_what_tomllib_parses_within_the_cap():
    """Property: any text tomllib parses whose nesting is within MAX_NESTING passes the prescan (strings of
    all four kinds and comments full of quotes, apostrophes, brackets and backslashes)."""
    import tomllib

    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    from tui_nn.engine.preset import MAX_NESTING, _prescan

    comment = st.text(alphabet="a[[[{{]'\"# \\", min_size=4, max_size=12).map(lambda c: "#" + c)
    # a value nested nearly to the cap, after the rest: brackets miscounted before it push it over
    deep = st.integers(MAX_NESTING - 3, MAX_NESTING - 2).map(lambda n: "[" * n + "1" + "]" * n)

    @settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(_toml_trees(), comment), min_size=1, max_size=5), deep, comment)
    def check(entries, nested, head):
        lines = [head] + [f"v{i} = {_render(tree)} {c}" for i, (tree, c) in enumerate(entries)] + [f"deep = {nested}"]
        text = "\n".join(lines) + "\n"
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            assume(False)
        assume(_toml_depth(doc) <= MAX_NESTING)
        _prescan(text, "t.toml")

    check()


@pytest.mark.parametrize("layer,arg", [("LeakyReLU", "negative_slope"), ("ELU", "alpha"), ("PReLU", "init"),
                                       ("Softplus", "beta"), ("Softplus", "threshold"), ("LayerNorm", "eps")])
def test_layer_constants_that_overflow_float32_are_refused(layer, arg):
    """The layer computes in float32: 1e39 is finite here and inf there (LeakyReLU's negative side -inf, then NaN)."""
    extra = "normalized_shape = [3]\n" if layer == "LayerNorm" else ""
    err = _err(f'[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "{layer}"\n{extra}{arg} = 1e39\n')
    assert err.field == f"model.layers[0].{arg}" and "too large for float32" in err.detail and "inf" in err.detail


def test_layer_constants_within_float32_build_and_stay_finite():
    s = Session(loads_preset('[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "LeakyReLU"\n'
                             'negative_slope = 3e38\n'))
    assert bool(torch.isfinite(s.model(torch.full((2, 3), -1.0))).all())
