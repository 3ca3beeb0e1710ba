"""The arithmetic shape rules (shape_rules.py) against PyTorch itself: whenever a rule gives a shape, the
layer runs on that input (on the meta device and on the CPU) and gives exactly that shape; the Linear
error worded without running is the CPU's own message. And opening the common presets imports no
torch._dynamo (the point of the rules: a second saved at start-up)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_nn.engine.files.bundled import bundled_presets
from tui_nn.engine.files.preset_read import load_preset
from tui_nn.engine.model.build import build_layer
from tui_nn.engine.shapes.diagnosis import _known_error
from tui_nn.engine.shapes.rules import SAME_SHAPE, broadcast, output_shape
from tui_nn.engine.spec import LayerSpec, ModelSpec

small = st.integers(1, 6)


@st.composite
def layer_and_input(draw):  # noqa: ANN001, ANN201
    kind = draw(st.sampled_from(["Linear", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
                                 "Flatten", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Softmax", "LogSoftmax",
                                 "PReLU", *sorted(SAME_SHAPE)]))
    # mostly inputs of the rank the layer takes (spatial sizes up to 9), sometimes any rank
    rank = {"Conv1d": (2, 3), "Conv2d": (3, 4), "MaxPool2d": (3, 4), "AvgPool2d": (3, 4),
            "AdaptiveAvgPool2d": (3, 4), "BatchNorm1d": (2, 3), "BatchNorm2d": (4,)}.get(kind)
    ndim = draw(st.sampled_from(rank)) if rank and draw(st.integers(0, 4)) else draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(small, min_size=min(ndim, 2), max_size=min(ndim, 2)))
                  + draw(st.lists(st.integers(1, 9), min_size=max(ndim - 2, 0), max_size=max(ndim - 2, 0))))
    c = shape[1] if len(shape) > 1 else shape[0]
    pick = lambda real: draw(st.one_of(st.just(real), small))  # noqa: E731 - usually right, sometimes not
    if kind == "Linear":
        args = {"in_features": pick(shape[-1]), "out_features": draw(small)}
    elif kind in ("Conv1d", "Conv2d"):
        dims = 1 if kind == "Conv1d" else 2
        ch = shape[-dims - 1] if len(shape) > dims else 1
        args = {"in_channels": pick(ch), "out_channels": draw(small), "kernel_size": draw(st.integers(1, 4)),
                "stride": draw(st.integers(1, 3)), "padding": draw(st.integers(0, 2)),
                "dilation": draw(st.integers(1, 2))}
    elif kind in ("MaxPool2d", "AvgPool2d"):
        args = {"kernel_size": draw(st.integers(1, 4)), "stride": draw(st.integers(1, 3)),
                "padding": draw(st.integers(0, 2))}
        if kind == "MaxPool2d":
            args["dilation"] = draw(st.integers(1, 2))
    elif kind == "AdaptiveAvgPool2d":
        args = {"output_size": draw(st.integers(1, 4))}
    elif kind == "Flatten":
        args = {"start_dim": draw(st.integers(-3, 3)), "end_dim": draw(st.integers(-3, 3))}
    elif kind in ("BatchNorm1d", "BatchNorm2d"):
        args = {"num_features": pick(c)}
    elif kind == "LayerNorm":
        args = {"normalized_shape": pick(shape[-1])}
    elif kind in ("Softmax", "LogSoftmax"):
        args = {"dim": draw(st.integers(-3, 3))} if draw(st.integers(0, 3)) else {}  # {}: torch's implicit dim
    elif kind == "PReLU":
        args = {"num_parameters": draw(st.sampled_from([1, c]))}
    elif kind == "Pow":
        args = {"exponent": draw(st.sampled_from([2.0, 3.0, 0.5]))}
    else:
        args = {}
    return LayerSpec(kind, args), shape


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_and_input())
def test_a_rule_that_gives_a_shape_is_what_torch_computes(case):
    spec, shape = case
    fast = output_shape(spec, shape)
    if fast is None:
        return  # no claim: the meta device decides
    with torch.device("meta"):
        module = build_layer(spec)
    assert tuple(module(torch.empty(shape, device="meta")).shape) == fast, (spec, shape)
    cpu = build_layer(spec)
    with torch.no_grad():
        assert tuple(cpu(torch.zeros(shape)).shape) == fast, (spec, shape)


@settings(max_examples=200, deadline=None)
@given(st.lists(small, min_size=2, max_size=4), small, small)
def test_the_linear_error_is_the_cpus_own_words(shape, k, out):
    spec = LayerSpec("Linear", {"in_features": k, "out_features": out})
    shape = tuple(shape)
    words = _known_error(spec, shape)
    try:
        build_layer(spec)(torch.zeros(shape))
    except RuntimeError as err:
        assert words == str(err).splitlines()[0]
    else:
        assert words is None


def test_broadcast():
    assert broadcast((2, 3), (3,)) == (2, 3)
    assert broadcast((2, 1, 4), (5, 1)) == (2, 5, 4)
    assert broadcast((2, 3), (4,)) is None
    assert torch.broadcast_shapes((2, 1, 4), (5, 1)) == (2, 5, 4)


def test_opening_the_common_presets_imports_no_dynamo():
    code = (
        "import sys\n"
        "from tui_nn.engine.files.preset_read import load_preset\n"
        "from tui_nn.engine.training.session import Session\n"
        "for name in ('lab004-hand-set-network', 'lab000-shallow-forward', 'lab001-convnet-32',"
        " 'lab001-classifier-16', 'lab003-broken-sequential', 'playground-spiral', 'lab004-autograd'):\n"
        "    s = Session(load_preset(name))\n"
        "    s.loss_value()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- the preview (a preset before torch has loaded) -----------------------------------------------------------


@pytest.mark.parametrize("path", bundled_presets(), ids=lambda p: p.stem)
def test_preview_agrees_with_the_session_wherever_it_states_something(path):
    from tui_nn.engine.shapes.rules import preview, preview_input_shape
    from tui_nn.engine.training.session import Session

    quick = load_preset(path, checked=False)
    full = load_preset(path)
    assert quick.model == full.model and quick.training == full.training and not full.pending
    assert "weights" in quick.pending
    rows = preview(quick.model, preview_input_shape(quick))
    session = Session(full)
    real = {r.path: r for r in session.report.layers}
    assert [r.path for r in rows] == [p for p in real] or session.report.error is not None
    stated = 0
    for r in rows:
        q = real.get(r.path)
        if q is None:  # after a shape error the check stops; the preview has said nothing there either
            assert r.output_shape is None
            continue
        if r.input_shape is not None:
            assert tuple(r.input_shape) == tuple(q.input_shape), r.path
            stated += 1
        if r.output_shape is not None:
            assert tuple(r.output_shape) == tuple(q.output_shape), r.path
        if r.params is not None:
            assert r.params == q.params, r.path
    if "data tables" not in quick.pending:
        assert stated >= 1  # the preview shows shapes for every preset whose inputs it can see


def test_preview_says_nothing_past_a_mismatch():
    from tui_nn.engine.shapes.rules import preview

    model = ModelSpec((4, 3), [LayerSpec("Linear", {"in_features": 3, "out_features": 5}),
                               LayerSpec("Linear", {"in_features": 7, "out_features": 2}), LayerSpec("ReLU")])
    rows = preview(model, (4, 3))
    assert [r.output_shape for r in rows] == [(4, 5), None, None]
    assert [r.input_shape for r in rows] == [(4, 3), (4, 5), None]
    assert [r.params for r in rows] == [20, 16, 0]
