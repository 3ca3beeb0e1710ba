import re

import pytest

from tui_nn.engine.errors import INPUT_FIX, INSERT, MemoryBudgetError
from tui_nn.engine.shapes.budget import check_memory
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.shapes.rules import conv_arithmetic
from tui_nn.engine.shapes.summary import summary_table
from tui_nn.engine.spec import LayerSpec, ModelSpec


def L(t, **args):
    return LayerSpec(t, args)


def classifier(size):
    return ModelSpec((1, 3, size, size), [
        L("Conv2d", in_channels=3, out_channels=16, kernel_size=3, padding=1), L("ReLU"),
        L("Conv2d", in_channels=16, out_channels=3, kernel_size=3, padding=1), L("Flatten"),
        L("Linear", in_features=3072, out_features=10)])


def test_shapes_params_and_arithmetic():
    r = check_model(classifier(32))
    assert r.ok
    assert [ly.output_shape for ly in r.layers] == [(1, 16, 32, 32), (1, 16, 32, 32), (1, 3, 32, 32), (1, 3072),
                                                    (1, 10)]
    assert [ly.params for ly in r.layers] == [448, 0, 435, 0, 30730]
    assert r.total_params == r.trainable_params == 31613
    assert r.layers[0].detail == "H: (32 + 2*1 - 3)/1 + 1 = 32; W: (32 + 2*1 - 3)/1 + 1 = 32"
    table = summary_table(r)
    assert "Total params: 31,613" in table and "[1, 3072]" in table


def test_flatten_size_mismatch_lab001_message_hint_fix():
    r = check_model(classifier(16))
    e = r.error
    assert (e.layer, e.type) == (4, "Linear")
    assert e.message == "mat1 and mat2 shapes cannot be multiplied (1x768 and 3072x10)"
    assert "3 x 16 x 16 = 768" in e.hint and "layer 3 (Flatten)" in e.hint
    assert (e.fix.layer, e.fix.arg, e.fix.value) == (4, "in_features", 768)
    assert e.fix.text == "set in_features = 768"
    alt = e.extra_fixes[0]
    assert (alt.layer, alt.arg, alt.value) == (INPUT_FIX, "input_shape", [1, 3, 32, 32])


def test_linear_mismatch_uses_cpu_wording():
    r = check_model(ModelSpec((1, 4), [L("Linear", in_features=4, out_features=5), L("ReLU"),
                                        L("Linear", in_features=4, out_features=2)]))
    e = r.error
    assert (e.layer, e.type) == (2, "Linear")
    assert e.message == "mat1 and mat2 shapes cannot be multiplied (1x5 and 4x2)"  # not the meta device's words
    assert "in_features = 4" in e.hint and "receives 5" in e.hint
    assert (e.fix.arg, e.fix.value) == ("in_features", 5)


def test_conv_channel_mismatch():
    r = check_model(ModelSpec((1, 3, 9, 9), [L("Conv2d", in_channels=3, out_channels=8, kernel_size=3),
                                              L("Conv2d", in_channels=3, out_channels=1, kernel_size=3)]))
    e = r.error
    assert (e.layer, e.type) == (1, "Conv2d")
    assert e.message == ("Given groups=1, weight of size [1, 3, 3, 3], expected input[1, 8, 7, 7] to have 3 "
                         "channels, but got 8 channels instead")
    assert "8 channels" in e.hint
    assert (e.fix.arg, e.fix.value, e.fix.text) == ("in_channels", 8, "set in_channels = 8")


def test_kernel_larger_than_input():
    r = check_model(ModelSpec((1, 3, 4, 4), [L("Conv2d", in_channels=3, out_channels=1, kernel_size=5)]))
    e = r.error
    assert e.layer == 0
    assert "Kernel size can't be greater than actual input size" in e.message
    assert "larger than the padded input 4 x 4" in e.hint
    assert (e.fix.arg, e.fix.value) == ("kernel_size", 4)
    assert conv_arithmetic(L("Conv2d", in_channels=3, out_channels=1, kernel_size=5), (1, 3, 4, 4)).startswith(
        "H: (4 + 2*0 - 5)/1 + 1 = 0")


def test_linear_on_4d_input_suggests_flatten():
    r = check_model(ModelSpec((1, 3, 8, 8), [L("Conv2d", in_channels=3, out_channels=4, kernel_size=3, padding=1),
                                              L("Linear", in_features=256, out_features=10)]))
    e = r.error
    assert e.layer == 1
    assert (e.fix.arg, e.fix.value) == (INSERT, "Flatten")
    assert "4 x 8 x 8 = 256" in e.hint


def test_softmax_dim_out_of_range_is_caught_although_meta_does_not_raise():
    r = check_model(ModelSpec((2, 4), [L("Softmax", dim=3)]))
    assert r.error.message == "Dimension out of range (expected to be in range of [-2, 1], but got 3)"
    assert (r.error.fix.arg, r.error.fix.value) == ("dim", -1)


def test_residual_must_keep_shape():
    ok = check_model(ModelSpec((2, 4), [LayerSpec("Residual", layers=[L("Linear", in_features=4, out_features=4)])]))
    assert ok.ok and ok.total_params == 20
    assert [ly.path for ly in ok.layers] == ["0", "0.0"]
    bad = check_model(ModelSpec((2, 4), [LayerSpec("Residual", layers=[L("Linear", in_features=4, out_features=3)])]))
    assert bad.error.type == "Residual" and "must match" in bad.error.message


def test_error_inside_residual_points_to_nested_layer():
    r = check_model(ModelSpec((2, 4), [LayerSpec("Residual", layers=[L("ReLU"),
                                                                     L("Linear", in_features=5, out_features=4)])]))
    assert (r.error.layer, r.error.path, r.error.type) == (0, "0.1", "Linear")


def test_huge_layers_are_refused_with_the_bytes_not_crashes():
    with pytest.raises(MemoryBudgetError) as info:
        check_model(ModelSpec((1, 10**12), [L("Linear", in_features=10**12, out_features=10**12)]))
    assert info.value.needed_bytes == (10**24 + 10**12) * 4
    assert str((10**24 + 10**12) * 4) in str(info.value)


def test_memory_budget_refuses_before_allocation():
    r = check_model(ModelSpec((1, 100_000), [L("Linear", in_features=100_000, out_features=100_000)]),
                    optimizer="Adam")
    params = 100_000 * 100_000 + 100_000
    assert r.memory.parameters == params * 4
    assert r.memory.optimizer_state == params * 8
    with pytest.raises(MemoryBudgetError) as info:
        check_memory(r, "cpu", budget=10**9)
    assert info.value.needed_bytes == r.memory.total
    assert str(r.memory.total) in str(info.value)


def test_session_refuses_oversized_model_with_the_number():
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.training.session import Session

    p = loads_preset("[model]\ninput_shape = [1, 50000]\n[[model.layers]]\ntype = \"Linear\"\n"
                     "in_features = 50000\nout_features = 50000\n")
    with pytest.raises(MemoryBudgetError) as info:
        Session(p, budget=100 * 1024**2)
    assert info.value.needed_bytes > 100 * 1024**2
    assert "bytes" in str(info.value)


def test_fix_inside_residual_names_the_nested_layer():
    r = check_model(ModelSpec((2, 4), [LayerSpec("Residual", layers=[L("ReLU"),
                                                                     L("Linear", in_features=5, out_features=4)])]))
    fix = r.error.fix
    assert (fix.layer, fix.path, fix.arg, fix.value) == (0, "0.1", "in_features", 4)


# -- CPU wording without big allocations, dilation, nested paths, the budget variable, the arithmetic --


def test_big_batch_still_gets_the_cpu_wording_with_the_real_batch_size():
    """[64, 3, 128, 128] is 3.1M elements: the layer is re-run with a batch of 1 and 2 and the shape put back."""
    spec = L("Conv2d", in_channels=1, out_channels=8, kernel_size=3)
    r = check_model(ModelSpec((64, 3, 128, 128), [spec]))
    want = ("Given groups=1, weight of size [8, 1, 3, 3], expected input[64, 3, 128, 128] to have 1 channels, "
            "but got 3 channels instead")
    assert r.error.message == want
    import torch

    with pytest.raises(RuntimeError) as real:  # what a real CPU run says
        torch.nn.Conv2d(1, 8, 3)(torch.zeros(64, 3, 128, 128))
    assert str(real.value).splitlines()[0] == want


@pytest.mark.parametrize("layer,shape", [
    (L("BatchNorm1d", num_features=5), (64, 3)),  # a batch of 1 fails differently ("more than 1 value")
    (L("LayerNorm", normalized_shape=5), (64, 3)),
    (L("Conv2d", in_channels=3, out_channels=4, kernel_size=3, dilation=5), (64, 3, 8, 8)),
    (L("MaxPool2d", kernel_size=5), (64, 3, 2, 2)),
])
def test_cpu_wording_matches_a_real_cpu_run(layer, shape):
    import torch

    from tui_nn.engine.model.build import build_layer

    r = check_model(ModelSpec(shape, [layer]))
    with pytest.raises(Exception) as real:
        build_layer(layer)(torch.zeros(shape))
    assert r.error.message == str(real.value).splitlines()[0]


def test_no_big_layer_is_built_on_the_cpu_for_its_wording(monkeypatch):
    """Conv2d(3, 20000, 50) has 150M parameters: counted on the meta device, never built on the CPU."""
    from tui_nn.engine.model import build
    from tui_nn.engine.shapes import check as shapes

    devices = []
    real_build = build.build_layer

    def spy(spec):
        module = real_build(spec)
        devices.extend({p.device.type for p in module.parameters()})
        return module

    monkeypatch.setattr(shapes, "build_layer", spy)
    r = check_model(ModelSpec((1, 4, 64, 64), [L("Conv2d", in_channels=3, out_channels=20000, kernel_size=50)]))
    assert r.error is not None and r.error.type == "Conv2d"
    assert "cpu" not in devices and "meta" in devices


def test_cpu_rerun_leaves_the_global_rng_alone():
    import torch

    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    check_model(ModelSpec((4, 3, 8, 8), [L("Conv2d", in_channels=1, out_channels=2, kernel_size=3)]))
    assert torch.equal(torch.rand(3), want)


def test_kernel_hint_counts_the_dilation():
    r = check_model(ModelSpec((1, 3, 8, 8), [L("Conv2d", in_channels=3, out_channels=4, kernel_size=3,
                                                dilation=5)]))
    e = r.error
    assert "Kernel size: (11 x 11)" in e.message
    assert "the kernel 3 x 3 with dilation 5 spans 11 x 11" in e.hint and "padded input 8 x 8" in e.hint
    assert "3 x 3 is larger" not in e.hint
    assert (e.fix.arg, e.fix.value) == ("kernel_size", 2)  # 5*(2-1)+1 = 6 fits in 8


def test_nested_error_dict_has_the_path_and_the_producer_is_the_nested_layer():
    r = check_model(ModelSpec((2, 4), [LayerSpec("Residual", layers=[L("Linear", in_features=4, out_features=3),
                                                                     L("Linear", in_features=4, out_features=4)])]))
    d = r.error.to_dict()
    assert (d["layer"], d["path"], d["type"]) == (0, "0.1", "Linear")
    assert "from layer 0.0 (Linear)" in d["hint"]
    top = check_model(ModelSpec((1, 4), [L("ReLU"), L("Linear", in_features=3, out_features=2)])).error.to_dict()
    assert top["path"] == "1" and "from layer 0 (ReLU)" in top["hint"]


@pytest.mark.parametrize("value", ["abc", "-5", "0", "nan", "inf", "1e999"])
def test_memory_budget_variable_that_is_not_a_budget_is_refused(monkeypatch, value):
    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.shapes.budget import default_budget

    monkeypatch.setenv("TUI_NN_MEMORY_BUDGET", value)
    with pytest.raises(EngineError) as info:
        default_budget()
    assert "TUI_NN_MEMORY_BUDGET" in info.value.message and "\n" not in info.value.message
    assert "bytes" in info.value.hint


@pytest.mark.parametrize("value,want", [("2e9", 2_000_000_000), (" 123456 ", 123456)])
def test_memory_budget_variable_accepted(monkeypatch, value, want):
    from tui_nn.engine.shapes.budget import default_budget

    monkeypatch.setenv("TUI_NN_MEMORY_BUDGET", value)
    assert default_budget() == want


def test_summary_table_can_show_the_arithmetic():
    r = check_model(classifier(32))
    plain = summary_table(r)
    assert "H: (32" not in plain  # the app's data panel keeps the compact table
    lines = summary_table(r, details=True).splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("0 Conv2d"))
    assert lines[row + 1].strip() == "H: (32 + 2*1 - 3)/1 + 1 = 32; W: (32 + 2*1 - 3)/1 + 1 = 32"


# -- issue 14: huge sizes in every layer: only EngineError values, with bounded, display-safe texts

def _safe(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


def test_layernorm_of_a_thousand_huge_dims_is_refused_with_its_size():
    """1,000 dims of 2**31 - 1: 10^9332 parameters; the refusal used to raise ValueError (str() of a count of more
    than 4300 digits) while it was being worded."""
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.training.session import Session

    dims = ", ".join(["2147483647"] * 1000)
    text = f'[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "LayerNorm"\nnormalized_shape = [{dims}]\n'
    for attempt in (lambda: Session(loads_preset(text), budget=2**28),
                    lambda: check_model(ModelSpec((2, 3), [L("LayerNorm", normalized_shape=[2**31 - 1] * 1000)]))):
        with pytest.raises(MemoryBudgetError) as info:
            attempt()
        assert "e+9332 bytes" in str(info.value) and len(str(info.value)) < 500
        assert info.value.needed_bytes > 10**9332


def test_fmt_bytes_of_any_size():
    from tui_nn.engine.text import fmt_bytes

    assert fmt_bytes(1536) == "1.5 KiB" and fmt_bytes(3 * 1024**5) == "3.0 PiB" and fmt_bytes(1023) == "1023 B"
    assert fmt_bytes(10**5000) == "1.00e+5000 bytes" and fmt_bytes(4 * 10**24) == "4.00e+24 bytes"


def _huge_layer(draw, st, name):
    from tui_nn.engine.model.catalogue import CATALOGUE, FLOAT, INT, INTS, OPT_FLOAT, OPT_INT, PADDING

    layer = {"type": name}
    for a in CATALOGUE[name].args:
        if not (a.required or draw(st.booleans())):
            continue
        if a.kind in (INT, OPT_INT, INTS, PADDING):
            top = int(a.max) if a.max is not None else 10**12
            n = draw(st.sampled_from([min(10**12, top), top, int(a.min) if a.min is not None else -(2**63), 1]))
            if a.kind in (INTS, PADDING) and draw(st.booleans()):
                layer[a.name] = [n] * (a.dims or draw(st.sampled_from([2, 1000])))
            else:
                layer[a.name] = n
        elif a.kind in (FLOAT, OPT_FLOAT):
            layer[a.name] = draw(st.sampled_from([a.default if a.default is not None else 1.0, 1e30, 3.4e38, -1e30]))
    return layer


def test_every_layer_with_huge_arguments_is_an_engine_error_value():
    """Hypothesis over the catalogue: every integer argument at 10^12 (or its bound), lists of 1000 huge sizes
    where a list is allowed, huge inputs: the session and the shape check raise only EngineError subclasses, and
    their texts are bounded and display-safe (nothing is allocated: a small memory budget)."""
    import tomli_w
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tui_nn.engine.errors import EngineError
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.model.catalogue import CATALOGUE
    from tui_nn.engine.training.session import Session

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        name = data.draw(st.sampled_from(sorted(k for k in CATALOGUE if k != "Residual")))
        layer = _huge_layer(data.draw, st, name)
        shape = data.draw(st.sampled_from([[2, 3], [1, 3, 8, 8], [2, 4, 5], [1, 10**12], [10**12, 1],
                                            [2, 3, 4, 5, 6, 7, 8, 9], [1, 2147483647, 1, 1]]))
        text = tomli_w.dumps({"model": {"input_shape": shape, "layers": [layer]}})
        try:
            preset = loads_preset(text, "huge.toml")
            report = check_model(preset.model)
            summary_table(report, details=True)
            if report.error is not None:
                assert _safe(str(report.error)) and len(str(report.error)) < 2000
            Session(preset, budget=2**28)
        except EngineError as err:
            assert _safe(str(err)) and len(str(err)) < 2000, str(err)[:3000]

    check()


# --- issue 22, 1.6: the ceil_mode arithmetic is torch's rule; buffers counted by dtype; "fix" null ---------------

@pytest.mark.parametrize("pool", ["MaxPool2d", "AvgPool2d"])
@pytest.mark.parametrize("size,k,s,p", [(4, 2, 3, 1), (5, 2, 2, 0), (7, 3, 2, 1), (6, 3, 3, 1), (10, 4, 3, 2),
                                        (4, 2, 2, 1), (9, 3, 4, 0)])
def test_ceil_mode_arithmetic_ends_in_torchs_pooled_size(pool, size, k, s, p):
    import torch

    want = getattr(torch.nn, pool)(k, s, p, ceil_mode=True)(torch.zeros(1, 1, size, size)).shape[-1]
    r = check_model(ModelSpec((1, 1, size, size), [L(pool, kernel_size=k, stride=s, padding=p, ceil_mode=True)]))
    assert r.ok and r.layers[0].output_shape[-1] == want
    for part in r.layers[0].detail.split("; "):
        assert int(re.findall(r"= (\d+)(?= \(|$)", part)[-1]) == want, part  # the arithmetic's last result


def test_ceil_mode_arithmetic_says_the_last_window_is_dropped():
    r = check_model(ModelSpec((1, 1, 4, 4), [L("MaxPool2d", kernel_size=2, stride=3, padding=1, ceil_mode=True)]))
    detail = r.layers[0].detail
    assert "= 3" not in detail.split(";")[0].split("- 1 =")[-1]
    assert detail.startswith("H: ceil((4 + 2*1 - 2)/3) + 1 = 3 - 1 = 2")
    assert "right padding" in detail


def test_buffers_are_counted_in_their_own_dtype_num_batches_tracked_8_bytes():
    import torch

    spec = ModelSpec((2, 3, 4, 4), [L("BatchNorm2d", num_features=3), L("Flatten"), L("BatchNorm1d", num_features=48)])
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Flatten(), torch.nn.BatchNorm1d(48))
    want = sum(b.numel() * b.element_size() for b in model.buffers())
    assert want == (3 + 3) * 4 + 8 + (48 + 48) * 4 + 8
    assert check_model(spec).memory.buffers == want
    # also when a shape error stops the walk before the layers with buffers
    broken = ModelSpec((2, 3, 4, 4), [L("Linear", in_features=5, out_features=4), L("BatchNorm2d", num_features=3)])
    assert check_model(broken).memory.buffers == (3 + 3) * 4 + 8


def test_a_layer_error_without_a_fix_has_fix_null_in_its_dict():
    from tui_nn.engine.errors import ShapeError

    assert ShapeError(0, "Linear", "boom").to_dict()["fix"] is None
    r = check_model(ModelSpec((2, 3, 4), [L("Conv1d", in_channels=3, out_channels=2, kernel_size=2), L("Residual")]))
    assert r.error is None or r.error.fix is not None or r.error.to_dict()["fix"] is None
