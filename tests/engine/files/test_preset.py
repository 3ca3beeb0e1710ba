import random
import re
import tomllib
from pathlib import Path

import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_nn.engine.errors import EngineError, PresetError
from tui_nn.engine.files.preset_read import MAX_NESTING, _nesting, _prescan, load_preset, loads_preset
from tui_nn.engine.files.preset_write import dumps_preset, preset_to_dict, save_preset
from tui_nn.engine.spec import GeneratorSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train


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
    from tui_nn.engine.files.preset_read import list_presets

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
    ('{scheme="normal", std=-1}', "model.layers[0].init.std", "std must be >= 0"),
    ('{scheme="constant", value=1e39}', "model.layers[0].init.value", "too large for float32"),
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
    assert (b.args, b.init) == ({"num_parameters": 3}, {"scheme": "constant", "val": 0.3})  # torch's name
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
    from tui_nn.engine.files.preset_write import preset_to_dict

    p = loads_preset(PRELU)
    p.model.layers[0].init = {"scheme": "default"}  # PReLU's default init is the constructor's slope
    p.model.layers[1].args["init"] = 0.7  # overwritten by the constant scheme anyway
    layers = preset_to_dict(p)["model"]["layers"]
    assert layers[0]["init"] == 0.1 and layers[1]["init"] == {"scheme": "constant", "val": 0.3}
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

    from tui_nn.engine.files.preset_read import _prescan

    tomllib.loads(text)  # valid TOML
    _prescan(text, "t.toml")


def test_prescan_still_refuses_deep_nesting():
    from tui_nn.engine.files.preset_read import MAX_NESTING

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

    from tui_nn.engine.files.preset_read import MAX_NESTING, _prescan

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


# -- issue 14: dotted keys and table headers count in the nesting cap; user values in error texts are bounded and
# -- display-safe; integers bound to int64; no data without samples; honest messages; control characters refused


_PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
PRESET_FILES = sorted((Path(__file__).resolve().parents[3] / "presets").glob("*.toml"))
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def containers(doc) -> int:
    """How deep tomllib nested the document: the most tables and arrays around (or being) any value, the
    document itself not counted (what MAX_NESTING caps)."""
    def depth(v):
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0
    return max((depth(v) for v in doc.values()), default=0)


def toml_key(key: str, rnd: random.Random) -> str:
    """One key part, bare when it can be and the dice say so, else a basic or a literal string."""
    style = rnd.randrange(3)
    if style == 0 and _BARE.fullmatch(key):
        return key
    if style == 1 and "'" not in key and key.isprintable():
        return f"'{key}'"
    return '"' + "".join({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}.get(c, c) for c in key) + '"'


def toml_scalar(v, rnd: random.Random) -> str:
    if isinstance(v, str) and rnd.random() < 0.5:
        if "'" not in v and v.isprintable():
            return rnd.choice(["'", "'''"]).join(["", v, ""]) if not v.endswith("'") else f"'{v}'"
        body = "".join({"\\": "\\\\", '"': '\\"', "\n": "\\n"}.get(c, c) for c in v)
        return f'"""{body}"""'
    return tomli_w.dumps({"v": v})[4:].rstrip("\n")


def render_toml(doc: dict, rnd: random.Random) -> str:
    """`doc` as TOML text, written in one of many ways that TOML reads as the same document: tables as headers
    ([a.b]), as dotted keys (a.b.c = 1, with blanks around the dots or not) or inline ({a.b = 1}); arrays of
    tables as [[a.b]] or inline; keys bare, basic or literal (keys may hold dots, brackets, quotes, #);
    strings of every kind; comments full of brackets and quotes; arrays over several lines."""
    lines: list[str] = []
    tricky = ["it's [[", '"{', "]]]} #", "'''", '"""', "[[a.b]]", "x.y.z = 1"]

    def dotted(path) -> str:
        out = ""
        for i, k in enumerate(path):
            out += (rnd.choice([".", " .", ". ", " . ", "\t.\t"]) if i else "") + toml_key(k, rnd)
        return out

    def comment() -> str:
        return f"  # {rnd.choice(tricky)}" if rnd.random() < 0.3 else ""

    def leaves(d):  # the (path, value) pairs of a table, its sub-tables flattened into dotted keys at random
        for k, v in d.items():
            if isinstance(v, dict) and v and rnd.random() < 0.5:
                for path, leaf in leaves(v):
                    yield (k,) + path, leaf
            else:
                yield (k,), v

    def value(v, in_table: bool) -> str:
        if isinstance(v, dict):
            return "{" + ", ".join(f"{dotted(p)} = {value(x, True)}" for p, x in leaves(v)) + "}"
        if isinstance(v, list):
            if not in_table and v and rnd.random() < 0.3:  # over several lines, with comments
                return "[\n" + "".join(f"  {value(x, False)},{comment()}\n" for x in v) + "]"
            return "[" + ", ".join(value(x, in_table) for x in v) + "]"
        return toml_scalar(v, rnd)

    def body(d: dict, prefix: tuple) -> None:
        later = []
        for k, v in d.items():
            mode = rnd.randrange(3)
            if isinstance(v, dict) and mode == 0:
                later.append((False, k, v))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v) and mode == 0:
                later.append((True, k, v))
            elif isinstance(v, dict) and v and mode == 1:
                for path, leaf in leaves(v):
                    lines.append(f"{dotted((k,) + path)} = {value(leaf, False)}{comment()}")
            else:
                lines.append(f"{rnd.choice(['', ' ', chr(9)])}{dotted((k,))} = {value(v, False)}{comment()}")
        for array, k, v in later:
            path = prefix + (k,)
            for elem in (v if array else [v]):
                lines.append(f"{'[[' if array else '['}{dotted(path)}{']]' if array else ']'}{comment()}")
                body(elem, path)

    if rnd.random() < 0.3:
        lines.append(f"# {rnd.choice(tricky)}")
    body(doc, ())
    return "\n".join(lines) + "\n"


_KEYS = st.text(alphabet="ab.[]{}\"'# =_-\\", max_size=5)
_SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                      st.booleans(), st.text(alphabet="ab[]{}#'\"\\\n\t .=", max_size=8))
_DOCS = st.dictionaries(_KEYS, st.recursive(
    _SCALARS, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_KEYS, c, max_size=3)),
    max_leaves=25), max_size=4)


@_PROPERTY
@given(_DOCS, st.randoms(use_true_random=False))
def test_nesting_counts_what_tomllib_builds_however_it_is_written(doc, rnd):
    """Property: whichever way a document is written (headers, dotted keys, inline tables, arrays of tables,
    quoted keys with dots in them, blanks around dots, comments and strings full of brackets), the scan's level
    is never more than the depth tomllib builds, and at least half of it (exact but for a header that extends
    an array of tables); so no document within the cap is refused, and every bomb is."""
    text = render_toml(doc, rnd)
    assert tomllib.loads(text) == doc, text  # the renderer writes valid TOML for the document
    level, _ = _nesting(text, 10**9)
    real = containers(doc)
    assert level <= real <= 2 * level, (level, real, text)
    if real <= MAX_NESTING:
        _prescan(text, "t.toml")


def _chain(level: int, rnd: random.Random) -> tuple[str, int]:
    """A valid document nested exactly `level` deep, split at random between a table header, an array of
    tables, dotted keys (quoted parts with dots in them, blanks around the dots), inline tables and arrays."""
    parts = []
    left = level
    header = rnd.randint(0, min(left, 4))
    array = header >= 2 and rnd.random() < 0.5  # [[h]] is two levels: the array and its table
    out = ""
    if header:
        names = [rnd.choice(["h", '"h.h"', "'h[h'"]) for _ in range(header - array)]
        out += ("[[" if array else "[") + rnd.choice([".", " . "]).join(names) + ("]]" if array else "]") + "\n"
        left -= header
    key_parts = rnd.randint(0, left)  # tables the key/value line's dotted key makes
    left -= key_parts
    value = "1"
    while left:  # brackets and inline tables, each with a dotted key of its own inside
        if rnd.random() < 0.5:
            value = f"[{value}]"
            left -= 1
        else:
            inner = rnd.randint(0, left - 1)
            value = "{" + " . ".join(["k"] * (inner + 1)) + f" = {value}}}"
            left -= 1 + inner
    parts.append(out + ".".join(['"a.b"' if i % 2 else "a" for i in range(key_parts + 1)]) + f" = {value}\n")
    return "".join(parts), level


@_PROPERTY
@given(st.integers(1, MAX_NESTING + 4), st.randoms(use_true_random=False))
def test_every_way_of_nesting_counts_and_the_cap_is_exact(level, rnd):
    """A document `level` deep, however its levels are made: the scan counts exactly `level`, and the loader
    refuses it exactly when that is over MAX_NESTING (naming the line), before tomllib reads it."""
    text, want = _chain(level, rnd)
    assert containers(tomllib.loads(text)) == want, text
    assert _nesting(text, 10**9)[0] == want, text
    if want > MAX_NESTING:
        err = _err(text)
        assert f"nested more than {MAX_NESTING}" in err.detail and err.line is not None
    else:
        _prescan(text, "t.toml")


@pytest.mark.parametrize("text,line", [
    ("[preset]\nname" + ".a" * 1000 + " = 1\n", 2),  # the issue's example
    ("name" + ".a" * 100_000 + " = 1\n", 1),  # 200 KB: tomllib would take gigabytes
    ("x = {" + "a . " * 40 + "b = 1}\n", 1),
    ("[" + "a." * 40 + "b]\n", 1),
    ("[[" + "a." * 31 + "b]]\n", 1),  # 32 parts and the array: 33 levels
    ("[" + "a." * 20 + "b]\n" + "c." * 12 + "d = 1\n", 2),  # 21 + 12: the header's levels and the key's add up
    ('"x.y".' * 40 + "z = 1\n", 1),
    ("# [[[ it's\n\nv = 'a'\n" + "k\t.\t" * 40 + "k = 1\n", 4),
])
def test_dotted_key_and_header_bombs_are_refused_before_tomllib(text, line):
    err = _err(text)
    assert f"nested more than {MAX_NESTING}" in err.detail and err.line == line and err.source == "bad.toml"
    assert "dotted keys" in err.hint


def test_bundled_presets_pass_the_scan_however_they_are_written():
    """Each bundled preset: within the cap, and the same preset when written with dotted keys, headers or inline
    tables at random (the renderer above)."""
    for path in PRESET_FILES:
        text = path.read_text()
        doc = tomllib.loads(text)
        assert _nesting(text, 10**9)[0] <= containers(doc) <= MAX_NESTING, path.name
        want = preset_to_dict(loads_preset(text, str(path), checked=False))
        for seed in range(3):
            again = render_toml(doc, random.Random(seed))
            assert preset_to_dict(loads_preset(again, str(path), checked=False)) == want, (path.name, again)


def test_the_scan_is_linear():
    """A bounded-time guard (generous): 16 MB of dotted keys, and a 10^6-part dotted key, each in well under the
    time tomllib takes to read the same amount of text."""
    import time

    text = "".join(f"a{i}.b.c = 1\n" for i in range(1_300_000))[:16 * 1024 * 1024]
    t0 = time.perf_counter()
    assert _nesting(text, MAX_NESTING)[0] == 2
    assert time.perf_counter() - t0 < 30
    t0 = time.perf_counter()
    assert _nesting("a" + ".a" * 10**6 + " = 1\n", MAX_NESTING)[0] > MAX_NESTING
    assert time.perf_counter() - t0 < 5


def test_a_session_whose_preset_holds_the_bomb_is_refused(tmp_path):
    """sessionio reads preset.toml through the same prescan: the bomb in a .tuinn is refused, naming the file and
    the member, before tomllib sees it."""
    import io
    import zipfile

    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.files.session_file import load_session, session_bytes

    good = session_bytes(Session(loads_preset(LINEAR + "[training]\nsteps = 2\n")))
    bomb = "[preset]\nname" + ".a" * 100_000 + " = 1\n"
    for member in ("preset.toml", "original.toml"):
        buf = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(buf, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, bomb if name == member else src.read(name))
        path = tmp_path / f"bomb-{member}.tuinn"
        path.write_bytes(buf.getvalue())
        with pytest.raises(EngineError) as info:
            load_session(path)
        assert str(info.value).startswith(str(path)) and member in str(info.value)
        assert f"nested more than {MAX_NESTING}" in str(info.value)


# -- the one formatter of user values (errors.brief / quote / shown)


def _deep(n):
    root = node = []
    for _ in range(n):
        node.append([])
        node = node[0]
    return root


def _safe(text: str) -> bool:
    return all(c.isprintable() or c in "\n" for c in text)


_HOSTILE = st.recursive(
    st.one_of(st.integers(), st.integers(4400, 6000).map(lambda n: (-7) ** n), st.sampled_from([2**63, 2**64 - 1]),
              st.floats(), st.booleans(),
               st.none(), st.text(max_size=300), st.just("x" * 10**6), st.just("\x1b]0;pwned\x07\x1b[2J")),
    lambda c: st.one_of(st.lists(c, max_size=5), st.dictionaries(st.text(max_size=20), c, max_size=5)),
    max_leaves=30)


@_PROPERTY
@given(_HOSTILE, st.integers(10, 200))
def test_brief_is_bounded_and_display_safe_for_any_value(value, limit):
    from tui_nn.engine.errors import brief, quote

    for text in (brief(value, limit), quote(value, limit)):
        assert len(text) <= limit + 5 and _safe(text) and "\n" not in text


def test_brief_of_the_values_that_used_to_raise():
    from tui_nn.engine.errors import brief, int_text, quote

    assert brief(_deep(100_000)).startswith("[[[[[[") and len(brief(_deep(100_000))) <= 60  # no RecursionError
    assert brief(10**5000) == "about 1.00e+5000" and int_text(-(10**5000)) == "about -1.00e+5000"  # no ValueError
    assert brief(2**63) == str(2**63) and brief(True) == "true"
    assert brief("x" * 10**7) == "'" + "x" * 56 + "..."
    assert brief({"a b": [1, {"c": "\x1b[31m"}]}) == "{\"a b\" = [1, {c = '\\x1b[31m'}]}"
    assert quote("we\x1b[2J\"ird\\") == '"we\\x1b[2J\\"ird\\\\"' and quote("k" * 100).endswith('"...')


@_PROPERTY
@given(st.text(max_size=12), st.lists(st.text(max_size=12), max_size=6))
def test_did_you_mean_never_suggests_the_name_given(word, choices):
    from tui_nn.engine.errors import did_you_mean

    assert did_you_mean(word, choices + [word]) != f' (did you mean "{word}"?)'
    assert did_you_mean(word, [word]) == ""


def _layer(extra: str, kind: str = "Linear", args: str = "in_features = 3\nout_features = 2\n") -> str:
    return f'[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "{kind}"\n{args}{extra}'


@_PROPERTY
@given(st.sampled_from([
    "[preset]\nname = {v}\n", "[training]\nsteps = {v}\n", "[training]\nloss = {v}\n",
    "[training]\nloss = {{ type = {v} }}\n", "[training]\noptimizer = {{ type = \"SGD\", lr = {v} }}\n",
    "[training]\noptimizer = {{ type = \"SGD\", {k} = 1 }}\n", "[data]\ninputs = {v}\n",
    "[data]\ninputs = {{ generate = \"randint\", shape = [2, 3], high = {v} }}\n", "[{k}]\nx = 1\n",
    "[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = {v}\n",
    "[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = \"Linear\"\nin_features = {v}\nout_features = 2\n",
    "[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = \"ReLU\"\n{k} = {v}\n",
    "[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 3\nout_features = 2\n"
    "weight = {v}\n",
    "[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 3\nout_features = 2\n"
    "init = {{ scheme = \"constant\", value = {v} }}\n",
]), st.sampled_from([
    "0x" + "f" * 5000, "-0x" + "7" * 3000, "100000000000000000000000", '"' + "x" * 100_000 + '"',
    '"\\u001b]0;pwned\\u0007\\u001b[2J"', '"\\u0000"', '"Softmx\\u001b[31m"', "[" * 30 + "1" + "]" * 30,
    "{ " + ", ".join(f"k{i} = {i}" for i in range(5000)) + " }", "1979-05-27", "true", "nan",
]), st.sampled_from(['"\\u001b[31mred"', '"' + "k" * 100_000 + '"', '"a.b"', "weight", '"\\u0085"']))
def test_every_refusal_is_a_bounded_display_safe_preset_error(template, v, k):
    """Hostile values in every kind of field (huge integers, huge strings, escape sequences, deep lists, huge
    tables, dates) and hostile keys: the loader raises only a PresetError naming the file, and its text is
    bounded and holds no control character (only the newline before the hint)."""
    text = template.format(v=v, k=k)
    if "[model]" not in text:
        text = LINEAR + text
    try:
        Session(loads_preset(text, "hostile.toml"))
    except PresetError as err:
        assert str(err).startswith("hostile.toml") and len(str(err)) < 1500 and _safe(str(err)), str(err)[:3000]
    except EngineError as err:  # the data or the model after a file that parsed: bounded and safe too
        assert len(str(err)) < 1500 and _safe(str(err)), str(err)[:3000]


# -- int64 bounds, no samples, honest messages, control characters


def test_randint_bounds_are_int64_with_the_field_named():
    for key, value in (("high", 10**23), ("low", -(2**63) - 1), ("high", 2**63)):
        err = _err(LINEAR + f'[data]\ninputs = {{ generate = "randint", shape = [2, 3], {key} = {value} }}\n')
        assert err.field == f"data.inputs.{key}" and "9223372036854775" in err.detail
    p = loads_preset(LINEAR + '[data]\ninputs = { generate = "randint", shape = [2, 3], low = -9223372036854775808, '
                              "high = 9223372036854775807 }\n")
    Session(p)  # torch takes the full int64 range


@pytest.mark.parametrize("table", [
    '{ type = "CrossEntropyLoss", ignore_index = 9223372036854775808 }',
    '{ type = "NLLLoss", ignore_index = -9223372036854775809 }',
    '{ type = "NLLLoss", ignore_index = 0x' + "f" * 5000 + " }",
])
def test_every_integer_argument_is_bound_to_int64(table):
    err = _err(LINEAR + f"[training]\nloss = {table}\n")
    assert err.field == "training.loss.ignore_index" and "64-bit integer" in err.detail and len(err.detail) < 200


def _int_args():
    from tui_nn.engine.model.catalogue import CATALOGUE, INT, INTS, OPT_INT, PADDING
    from tui_nn.engine.training.objectives import LOSSES, OPTIMIZERS
    from tui_nn.engine.training.schedules import SCHEDULERS

    tables = [lt.args for lt in CATALOGUE.values()] + [o.args for t in (LOSSES, OPTIMIZERS, SCHEDULERS)
                                                        for o in t.values()]
    return sorted({a for args in tables for a in args if a.kind in (INT, OPT_INT, INTS, PADDING)}, key=repr)


@_PROPERTY
@given(st.sampled_from(_int_args()), st.one_of(st.integers(2**63, 2**70), st.integers(-(2**70), -(2**63) - 1)))
def test_no_integer_argument_takes_more_than_int64(spec, value):
    """Every integer argument of the catalogue, the losses, the optimizers and the schedulers: a value beyond
    int64 (what reaches torch) is refused, with the field named, whether or not the argument has bounds."""
    from tui_nn.engine.model.args import check_arg

    for v in (value, [value] * max(spec.dims, 1)):
        with pytest.raises(PresetError) as info:
            check_arg(spec, v, f"x.{spec.name}")
        assert info.value.field == f"x.{spec.name}" and len(str(info.value)) < 300


@pytest.mark.parametrize("data,field,words", [
    ('inputs = { generate = "rand", shape = [0, 3] }', "data.inputs.shape", "no samples"),
    ('inputs = { generate = "randn", shape = [0] }', "data.inputs.shape", "no samples"),
    ('targets = { generate = "randint", shape = [0], high = 3 }', "data.targets.shape", "no samples"),
    ('targets = { generate = "zeros", shape = [4, 0] }', "data.targets.shape", "no numbers in dimension 1"),
    ("inputs = []", "data.inputs", "no samples"),
    ("targets = []", "data.targets", "no samples"),
    ("targets = [[], []]", "data.targets", "rows of no numbers"),
])
def test_data_without_samples_is_refused(data, field, words):
    err = _err(LINEAR + f"[data]\n{data}\n")
    assert err.field == field and words in err.detail


@pytest.mark.parametrize("extra,kind,args,words", [
    ('weight = "abc"', "Linear", "in_features = 3\nout_features = 2\n",
     "expected a number or a (nested) list of numbers for the hand-set parameter weight; got 'abc'"),
    ("weight = true", "PReLU", "", "hand-set parameter weight; got true"),
    ('bias = "abc"', "Linear", "in_features = 3\nout_features = 2\n",
     "expected true or false (whether the layer has a bias) or a number or a (nested) list of numbers (the "
     "hand-set parameter bias); got 'abc'"),
    ("weight = { a = 1 }", "LayerNorm", "normalized_shape = 3\n", "hand-set parameter weight; got {a = 1}"),
])
def test_a_known_parameter_of_the_wrong_kind_is_not_an_unknown_key(extra, kind, args, words):
    err = _err(f'[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "{kind}"\n{args}{extra}\n')
    assert words in err.detail and "unknown key" not in err.detail and "did you mean" not in err.detail


def test_reduction_none_is_refused_with_the_reason():
    err = _err(LINEAR + '[training]\nloss = { type = "MSELoss", reduction = "none" }\n')
    assert err.field == "training.loss.reduction" and "scalar" in err.detail and '"mean"' in err.hint
    for ok in ("mean", "sum"):
        loads_preset(LINEAR + f'[training]\nloss = {{ type = "MSELoss", reduction = "{ok}" }}\n')


_CONTROL = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]]


@_PROPERTY
@given(st.sampled_from(["name", "lab", "description"]), st.sampled_from(_CONTROL),
       st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=10))
def test_control_characters_in_the_display_text_are_refused(key, ch, around):
    value = (around + ch + around)[:40]
    text = tomli_w.dumps({"preset": {key: value}}) + LINEAR
    if key == "description" and ch in "\t\n":
        assert getattr(loads_preset(text), key) == value  # a description may hold tabs and newlines
        return
    if ch not in value:  # cut off by the 40 characters a lab may have
        return
    err = _err(text)
    assert err.field == f"preset.{key}" and "control character" in err.detail and _safe(str(err))
    assert ch not in err.detail  # quoted as an escape


def test_plain_text_of_any_language_is_fine_in_the_display_text():
    p = loads_preset('[preset]\nname = "Réseau 神经网络 🧠 [b]x[/b]"\nlab = "lab004"\n'
                     'description = """Line one\n\tLine two — ok"""\n' + LINEAR)
    assert p.name.startswith("Réseau") and "\t" in p.description


@pytest.mark.parametrize("number", ["1" * 5000, "-" + "1_" * 4300 + "1", "+" + "9" * 4301])
@pytest.mark.parametrize("where", ["[training]\nsteps = {n}\n", "[data]\ninputs = [[1, {n}, 2]]\n",
                                   "[training]\nloss = {{ type = \"NLLLoss\", ignore_index = {n} }}\n"])
def test_a_number_tomllib_cannot_read_is_a_preset_error(number, where):
    """A decimal integer of more than 4300 digits: tomllib raises ValueError (Python will not read it), not a TOML
    error; the prescan refuses it first, naming the line (so sessions, which share the prescan, do too)."""
    text = LINEAR + where.format(n=number)
    with pytest.raises(ValueError):
        tomllib.loads(text)
    err = _err(text)
    assert "more than 4300 digits" in err.detail and err.line == LINEAR.count("\n") + 2 and len(str(err)) < 400


@pytest.mark.parametrize("value", ["1." + "1" * 5000, "1" * 5000 + ".5", "1" * 5000 + "e5", "1e-" + "0" * 5000 + "1",
                                   "0x" + "1" * 5000, '"' + "1" * 5000 + '"', "'" + "1" * 5000 + "'",
                                   '"""\n' + "1" * 5000 + '"""', "1 # " + "1" * 5000])
def test_long_digit_runs_that_tomllib_reads_are_not_refused(value):
    """Floats with 5000-digit parts, hex integers (Python reads those at any size) and digits in strings and
    comments are not the integer Python refuses: the prescan lets them through (the loader then says what is
    wrong with the value, if anything)."""
    text = LINEAR + f"x = {value}\n"
    tomllib.loads(text)
    _prescan(text, "t.toml")
    _prescan(LINEAR + "1" * 5000 + " = 1\n", "t.toml")  # a bare key of digits is a key


@pytest.mark.parametrize("table,field", [
    ('optimizer = { type = "SGD", lr = 0x' + "f" * 400 + " }", "training.optimizer.lr"),
    ('optimizer = { type = "Adam", betas = [0.9, 0x' + "f" * 400 + "] }", "training.optimizer.betas"),
])
def test_integers_too_large_for_a_float_are_refused_not_raised(table, field):
    err = _err(LINEAR + f"[training]\n{table}\n")
    assert err.field == field and "at most about" in err.detail


def test_init_with_a_huge_integer_is_refused():
    err = _err(_layer('init = { scheme = "constant", value = 0x' + "f" * 400 + " }\n"))
    assert err.field == "model.layers[0].init.value" and "at most about" in err.detail and len(err.detail) < 200


def test_names_and_keys_in_messages_are_quoted_safely():
    err = _err(LINEAR.replace('"Linear"', '"Lin\\u001b[2Jear"'))
    assert "\x1b" not in str(err) and "\\x1b[2J" in err.detail
    err = _err(_layer('"k\\u001b[31m" = 1\n'))
    assert "\x1b" not in str(err) and err.field == 'model.layers[0]."k\\x1b[31m"'
    err = _err(LINEAR + '[training]\nloss = "' + "L" * 10_000 + '"\n')
    assert len(str(err)) < 400
    err = _err('"a.b".c = 1\n' + LINEAR)
    assert err.field == '"a.b"' and 'unknown section ["a.b"]' in err.detail


def test_a_preset_error_escapes_its_file_name_and_field():
    err = PresetError("bad", source="a\nb\x1b]0;t\x07.toml", field='model."k\x1b[31m"')
    assert str(err) == 'a\\x0ab\\x1b]0;t\\x07.toml: model."k\\x1b[31m": bad' and err.field == 'model."k\\x1b[31m"'


def test_every_engine_error_text_is_escaped_and_bounded():
    """The backstop under the formatters: whatever an error's text was made of (a key quoted raw elsewhere, a file
    name, PyTorch's words), the message and the hint hold no control character and are bounded."""
    err = EngineError("unknown key \"\x1b[31m\" " + "x" * 10_000, hint="\x07" * 3)
    assert "\x1b" not in err.message and "\\x1b[31m" in err.message and len(err.message) <= 1500
    assert err.hint == "\\x07" * 3
    err = PresetError("bad \x9b2J", source="f.toml")
    assert err.detail == "bad \\x9b2J" and str(err) == "f.toml: bad \\x9b2J"
