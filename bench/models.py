"""The three benchmark workloads, as presets (the engine's path) and as hand-written PyTorch loops."""

from __future__ import annotations

import torch
from torch import nn

LAB004 = "lab004-hand-set-network"

MLP = """
[preset]
name = "bench MLP 784-256-10, batch 64"
[model]
input_shape = [64, 784]
[[model.layers]]
type = "Linear"
in_features = 784
out_features = 256
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Linear"
in_features = 256
out_features = 10
[data]
inputs = { generate = "randn", shape = [64, 784] }
targets = { generate = "randint", shape = [64], high = 10 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "SGD", lr = 0.01, momentum = 0.9 }
steps = 1000000
"""

CNN = """
[preset]
name = "bench small CNN, batch 32"
[model]
input_shape = [32, 3, 32, 32]
[[model.layers]]
type = "Conv2d"
in_channels = 3
out_channels = 16
kernel_size = 3
padding = 1
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "MaxPool2d"
kernel_size = 2
[[model.layers]]
type = "Conv2d"
in_channels = 16
out_channels = 32
kernel_size = 3
padding = 1
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "MaxPool2d"
kernel_size = 2
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Linear"
in_features = 2048
out_features = 10
[data]
inputs = { generate = "randn", shape = [32, 3, 32, 32] }
targets = { generate = "randint", shape = [32], high = 10 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.001 }
steps = 1000000
"""

WORKLOADS = {"lab004": LAB004, "mlp": MLP, "cnn": CNN}


def load(name: str):
    from tui_nn.engine.files.preset_read import load_preset, loads_preset

    src = WORKLOADS[name]
    return load_preset(src) if "\n" not in src else loads_preset(src, f"bench-{name}")


class HandLoop:
    """The plain PyTorch loop a user would write: the same model, data, loss and optimizer as the preset."""

    def __init__(self, name: str, device: str = "cpu") -> None:
        from tui_nn.engine.training.session import Session

        s = Session(load(name), device=device)  # only to borrow the same tensors and settings
        self.model = nn.Sequential(*[m for m in s.model]).to(device)
        self.x, self.y = s.inputs, s.targets
        self.loss_fn = s.loss_fn
        o = s.training.optimizer  # torch.optim directly, as a user writes it (not the engine's new_optimizer)
        cls = getattr(torch.optim, o.type)
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in o.args.items()}
        self.make_opt = lambda: cls(self.model.parameters(), **kw)
        self.opt = self.make_opt()
        self.reset_each = s.training.reset_optimizer_each_step

    def run(self, steps: int) -> float:
        model, loss_fn, x, y = self.model, self.loss_fn, self.x, self.y
        opt = self.opt
        loss = None
        for _ in range(steps):
            if self.reset_each:
                opt = self.make_opt()
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        return float(loss.item()) if loss is not None else float("nan")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
