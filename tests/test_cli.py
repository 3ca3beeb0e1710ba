"""The `tui-nn` command line: exit codes, JSON shapes, errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from tests.engine.conftest import EXAMPLE


def tui(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tui_nn", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.fixture
def example(tmp_path):
    path = tmp_path / "example.toml"
    path.write_text(EXAMPLE)
    return path


def test_check_json(example):
    out = tui("check", str(example), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [ly["type"] for ly in doc["layers"]] == ["Linear", "ReLU", "Softmax"]
    assert doc["layers"][0] | {} == doc["layers"][0] and doc["layers"][0]["output_shape"] == [1, 3]
    assert {"index", "type", "output_shape", "params"} <= set(doc["layers"][0])
    assert doc["total_params"] == doc["trainable_params"] == 12
    assert abs(doc["loss"] - 1.2027949) < 1e-6


def test_check_text(example):
    out = tui("check", str(example))
    assert out.returncode == 0
    assert "Total params: 12" in out.stdout and "Loss (CrossEntropyLoss)" in out.stdout


def test_check_shape_error_exit_1_json(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('[[model.layers]]\ntype = "Softmax"',
                                   '[[model.layers]]\ntype = "Linear"\nin_features = 4\nout_features = 2\n\n'
                                   '[[model.layers]]\ntype = "Softmax"'))
    out = tui("check", str(bad), "--json")
    assert out.returncode == 1
    err = json.loads(out.stdout)["error"]
    assert err == {"layer": 2, "type": "Linear", "message": "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)",
                   "hint": err["hint"], "fix": "set in_features = 3"}
    assert "layer 1 (ReLU)" in err["hint"]
    out = tui("check", str(bad))
    assert out.returncode == 1 and "Traceback" not in out.stderr and "set in_features = 3" in out.stderr


def test_run_json_lines(example):
    out = tui("run", str(example), "--json", "--every", "10")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["step"] for d in lines[:-1]] == [10, 20, 30, 40, 50]
    done = lines[-1]
    assert done["event"] == "done" and done["steps"] == 50 and done["final_loss"] == lines[-2]["loss"]


def test_run_steps_seed_and_text(example):
    out = tui("run", str(example), "--steps", "7", "--seed", "3")
    assert out.returncode == 0
    assert "7 steps" in out.stdout and "final loss" in out.stdout


def test_preset_errors_exit_1_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('type = "Softmax"', 'type = "Softmx"'))
    out = tui("run", str(bad))
    assert out.returncode == 1
    assert 'did you mean "Softmax"' in out.stderr and "Traceback" not in out.stderr
    out = tui("check", str(tmp_path / "missing.toml"))
    assert out.returncode == 1 and "no such file" in out.stderr


def test_absent_device_is_a_clear_error(example):
    out = tui("run", str(example), "--device", "cuda:7")
    assert out.returncode == 1
    assert "not available" in out.stderr and "Traceback" not in out.stderr


def test_usage_errors_exit_2(example):
    assert tui("run").returncode == 2
    assert tui("run", str(example), "--steps", "x").returncode == 2
    assert tui("check", str(example), "--bogus").returncode == 2


def test_presets_lists_bundled():
    from tui_nn.engine.bundled import bundled_presets

    out = tui("presets")
    assert out.returncode == 0
    for path in bundled_presets():
        assert path.stem in out.stdout


def test_every_bundled_preset_checks_and_runs():
    """`tui-nn check` and `tui-nn run` work on every bundled preset (intentionally broken ones fail with 1)."""
    from tui_nn.cli import cmd_check, cmd_run
    from tui_nn.engine.bundled import bundled_presets
    from tui_nn.engine.preset import load_preset
    from tui_nn.engine.session import Session

    for path in bundled_presets():
        broken = Session(load_preset(path)).report.error is not None
        assert cmd_check(str(path), json_mode=True) == (1 if broken else 0), path
        assert cmd_run(str(path), steps=3, device=None, seed=None, every=None, json_mode=True) == (
            1 if broken else 0), path
