"""Hostile TOML for the preset loader, and for the session loader, which reads a session's preset.toml the same way.

- nesting bombs of every shape (dotted keys, table headers, arrays of tables, inline tables with dotted keys,
  brackets, and mixes of them; quoted key parts, blanks around the dots), from just over the cap to 10^5 levels,
  put into a bundled preset at a random line: refused before tomllib reads the text, naming the file and the line;
- the bundled presets written again in random but equivalent ways (headers, dotted keys, inline tables): never
  refused, the same preset;
- hostile values in random fields of a bundled preset (integers beyond int64 and beyond 4300 digits, huge strings,
  escape sequences, deep lists, huge tables, dates, names one letter off) and hostile keys: only the project's
  errors, naming the file and a field or a line, their texts bounded and free of control characters;
- the peak memory of refusing the 10^5-level bomb (a 200 KB file that took tomllib 24 GB), measured in a child
  process under an address-space cap: as a preset file and inside a session file.

CI runs a sample (`CI_EXAMPLES` per target); TUI_NN_FUZZ_EXAMPLES scales it for the long run.
"""

from __future__ import annotations

import copy
import datetime
import io
import json
import os
import random
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.conftest import EXAMPLE
from tests.engine.files.test_preset import containers, render_toml
from tui_nn.engine.errors import EngineError, PresetError
from tui_nn.engine.files.preset_read import MAX_NESTING, _nesting, loads_preset
from tui_nn.engine.files.preset_write import preset_to_dict
from tui_nn.engine.files.session_file import load_session, session_bytes
from tui_nn.engine.training.session import Session

from . import counts
from .test_fuzz_loaders import attempt, preset_named, session_named

CI_EXAMPLES = 40
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
PRESETS = sorted((Path(__file__).resolve().parents[2] / "presets").glob("*.toml"))
GROUP = "preset loader"
CHILD_CAP = 3 * 1024**3  # RLIMIT_AS of the child that measures a refusal's memory (torch is imported there)
PEAK_LIMIT_MB = 64  # what refusing the bomb may take, Python's allocations (tomllib took 24 GB without the cap)


def _safe(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


def _key(rnd: random.Random) -> str:
    return rnd.choice(["a", "k_1", '"a.b"', "'c[d'", '"#"', "'x y'"])


def bomb(kind: str, levels: int, rnd: random.Random) -> str:
    """Lines (ending in a newline) that nest `levels` deep, by `kind`; valid TOML but for the depth."""
    dot = lambda: rnd.choice([".", " .", ". ", " . ", "\t.\t"])  # noqa: E731
    path = lambda n: dot().join(_key(rnd) for _ in range(n))  # noqa: E731
    if kind == "dotted":  # a.b.c... = 1: levels tables
        return f"{path(levels + 1)} = 1\n"
    if kind == "inline":  # x = {a.b.c = 1}: the brace, then the key's tables
        return f"x = {{{path(levels)} = 1}}\n"
    if kind == "header":
        return f"[{path(levels)}]\n"
    if kind == "array of tables":
        return f"[[{path(levels - 1)}]]\n"
    if kind == "header and key":  # the header's levels and the key's add up
        head = rnd.randint(1, levels - 1)
        return f"[{path(head)}]\n{path(levels - head + 1)} = 1\n"
    if kind == "brackets":
        return "x = " + "[" * levels + "]" * levels + "\n"
    # mixed: a dotted key whose value nests inline tables (each with a dotted key) and arrays
    value, left = "1", levels
    key_parts = rnd.randint(1, max(1, left // 3))
    left -= key_parts - 1
    while left > 0:
        if rnd.random() < 0.5 or left == 1:
            value, left = f"[{value}]", left - 1
        else:
            inner = rnd.randint(1, min(left - 1, 50))
            value, left = f"{{{path(inner)} = {value}}}", left - inner
    return f"{path(key_parts)} = {value}\n"


def _has_key(doc: Any, key: str) -> bool:
    if isinstance(doc, dict):
        return key in doc or any(_has_key(v, key) for v in doc.values())
    return isinstance(doc, list) and any(_has_key(v, key) for v in doc)


def _key_line(lines: list[str], rnd: random.Random) -> int:
    """A random line before which TOML reads a key (not inside a multi-line string or array): the place a bomb
    is a bomb. Asked of tomllib: a probe key put there must come back as a key."""
    for _ in range(20):
        at = rnd.randrange(len(lines) + 1)
        try:
            doc = tomllib.loads("".join(lines[:at]) + "zz_probe = 1\n" + "".join(lines[at:]))
        except tomllib.TOMLDecodeError:
            continue
        if _has_key(doc, "zz_probe"):
            return at
    return 0


KINDS = ["dotted", "inline", "header", "array of tables", "header and key", "brackets", "mixed"]
LEVELS = st.one_of(st.integers(MAX_NESTING + 1, MAX_NESTING + 40), st.sampled_from([1000, 10**4, 10**5]))


@SETTINGS
@given(st.sampled_from(KINDS), LEVELS, st.sampled_from(PRESETS), st.randoms(use_true_random=False))
def test_nesting_bombs_anywhere_in_a_preset_are_refused_naming_the_line(kind, levels, preset, rnd):
    lines = preset.read_text().splitlines(keepends=True)
    at = _key_line(lines, rnd)
    lines_of_bomb = bomb(kind, levels, rnd)
    if levels < 100:  # the bomb alone is valid TOML that deep (tomllib recurses: only the shallow ones)
        assert containers(tomllib.loads(lines_of_bomb)) == levels, lines_of_bomb
    text = "".join(lines[:at]) + lines_of_bomb + "".join(lines[at:])
    err = attempt(GROUP, lambda: loads_preset(text, str(preset)), PresetError, where=str(preset),
                  named=preset_named(GROUP, str(preset)))
    assert err is not None and f"nested more than {MAX_NESTING}" in err.detail, kind
    assert err.line is not None and at + 1 <= err.line <= at + 2, (err.line, at)  # the bomb's own line
    counts.add("hostile toml", f"bombs refused ({kind})")
    counts.peak("hostile toml", "deepest bomb refused (levels)", levels)


@SETTINGS
@given(st.sampled_from(PRESETS), st.randoms(use_true_random=False))
def test_presets_written_in_any_equivalent_way_are_never_refused(preset, rnd):
    text = preset.read_text()
    doc = tomllib.loads(text)
    again = render_toml(doc, rnd)
    assert tomllib.loads(again) == doc
    assert _nesting(again, 10**9)[0] <= containers(doc) <= MAX_NESTING
    want = preset_to_dict(loads_preset(text, str(preset), checked=False))
    assert preset_to_dict(loads_preset(again, str(preset), checked=False)) == want
    counts.add("hostile toml", "equivalent rewrites of bundled presets accepted")


HEX = "@@HEX@@"  # written as 0xfff... (5000 digits): tomli_w cannot write integers of that size itself
DIGITS = "@@DIGITS@@"  # written as 5000 decimal digits: tomllib raises ValueError reading them
HOSTILE: list[Any] = [
    10**23, 2**63, -(2**63) - 1, HEX, DIGITS, "x" * 100_000, "\x1b[2J\x1b]0;pwned\x07", "nul\x00", "\x85c1",
    [[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]], {"k" * 1000: 1}, {f"k{i}": i for i in range(3000)},
    [1.5] * 10_000, 1e308, -0.0, True, "", [], {}, datetime.date(1979, 5, 27), "none", "Softmx", "Linear",
    {"type": "\x1b[31mLinear"}, [0], {"generate": "randint", "shape": [0, 3]},
]
KEYS = ["\x1b[31mred", "k" * 10_000, "a.b", "type", "weight", "\u202e", "reduction"]


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:4]):
            out += _paths(v, prefix + (i,))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _put(doc: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _dumps(doc: dict) -> str:
    text = tomli_w.dumps(doc)
    return text.replace(f'"{HEX}"', "0x" + "f" * 5000).replace(f'"{DIGITS}"', "7" * 5000)


@SETTINGS
@given(st.sampled_from(PRESETS), st.randoms(use_true_random=False), st.booleans())
def test_hostile_values_and_keys_in_any_field_give_bounded_safe_errors(preset, rnd, as_session):
    doc = tomllib.loads(preset.read_text())
    for _ in range(rnd.randint(1, 3)):
        path = rnd.choice(_paths(doc))
        if rnd.random() < 0.25:  # a hostile key in any table of the file (a layer, the data set, the loss...)
            tables = [doc] + [t for t in map(lambda p: _get(doc, p), _paths(doc)) if isinstance(t, dict)]
            rnd.choice(tables)[rnd.choice(KEYS)] = copy.deepcopy(rnd.choice(HOSTILE[:8]))
        else:
            _put(doc, path, copy.deepcopy(rnd.choice(HOSTILE)))  # (later mutations may land inside it)
    try:
        text = _dumps(doc)
    except (TypeError, ValueError):  # a value TOML has no way to write (a list in a list of tables...)
        return
    if as_session:
        where = str(WORK / f"hostile-{rnd.randrange(10**9)}.tuinn")
        with zipfile.ZipFile(io.BytesIO(_base_session())) as src, zipfile.ZipFile(where, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, text if name == "preset.toml" else src.read(name))
        err = attempt("session loader", lambda: load_session(where), EngineError, where=where,
                      named=session_named(where))
        os.unlink(where)
    else:
        err = attempt(GROUP, lambda: Session(loads_preset(text, str(preset)), budget=2**28), EngineError,
                      where=None, named=preset_named(GROUP, str(preset)))
    if err is not None:
        assert len(str(err)) < 2000 and _safe(str(err)), str(err)[:3000]
        counts.add("hostile toml", "hostile values refused with a bounded, safe text")
    else:
        counts.add("hostile toml", "hostile values accepted (harmless where they landed)")


WORK = Path(os.environ.get("TMPDIR", "/tmp")) / f"tui-nn-hostile-toml-{os.getpid()}"
WORK.mkdir(parents=True, exist_ok=True)
_BASE: list[bytes] = []


def _base_session() -> bytes:
    if not _BASE:
        _BASE.append(session_bytes(Session(loads_preset(EXAMPLE), budget=2**28)))
    return _BASE[0]


CHILD = r"""
import json, resource, sys, tracemalloc
cap, path, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import load_preset
from tui_nn.engine.files.session_file import load_session  # imports torch: before the measurement
tracemalloc.start()
try:
    (load_session if kind == "session" else load_preset)(path)
    message = None
except EngineError as err:
    message = str(err)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"peak": peak, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "message": message}))
"""


def test_refusing_the_bomb_takes_little_memory(tmp_path: Path) -> None:
    """The 10^5-level dotted key (200 KB) as a preset file and as a session's preset.toml: refused, and the
    refusal's peak (Python's allocations, in a child under a 3 GB address-space cap) is a few MB, where tomllib
    took 24 GB for the file (2.5 GB inside a session)."""
    bomb_text = "[preset]\nname" + ".a" * 100_000 + " = 1\n"
    preset_path = tmp_path / "bomb.toml"
    preset_path.write_text(bomb_text)
    session_path = tmp_path / "bomb.tuinn"
    with zipfile.ZipFile(io.BytesIO(_base_session())) as src, zipfile.ZipFile(session_path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, bomb_text if name == "preset.toml" else src.read(name))
    for kind, path in (("preset", preset_path), ("session", session_path)):
        proc = subprocess.run([sys.executable, "-c", CHILD, str(CHILD_CAP), str(path), kind], capture_output=True,
                              text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["message"] is not None and f"nested more than {MAX_NESTING}" in out["message"]
        assert out["message"].startswith(str(path)), out["message"]
        mb = out["peak"] / 1024**2
        counts.peak("hostile toml", "peak MB of a refusal", round(mb, 2))
        counts.peak("hostile toml", f"peak RSS MB of the child ({kind}, torch imported)", round(out["rss_kb"] / 1024))
        assert mb < PEAK_LIMIT_MB, f"{kind}: refusing the bomb took {mb:.1f} MB"
