"""The everyday layers of issue 22 §2 against torch.nn itself: each is built here directly from torch.nn with the
same arguments, and the engine's shapes (before allocation), parameter counts, outputs, shape errors (torch's CPU
words), exported code and per-step losses must be torch's."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from tui_nn.engine.errors import PresetError
from tui_nn.engine.files.export import export_script
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.model.build import build_layer
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.shapes.rules import output_shape, param_count
from tui_nn.engine.spec import LayerSpec, ModelSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

# (type, our args, the torch module built by hand, an input shape it takes, one it refuses)
CASES = [
    ("ReLU6", {}, lambda: nn.ReLU6(), (4, 3), None),
    ("Hardswish", {}, lambda: nn.Hardswish(), (4, 3), None),
    ("Hardsigmoid", {}, lambda: nn.Hardsigmoid(), (4, 3), None),
    ("Hardtanh", {}, lambda: nn.Hardtanh(), (4, 3), None),
    ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}, lambda: nn.Hardtanh(min_val=-0.5, max_val=2.0), (4, 3), None),
    ("LogSigmoid", {}, lambda: nn.LogSigmoid(), (4, 3), None),
    ("Softsign", {}, lambda: nn.Softsign(), (4, 3), None),
    ("Tanhshrink", {}, lambda: nn.Tanhshrink(), (4, 3), None),
    ("AdaptiveMaxPool1d", {"output_size": 3}, lambda: nn.AdaptiveMaxPool1d(3), (4, 2, 7), (4, 2, 7, 7)),
    ("AdaptiveMaxPool2d", {"output_size": [2, 3]}, lambda: nn.AdaptiveMaxPool2d((2, 3)), (4, 2, 7, 6), (4, 7)),
    ("Conv3d", {"in_channels": 2, "out_channels": 3, "kernel_size": [2, 3, 3], "stride": 2, "padding": 1},
     lambda: nn.Conv3d(2, 3, (2, 3, 3), stride=2, padding=1), (4, 2, 5, 6, 6), (4, 3, 5, 6, 6)),
    ("Conv3d", {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "groups": 2, "bias": False},
     lambda: nn.Conv3d(2, 4, 3, groups=2, bias=False), (2, 2, 4, 4, 4), (2, 2, 2, 4, 4)),
    ("MaxPool3d", {"kernel_size": 2}, lambda: nn.MaxPool3d(2), (4, 2, 4, 4, 6), (4, 2, 1, 4, 6)),
    ("MaxPool3d", {"kernel_size": 3, "stride": [1, 2, 2], "padding": 1, "dilation": 1},
     lambda: nn.MaxPool3d(3, stride=(1, 2, 2), padding=1), (4, 2, 4, 4, 6), (4, 2)),
    ("AvgPool3d", {"kernel_size": 2, "count_include_pad": False, "padding": 1},
     lambda: nn.AvgPool3d(2, padding=1, count_include_pad=False), (4, 2, 4, 4, 6), (4, 2, 4)),
    ("BatchNorm3d", {"num_features": 2}, lambda: nn.BatchNorm3d(2), (4, 2, 3, 3, 3), (4, 3, 3, 3, 3)),
    ("BatchNorm3d", {"num_features": 2, "affine": False}, lambda: nn.BatchNorm3d(2, affine=False),
     (4, 2, 3, 3, 3), (4, 2, 3, 3)),
    ("LocalResponseNorm", {"size": 2}, lambda: nn.LocalResponseNorm(2), (4, 5, 3, 3), (4, 5)),
    ("LocalResponseNorm", {"size": 3, "alpha": 0.01, "beta": 0.5, "k": 2.0},
     lambda: nn.LocalResponseNorm(3, alpha=0.01, beta=0.5, k=2.0), (4, 5, 6), None),
    ("Dropout1d", {}, lambda: nn.Dropout1d(), (4, 5, 6), (4, 5, 6, 2)),
    ("Dropout1d", {"p": 0.2}, lambda: nn.Dropout1d(p=0.2), (5, 6), None),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def torch_error(module: nn.Module, shape: tuple[int, ...]) -> str:
    with pytest.raises(Exception) as info, torch.no_grad():
        module(torch.zeros(shape))
    return str(info.value).strip().splitlines()[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_shapes_parameters_and_outputs_are_torchs(case):
    kind, args, make, good, bad = case
    spec = LayerSpec(kind, dict(args))
    torch.manual_seed(3)
    theirs = make()
    torch.manual_seed(3)
    ours = build_layer(spec)
    assert type(ours) is type(theirs) and repr(ours) == repr(theirs)
    want_params = sum(p.numel() for p in theirs.parameters())
    assert sum(p.numel() for p in ours.parameters()) == want_params
    assert param_count(spec) == want_params  # the preview's arithmetic, before torch has loaded
    x = torch.randn(good)
    torch.manual_seed(5)
    want = theirs(x)
    torch.manual_seed(5)
    assert torch.equal(ours(x), want)  # training mode: Dropout1d's channels, BatchNorm's batch statistics
    report = check_model(ModelSpec(good, [spec]))
    assert report.ok, report.error
    assert report.output_shape == tuple(want.shape) and report.total_params == want_params
    fast = output_shape(spec, good)
    assert fast is None or fast == tuple(want.shape)
    if bad is not None:
        report = check_model(ModelSpec(bad, [spec]))
        assert not report.ok
        assert report.error.message == torch_error(make(), bad)
        assert report.error.path == "0" and report.error.type == kind


def test_a_hardtanh_with_max_not_above_min_is_refused_in_words():
    with pytest.raises(AssertionError):
        nn.Hardtanh(1.0, 1.0)  # torch: a bare assert
    text = PRESET.format(layer='type = "Hardtanh"\nmin_val = 1.0\nmax_val = 1.0', shape="[8, 3]", tshape="[8, 3]")
    with pytest.raises(PresetError) as info:
        loads_preset(text)
    assert info.value.field == "model.layers[1]" and "max_val must be greater than min_val" in info.value.detail
    report = check_model(ModelSpec((8, 3), [LayerSpec("Hardtanh", {"min_val": 2.0, "max_val": 1.0})]))
    assert not report.ok and report.error.layer == 0 and "max_val must be greater" in report.error.message


@st.composite
def layer_and_input(draw):
    kind = draw(st.sampled_from(["Conv3d", "MaxPool3d", "AvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
                                 "BatchNorm3d", "Hardtanh", "Dropout1d", "LocalResponseNorm", "ReLU6",
                                 "Hardswish", "Hardsigmoid", "LogSigmoid", "Softsign", "Tanhshrink"]))
    rank = {"Conv3d": (4, 5), "MaxPool3d": (4, 5), "AvgPool3d": (4, 5), "AdaptiveMaxPool1d": (2, 3),
            "AdaptiveMaxPool2d": (3, 4), "BatchNorm3d": (5,), "Dropout1d": (2, 3)}.get(kind)
    ndim = draw(st.sampled_from(rank)) if rank and draw(st.integers(0, 4)) else draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    c = shape[-4] if kind == "Conv3d" and len(shape) >= 4 else shape[1] if len(shape) > 1 else shape[0]
    def pick(real: int) -> int:
        return draw(st.one_of(st.just(real), st.integers(1, 4)))

    if kind == "Conv3d":
        args = {"in_channels": pick(c), "out_channels": draw(st.integers(1, 4)),
                "kernel_size": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 2)),
                "padding": draw(st.integers(0, 1)), "dilation": draw(st.integers(1, 2))}
    elif kind in ("MaxPool3d", "AvgPool3d"):
        args = {"kernel_size": draw(st.integers(1, 3)), "stride": draw(st.integers(1, 2)),
                "padding": draw(st.integers(0, 1))}
        if kind == "MaxPool3d":
            args["dilation"] = draw(st.integers(1, 2))
    elif kind in ("AdaptiveMaxPool1d", "AdaptiveMaxPool2d"):
        args = {"output_size": draw(st.integers(1, 4))}
    elif kind == "BatchNorm3d":
        args = {"num_features": pick(c)}
    elif kind == "Hardtanh":
        args = {"min_val": draw(st.sampled_from([-1.0, 0.0])), "max_val": draw(st.sampled_from([0.5, 1.0]))}
    elif kind == "LocalResponseNorm":
        args = {"size": draw(st.integers(1, 5))}
    else:
        args = {}
    return LayerSpec(kind, args), shape


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_and_input())
def test_a_rule_that_gives_a_shape_is_what_torch_computes(case):
    spec, shape = case
    fast = output_shape(spec, shape)
    try:
        with torch.no_grad():
            real = tuple(build_layer(spec)(torch.zeros(shape)).shape)
    except Exception as err:  # noqa: BLE001 - torch refuses it: no rule may claim a shape, the check says why
        assert fast is None, (spec, shape)
        report = check_model(ModelSpec(shape, [spec]))
        assert not report.ok and report.error.message == str(err).strip().splitlines()[0], (spec, shape)
        return
    assert fast is None or fast == real, (spec, shape)
    report = check_model(ModelSpec(shape, [spec]))
    assert report.ok and report.output_shape == real, (spec, shape)


PRESET = """
[model]
input_shape = {shape}
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 3
[[model.layers]]
{layer}
[data]
inputs = {{ generate = "randn", shape = {shape} }}
targets = {{ generate = "randn", shape = {tshape} }}
[training]
optimizer = {{ type = "SGD", lr = 0.1 }}
seed = 7
"""


def _hand_loop(shape, tshape, make, steps: int) -> list[float]:
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(shape, generator=g), torch.randn(tshape, generator=g)
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(3, 3), make())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


TRAINED = [  # (TOML of the layer, the module by hand, input shape: the last dimension feeds Linear(3, 3))
    ('type = "ReLU6"', lambda: nn.ReLU6(), "[8, 3]", "nn.ReLU6()"),
    ('type = "Hardswish"', lambda: nn.Hardswish(), "[8, 3]", "nn.Hardswish()"),
    ('type = "Hardsigmoid"', lambda: nn.Hardsigmoid(), "[8, 3]", "nn.Hardsigmoid()"),
    ('type = "Hardtanh"\nmin_val = -0.5\nmax_val = 0.75', lambda: nn.Hardtanh(-0.5, 0.75), "[8, 3]",
     "nn.Hardtanh(min_val=-0.5, max_val=0.75)"),
    ('type = "LogSigmoid"', lambda: nn.LogSigmoid(), "[8, 3]", "nn.LogSigmoid()"),
    ('type = "Softsign"', lambda: nn.Softsign(), "[8, 3]", "nn.Softsign()"),
    ('type = "Tanhshrink"', lambda: nn.Tanhshrink(), "[8, 3]", "nn.Tanhshrink()"),
    ('type = "AdaptiveMaxPool1d"\noutput_size = 3', lambda: nn.AdaptiveMaxPool1d(3), "[4, 5, 3]",
     "nn.AdaptiveMaxPool1d(output_size=3)"),
    ('type = "AdaptiveMaxPool2d"\noutput_size = [2, 3]', lambda: nn.AdaptiveMaxPool2d((2, 3)), "[4, 2, 5, 3]|[4, 2, 2, 3]",
     "nn.AdaptiveMaxPool2d(output_size=(2, 3))"),
    ('type = "MaxPool3d"\nkernel_size = [1, 1, 3]\nstride = 1\npadding = [0, 0, 1]',
     lambda: nn.MaxPool3d((1, 1, 3), stride=1, padding=(0, 0, 1)), "[2, 2, 2, 2, 3]",
     "nn.MaxPool3d(kernel_size=(1, 1, 3), stride=1, padding=(0, 0, 1))"),
    ('type = "AvgPool3d"\nkernel_size = [1, 1, 3]\nstride = 1\npadding = [0, 0, 1]',
     lambda: nn.AvgPool3d((1, 1, 3), stride=1, padding=(0, 0, 1)), "[2, 2, 2, 2, 3]",
     "nn.AvgPool3d(kernel_size=(1, 1, 3), stride=1, padding=(0, 0, 1))"),
    ('type = "BatchNorm3d"\nnum_features = 2', lambda: nn.BatchNorm3d(2), "[2, 2, 2, 2, 3]",
     "nn.BatchNorm3d(num_features=2)"),
    ('type = "LocalResponseNorm"\nsize = 2', lambda: nn.LocalResponseNorm(2), "[4, 5, 3]",
     "nn.LocalResponseNorm(size=2)"),
    ('type = "Dropout1d"\np = 0.3', lambda: nn.Dropout1d(0.3), "[4, 5, 3]", "nn.Dropout1d(p=0.3)"),
    ('type = "Conv3d"\nin_channels = 2\nout_channels = 2\nkernel_size = 3\npadding = 1',
     lambda: nn.Conv3d(2, 2, 3, padding=1), "[2, 2, 3, 3, 3]",
     "nn.Conv3d(in_channels=2, out_channels=2, kernel_size=3, padding=1)"),
]


@pytest.mark.parametrize("layer,make,shape,code", TRAINED, ids=[t[3].split("(")[0] for t in TRAINED])
def test_training_is_bit_identical_to_a_hand_written_loop_and_the_export_says_it(layer, make, shape, code):
    shape, _, tshape = shape.partition("|")
    tshape = tshape or shape
    preset = loads_preset(PRESET.format(layer=layer, shape=shape, tshape=tshape))
    _, losses = train(Session(preset), 4)
    dims = [tuple(int(v) for v in sh.strip("[]").split(",")) for sh in (shape, tshape)]
    assert losses == _hand_loop(*dims, make, 4)
    assert code in export_script(preset)


@pytest.mark.parametrize("layer,make,shape,code", TRAINED[:9] + TRAINED[11:], ids=[t[3].split("(")[0] for t in
                                                                                  TRAINED[:9] + TRAINED[11:]])
def test_gradcheck_agrees_with_torchs_own(layer, make, shape, code):
    from tui_nn.engine.inspect.gradcheck import gradcheck_session

    shape, _, tshape = shape.partition("|")
    s = Session(loads_preset(PRESET.format(layer=layer, shape=shape, tshape=tshape or shape)))
    report = gradcheck_session(s, max_elements=40)
    torch.manual_seed(0)
    module = make().double()
    x = torch.randn(s.inputs.shape, dtype=torch.float64, requires_grad=True)
    f = (lambda t: torch.nn.functional.dropout1d(t, 0.0)) if isinstance(module, nn.Dropout1d) else module
    assert report.ok == torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, raise_exception=False) is True
    assert report.ok, report.text()
