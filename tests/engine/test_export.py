"""Exported scripts, run with plain `python` in a subprocess, print exactly the engine's losses (CPU, same seed)."""

import re
import subprocess
import sys

import pytest

from tui_nn.engine.errors import EngineError
from tui_nn.engine.export import export_script, history_csv, metrics_csv, write_script
from tui_nn.engine.preset import load_preset, loads_preset
from tui_nn.engine.session import Session
from tui_nn.engine.trainer import train

from .conftest import EXAMPLE
from .test_trainer import MLP

CONV = '''
[model]
input_shape = [6, 2, 8, 8]
[[model.layers]]
type = "Conv2d"
in_channels = 2
out_channels = 4
kernel_size = [3, 3]
padding = 1
[[model.layers]]
type = "BatchNorm2d"
num_features = 4
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "MaxPool2d"
kernel_size = 2
[[model.layers]]
type = "Flatten"
[[model.layers]]
type = "Dropout"
p = 0.25
[[model.layers]]
type = "Linear"
in_features = 64
out_features = 3
[training]
loss = { type = "CrossEntropyLoss", label_smoothing = 0.1 }
optimizer = { type = "RMSprop", lr = 0.01, momentum = 0.5 }
batch_size = 4
seed = 7
'''

RESIDUAL = '''
[model]
input_shape = [10, 5]
[[model.layers]]
type = "Linear"
in_features = 5
out_features = 6
init = "xavier_uniform"
[[model.layers]]
type = "PReLU"
init = { scheme = "constant", value = 0.1 }
[[model.layers]]
type = "Residual"
layers = [ { type = "Linear", in_features = 6, out_features = 6, init = "kaiming_uniform" },
           { type = "LayerNorm", normalized_shape = 6 }, { type = "GELU" } ]
[[model.layers]]
type = "Linear"
in_features = 6
out_features = 2
frozen = true
init = { scheme = "normal", mean = 0.0, std = 0.3 }
[data]
inputs = { generate = "rand", shape = [10, 5] }
targets = { generate = "randn", shape = [10, 2] }
[training]
loss = "HuberLoss"
optimizer = { type = "AdamW", lr = 0.02, betas = [0.8, 0.99], weight_decay = 0.05 }
shuffle = false
batch_size = 3
seed = 11
'''

SPIRAL = '''
[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 12
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 12
out_features = 3
[data]
dataset = { name = "spiral", samples = 120, noise = 0.05, test_fraction = 0.25, classes = 3 }
[training]
loss = "CrossEntropyLoss"
optimizer = { type = "Adam", lr = 0.03 }
scheduler = { type = "CosineAnnealingLR", T_max = 20, eta_min = 0.001 }
batch_size = 16
seed = 5
'''

XOR_TARGET = '''
[model]
input_shape = [1, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 6
[[model.layers]]
type = "Tanh"
[[model.layers]]
type = "Linear"
in_features = 6
out_features = 1
[data]
dataset = { name = "xor", samples = 80, test_fraction = 0.2 }
[training]
loss = "BCEWithLogitsLoss"
optimizer = { type = "Adam", lr = 0.1 }
scheduler = { type = "StepLR", step_size = 5, gamma = 0.8 }
target_accuracy = 0.9
seed = 1
'''

GLOBAL_RNG = '''
[model]
input_shape = [1, 4]
[[model.layers]]
type = "Linear"
in_features = 4
out_features = 3
[data]
rng = "global"
inputs = { generate = "randn", shape = [5, 4] }
[training]
loss = "MSELoss"
optimizer = { type = "SGD", lr = 0.1, nesterov = true, momentum = 0.9 }
seed = 172
'''

CSV_PRESET = '''
[model]
input_shape = [1, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 2
[data]
csv = { path = "data.csv", features = ["a", "b", "c"], target = ["u", "v"], test_fraction = 0.3 }
[training]
loss = "L1Loss"
optimizer = { type = "Adagrad", lr = 0.1 }
batch_size = 5
seed = 2
'''

CASES = {
    "full-batch-adam-hand-set": EXAMPLE,
    "mini-batch-sgd-nesterov": MLP.format(optimizer='{ type = "SGD", lr = 0.05, momentum = 0.9, nesterov = true }',
                                          batch=6, seed=3),
    "one-sample-rmsprop": MLP.format(optimizer='{ type = "RMSprop", lr = 0.01, centered = true }', batch=1, seed=0),
    "conv-net": CONV,
    "residual-init-frozen": RESIDUAL,
    "spiral-test-split-cosine": SPIRAL,
    "xor-target-accuracy": XOR_TARGET,
    "global-rng": GLOBAL_RNG,
    "csv": CSV_PRESET,
    "mini-batch-target-accuracy": MLP.format(optimizer='{ type = "Adam", lr = 0.05 }', batch=6, seed=3)
    + "target_accuracy = 0.6\n",  # 20 samples in batches of 6, 6, 6, 2: checked on all 20 at each epoch's end
    "reset-optimizer-each-step": MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=0, seed=0)
    + "reset_optimizer_each_step = true\ntarget_loss = 0.6\n",
}
STEPS = 25


def _preset(name, folder):
    text = CASES[name]
    if name == "csv":
        rows = "".join(f"{i * 0.1},{(i % 3) - 1},{i * i / 50},{i % 2},{i / 7}\n" for i in range(23))
        (folder / "data.csv").write_text("a,b,c,u,v\n" + rows)
        path = folder / "p.toml"
        path.write_text(text)
        return load_preset(path)
    return loads_preset(text, f"{name}.toml")


# Every script runs in one subprocess (torch is imported once: CI has two cores), each as `__main__` in a fresh
# namespace, exactly as `python script.py` runs it; one of them also runs on its own as `python -I script.py`.
BATCH = """
import runpy, sys
for path in sys.argv[1:]:
    print("=== " + path, flush=True)
    runpy.run_path(path, run_name="__main__")
"""


def _losses(out):
    return [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", out, re.M)]


def test_exported_scripts_print_the_engines_losses(tmp_path):
    scripts = {}
    expected = {}
    for name in CASES:
        folder = tmp_path / name
        folder.mkdir()
        preset = _preset(name, folder)
        script = write_script(preset, folder / "train.py", steps=STEPS)
        text = script.read_text()
        assert "tui_nn" not in text and "pickle" not in text
        assert not re.search(r"(?<![.\w])(eval|exec)\(", text)  # model.eval() is the only "eval"
        scripts[name] = script
    # plain python, isolated from this checkout (-I): the scripts need torch only
    alone = subprocess.Popen([sys.executable, "-I", str(scripts["conv-net"])], cwd=str(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batch = subprocess.Popen([sys.executable, "-I", "-c", BATCH, *map(str, scripts.values())], cwd=str(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for name in CASES:  # the engine's numbers, meanwhile
        expected[name] = train(Session(_preset(name, tmp_path / name)), STEPS)
    out, err = batch.communicate(timeout=300)
    assert batch.returncode == 0, err
    parts = dict(zip(CASES, out.split("=== ")[1:]))
    for name, (fin, losses) in expected.items():
        text = parts[name]
        assert _losses(text) == losses, name  # bit-identical
        if fin.reason == "target":
            assert len(losses) < STEPS, name  # the script stopped at the same step
        if fin.evaluation is not None:
            test = float(re.search(r"^test loss (\S+)$", text, re.M).group(1))
            assert test == fin.evaluation.loss, name
    assert expected["xor-target-accuracy"][0].reason == "target"
    assert expected["reset-optimizer-each-step"][0].reason == "target"
    assert expected["mini-batch-target-accuracy"][0].reason == "target"
    assert expected["mini-batch-target-accuracy"][0].step == 8  # the end of the second epoch
    assert expected["spiral-test-split-cosine"][0].evaluation is not None
    out, err = alone.communicate(timeout=300)
    assert alone.returncode == 0, err
    assert _losses(out) == expected["conv-net"][1]


def test_export_uses_the_preset_steps_and_refuses_what_cannot_train():
    text = export_script(loads_preset(EXAMPLE))
    assert "STEPS = 50" in text and "nn.Softmax(dim=1)" in text and "torch.optim.Adam(" in text
    bad = loads_preset('[model]\ninput_shape = [1, 4]\n[[model.layers]]\ntype = "Linear"\nin_features = 3\n'
                       'out_features = 2\n')
    with pytest.raises(EngineError) as info:
        export_script(bad)
    assert "cannot export" in str(info.value) and "mat1 and mat2" in str(info.value)
    with pytest.raises(EngineError):
        export_script(loads_preset(EXAMPLE), steps=-1)


def test_the_exported_model_is_readable():
    text = export_script(loads_preset(RESIDUAL, "r.toml"), steps=1)
    assert "class Residual(nn.Module):" in text
    assert "    Residual(\n        nn.Linear(in_features=6, out_features=6),\n" in text
    assert "init_module(model[2].body[0], {'scheme': 'kaiming_uniform'})" in text
    assert "for p in model[3].parameters():\n    p.requires_grad_(False)" in text
    assert "torch.optim.AdamW(list(model.parameters()), lr=0.02, betas=(0.8, 0.99), weight_decay=0.05)" in text


def test_history_and_metrics_csv():
    s = Session(loads_preset(SPIRAL))
    from tui_nn.engine.trainer import Trainer

    Trainer(s).run(6, every=3)
    lines = history_csv(s).splitlines()
    assert lines[0] == "step,loss,min,max" and len(lines) == 7
    assert float(lines[-1].split(",")[1]) == s.history.last
    m = metrics_csv(s).splitlines()
    assert m[0] == "step,test_loss,test_accuracy" and [r.split(",")[0] for r in m[1:]] == ["3", "6"]
