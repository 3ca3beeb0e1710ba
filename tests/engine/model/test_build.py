import pytest
import torch

from tui_nn.engine.errors import WeightError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.training.session import Session

from ..conftest import EXAMPLE


@pytest.fixture
def session():
    return Session(loads_preset(EXAMPLE))


def test_set_param_whole_and_cell(session):
    session.set_param("0.bias", [0.5, -0.5, 1.0])
    assert session.get_param("0.bias").tolist() == [0.5, -0.5, 1.0]
    session.set_param("0.weight", 2.0, index=(1, 2))
    assert session.get_param("0.weight")[1, 2].item() == 2.0


@pytest.mark.parametrize("name,value,index,words", [
    ("0.weight", [[1.0, 2.0]], None, "expected shape [3, 3]"),
    ("0.weight", [[1.0, "a", 2.0]] * 3, None, "expected numbers"),
    ("0.bias", [0.0, float("nan"), 1.0], None, "finite"),
    ("0.bias", [0.0, float("inf"), 1.0], None, "finite"),
    ("0.weight", 1.0, (3, 0), "outside shape"),
    ("9.weight", 1.0, None, "no parameter named"),
])
def test_bad_values_are_refused_and_nothing_changes(session, name, value, index, words):
    before = [p.detach().clone() for _, p in session.named_parameters()]
    with pytest.raises(WeightError) as info:
        session.set_param(name, value, index)
    assert words in str(info.value)
    for (_, p), q in zip(session.named_parameters(), before):
        assert torch.equal(p, q)


def test_init_schemes(session):
    session.init_layer("0", {"scheme": "zeros"})
    assert session.get_param("0.weight").abs().sum().item() == 0
    bias = session.get_param("0.bias").detach().clone()
    session.init_layer("0", {"scheme": "constant", "val": 0.5})
    assert torch.all(session.get_param("0.weight") == 0.5)
    assert torch.equal(session.get_param("0.bias"), bias)  # the scheme is on the weight (tests/engine/model/test_init.py)
    torch.manual_seed(1)
    session.init_layer("0", {"scheme": "xavier_uniform", "bias": 0.0})
    assert session.get_param("0.bias").abs().sum().item() == 0
    bound = (6 / (3 + 3)) ** 0.5
    assert session.get_param("0.weight").abs().max().item() <= bound
    session.init_layer("0", {"scheme": "default"})
    assert session.get_param("0.weight").abs().max().item() <= 1 / 3 ** 0.5


def test_freeze_excludes_from_training(session):
    from tui_nn.engine.training.trainer import train

    session.freeze("0", True)
    assert session.report.trainable_params == 0 and session.report.total_params == 12
    w = session.get_param("0.weight").detach().clone()
    train(session, 3)
    assert torch.equal(session.get_param("0.weight"), w)
    session.freeze("0", False)
    train(session, 3)
    assert not torch.equal(session.get_param("0.weight"), w)


def test_trace_and_forward_follow_the_layers(session):
    trace = session.trace()
    assert [label for label, _ in trace] == ["input", "0 Linear", "1 ReLU", "2 Softmax"]
    w = torch.tensor([[0.1, 0.3, 0.4], [0.2, 0.2, 0.3], [0.3, 0.7, 0.9]])
    x = torch.tensor([[0.1, 0.2, 0.7]])
    assert torch.allclose(trace[1][1], x @ w.T + session.get_param("0.bias"))
    assert torch.allclose(session.forward().sum(), torch.tensor(1.0))


def test_rebuild_keeps_unchanged_layers(session):
    spec = session.spec.copy()
    w = session.get_param("0.weight").detach().clone()
    from tui_nn.engine.spec import LayerSpec

    spec.layers.insert(1, LayerSpec("Linear", {"in_features": 3, "out_features": 3}))
    report = session.rebuild(spec)
    assert report.ok and [ly.type for ly in report.layers] == ["Linear", "Linear", "ReLU", "Softmax"]
    assert torch.equal(session.get_param("0.weight"), w)


def test_gradients_after_backward(session):
    loss = session.compute_gradients()
    assert loss == pytest.approx(session.loss_value())
    assert session.get_param("0.weight").grad.shape == (3, 3)


def test_model_text_is_print_model():
    from tui_nn.engine.model.build import model_text

    assert "(0): Linear(in_features=3, out_features=3, bias=True)" in model_text(loads_preset(EXAMPLE).model)


def test_set_data_keeps_weights_and_refuses_wrong_shapes(session):
    from tui_nn.engine.errors import DataError
    from tui_nn.engine.spec import DataSpec

    w = session.get_param("0.weight").detach().clone()
    session.set_data(DataSpec(inputs=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], targets=[0, 2]))
    assert session.inputs.shape == (2, 3) and session.targets.tolist() == [0, 2]
    assert torch.equal(session.get_param("0.weight"), w)
    with pytest.raises(DataError):
        session.set_data(DataSpec(inputs=[[1.0, 2.0]]))
    assert session.inputs.shape == (2, 3)  # unchanged


def test_stale_hand_set_weights_are_a_weight_error():
    from tui_nn.engine.model.build import build_model
    from tui_nn.engine.spec import LayerSpec, ModelSpec

    spec = ModelSpec((1, 2), [LayerSpec("Linear", {"in_features": 2, "out_features": 3},
                                        {"weight": [[1.0, 2.0, 3.0]] * 3})])
    with pytest.raises(WeightError, match="hand-set weight has shape"):
        build_model(spec)


@pytest.mark.parametrize("name,value,index", [
    ("0.bias", [0.0, 1e39, 1.0], None),
    ("0.weight", [[1.0, 2.0, 3.0], [4.0, -1e39, 6.0], [7.0, 8.0, 9.0]], None),
    ("0.weight", 1e39, (1, 2)),
    ("0.bias", -3.5e38, (0,)),
])
def test_set_param_refuses_values_that_become_inf_in_float32(session, name, value, index):
    """Finite as Python floats, inf as float32: refused after the conversion to the parameter's dtype."""
    before = [p.detach().clone() for _, p in session.named_parameters()]
    with pytest.raises(WeightError) as info:
        session.set_param(name, value, index)
    assert "too large for float32" in info.value.message
    for (_, p), q in zip(session.named_parameters(), before):
        assert torch.equal(p, q)


def test_set_param_at_the_float32_limit_is_kept(session):
    session.set_param("0.bias", [3.4028234e38, -3.4028234e38, 0.0])
    assert bool(torch.isfinite(session.get_param("0.bias")).all())


def test_apply_spec_params_refuses_overflow_in_a_spec_built_without_a_preset():
    from tui_nn.engine.model.build import build_model
    from tui_nn.engine.spec import LayerSpec, ModelSpec

    spec = ModelSpec((1, 2), [LayerSpec("Linear", {"in_features": 2, "out_features": 1},
                                        params={"weight": [[1.0, 1e39]]})])
    with pytest.raises(WeightError) as info:
        build_model(spec)
    assert "too large for float32" in info.value.message and "layer 0 (Linear)" in info.value.message


# -- issue 22, 1.5: a layer torch's constructor refuses is an error at that layer, torch's words, a hint, a fix

CONSTRUCT = [  # (our arguments, torch's constructor call, the argument the fix sets)
    ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}, "groups"),
    ("Conv2d", {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}, "groups"),
    ("Conv1d", {"in_channels": 6, "out_channels": 9, "kernel_size": 3, "groups": 6}, "groups"),
    ("Conv2d", {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": "same"}, "padding"),
    ("Conv1d", {"in_channels": 3, "out_channels": 4, "kernel_size": 5, "stride": 3, "padding": "same", "dilation": 2}, "padding"),
]


def _torch_message(kind, args):
    with pytest.raises(ValueError) as info:
        getattr(torch.nn, kind)(**args)
    return str(info.value)


def _preset(kind, args, nested=False):
    dims = 2 if kind == "Conv2d" else 1
    shape = [2, args["in_channels"]] + [8] * dims
    items = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in args.items())
    layer = f'type = "{kind}"\n{items}'
    if nested:
        inline = ", ".join(f'{k} = {v!r}'.replace("'", '"') for k, v in args.items())
        return (f'[model]\ninput_shape = {shape}\n[[model.layers]]\ntype = "Identity"\n[[model.layers]]\n'
                f'type = "Residual"\nlayers = [{{ type = "Identity" }}, {{ type = "{kind}", {inline} }}]\n')
    return f'[model]\ninput_shape = {shape}\n[[model.layers]]\ntype = "ReLU"\n[[model.layers]]\n{layer}'


@pytest.mark.parametrize("kind,args,arg", CONSTRUCT)
def test_a_layer_torch_cannot_construct_is_an_error_at_the_layer_with_a_fix_that_builds(kind, args, arg):
    from tui_nn.engine.errors import LayerError, PresetError

    with pytest.raises(LayerError) as info:
        loads_preset(_preset(kind, args), "p.toml")
    err = info.value
    assert isinstance(err, PresetError) and err.field == "model.layers[1]"
    assert (err.layer, err.path, err.type) == (1, "1", kind)
    assert _torch_message(kind, args) in err.message
    assert err.hint and err.fix is not None and err.fix.arg == arg and err.fix.path == "1"
    fixed = dict(args, **{arg: err.fix.value})
    getattr(torch.nn, kind)(**fixed)  # torch builds it
    assert Session(loads_preset(_preset(kind, fixed), "p.toml")).report.ok  # and the network is valid


def test_a_construction_error_inside_a_residual_block_names_the_nested_layer():
    from tui_nn.engine.errors import LayerError

    kind, args, _ = CONSTRUCT[0]
    with pytest.raises(LayerError) as info:
        loads_preset(_preset(kind, args, nested=True), "p.toml")
    assert (info.value.layer, info.value.path, info.value.type) == (1, "1.1", "Conv2d")
    assert info.value.field == "model.layers[1].layers[1]" and info.value.fix.path == "1.1"


@pytest.mark.parametrize("kind,args,arg", CONSTRUCT)
def test_the_shape_check_words_a_construction_error_the_same_way(kind, args, arg):
    from tui_nn.engine.shapes.check import check_model
    from tui_nn.engine.spec import LayerSpec, ModelSpec

    dims = 2 if kind == "Conv2d" else 1
    spec = ModelSpec((2, args["in_channels"]) + (8,) * dims, [LayerSpec("ReLU"), LayerSpec(kind, dict(args))])
    err = check_model(spec).error
    assert (err.layer, err.path, err.type) == (1, "1", kind)
    assert _torch_message(kind, args) in err.message
    assert err.hint and err.fix is not None and err.fix.arg == arg
    assert err.to_dict()["fix"] == err.fix.text
