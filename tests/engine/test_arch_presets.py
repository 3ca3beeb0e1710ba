"""The architecture presets (issue 22 §2): arch-resnet18 (ResNet-18's layout with downsampling BasicBlocks) and
arch-inception-block (GoogLeNet's Inception block) equal torchvision-style definitions written out here in plain
torch.nn (torchvision itself is used too when installed): parameter counts, the parameters' shapes in order, and the
outputs with the same weights. Small inputs: each test runs in seconds on the CPU."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from torch import nn

from tui_nn.engine.files.preset_read import load_preset
from tui_nn.engine.shapes.check import check_model
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train


class BasicBlock(nn.Module):  # torchvision.models.resnet.BasicBlock
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):  # torchvision.models.resnet.ResNet, with the stage widths as an argument
    def __init__(self, layers: list[int], num_classes: int = 1000, width: int = 64) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BasicConv2d(nn.Module):  # torchvision.models.googlenet.BasicConv2d
    def __init__(self, in_channels: int, out_channels: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):  # torchvision.models.googlenet.Inception
    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def inception_net() -> nn.Module:  # the preset's stem, GoogLeNet's inception3a at an eighth of the width, head
    return nn.Sequential(nn.Conv2d(3, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                         Inception(24, 8, 12, 16, 2, 4, 4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_the_hand_written_resnet18_is_torchvisions():
    assert count(ResNet([2, 2, 2, 2])) == 11_689_512  # torchvision.models.resnet18(): the published count
    if importlib.util.find_spec("torchvision") is not None:
        import torchvision

        theirs = torchvision.models.resnet18(num_classes=10)
        assert [tuple(p.shape) for p in theirs.parameters()] == \
            [tuple(p.shape) for p in ResNet([2, 2, 2, 2], num_classes=10).parameters()]


CASES = {
    "arch-resnet18": (lambda: ResNet([2, 2, 2, 2], num_classes=10, width=8), (4, 3, 32, 32)),
    "arch-inception-block": (inception_net, (4, 3, 16, 16)),
}


@pytest.mark.parametrize("stem", sorted(CASES))
def test_the_preset_is_the_torchvision_style_definition(stem):
    make, shape = CASES[stem]
    p = load_preset(stem)
    hand = make()
    report = check_model(p.model)
    assert report.ok, report.error
    assert report.total_params == count(hand)
    assert p.model.input_shape == shape and report.output_shape == (shape[0], 10)
    s = Session(p)
    assert [tuple(t.shape) for t in s.model.parameters()] == [tuple(t.shape) for t in hand.parameters()]
    assert [tuple(t.shape) for t in s.model.buffers()] == [tuple(t.shape) for t in hand.buffers()]
    with torch.no_grad():
        for mine, theirs in zip(s.model.parameters(), hand.parameters(), strict=True):
            mine.copy_(theirs)
    x = torch.randn(shape)
    s.model.eval()
    hand.eval()
    with torch.no_grad():
        assert torch.allclose(s.model(x), hand(x), rtol=0, atol=0)
    s.model.train()
    _, losses = train(s, 3)
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)


def test_the_descriptions_state_the_parameter_counts():
    text = load_preset("arch-resnet18").description
    assert f"{count(CASES['arch-resnet18'][0]()):,}" in text
    assert f"{count(ResNet([2, 2, 2, 2], num_classes=10)) / 1e6:.1f} million" in text
