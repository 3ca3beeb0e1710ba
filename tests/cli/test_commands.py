"""The `tui-nn` command line: exit codes, JSON shapes, errors without tracebacks."""

import json
import subprocess
import sys

import pytest

from tests.engine.conftest import EXAMPLE
from tui_nn.engine.text import printable


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


IMPLICIT = """
[model]
input_shape = [4, 3]
[[model.layers]]
type = "Linear"
in_features = 3
out_features = 1
[[model.layers]]
type = "Softmax"
[data]
inputs = { generate = "rand", shape = [4, 3] }
targets = [1.0, 2.0, 3.0, 4.0]
"""


def test_check_prints_torchs_softmax_warning_and_the_targets_reshape_note(tmp_path):
    path = tmp_path / "implicit.toml"
    path.write_text(IMPLICIT)
    out = tui("check", str(path))
    assert out.returncode == 0, out.stderr
    assert ("warning at layer 1 (Softmax): Implicit dimension choice for softmax has been deprecated. Change the "
            "call to include dim=X as an argument.\n  hint: without dim, torch picks dim = 1 for this 2-D input "
            "[4, 1]") in out.stderr
    assert "  fix: set dim = 1" in out.stderr
    assert ("note: targets of shape [4] are reshaped to the output's shape [4, 1]; in a literal PyTorch loop without "
            "that reshape, MSELoss would broadcast them against the output to [4, 4]") in out.stdout
    doc = json.loads(tui("check", str(path), "--json").stdout)
    assert [(w["path"], w["type"], w["fix"]) for w in doc["warnings"]] == [("1", "Softmax", "set dim = 1")]
    assert len(doc["notes"]) == 1 and "[4, 4]" in doc["notes"][0]
    plain = json.loads(tui("check", "lab004-hand-set-network", "--json").stdout)
    assert plain["warnings"] == [] and plain["notes"] == []


def test_check_shape_error_exit_1_json(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.replace('[[model.layers]]\ntype = "Softmax"',
                                   '[[model.layers]]\ntype = "Linear"\nin_features = 4\nout_features = 2\n\n'
                                   '[[model.layers]]\ntype = "Softmax"'))
    out = tui("check", str(bad), "--json")
    assert out.returncode == 1
    err = json.loads(out.stdout)["error"]
    assert err == {"layer": 2, "path": "2", "type": "Linear",
                   "message": "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)", "hint": err["hint"],
                   "fix": "set in_features = 3"}
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
    from tui_nn.engine.files.bundled import bundled_presets

    out = tui("presets")
    assert out.returncode == 0
    for path in bundled_presets():
        assert path.stem in out.stdout


def test_every_bundled_preset_checks_and_runs():
    """`tui-nn check` and `tui-nn run` work on every bundled preset (intentionally broken ones fail with 1, and
    the autograd exercise, whose model has no parameters, checks but does not train)."""
    from tui_nn.cli.commands import cmd_check, cmd_run
    from tui_nn.engine.files.bundled import bundled_presets
    from tui_nn.engine.files.preset_read import load_preset
    from tui_nn.engine.training.session import Session

    for path in bundled_presets():
        s = Session(load_preset(path))
        broken = s.report.error is not None
        assert cmd_check(str(path), json_mode=True) == (1 if broken else 0), path
        untrainable = broken or not s.has_parameters
        assert untrainable == (broken or path.stem == "lab004-autograd"), path
        assert cmd_run(str(path), steps=3, device=None, seed=None, every=None, json_mode=True) == (
            1 if untrainable else 0), path


# -- optimizer refusals, data errors, standard JSON, error objects, paths, the budget, arithmetic, broken pipes --

from tui_nn.cli.entry import main  # noqa: E402

LINEAR = '[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "Linear"\nin_features = 3\nout_features = 1\n'


def _write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("optimizer,field", [
    ('{ type = "SGD", lr = 0.1, nesterov = true }', "training.optimizer.nesterov"),
    ('{ type = "SGD", lr = 0.1, nesterov = true, momentum = 0.9, dampening = 0.1 }', "training.optimizer.nesterov"),
    ('{ type = "Adam", betas = [0.9, 1.0] }', "training.optimizer.betas"),
])
@pytest.mark.parametrize("command", ["check", "run"])
def test_invalid_optimizer_arguments_are_one_message(tmp_path, capsys, optimizer, field, command):
    path = _write(tmp_path, LINEAR + f"[training]\noptimizer = {optimizer}\nsteps = 2\n")
    assert main([command, path]) == 1
    err = capsys.readouterr().err
    assert f"{field}:" in err and "hint:" in err and "Traceback" not in err
    assert main([command, path, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)["error"]
    assert doc["field"] == field and doc["hint"]


DATA_ERRORS = [
    ('[[model.layers]]\ntype = "Sigmoid"\n[data]\ninputs = [[1,2,3],[4,5,6]]\ntargets = [[2.0],[0.0]]\n'
     '[training]\nloss = "BCELoss"\n', "BCELoss needs targets in [0, 1]"),
    ('[data]\ninputs = [[1,2,3],[4,5,6]]\ntargets = [[1.0],[0.0],[1.0]]\n', "3 targets but 2 input samples"),
    ('[data]\ninputs = [[1,2,3],[4,5,6]]\ntargets = [0, 5]\n[training]\nloss = "CrossEntropyLoss"\n',
     "class index 5 is out of range"),
]


@pytest.mark.parametrize("extra,words", DATA_ERRORS)
def test_check_exits_1_on_a_data_error_and_keeps_the_summary(tmp_path, capsys, extra, words):
    text = LINEAR + extra
    if "CrossEntropyLoss" in extra:
        text = text.replace("out_features = 1", "out_features = 2")
    path = _write(tmp_path, text)
    assert main(["check", path]) == 1
    out = capsys.readouterr()
    assert "Total params" in out.out and words in out.err
    assert main(["check", path, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["loss"] is None and words in doc["data_error"] and doc["layers"]
    assert words in doc["error"]["message"] and doc["error"]["layer"] is None


def test_check_json_nonfinite_loss_is_standard_json(tmp_path, capsys):
    path = _write(tmp_path, '[model]\ninput_shape = [1, 1]\n[[model.layers]]\ntype = "Linear"\nin_features = 1\n'
                            'out_features = 1\nweight = [[3e38]]\nbias = [0.0]\n[data]\ninputs = [[10.0]]\n'
                            'targets = [[0.0]]\n')
    assert main(["check", path, "--json"]) == 0
    text = capsys.readouterr().out
    assert "Infinity" not in text and "NaN" not in text
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["loss"] is None and doc["loss_nonfinite"] == "inf"


def test_json_writer_never_writes_nan_or_infinity():
    from tui_nn.cli.output import dumps

    text = dumps({"loss": float("nan"), "final_loss": float("-inf"), "xs": [1.0, float("inf")], "ok": 1.5})
    assert json.loads(text) == {"loss": None, "loss_nonfinite": "nan", "final_loss": None,
                                "final_loss_nonfinite": "-inf", "xs": [1.0, None], "ok": 1.5}


def test_check_json_preset_error_has_the_documented_error_shape(tmp_path, capsys):
    path = _write(tmp_path, LINEAR.replace("out_features", "out_feature"))
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert {"layer", "type", "message", "hint", "fix"} <= set(err)
    assert (err["layer"], err["type"], err["fix"]) == (None, None, None)
    assert err["field"] == "model.layers[0].out_feature" and err["source"] == path
    assert 'did you mean "out_features"' in err["message"]
    assert main(["run", path, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["field"] == "model.layers[0].out_feature"


def test_check_json_error_inside_a_residual_block_has_its_path(tmp_path, capsys):
    path = _write(tmp_path, '[model]\ninput_shape = [2, 4]\n[[model.layers]]\ntype = "Residual"\nlayers = ['
                            '{ type = "Linear", in_features = 4, out_features = 3 }, '
                            '{ type = "Linear", in_features = 4, out_features = 4 }]\n')
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert (err["layer"], err["path"], err["type"]) == (0, "0.1", "Linear")
    assert "from layer 0.0 (Linear)" in err["hint"]


@pytest.mark.parametrize("value", ["abc", "-5"])
def test_bad_memory_budget_variable_is_one_message(tmp_path, capsys, monkeypatch, value):
    monkeypatch.setenv("TUI_NN_MEMORY_BUDGET", value)
    path = _write(tmp_path, LINEAR)
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert f"TUI_NN_MEMORY_BUDGET='{value}'" in err and "hint:" in err
    assert main(["run", path, "--json"]) == 1
    assert "TUI_NN_MEMORY_BUDGET" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_check_shows_the_conv_arithmetic(capsys):
    assert main(["check", "lab001-conv-stride2"]) == 0
    out = capsys.readouterr().out
    assert "H: (9 + 2*1 - 3)/2 + 1 = 5; W: (9 + 2*1 - 3)/2 + 1 = 5" in out
    assert main(["check", "lab001-conv-stride2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input_shape"] == [1, 3, 9, 9]
    assert doc["layers"][0]["detail"] == "H: (9 + 2*1 - 3)/2 + 1 = 5; W: (9 + 2*1 - 3)/2 + 1 = 5"


def test_run_json_into_a_closed_pipe_exits_quietly():
    """`tui-nn run P --json --every 1 | head -3`: no BrokenPipeError traceback, training stops, exit 1."""
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "run", "lab003-train-sgd", "--json", "--every", "1",
                             "--steps", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # what `head -3` does
    try:
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert code == 1 and "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


def test_short_output_into_a_closed_pipe_exits_quietly(tmp_path):
    """All output still in the buffer when the reader has gone: the flush at exit is quiet too."""
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "check", "lab001-classifier-32"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        proc.kill()
    assert code == 1 and "Traceback" not in err and "Exception ignored" not in err, err


# -- session files (.tuinn) wherever a preset goes; the bounds of --seed, --steps, --every; control characters --

HOSTILE = "\x1b]0;PWNED\x07\x1b]52;c;SGVsbG8=\x07\x9b2J\u202e"


def _toml_str(text):
    """`text` as a TOML basic string: every character that is not printable ASCII as a \\u escape."""
    return '"' + "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\u{ord(c):04x}" for c in text) + '"'


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def _saved_session(tmp_path, steps=3, text=EXAMPLE):
    from tui_nn.engine.files.preset_read import loads_preset
    from tui_nn.engine.files.session_file import save_session
    from tui_nn.engine.training.session import Session
    from tui_nn.engine.training.trainer import Trainer

    session = Session(loads_preset(text))
    Trainer(session).run(steps)
    return session, str(save_session(session, tmp_path / "saved.tuinn"))


def test_the_cli_session_suffix_is_the_session_loaders():
    from tui_nn.cli.output import SESSION_SUFFIX
    from tui_nn.engine.files.session_file import SUFFIX

    assert SESSION_SUFFIX == SUFFIX


def test_check_a_session_file_reports_its_current_weights(tmp_path, capsys):
    session, path = _saved_session(tmp_path)
    expected = session.loss_value()
    assert main(["check", path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["step"] == 3 and doc["loss"] == pytest.approx(expected, rel=1e-6)
    assert doc["total_params"] == 12 and [ly["type"] for ly in doc["layers"]] == ["Linear", "ReLU", "Softmax"]
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(EXAMPLE)
    assert main(["check", str(fresh), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] != pytest.approx(expected, rel=1e-6)  # trained weights
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    assert "session at step 3" in out and "Total params: 12" in out and f"{expected:.6g}" in out


def test_run_a_session_file_continues_from_its_step(tmp_path, capsys):
    _, path = _saved_session(tmp_path)
    assert main(["run", path, "--steps", "2", "--json", "--every", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["step"] for d in lines[:-1]] == [4, 5] and lines[-1]["steps"] == 5
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(EXAMPLE)
    assert main(["run", str(fresh), "--steps", "5", "--json", "--every", "1"]) == 0
    straight = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["final_loss"] == straight[-1]["final_loss"]  # the same losses as a run never interrupted
    assert main(["run", path, "--steps", "1"]) == 0
    assert "1 steps in" in capsys.readouterr().out


def test_seed_does_not_apply_to_a_session(tmp_path, capsys):
    _, path = _saved_session(tmp_path, steps=1)
    assert "saved random state" in _usage_error(["run", path, "--seed", "3"], capsys)


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 40])
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_bad_session_file_is_one_error_line(tmp_path, capsys, content, command):
    path = tmp_path / "bad.tuinn"
    path.write_bytes(content)
    assert main([command, str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1 and lines[0].startswith(f"tui-nn: error: {path}: ")
    assert main([command, str(path), "--json"]) == 1
    assert str(path) in json.loads(capsys.readouterr().out)["error"]["message"]
    assert main([command, str(tmp_path / "missing.tuinn")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_a_hostile_session_file_is_refused_through_the_cli_without_its_escapes(tmp_path, capsys):
    """A session whose preset.toml (written by hand) has a key made of escape sequences: the refusal quotes the
    key, escaped; nothing the terminal would act on reaches stdout or stderr."""
    import zipfile

    _, path = _saved_session(tmp_path, steps=1)
    hostile = tmp_path / "hostile.tuinn"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(hostile, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "preset.toml":
                data = data.decode().replace("[training]\n", f"[training]\n{_toml_str(HOSTILE)} = 1\n", 1).encode()
            dst.writestr(item, data)
    for command in ("check", "run"):
        assert main([command, str(hostile)]) == 1
        captured = capsys.readouterr()
        assert "\x1b" not in captured.err + captured.out and "\x07" not in captured.err
        assert "\x9b" not in captured.err and "\u202e" not in captured.err
        assert "unknown key" in captured.err and "\\x1b]0;PWNED\\x07" in captured.err
        assert main([command, str(hostile), "--json"]) == 1
        text = capsys.readouterr().out
        # JSON: the message holds the key as the engine writes outside text into its messages, escaped
        assert "\x1b" not in text and printable(HOSTILE) in json.loads(text)["error"]["message"]


def test_a_hostile_name_is_refused_and_a_hostile_file_name_escaped(tmp_path, capsys):
    """A preset's own name may not hold control characters (refused at load, the refusal escaped); a preset
    without a name is named after its file, whose name may hold anything but / and NUL: shown escaped."""
    path = _write(tmp_path, EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"', f"name = {_toml_str(HOSTILE)}"))
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert "control character" in err and "preset.name" in err and "\x1b" not in err
    nameless = EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"\n', "")
    named = _write(tmp_path, nameless, f"{HOSTILE}.toml")
    assert main(["check", named]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\x1b]0;PWNED\\x07\\x1b]52;c;SGVsbG8=\\x07\\x9b2J\\u202e  (input [1, 3]")
    assert main(["run", named, "--steps", "2"]) == 0
    assert capsys.readouterr().out.startswith("\\x1b]0;PWNED\\x07")
    bad = _write(tmp_path, EXAMPLE.replace("[training]\n", f"[training]\n{_toml_str(HOSTILE)} = 1\n"), "bad.toml")
    for command in ("check", "run"):
        assert main([command, bad, "--json"]) == 1
        text = capsys.readouterr().out
        assert "\x1b" not in text and "\\\\x1b]0;PWNED\\\\x07" in text  # the message escaped, then JSON's escapes
        assert printable(HOSTILE) in json.loads(text)["error"]["message"]


def test_ordinary_text_prints_unchanged(tmp_path, capsys):
    text = 'name = "Ünïcode – 日本語 tab"\n'
    path = _write(tmp_path, EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"\n', text))
    assert main(["check", path]) == 0
    assert capsys.readouterr().out.startswith("Ünïcode – 日本語 tab  (input")


def test_presets_lists_the_bundled_presets_as_before(capsys):
    """No bundled preset holds a control character: the listing is what it was before escaping existed."""
    from tui_nn.engine.files.preset_read import list_presets

    items = list_presets()
    width = max(len(stem) for stem, _ in items)
    expected = []
    for stem, preset in items:
        if isinstance(preset, Exception):
            line = f"(broken: {preset})"
        else:
            first = (preset.description.strip().splitlines() or [""])[0]
            line = preset.name + (f" - {first}" if first and first != preset.name else "")
        expected.append(f"{stem.ljust(width)}  {line}")
    assert main(["presets"]) == 0
    assert capsys.readouterr().out.splitlines() == expected


@pytest.mark.parametrize("argv,words", [
    (["--seed", "1e23"], "[0, 9223372036854775807]"),
    (["--seed", str(2**63)], "out of range"),
    (["--seed", "-5"], "out of range"),
    (["--steps", str(10**12 + 1)], "[0, 1000000000000]"),
    (["--steps", "-1"], "out of range"),
    (["--every", "0"], "[1, 1000000000000]"),
    (["--steps", "x"], "not 'x'"),
])
def test_run_number_arguments_are_bounded(example, capsys, argv, words):
    err = _usage_error(["run", str(example), *argv], capsys)
    assert words in err and "Traceback" not in err


def test_run_number_arguments_at_their_limits(example, capsys):
    assert main(["run", str(example), "--seed", str(2**63 - 1), "--steps", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["steps"] == 0
    assert main(["run", str(example), "--seed", "0", "--steps", "1", "--every", str(10**12)]) == 0


def test_usage_errors_quote_what_was_typed_escaped(example, capsys):
    err = _usage_error(["check", str(example), "\x1b]0;PWNED\x07"], capsys)
    assert "\x1b" not in err and "\x07" not in err and "\\x1b]0;PWNED\\x07" in err


def test_a_refusal_of_more_bytes_than_a_float_holds_is_valid_json(tmp_path, capsys):
    """LayerNorm of 1000 sizes of 2^31-1 needs about 10^9332 bytes: the JSON error carries it as null with
    needed_bytes_nonfinite "inf" (Python will not write a 9000-digit integer), and the output is standard JSON."""
    dims = ", ".join(["2147483647"] * 1000)
    path = _write(tmp_path, f'[model]\ninput_shape = [2, 3]\n[[model.layers]]\ntype = "LayerNorm"\n'
                            f"normalized_shape = [{dims}]\n")
    assert main(["check", path, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["needed_bytes"] is None and doc["error"]["needed_bytes_nonfinite"] == "inf"


# -- issue 22, 1.7: reduction = "none" refused at load, with the reason, naming the field

@pytest.mark.parametrize("loss", ["MSELoss", "L1Loss", "CrossEntropyLoss", "BCEWithLogitsLoss"])
def test_reduction_none_is_refused_at_load_with_the_reason_and_the_field(tmp_path, capsys, loss):
    path = _write(tmp_path, LINEAR + f'[training.loss]\ntype = "{loss}"\nreduction = "none"\n')
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["field"] == "training.loss.reduction" and err["source"] == path
    assert "scalar" in err["message"] and '"mean"' in err["hint"]
    assert main(["check", path]) == 1
    assert "training.loss.reduction" in capsys.readouterr().err



DROPOUT = """
[model]
input_shape = [2, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 1
bias = false
weight = [[0.5, -0.25]]
[[model.layers]]
type = "Dropout"
p = 0.5
[data]
inputs = [[1.0, 2.0], [3.0, 4.0]]
targets = [[1.0], [0.0]]
[training]
loss = "MSELoss"
"""


def test_checks_loss_is_the_eval_mode_loss_and_says_so(tmp_path, capsys):
    import torch

    path = _write(tmp_path, DROPOUT)
    net = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False), torch.nn.Dropout(0.5))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.5, -0.25]]))
    x, y = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0], [0.0]])
    net.eval()
    want = torch.nn.MSELoss()(net(x), y).item()
    net.train()
    torch.manual_seed(0)
    assert abs(torch.nn.MSELoss()(net(x), y).item() - want) > 1e-3  # step 1's training-mode loss differs
    assert main(["check", path, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["loss"] == pytest.approx(want, rel=1e-6) and doc["loss_mode"] == "eval"
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    assert "eval mode" in out and "Dropout" in out


# -- issue 22, 1.5: a layer torch's constructor refuses: the layer, torch's words, a hint and the fix, in JSON too

GROUPS = ('[model]\ninput_shape = [2, 3, 8, 8]\n[[model.layers]]\ntype = "ReLU"\n[[model.layers]]\ntype = "Conv2d"\n'
          'in_channels = 3\nout_channels = 4\nkernel_size = 3\ngroups = 2\n')


def test_check_json_construction_error_names_the_layer_and_the_fix(tmp_path, capsys):
    import torch

    with pytest.raises(ValueError) as info:
        torch.nn.Conv2d(3, 4, 3, groups=2)
    path = _write(tmp_path, GROUPS)
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert (err["layer"], err["path"], err["type"], err["fix"]) == (1, "1", "Conv2d", "set groups = 1")
    assert str(info.value) in err["message"] and err["hint"] and err["field"] == "model.layers[1]"
    assert main(["check", path]) == 1
    text = capsys.readouterr().err
    assert "layer 1 (Conv2d) cannot be built: " + str(info.value) in text and "fix: set groups = 1" in text


# -- issue 22, 1.4: check offers a fix only when the whole network is valid after it, the loss on the targets too

CONV_LINEAR = ('[model]\ninput_shape = [2, 3, 8, 8]\n[[model.layers]]\ntype = "Conv2d"\nin_channels = 3\n'
               'out_channels = 4\nkernel_size = 3\n[[model.layers]]\ntype = "ReLU"\n[[model.layers]]\ntype = "Linear"\n'
               'in_features = 144\nout_features = 10\n[data]\ntargets = [1, 7]\n')


def test_check_offers_insert_flatten_for_conv_relu_linear_and_says_when_no_fix_fits_the_targets(tmp_path, capsys):
    path = _write(tmp_path, CONV_LINEAR + '[training]\nloss = "CrossEntropyLoss"\n')
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert (err["layer"], err["type"], err["fix"]) == (2, "Linear", "insert a Flatten layer before layer 2")
    path = _write(tmp_path, CONV_LINEAR + '[training]\nloss = "MSELoss"\n', "mse.toml")  # [2] targets, [2, 10] out
    assert main(["check", path, "--json"]) == 1
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["fix"] is None and "the loss cannot be computed on the targets" in err["hint"]
