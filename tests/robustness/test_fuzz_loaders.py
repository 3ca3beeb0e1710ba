"""Fuzzed input for the four loaders: the preset loader, the session loader, the weight-text parser and the CSV
importer get random bytes, random text, deeply nested and huge input, and mutations of valid files.

Only the project's own error type (EngineError) may come out, naming the file and, where there is one, the
field or line; every input finishes in bounded time (and, under `fuzz_run`, bounded memory: it runs under an
address-space cap). CI runs a sample (`CI_EXAMPLES` per target); `python -m tests.robustness.fuzz_run --inputs
10000` runs the long one.
"""

from __future__ import annotations

import io
import json
import os
import random
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.conftest import EXAMPLE
from tui_nn.engine.datasets import CsvError, parse_csv_text
from tui_nn.engine.errors import EngineError, PresetError, WeightError
from tui_nn.engine.preset import load_preset, loads_preset
from tui_nn.engine.session import Session
from tui_nn.engine.sessionio import load_session, session_bytes
from tui_nn.engine.textparse import parse_tensor_text
from tui_nn.engine.trainer import Trainer

from . import counts

CI_EXAMPLES = 60
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
TIME_LIMIT = 30.0  # seconds per input; the slowest, 10^7 pasted numbers (the cap), takes about 11 s
PRESETS = sorted((Path(__file__).resolve().parents[2] / "presets").glob("*.toml"))
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / f"tui-nn-fuzz-{os.getpid()}"
WORK.mkdir(parents=True, exist_ok=True)


def attempt(group: str, fn: Callable[[], Any], expect: type[EngineError] = EngineError,
            where: str | None = None) -> EngineError | None:
    """Run one input: it must succeed or raise `expect`; anything else propagates (a crash, found by hypothesis).
    Records the count and the slowest input."""
    t0 = time.perf_counter()
    err: EngineError | None = None
    try:
        fn()
        counts.add(group, "accepted")
    except expect as e:
        err = e
        counts.add(group, "refused")
        assert str(e).strip(), "an error with no message"
        if where is not None:
            assert str(e).startswith(where), f"the error does not name the file: {e}"
    finally:
        dt = time.perf_counter() - t0
        counts.add(group, "inputs")
        counts.peak(group, "slowest_s", dt)
    assert dt < TIME_LIMIT, f"{group}: one input took {dt:.1f} s"
    return err


def mutate(data: bytes, rnd: random.Random, tokens: list[bytes], n: int) -> bytes:
    buf = bytearray(data)
    for _ in range(n):
        op = rnd.randrange(6)
        pos = rnd.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
        elif op == 1:  # delete a span
            del buf[pos:pos + rnd.randrange(1, 40)]
        elif op == 2:  # insert a token
            buf[pos:pos] = rnd.choice(tokens)
        elif op == 3:  # duplicate a span
            span = bytes(buf[pos:pos + rnd.randrange(1, 200)])
            buf[pos:pos] = span * rnd.randrange(1, 4)
        elif op == 4:  # truncate
            del buf[pos:]
        else:  # replace a digit run with a big or odd number
            buf[pos:pos + 1] = rnd.choice([b"0", b"-1", b"1e308", b"99999999999999999999", b"nan", b"inf", b"1000000"])
    return bytes(buf)


TOKENS = [b"[", b"]", b"{", b"}", b"=", b'"', b"'", b"\n", b",", b"#", b"\\", b"\x00", b"\xff", b"[[model.layers]]",
          b"type = \"Residual\"\n", b"layers = [", b"\"\"\"", b"'''", b"dim = 9\n", b"-0", b"1e999", b"true",
          b"[@click=app.quit]", b"[/]", b"\r\n", b"\t", b"\xef\xbb\xbf", b"weight = [[1,2],[3]]\n",
          b"inputs = { generate = \"rand\", shape = [1000000, 1000000] }\n", b"samples = 1000000000\n"]


# -- the preset loader ---------------------------------------------------------------------------------


def _load_preset_bytes(data: bytes, name: str = "fuzz.toml") -> None:
    p = WORK / name
    p.write_bytes(data)
    preset = load_preset(p)
    Session(preset, budget=2**28)  # building it is part of loading (shapes, data, memory budget)


@SETTINGS
@given(st.binary(max_size=2000))
def test_preset_loader_random_bytes(data: bytes) -> None:
    attempt("preset loader", lambda: _load_preset_bytes(data), where=str(WORK / "fuzz.toml"))


@SETTINGS
@given(st.text(max_size=800))
def test_preset_loader_random_text(text: str) -> None:
    attempt("preset loader", lambda: _load_preset_bytes(text.encode("utf-8", "surrogatepass")))


@SETTINGS
@given(st.sampled_from(PRESETS), st.randoms(use_true_random=False), st.integers(1, 8))
def test_preset_loader_mutated_bundled_presets(path: Path, rnd: random.Random, n: int) -> None:
    data = mutate(path.read_bytes(), rnd, TOKENS, n)
    attempt("preset loader", lambda: _load_preset_bytes(data))


TOML_VALUE = st.recursive(
    st.one_of(st.integers(-2**70, 2**70), st.floats(), st.booleans(), st.text(max_size=20)),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                                                                        kids, max_size=4)),
    max_leaves=30)


@SETTINGS
@given(st.sampled_from(["[", "{a = ", "[[", "x = ["]), st.integers(1, 200_000), st.sampled_from(["model.layers",
                                                                                                 "data.inputs", "x"]),
       st.dictionaries(st.sampled_from(["preset", "model", "data", "training", "extra"]),
                       st.dictionaries(st.sampled_from(["name", "input_shape", "layers", "inputs", "loss", "steps",
                                                        "optimizer", "description", "dataset", "csv"]), TOML_VALUE,
                                       max_size=5), max_size=5))
def test_preset_loader_deep_and_huge_toml(opener: str, depth: int, key: str, tables: dict[str, Any]) -> None:
    import tomli_w

    # deeply nested
    closer = {"[": "]", "{a = ": "}", "[[": "]]", "x = [": "]"}[opener]
    text = f"{key} = " + opener * depth + "1" + closer * depth
    err = attempt("preset loader", lambda: loads_preset(text, "deep.toml"), expect=PresetError, where="deep.toml")
    assert err is not None
    # random (valid TOML) tables in the preset's sections
    try:
        body = tomli_w.dumps(tables)
    except (TypeError, ValueError):
        body = json.dumps(tables)
    attempt("preset loader", lambda: Session(loads_preset(body, "random.toml"), budget=2**28))


def test_preset_loader_huge_files_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:  # 64 MB of one comment line: refused by size, never read in full
        fh.truncate(64 * 1024 * 1024)
    err = attempt("preset loader", lambda: load_preset(big), expect=PresetError, where=str(big))
    assert err is not None and "too large" in str(err)
    rows = "\n".join(f"[[model.layers]]\ntype = \"ReLU\"" for _ in range(5000))
    err = attempt("preset loader", lambda: loads_preset("[model]\ninput_shape = [1, 2]\n" + rows, "many.toml"),
                  expect=PresetError, where="many.toml")
    assert err is not None and "layers" in str(err)
    huge_list = "[model]\ninput_shape = [1, 2]\n[data]\ninputs = [" + ", ".join(["[1, 2]"] * 300_000) + "]\n"
    attempt("preset loader", lambda: Session(loads_preset(huge_list, "rows.toml"), budget=2**28))


# -- the session loader --------------------------------------------------------------------------------


def _session(text: str, steps: int = 3) -> bytes:
    s = Session(loads_preset(text), budget=2**28)
    if s.trainable:
        Trainer(s).run(steps)
    return session_bytes(s)


_BASES: list[bytes] = []


def bases() -> list[bytes]:
    if not _BASES:
        adam_sched = EXAMPLE.replace('optimizer = { type = "Adam", lr = 0.09 }',
                                     'optimizer = { type = "Adam", lr = 0.09 }\n'
                                     'scheduler = { type = "StepLR", step_size = 2, gamma = 0.5 }')
        spiral = ("[model]\ninput_shape = [8, 2]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 2\n"
                  "out_features = 3\n[data]\ndataset = { name = \"spiral\", samples = 40, test_fraction = 0.25, "
                  "classes = 3 }\n[training]\nloss = \"CrossEntropyLoss\"\nbatch_size = 8\n")
        _BASES.extend([_session(EXAMPLE), _session(adam_sched, 5), _session(spiral, 7)])
    return _BASES


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def pack(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in parts.items():
            zf.writestr(name, body, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _load_session_bytes(data: bytes) -> None:
    p = WORK / "fuzz.tuinn"
    p.write_bytes(data)
    s = load_session(p)
    if s.trainable:  # a session that loads must also train (or stop with a reason), never crash
        fin = Trainer(s).run(2)
        assert fin.reason in ("done", "error", "nonfinite", "target")


@SETTINGS
@given(st.binary(max_size=3000), st.booleans())
def test_session_loader_random_bytes(data: bytes, zip_prefix: bool) -> None:
    if zip_prefix:  # get past the "is it a zip" check more often
        data = b"PK\x03\x04" + data
    attempt("session loader", lambda: _load_session_bytes(data), where=str(WORK / "fuzz.tuinn"))


@SETTINGS
@given(st.integers(0, 2), st.randoms(use_true_random=False), st.integers(1, 6))
def test_session_loader_mutated_archive_bytes(which: int, rnd: random.Random, n: int) -> None:
    data = mutate(bases()[which], rnd, TOKENS + [b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"], n)
    attempt("session loader", lambda: _load_session_bytes(data), where=str(WORK / "fuzz.tuinn"))


@SETTINGS
@given(st.integers(0, 2), st.randoms(use_true_random=False), st.integers(1, 6), st.integers(0, 8),
       st.sampled_from(["mutate", "drop", "random json", "empty", "swap"]))
def test_session_loader_mutated_members(which: int, rnd: random.Random, n: int, member_idx: int, how: str) -> None:
    """Valid archives (the CRCs match) whose members are mutated: the loader itself must refuse them."""
    parts = members(bases()[which])
    names = sorted(parts)
    name = names[member_idx % len(names)]
    if how == "mutate":
        parts[name] = mutate(parts[name], rnd, TOKENS + [b'"step": -1', b'"capacity": 1000000000000', b"null",
                                                        b"[" * 5000, b"\x00" * 8], n)
    elif how == "drop":
        del parts[name]
    elif how == "random json":
        parts[name] = json.dumps(rnd.choice([[], {}, None, 1e308, "x", [[1]] * 3, {"a": [1, {"b": None}]},
                                             {"param_groups": [{}], "state": {"0": {"x": {}}}},
                                             {"capacity": 2**40, "width": 0, "steps": -1, "last": 1}])).encode()
    elif how == "empty":
        parts[name] = b""
    else:
        other = names[(member_idx + 1) % len(names)]
        parts[name], parts[other] = parts[other], parts[name]
    data = pack(parts)
    attempt("session loader", lambda: _load_session_bytes(data), where=str(WORK / "fuzz.tuinn"))


def test_session_loader_deep_and_huge_members(tmp_path: Path) -> None:
    base = members(bases()[0])
    cases = {
        "deep state.json": {"state.json": b"[" * 200_000 + b"]" * 200_000},
        "deep runs.json": {"runs.json": b"[" * 200_000 + b"]" * 200_000},
        "deep format.json": {"format.json": b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000},
        "huge history capacity": {"state.json": json.dumps({**json.loads(base["state.json"]), "history": {
            "capacity": 10**12, "width": 1, "steps": 3, "last": 0.5}}).encode()},
        "deep preset.toml": {"preset.toml": b"x = " + b"[" * 100_000 + b"]" * 100_000},
        "a 4 TB model in preset.toml": {"preset.toml": base["preset.toml"].replace(
            b"out_features = 3", b"out_features = 1000000000000", 1)},
    }
    for label, change in cases.items():
        data = pack({**base, **change})
        err = attempt("session loader", lambda: _load_session_bytes(data), where=str(WORK / "fuzz.tuinn"))
        assert err is not None, label
    # a zip bomb: a weights member that inflates to 4x the memory budget is refused from its declared size,
    # never inflated
    bomb = tmp_path / "bomb.tuinn"
    with zipfile.ZipFile(bomb, "w") as zf:
        for name, body in base.items():
            if name != "weights.safetensors":
                zf.writestr(name, body)
        info = zipfile.ZipInfo("weights.safetensors")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            chunk = bytes(64 * 1024 * 1024)
            for _ in range(4):
                fh.write(chunk)
    env = os.environ.get("TUI_NN_MEMORY_BUDGET")
    os.environ["TUI_NN_MEMORY_BUDGET"] = str(64 * 1024**2)
    try:
        err = attempt("session loader", lambda: load_session(bomb), where=str(bomb))
    finally:
        if env is None:
            del os.environ["TUI_NN_MEMORY_BUDGET"]
        else:
            os.environ["TUI_NN_MEMORY_BUDGET"] = env
    assert err is not None and "too large" in str(err)


# -- the weight-text parser ------------------------------------------------------------------------------


NUMBER = st.one_of(st.floats().map(repr), st.integers(-10**30, 10**30).map(str),
                   st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "1_000", "--1", "1.2.3", "", "e5", "tensor"]))


@st.composite
def tensor_text(draw) -> str:  # noqa: ANN001
    style = draw(st.integers(0, 3))
    if style == 0:  # nested lists, maybe ragged
        def nested(depth: int) -> str:
            if depth == 0 or draw(st.integers(0, 4)) == 0:
                return draw(NUMBER)
            return "[" + draw(st.sampled_from([", ", ",", " ", ";"])).join(
                nested(depth - 1) for _ in range(draw(st.integers(0, 3)))) + "]"
        text = nested(draw(st.integers(0, 12)))
    elif style == 1:  # rows
        text = "\n".join(" ".join(draw(NUMBER) for _ in range(draw(st.integers(0, 4))))
                         for _ in range(draw(st.integers(0, 4))))
    elif style == 2:  # what PyTorch prints
        text = "tensor(" + draw(st.text(alphabet="[]0123456789.,-e ()=requires_grad True", max_size=60)) + ")"
    else:
        text = draw(st.text(max_size=200))
    return draw(st.sampled_from(["", "tensor(", "Parameter containing:\n", " "])) + text


@SETTINGS
@given(tensor_text())
def test_weight_text_parser(text: str) -> None:
    attempt("weight-text parser", lambda: parse_tensor_text(text), expect=WeightError)


@SETTINGS
@given(st.integers(9, 500_000), st.sampled_from(["[", "(", "[[1, 2], "]))
def test_weight_text_parser_deep_and_huge(depth: int, opener: str) -> None:
    text = opener * depth + "1" + {"[": "]", "(": ")", "[[1, 2], ": "]"}[opener] * depth
    attempt("weight-text parser", lambda: parse_tensor_text(text), expect=WeightError)


def test_weight_text_parser_long_inputs() -> None:
    if LONG:  # more numbers than the cap (10^7): parsed up to the cap, then refused (about 11 s)
        attempt("weight-text parser", lambda: parse_tensor_text("1 " * 11_000_000), expect=WeightError)
    # a bad token at the start of 22 MB of text stops the parse there
    attempt("weight-text parser", lambda: parse_tensor_text("x " + "1 " * 11_000_000), expect=WeightError)
    attempt("weight-text parser", lambda: parse_tensor_text("1" * (65 * 1024 * 1024)), expect=WeightError)
    attempt("weight-text parser", lambda: parse_tensor_text("[" + "1," * 1_000_000 + "1]"), expect=WeightError)


# -- the CSV importer ----------------------------------------------------------------------------------------


GOOD_CSV = b"x1,x2,y\n0.1,0.2,0\n0.3,-0.4,1\n1e-3,5,1\n"


def _csv(data: bytes, features: list[str], target: list[str]) -> None:
    x, y = parse_csv_text(data, features, target, "fuzz.csv")
    assert x.shape[0] == y.shape[0] and x.shape[1] == len(features) and y.shape[1] == len(target)


def _csv_where(err: EngineError | None) -> None:
    if err is not None:  # every CSV error names the file and a line
        assert isinstance(err, CsvError) and err.line is not None, err


@SETTINGS
@given(st.binary(max_size=1500), st.sampled_from([(["x1", "x2"], ["y"]), (["a"], ["b"]), (["x1"], ["x1"])]))
def test_csv_importer_random_bytes(data: bytes, cols: tuple[list[str], list[str]]) -> None:
    _csv_where(attempt("CSV importer", lambda: _csv(data, *cols), expect=CsvError, where="fuzz.csv"))


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(1, 8))
def test_csv_importer_mutated(rnd: random.Random, n: int) -> None:
    data = mutate(GOOD_CSV * rnd.randrange(1, 20), rnd, [b",", b"\n", b'"', b"\r", b"nan", b"inf", b"", b"\x00",
                                                         b"x1", b"\xff\xfe", b"\xef\xbb\xbf", b'"a,b"', b" "], n)
    _csv_where(attempt("CSV importer", lambda: _csv(data, ["x1", "x2"], ["y"]), expect=CsvError, where="fuzz.csv"))


def test_csv_importer_wide_and_long() -> None:
    wide = (",".join(f"c{i}" for i in range(200_000)) + "\n").encode()
    attempt("CSV importer", lambda: _csv(wide + wide, ["c0"], ["c1"]), expect=CsvError)
    long = b"a,b\n" + b"1,2\n" * 2_000_000
    attempt("CSV importer", lambda: _csv(long, ["a"], ["b"]), expect=CsvError)
    field = b"a,b\n\"" + b"x" * (1 << 20) + b"\",1\n"
    _csv_where(attempt("CSV importer", lambda: _csv(field, ["a"], ["b"]), expect=CsvError))


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Any:
    yield
    for p in WORK.glob("*"):
        p.unlink()
    WORK.rmdir()
