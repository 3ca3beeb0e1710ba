"""`tui-nn export` and `tui-nn gradcheck`: exit codes, output, errors without tracebacks."""

import json
import re
import subprocess
import sys

import pytest

from tests.engine.conftest import EXAMPLE
from tui_nn.cli.entry import main

# A ReLU evaluated exactly at its kink: autograd takes ReLU'(0) = 0, central differences see a slope of 1/2,
# so the gradient of the first bias disagrees (a real limit of gradient checking, and a real exit code 1).
KINK = '''
[model]
input_shape = [1, 1]
[[model.layers]]
type = "Linear"
in_features = 1
out_features = 1
weight = [[1.0]]
bias = [0.0]
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Linear"
in_features = 1
out_features = 1
weight = [[1.0]]
bias = [0.5]
[data]
inputs = [[0.0]]
targets = [[2.0]]
'''


def tui(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tui_nn", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "example.toml"
    path.write_text(EXAMPLE)
    return path


def test_export_writes_a_script_that_prints_the_apps_losses(example, tmp_path, capsys):
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import train

    out_file = tmp_path / "train.py"
    assert main(["export", str(example), "-o", str(out_file), "--steps", "7"]) == 0
    assert str(out_file) in capsys.readouterr().out and out_file.exists()
    run = subprocess.run([sys.executable, "-I", str(out_file)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = [float(v) for v in re.findall(r"^step \d+ loss (\S+)$", run.stdout, re.M)]
    assert got == train(Session(load_preset(example)), 7)[1]


def test_export_to_stdout_and_seed(example, capsys):
    assert main(["export", str(example), "--seed", "9"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("#!/usr/bin/env python3") and "SEED = 9" in text and "STEPS = 50" in text


def test_export_errors(example, tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.toml")]) == 1
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('[[model.layers]]\ntype = "Softmax"',
                                   '[[model.layers]]\ntype = "Linear"\nin_features = 4\nout_features = 2\n\n'
                                   '[[model.layers]]\ntype = "Softmax"'))
    assert main(["export", str(bad), "-o", str(tmp_path / "x.py")]) == 1
    err = capsys.readouterr().err
    assert "cannot export" in err and "mat1 and mat2" in err and not (tmp_path / "x.py").exists()
    assert main(["export", str(example), "-o", str(tmp_path / "no" / "such" / "dir.py")]) == 1
    assert "cannot write" in capsys.readouterr().err
    for argv in (["export", str(example), "--steps", "-1"], ["export"], ["gradcheck", str(example), "--samples", "0"],
                 ["gradcheck", str(example), "--max-elements", "x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_gradcheck_json_agrees(example):
    out = tui("gradcheck", str(example), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is True and doc["max_abs_error"] < 1e-6
    assert [p["name"] for p in doc["params"]] == ["0.weight", "0.bias"]
    assert doc["params"][0]["checked"] == 9 and doc["samples"] == 1


def test_gradcheck_text_and_a_disagreement_exits_1(tmp_path, example, capsys):
    assert main(["gradcheck", str(example)]) == 0
    text = capsys.readouterr().out
    assert "all gradients agree" in text and "0.weight" in text
    kink = tmp_path / "kink.toml"
    kink.write_text(KINK)
    assert main(["gradcheck", str(kink)]) == 1
    text = capsys.readouterr().out
    assert "0.bias" in text and "DISAGREES" in text and "numeric -1.49999" in text and "autograd 0.0" in text
    assert main(["gradcheck", str(kink), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    flags = {p["name"]: p["ok"] for p in doc["params"]}
    assert flags == {"0.weight": True, "0.bias": False, "2.weight": True, "2.bias": True}


def test_gradcheck_errors_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('type = "Softmax"', 'type = "Softmx"'))
    out = tui("gradcheck", str(bad))
    assert out.returncode == 1 and 'did you mean "Softmax"' in out.stderr and "Traceback" not in out.stderr


def test_gradcheck_shape_error_json(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\ninput_shape = [1, 4]\n[[model.layers]]\ntype = "Linear"\nin_features = 3\n'
                   'out_features = 2\n')
    assert main(["gradcheck", str(bad), "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["layer"] == 0 and "mat1 and mat2" in err["message"]


def test_run_reports_accuracy_and_test_metrics(capsys):
    assert main(["run", "playground-circles", "--json", "--every", "10", "--steps", "20"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["step"] for d in lines[:-1]] == [10, 20]
    for d in lines:
        assert 0 <= d["accuracy"] <= 1 and d["test_loss"] > 0 and 0 <= d["test_accuracy"] <= 1
    assert lines[-1]["event"] == "done"


# -- number arguments are bounded (usage errors, exit 2); outside text is printed escaped --------------------

HOSTILE = "\x1b]0;PWNED\x07\x9b2J\u202e"


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["export", "{p}", "--seed", "1e23"], "[0, 9223372036854775807]"),
    (["export", "{p}", "--seed", str(2**63)], "out of range"),
    (["export", "{p}", "--seed", "-5"], "out of range"),
    (["export", "{p}", "--steps", str(10**12 + 1)], "out of range"),
    (["gradcheck", "{p}", "--max-elements", "0"], "[1, 1000000]"),
    (["gradcheck", "{p}", "--max-elements", str(10**30)], "out of range"),
    (["gradcheck", "{p}", "--samples", "0"], "[1, 2147483647]"),
    (["gradcheck", "{p}", "--samples", "1.5"], "not '1.5'"),
])
def test_number_arguments_are_bounded(example, capsys, argv, words):
    err = _usage_error([a.replace("{p}", str(example)) for a in argv], capsys)
    assert words in err and "Traceback" not in err


def test_number_arguments_at_their_limits(example, capsys):
    assert main(["export", str(example), "--seed", str(2**63 - 1), "--steps", str(10**12)]) == 0
    assert f"SEED = {2**63 - 1}" in capsys.readouterr().out
    assert main(["gradcheck", str(example), "--max-elements", "1000000", "--samples", "2147483647", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]


def test_export_and_gradcheck_print_a_hostile_name_escaped(tmp_path, capsys):
    # a preset without a name is named after its file (its own name may not hold control characters)
    path = tmp_path / f"{HOSTILE}.toml"
    path.write_text(EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"\n', ""))
    for argv in (["export", str(path)], ["export", str(path), "-o", str(tmp_path / "out.py")],
                 ["gradcheck", str(path)]):
        assert main(argv) == 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert not any(c in text for c in "\x1b\x07\x9b\u202e"), argv
    assert main(["gradcheck", str(path)]) == 0
    assert capsys.readouterr().out.startswith("\\x1b]0;PWNED\\x07\\x9b2J\\u202e: gradient check")


def test_gradcheck_names_the_kink_as_the_likely_cause(tmp_path, capsys):
    """Issue 22, 1.9: the pre-activation of layer 1 (ReLU) is exactly 0 (input 0, weight 1, bias 0)."""
    kink = tmp_path / "kink.toml"
    kink.write_text(KINK)
    assert main(["gradcheck", str(kink)]) == 1
    text = capsys.readouterr().out
    assert "likely cause: a non-differentiable point, not a wrong gradient: layer 1 (ReLU)" in text
    assert main(["gradcheck", str(kink), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert "layer 1 (ReLU)" in doc["likely_cause"] and len(doc["kinks"]) == 1
    assert [(p["name"], p["layer"], p["torch_name"]) for p in doc["params"]][:1] == [("0.weight", "0", "0.weight")]
