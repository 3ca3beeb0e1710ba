"""Exported scripts, run with plain `python` in a subprocess, print exactly the engine's losses (CPU, same seed)."""

import re
import subprocess
import sys

import pytest

from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.export import export_script, history_csv, metrics_csv, write_script
from tui_nn.engine.files.preset_read import load_preset, loads_preset
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import train

from ..conftest import EXAMPLE
from ..training.test_trainer import MLP

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
init = { scheme = "xavier_normal", gain = 1.5, bias = 0.05 }
[[model.layers]]
type = "PReLU"
init = { scheme = "constant", value = 0.1 }
[[model.layers]]
type = "Residual"
init = { scheme = "trunc_normal", std = 0.2, bias = 0 }
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

IMPLICIT_DIM_CUMULATIVE_BN = '''
[model]
input_shape = [6, 2, 3]
[[model.layers]]
type = "BatchNorm1d"
num_features = 2
momentum = "cumulative"
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 3
init = { scheme = "orthogonal", gain = 0.8 }
[[model.layers]]
type = "LogSoftmax"
[data]
inputs = { generate = "randn", shape = [6, 2, 3] }
targets = { generate = "randn", shape = [6, 2, 3] }
[training]
optimizer = { type = "Adam", lr = 0.05 }
batch_size = 4
seed = 5
target_loss = 0.0
'''

CASES = {
    "full-batch-adam-hand-set": EXAMPLE,
    "mini-batch-sgd-nesterov": MLP.format(optimizer='{ type = "SGD", lr = 0.05, momentum = 0.9, nesterov = true }',
                                          batch=6, seed=3),
    "one-sample-rmsprop": MLP.format(optimizer='{ type = "RMSprop", lr = 0.01, centered = true }', batch=1, seed=0),
    "conv-net": CONV,
    "residual-init-frozen": RESIDUAL,
    "implicit-softmax-dim-cumulative-batchnorm": IMPLICIT_DIM_CUMULATIVE_BN,  # eval-mode loss each epoch: running stats
    "spiral-test-split-cosine": SPIRAL,
    "xor-target-accuracy": XOR_TARGET,
    "global-rng": GLOBAL_RNG,
    "csv": CSV_PRESET,
    "csv-by-reference": CSV_PRESET,  # a CSV file of more than MAX_INLINE_DATA_BYTES of values: read by the script
    "mini-batch-target-accuracy": MLP.format(optimizer='{ type = "Adam", lr = 0.05 }', batch=6, seed=3)
    + "target_accuracy = 0.6\n",  # 20 samples in batches of 6, 6, 6, 2: checked on all 20 at each epoch's end
    "weighted-nadam-multistep": MLP.format(optimizer='{ type = "NAdam", lr = 0.02 }', batch=6, seed=2).replace(
        'loss = "CrossEntropyLoss"', 'loss = { type = "CrossEntropyLoss", weight = [0.5, 2.0, 1.0] }')
    + 'scheduler = { type = "MultiStepLR", milestones = [4, 9], gamma = 0.5 }\n',
    "kldiv-radam-warmup": MLP.format(optimizer='{ type = "RAdam", lr = 0.01 }', batch=0, seed=4).replace(
        'loss = "CrossEntropyLoss"', 'loss = { type = "KLDivLoss", reduction = "batchmean" }').replace(
        'targets = { generate = "randint", shape = [20], high = 3 }', 'targets = { generate = "rand", shape = [20, 3] }')
    .replace('out_features = 3\n', 'out_features = 3\n[[model.layers]]\ntype = "LogSoftmax"\ndim = 1\n')
    + 'scheduler = { type = "LinearLR", start_factor = 0.1, total_iters = 10 }\n',
    "pos-weight-adadelta-restarts": MLP.format(optimizer='{ type = "Adadelta" }', batch=5, seed=1).replace(
        'loss = "CrossEntropyLoss"', 'loss = { type = "BCEWithLogitsLoss", pos_weight = [2.0, 1.0, 0.25] }').replace(
        'targets = { generate = "randint", shape = [20], high = 3 }', 'targets = { generate = "randint", shape = [20, 3], high = 2 }')
    + 'scheduler = { type = "CosineAnnealingWarmRestarts", T_0 = 4, T_mult = 2 }\n',
    "reset-optimizer-each-step": MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=0, seed=0)
    + "reset_optimizer_each_step = true\ntarget_loss = 0.6\n",
    # issue 22 §2, training: OneCycleLR (cycling Adam's beta1; one that runs out of total_steps at step 21 stops
    # there in both), ReduceLROnPlateau on the test loss per epoch and on the training loss per step, step_every,
    # clipping by norm and by value, LBFGS's closure
    "one-cycle-adam-clip-norm": MLP.format(optimizer='{ type = "Adam", lr = 0.01 }', batch=6, seed=2)
    + 'scheduler = { type = "OneCycleLR", max_lr = 0.05, total_steps = 30, three_phase = true }\n'
    + "clip_grad_norm = 0.3\nsteps = 30\n",
    "one-cycle-runs-out": MLP.format(optimizer='{ type = "SGD", lr = 0.01, momentum = 0.9 }', batch=0, seed=3)
    + 'scheduler = { type = "OneCycleLR", max_lr = 0.2, total_steps = 20, anneal_strategy = "linear" }\n'
    + "steps = 20\n",
    "plateau-test-split-per-epoch": SPIRAL.replace(
        'scheduler = { type = "CosineAnnealingLR", T_max = 20, eta_min = 0.001 }',
        'scheduler = { type = "ReduceLROnPlateau", patience = 0, factor = 0.5, step_every = "epoch" }'),
    "plateau-train-loss-drop-last-clip-value": MLP.format(optimizer='{ type = "SGD", lr = 0.5 }', batch=6, seed=1)
    + 'scheduler = { type = "ReduceLROnPlateau", patience = 2, threshold = 0.02 }\n'
    + "drop_last = true\nclip_grad_value = 0.05\n",
    "step-lr-per-epoch-drop-last": MLP.format(optimizer='{ type = "SGD", lr = 0.3 }', batch=6, seed=4)
    + 'scheduler = { type = "StepLR", step_size = 2, gamma = 0.5, step_every = "epoch" }\ndrop_last = true\n',
    "sequential-warmup-cosine": MLP.format(optimizer='{ type = "Adam", lr = 0.05 }', batch=6, seed=6)
    + 'scheduler = { type = "SequentialLR", milestones = [5], schedulers = [ '
      '{ type = "LinearLR", start_factor = 0.2, total_iters = 5 }, { type = "CosineAnnealingLR", T_max = 20 } ] }\n',
    "sequential-per-epoch": MLP.format(optimizer='{ type = "SGD", lr = 0.2 }', batch=5, seed=7)
    + 'scheduler = { type = "SequentialLR", milestones = [2], step_every = "epoch", schedulers = [ '
      '{ type = "ExponentialLR", gamma = 0.5 }, { type = "StepLR", step_size = 1, gamma = 0.9 } ] }\n',
    "lbfgs-full-batch": MLP.format(optimizer='{ type = "LBFGS", lr = 0.5, max_iter = 5 }', batch=0, seed=0),
    "lbfgs-strong-wolfe-mini-batch": CONV.replace(
        'optimizer = { type = "RMSprop", lr = 0.01, momentum = 0.5 }',
        'optimizer = { type = "LBFGS", max_iter = 4, history_size = 5, line_search_fn = "strong_wolfe" }'),
}
STEPS = 25


def _csv_rows(n):
    return "".join(f"{i * 0.1},{(i % 3) - 1},{i * i / 50},{i % 2},{i / 7}\n" for i in range(n))


def _quirky_csv(n):
    """The CSV data of the by-reference case, with what the script's reader must read as the engine does: a BOM,
    CRLF line ends, blank lines, spaces around a column name and around cells, quoted cells, "0_1"."""
    out = []
    for i in range(n):
        cells = [f"{i * 0.1}", f"{(i % 3) - 1}", f"{i * i / 50}", f"{i % 2}", f"{i / 7}"]
        if i % 5 == 0:
            cells[0] = f'"{cells[0]}"'
        if i % 7 == 0:
            cells[2] = f"  {cells[2]} "
        if i % 17 == 0:
            cells[3] = "0_" + cells[3]
        out.append(",".join(cells))
        if i % 13 == 0:
            out.append("")
    return "\ufeffa, b ,c,u,v\r\n" + "\r\n".join(out) + "\r\n"


def _preset(name, folder):
    text = CASES[name]
    if name.startswith("csv"):
        if name == "csv":
            (folder / "data.csv").write_text("a,b,c,u,v\n" + _csv_rows(23))
        else:
            (folder / "data.csv").write_text(_quirky_csv(24_000), newline="")
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
        assert len(text) < 64 * 1024 or name != "csv-by-reference"
        assert ("CSV_PATH = " in text) == (name == "csv-by-reference"), name
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
    assert expected["one-cycle-runs-out"][0].reason == "error" and len(expected["one-cycle-runs-out"][1]) == 20
    assert "OneCycleLR was stepped total_steps times: stopping" in parts["one-cycle-runs-out"]
    assert expected["plateau-test-split-per-epoch"][0].evaluation is not None
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
    assert "nn.init.xavier_normal_(model[0].weight, gain=1.5)\nnn.init.constant_(model[0].bias, val=0.05)\n" in text
    assert "nn.init.constant_(model[1].weight, val=0.1)\n" in text
    assert ("nn.init.trunc_normal_(model[2].body[0].weight, std=0.2)\nnn.init.constant_(model[2].body[0].bias, val=0.0)\n"
            "nn.init.trunc_normal_(model[2].body[1].weight, std=0.2)\nnn.init.constant_(model[2].body[1].bias, val=0.0)\n"
            "nn.init.kaiming_uniform_(model[2].body[0].weight)\n") in text
    assert "for p in model[3].parameters():\n    p.requires_grad_(False)" in text
    assert "torch.optim.AdamW(list(model.parameters()), lr=0.02, betas=(0.8, 0.99), weight_decay=0.05)" in text


def test_history_and_metrics_csv():
    s = Session(loads_preset(SPIRAL))
    from tui_nn.engine.training.trainer import Trainer

    Trainer(s).run(6, every=3)
    lines = history_csv(s).splitlines()
    assert lines[0] == "step,loss,min,max" and len(lines) == 7
    assert float(lines[-1].split(",")[1]) == s.history.last
    m = metrics_csv(s).splitlines()
    assert m[0] == "step,test_loss,test_accuracy" and [r.split(",")[0] for r in m[1:]] == ["3", "6"]


def test_large_csv_data_is_exported_by_reference_with_a_bounded_script(tmp_path):
    """Above MAX_INLINE_DATA_BYTES the script names the file (a string constant) and reads it itself; it says so
    when the file is not the one it was exported with."""
    import ast
    import hashlib
    import os

    from tui_nn.engine.files import export

    folder = tmp_path / "big"
    folder.mkdir()
    preset = _preset("csv-by-reference", folder)
    data = folder / "data.csv"
    assert data.stat().st_size > export.MAX_INLINE_DATA_BYTES
    text = export_script(preset, steps=2)
    assert len(text) < 64 * 1024 and "FEATURES = [" not in text
    consts = {n.targets[0].id: n.value.value for n in ast.parse(text).body
              if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.targets[0], ast.Name)}
    assert consts["CSV_PATH"] == os.path.realpath(data)
    assert consts["CSV_SHA256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    small = tmp_path / "small"
    small.mkdir()
    assert "CSV_PATH" not in export_script(_preset("csv", small), steps=2)  # small data stays inline
    script = tmp_path / "s.py"
    script.write_text(text)
    with data.open("a") as fh:
        fh.write("1,2,3,4,5\n")
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "not the one this script was exported with" in run.stdout and len(_losses(run.stdout)) == 2


def test_the_script_size_is_bounded_before_the_weights_are_written(monkeypatch):
    from tui_nn.engine.files import export

    preset = Session(loads_preset(EXAMPLE)).current_preset(with_weights=True)
    assert len(export_script(preset)) < 64 * 1024
    monkeypatch.setattr(export, "MAX_SCRIPT_BYTES", 20)
    with pytest.raises(EngineError) as info:
        export_script(preset)
    assert "hand-set weights" in str(info.value) and "larger than 20 bytes" in str(info.value)
    monkeypatch.setattr(export, "MAX_SCRIPT_BYTES", 2000)
    with pytest.raises(EngineError) as info:
        export_script(loads_preset(EXAMPLE))
    assert "the script would be" in str(info.value)


def test_user_text_reaches_the_script_only_as_string_constants():
    """The preset's name (once written into the docstring) and every value go through repr(): a NUL, a line
    break or three quotes in the name leave a script that compiles and holds the name as PRESET_NAME."""
    import ast

    preset = loads_preset(EXAMPLE)
    preset.name = 'a\x00b"""\r\nimport os; os.system("x") #\u2028\\'
    text = export_script(preset, steps=1)
    tree = ast.parse(text)
    names = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
             and n.targets[0].id == "PRESET_NAME"]
    assert names == [preset.name]
    assert "os.system" not in ast.get_docstring(tree) and "\x00" not in text
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import) and n.names[0].name == "os"]


def test_the_exporters_writers_take_only_validated_values():
    """What becomes code is checked by the writers themselves, whatever object they are given: names must be
    known, plain identifiers; values must be plain data, written with the built-in types' own repr."""
    import ast

    from tui_nn.engine.files import export
    from tui_nn.engine.training.objectives import LOSSES

    bad = "lr=1, **__import__('os').system('x') or {}"
    for write in (lambda: export._kwargs({bad: 1}, "SGD"), lambda: export._ident("class", "a parameter"),
                  lambda: export._known(bad, LOSSES, "loss"), lambda: export._known("eval", LOSSES, "loss"),
                  lambda: export._module_expr("0]; import os; x = model[0"), lambda: export._lit(object()),
                  lambda: export._lit({1: 2}), lambda: export._lit(b"bytes")):
        with pytest.raises(EngineError):
            write()

    class Sly(str):
        def __repr__(self):
            return "__import__('os').system('x')"

    class SlyFloat(float):
        def __repr__(self):
            return "__import__('os')"

    assert export._lit(Sly("a")) == "'a'" and export._lit(SlyFloat(0.5)) == "0.5"
    assert export._lit([float("inf"), -float("inf")]) == "[float('inf'), float('-inf')]"
    value = {"k": [1, 2.5, None, True, "s'\"\\\n\x00\u2028"], "t": (1,), "e": ()}
    assert ast.literal_eval(export._lit(value)) == value
    assert export._arg([1, 2]) == "(1, 2)"
