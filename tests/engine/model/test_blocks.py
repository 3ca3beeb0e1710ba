"""Residual with a projection shortcut (ResNet's downsampling BasicBlock and Bottleneck) and Concat of parallel
branches (Inception/DenseNet style) against the same blocks written by hand in plain torch.nn: parameter counts,
outputs, per-branch shapes (torch's own intermediate shapes, by forward hooks), shape errors inside a branch at its
layer path in torch's CPU words, bit-identical losses (engine, hand loop and exported script), session save/load."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from tui_nn.engine.files.export import export_script
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import dumps_preset
from tui_nn.engine.files.session_file import load_session, save_session
from tui_nn.engine.model import edits
from tui_nn.engine.model.paths import (
    flat_layers,
    get_layer,
    layer_path_of_param,
    module_path,
)
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.shapes.rules import preview
from tui_nn.engine.spec import LayerSpec
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train


class BasicBlock(nn.Module):  # torchvision.models.resnet.BasicBlock, written out
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(identity + out)


class Bottleneck(nn.Module):  # torchvision.models.resnet.Bottleneck (expansion 4, stride on the 3x3)
    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                        nn.BatchNorm2d(planes * 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.downsample(x) + out)


def conv(i: int, o: int, k: int, s: int = 1, p: int = 0, bias: str = "false") -> str:
    return (f'{{ type = "Conv2d", in_channels = {i}, out_channels = {o}, kernel_size = {k}, stride = {s}, '
            f'padding = {p}, bias = {bias} }}')


def bn(c: int) -> str:
    return f'{{ type = "BatchNorm2d", num_features = {c} }}'


RELU = '{ type = "ReLU" }'


def basic_block(i: int, o: int, s: int) -> str:
    body = ", ".join([conv(i, o, 3, s, 1), bn(o), RELU, conv(o, o, 3, 1, 1), bn(o)])
    shortcut = f"\nshortcut = [{conv(i, o, 1, s)}, {bn(o)}]" if s != 1 or i != o else ""
    return f'[[model.layers]]\ntype = "Residual"\nlayers = [{body}]{shortcut}\n[[model.layers]]\ntype = "ReLU"\n'


def bottleneck(i: int, p: int, s: int) -> str:
    body = ", ".join([conv(i, p, 1), bn(p), RELU, conv(p, p, 3, s, 1), bn(p), RELU, conv(p, 4 * p, 1), bn(4 * p)])
    return (f'[[model.layers]]\ntype = "Residual"\nlayers = [{body}]\nshortcut = [{conv(i, 4 * p, 1, s)}, '
            f'{bn(4 * p)}]\n[[model.layers]]\ntype = "ReLU"\n')


def preset(layers: str, shape: list[int], target: list[int], steps: int = 3) -> str:
    return f"""
[model]
input_shape = {shape}
{layers}
[data]
inputs = {{ generate = "randn", shape = {shape} }}
targets = {{ generate = "randn", shape = {target} }}
[training]
optimizer = {{ type = "SGD", lr = 0.05, momentum = 0.9 }}
steps = {steps}
seed = 11
"""


HEAD = ('[[model.layers]]\ntype = "AdaptiveAvgPool2d"\noutput_size = 1\n[[model.layers]]\ntype = "Flatten"\n'
        '[[model.layers]]\ntype = "Linear"\nin_features = {c}\nout_features = 3\n')

BASIC = preset(basic_block(4, 8, 2) + basic_block(8, 8, 1) + HEAD.format(c=8), [4, 4, 8, 8], [4, 3])
BOTTLENECK = preset(bottleneck(4, 2, 2) + HEAD.format(c=8), [4, 4, 8, 8], [4, 3])


def inception_branches() -> str:  # 1x1 | 1x1 -> 3x3 | 3x3 max pool -> 1x1, joined along the channels
    b2 = f'{{ type = "Sequential", layers = [{conv(6, 2, 1, bias="true")}, {RELU}, {conv(2, 4, 3, 1, 1, "true")}] }}'
    b3 = ('{ type = "Sequential", layers = [{ type = "MaxPool2d", kernel_size = 3, stride = 1, padding = 1 }, '
          f'{conv(6, 3, 1, bias="true")}] }}')
    return f'[[model.layers]]\ntype = "Concat"\nlayers = [{conv(6, 5, 1, bias="true")}, {b2}, {b3}]\n'


CONCAT = preset(inception_branches() + '[[model.layers]]\ntype = "ReLU"\n' + HEAD.format(c=12), [4, 6, 5, 5],
                [4, 3])


class Inception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(6, 5, 1)
        self.b2 = nn.Sequential(nn.Conv2d(6, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(6, 3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)


def head(c: int) -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 3)]


HAND = {
    "basic": (BASIC, lambda: nn.Sequential(BasicBlock(4, 8, 2), BasicBlock(8, 8, 1), *head(8)), (4, 4, 8, 8)),
    "bottleneck": (BOTTLENECK, lambda: nn.Sequential(Bottleneck(4, 2, 2), *head(8)), (4, 4, 8, 8)),
    "concat": (CONCAT, lambda: nn.Sequential(Inception(), nn.ReLU(), *head(12)), (4, 6, 5, 5)),
}


def hand_losses(make, shape, steps: int = 3) -> list[float]:
    g = torch.Generator().manual_seed(11)
    x, y = torch.randn(shape, generator=g), torch.randn(shape[0], 3, generator=g)
    torch.manual_seed(11)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.MSELoss()(model(x), y)
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


@pytest.mark.parametrize("name", sorted(HAND))
def test_counts_outputs_and_losses_are_the_hand_written_blocks(name):
    text, make, shape = HAND[name]
    p = loads_preset(text)
    torch.manual_seed(0)
    hand = make()
    want = sum(t.numel() for t in hand.parameters())
    report = check_model(p.model)
    assert report.ok, report.error
    assert report.total_params == want
    assert report.buffer_bytes == sum(b.numel() * b.element_size() for b in hand.buffers())  # each in its dtype
    x = torch.randn(shape)
    assert report.output_shape == tuple(hand(x).shape)
    s = Session(p)
    assert sum(t.numel() for t in s.model.parameters()) == want
    # the same tensors in the same order (torch draws them in construction order): identical outputs
    with torch.no_grad():
        for mine, theirs in zip(s.model.parameters(), hand.parameters(), strict=True):
            mine.copy_(theirs)
    assert torch.equal(s.model(x), hand(x))
    _, losses = train(Session(p), 3)
    assert losses == hand_losses(make, shape)


def test_the_shape_rows_are_torchs_per_branch():
    p = loads_preset(CONCAT)
    report = check_model(p.model)
    rows = {r.path: (r.input_shape, r.output_shape, r.params) for r in report.layers}
    hand = Inception()
    seen = {}
    names = {"b1": "0.0", "b2": "0.1", "b2.0": "0.1.0", "b2.1": "0.1.1", "b2.2": "0.1.2", "b3": "0.2",
             "b3.0": "0.2.0", "b3.1": "0.2.1"}
    for name, m in hand.named_modules():
        if name in names:
            m.register_forward_hook(lambda mod, i, o, path=names[name]: seen.update(
                {path: (tuple(i[0].shape), tuple(o.shape), sum(t.numel() for t in mod.parameters()))}))
    out = hand(torch.zeros(4, 6, 5, 5))
    for path, want in seen.items():
        assert rows[path] == want, path
    assert rows["0"] == ((4, 6, 5, 5), tuple(out.shape), sum(t.numel() for t in hand.parameters()))
    assert [path for path, _, _ in flat_layers(p.model.layers)][:9] == ["0", "0.0", "0.1", "0.1.0", "0.1.1", "0.1.2",
                                                                        "0.2", "0.2.0", "0.2.1"]
    for row in preview(p.model, p.model.input_shape):  # before torch: the same, wherever it says something
        if row.output_shape is not None:
            assert row.output_shape == rows[row.path][1] and row.params == rows[row.path][2], row.path
    assert preview(p.model, p.model.input_shape)[0].output_shape == (4, 12, 5, 5)


def cpu_error(fn) -> str:
    with pytest.raises(Exception) as info, torch.no_grad():
        fn()
    return str(info.value).strip().splitlines()[0]


def test_an_error_inside_a_branch_is_pinned_at_its_layer_path_in_torchs_words():
    bad = CONCAT.replace(conv(2, 4, 3, 1, 1, "true"), conv(3, 4, 3, 1, 1, "true"))
    report = check_model(loads_preset(bad).model)
    assert report.error.path == "0.1.2" and report.error.layer == 0 and report.error.type == "Conv2d"
    branch = nn.Sequential(nn.Conv2d(6, 2, 1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1))
    assert report.error.message == cpu_error(lambda: branch(torch.zeros(4, 6, 5, 5)))
    rows = [r.path for r in report.layers]
    assert rows == ["0", "0.0", "0.1", "0.1.0", "0.1.1", "0.1.2"]  # the walk stops there


def test_branches_that_do_not_join_are_torch_cats_error_at_the_block():
    bad = CONCAT.replace('{ type = "MaxPool2d", kernel_size = 3, stride = 1, padding = 1 }',
                         '{ type = "MaxPool2d", kernel_size = 3, stride = 1 }')
    report = check_model(loads_preset(bad).model)
    assert report.error.path == "0" and report.error.type == "Concat"
    x = torch.zeros(4, 6, 5, 5)
    b3 = nn.Sequential(nn.MaxPool2d(3, stride=1), nn.Conv2d(6, 3, 1))
    assert report.error.message == cpu_error(lambda: torch.cat([nn.Conv2d(6, 5, 1)(x), nn.Conv2d(6, 4, 1)(x),
                                                                b3(x)], 1))
    assert "branch 0.2 [4, 3, 3, 3]" in report.error.hint
    dim = check_model(loads_preset(CONCAT.replace('type = "Concat"', 'type = "Concat"\ndim = 4')).model).error
    assert dim.message == cpu_error(lambda: torch.cat([x, x], 4))


def test_a_shortcut_that_does_not_match_is_the_additions_error():
    bad = BASIC.replace(f"shortcut = [{conv(4, 8, 1, 2)}", f"shortcut = [{conv(4, 8, 1, 1)}", 1)
    report = check_model(loads_preset(bad).model)
    assert report.error.path == "0" and report.error.type == "Residual"
    assert report.error.message == cpu_error(lambda: torch.zeros(4, 8, 8, 8) + torch.zeros(4, 8, 4, 4))
    assert "shortcut's output [4, 8, 8, 8]" in report.error.hint
    inside = BASIC.replace(f"shortcut = [{conv(4, 8, 1, 2)}, {bn(8)}]", f"shortcut = [{conv(4, 8, 1, 2)}, {bn(6)}]", 1)
    err = check_model(loads_preset(inside).model).error
    assert err.path == "0.shortcut.1" and err.type == "BatchNorm2d"
    assert err.message == cpu_error(lambda: nn.BatchNorm2d(6)(torch.zeros(4, 8, 4, 4)))


def test_paths_name_the_shortcut_and_the_branches():
    p = loads_preset(BASIC)
    s = Session(p)
    names = [n for n, _ in s.model.named_parameters()]
    assert "0.shortcut.0.weight" in names and layer_path_of_param("0.shortcut.1.bias") == "0.shortcut.1"
    assert module_path("0.shortcut.1") == "0.shortcut.1" and module_path("0.3") == "0.body.3"
    modules = dict(s.model.named_modules())
    for path, _, spec in flat_layers(p.model.layers):
        assert get_layer(p.model, path) is spec
        assert module_path(path) in modules, path
    edits.insert_layer(p.model, "0.shortcut.1", LayerSpec("ReLU"))
    assert [x.type for x in p.model.layers[0].shortcut] == ["Conv2d", "BatchNorm2d", "ReLU"]
    c = loads_preset(CONCAT)
    assert get_layer(c.model, "0.1.2").args["out_channels"] == 4
    assert module_path("0.1.2") in dict(Session(c).model.named_modules())


@pytest.mark.parametrize("name", ["basic", "concat"])
def test_presets_round_trip_and_sessions_save_and_load_the_weights(name, tmp_path):
    text = HAND[name][0]
    p = loads_preset(text)
    again = loads_preset(dumps_preset(p))
    assert again.model == p.model
    s = Session(p)
    train(s, 2)
    s2 = load_session(save_session(s, tmp_path / "run.tuinn"))
    a, b = s.model.state_dict(), s2.model.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert s2.spec == s.spec
    _, l1 = train(s, 2)
    _, l2 = train(s2, 2)
    assert l1 == l2


def test_the_exported_script_prints_the_same_losses(tmp_path):
    scripts = []
    for name in ("basic", "bottleneck", "concat"):
        text = export_script(loads_preset(HAND[name][0]))
        assert "tui_nn" not in text and ("shortcut=[" in text) == (name != "concat")
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        scripts.append(path)
    code = "import runpy, sys\nfor p in sys.argv[1:]:\n    print('=== ' + p)\n    runpy.run_path(p, run_name='__main__')\n"
    out = subprocess.run([sys.executable, "-I", "-c", code, *map(str, scripts)], capture_output=True, text=True,
                         timeout=300, cwd=str(tmp_path), check=False)
    assert out.returncode == 0, out.stderr
    parts = out.stdout.split("=== ")[1:]
    for name, part in zip(("basic", "bottleneck", "concat"), parts, strict=True):
        got = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", part, re.MULTILINE)]
        assert got == train(Session(loads_preset(HAND[name][0])), 3)[1], name


@pytest.mark.parametrize("name", ["bottleneck", "concat"])
def test_gradcheck_covers_the_shortcut_and_every_branch(name):
    from tui_nn.engine.inspect.gradcheck import gradcheck_session

    s = Session(loads_preset(HAND[name][0]))
    report = gradcheck_session(s, max_elements=20)
    assert report.ok, report.text()
    assert [p.torch_name for p in report.params] == [n for n, _ in s.model.named_parameters()]
    assert all(".body." not in p.name for p in report.params)  # named by check's layer paths (issue 22, 1.9)
    if name == "bottleneck":
        assert "0.shortcut.0.weight" in [p.torch_name for p in report.params]


def test_a_block_added_in_the_app_starts_as_the_identity_and_an_empty_concat_is_torchs_error():
    from tui_nn.engine.spec import ModelSpec

    for kind in ("Residual", "Concat", "Sequential"):
        spec = edits.default_layer(kind, (2, 3))
        assert [x.type for x in spec.layers] == ["Identity"]
        report = check_model(ModelSpec((2, 3), [spec]))
        assert report.ok and report.output_shape == (2, 3)
    err = check_model(ModelSpec((2, 3), [LayerSpec("Concat")])).error
    assert err.path == "0" and err.message == cpu_error(lambda: torch.cat([], 1))
    assert "at least one branch" in err.hint
