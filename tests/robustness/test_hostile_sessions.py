"""Hostile session files: zip bombs (a 2 MB file with a member of zeros inflating to 2 GiB, the same behind a valid
safetensors header, a directory entry that claims the real member's small size over a stream that inflates to
2 GiB, 60 000 members, a zip inside a member), a legitimate session too large for an address-space cap, and
archives whose directory entries are generated (sizes, methods, flags, CRCs, bodies); then saves of sessions
poisoned with NaN/Inf at random places.

The bombs run in one child process (`python -m tests.robustness.test_hostile_sessions`), each under an
address-space cap (RLIMIT_AS): its peak resident memory (VmHWM, reset before each file) and time are measured, and
its whole peak comes from `os.wait4` once it exits. Every bomb must be a SessionFileError naming the file and the
member, in bounded time and memory (REFUSAL_MB over the child's resident memory before the file; the issue
measured 7.9 GB and 30 s for the first one); a legitimate session must load in about its own size. The generated
archives run in this process (the peak resident memory reset before each). CI runs a sample; the long run sets
$TUI_NN_FUZZ_EXAMPLES.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.engine.files.test_session_file import FULL, _zeros_deflated, craft, stored
from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.session_file import (
    MEMBERS,
    Autosave,
    AutosaveSkipped,
    SessionFileError,
    load_session,
    session_bytes,
)
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

from . import counts
from .test_fuzz_loaders import attempt, session_named

ROOT = Path(__file__).resolve().parents[2]
CI_EXAMPLES = 30
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
BOMB = 2 << 30  # bytes a bomb inflates to
REFUSAL_MB = 128  # a refusal's peak resident memory over what the process held before the file
CHILD_CAP = 1 << 30  # the child's address-space room above what it has mapped when a file begins
TIME_LIMIT = 30.0


def _status(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        m = re.search(rf"^{key}:\s+(\d+)", fh.read(), re.M)
    return int(m.group(1)) * 1024 if m else 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


_BASE: list[dict[str, bytes]] = []


def base() -> dict[str, bytes]:
    """The members of a small real session (Adam, StepLR, mini-batches, a test split; trained 5 steps)."""
    if not _BASE:
        s = Session(loads_preset(FULL), budget=2**28)
        Trainer(s).run(5, every=5)
        with zipfile.ZipFile(io.BytesIO(session_bytes(s))) as zf:
            _BASE.append({n: zf.read(n) for n in zf.namelist()})
    return dict(_BASE[0])


def _safetensors_zeros_header(size: int) -> bytes:
    """A valid safetensors header (padded with spaces, as safetensors allows) whose "inputs" [rows, 2] of float32
    take the rest of `size` bytes."""
    rows = (size - 8 - 128) // 8
    header = json.dumps({"inputs": {"dtype": "F32", "shape": [rows, 2], "data_offsets": [0, rows * 8]}}).encode()
    header += b" " * (size - 8 - rows * 8 - len(header))
    return len(header).to_bytes(8, "little") + header


def bombs(folder: Path) -> dict[str, tuple[Path, str]]:
    """The bomb files, written into `folder`: label -> (path, the member a refusal must name, "" for the archive)."""
    parts = base()
    zeros, crc = _zeros_deflated(BOMB)
    out: dict[str, tuple[Path, str]] = {}

    def write(label: str, members: list[dict], member: str = "data.safetensors") -> None:
        p = folder / (re.sub(r"[^a-z0-9]+", "-", label) + ".tuinn")
        p.write_bytes(craft(members))
        out[label] = (p, member)

    def replaced(name: str, **entry: Any) -> list[dict]:
        members = stored(parts)
        for m in members:
            if m["name"] == name:
                m.update(entry)
        return members

    write("data.safetensors of 2 GiB of zeros", replaced("data.safetensors", data=zeros, method=8, crc=crc,
                                                          size=BOMB))
    head = _safetensors_zeros_header(BOMB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH) + zeros  # the header, then the zeros (less the header)
    write("a valid header over 2 GiB of zeros", replaced(
        "data.safetensors", data=stream, method=8, crc=zlib.crc32(head), size=BOMB))
    for name in ("weights.safetensors", "state.json"):
        write(f"{name}'s directory entry claims its real size; it inflates to 2 GiB", replaced(
            name, data=zeros, method=8, crc=zlib.crc32(bytes(len(parts[name]))), size=len(parts[name])), name)
    write("60000 members", stored(parts) + [{"name": f"m{i}", "data": b"", "method": 0, "crc": 0, "size": 0}
                                            for i in range(60_000)], "")
    inner = craft([{"name": "data.safetensors", "data": zeros, "method": 8, "crc": crc, "size": BOMB}])
    write("a zip bomb inside data.safetensors", replaced("data.safetensors", data=inner, method=0,
                                                          crc=zlib.crc32(inner), size=len(inner)))
    return out


def legit_session(folder: Path, rows: int) -> Path:
    """A real session of about rows * 256 bytes of data (inputs [rows, 64]), trained 2 steps."""
    text = (f"[model]\ninput_shape = [{rows}, 64]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 64\n"
            f"out_features = 1\n[data]\ninputs = {{ generate = \"rand\", shape = [{rows}, 64] }}\n"
            f"[training]\nloss = \"MSELoss\"\noptimizer = {{ type = \"Adam\", lr = 0.01 }}\nbatch_size = 4096\n")
    s = Session(loads_preset(text))
    Trainer(s).run(2)
    from tui_nn.engine.files.session_file import save_session

    return save_session(s, folder / f"legit-{rows}.tuinn")


def run_child(cases: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Every case in one child; (its answers, its whole peak resident memory in MB from wait4)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.robustness.test_hostile_sessions"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps(cases))
    proc.stdin.close()
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"the child died ({proc.returncode}): {err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def child_main() -> None:
    """One case per entry of the JSON list on stdin: load `path` with the soft RLIMIT_AS at `cap` bytes above the
    address space mapped now (and TUI_NN_MEMORY_BUDGET as `budget` says); answer what happened."""
    cases = json.loads(sys.stdin.read())
    from tui_nn.engine.files.session_file import load_session as load  # noqa: F401 - the imports, before any cap

    s = Session(loads_preset(FULL), budget=2**28)  # warm up: the first session and optimizer import code
    s.optimizer  # noqa: B018
    del s
    answers = []
    for case in cases:
        if case.get("budget"):
            os.environ["TUI_NN_MEMORY_BUDGET"] = str(case["budget"])
        else:
            os.environ.pop("TUI_NN_MEMORY_BUDGET", None)
        _reset_peak()
        before = _status("VmRSS")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _status("VmSize") + case["cap"]
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"label": case["label"]}
        try:
            session = load(case["path"])
            rec.update(outcome="loaded", step=session.step)
            del session
        except BaseException as err:  # noqa: BLE001 - the point: what comes out is recorded, whatever it is
            rec.update(outcome=type(err).__name__, message=str(err)[:500], member=getattr(err, "member", None),
                       engine=isinstance(err, EngineError), session_error=isinstance(err, SessionFileError))
        rec["seconds"] = time.perf_counter() - t0
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        rec["peak_mb"] = (_status("VmHWM") - before) / 2**20
        answers.append(rec)
    print(json.dumps(answers), flush=True)


def test_zip_bombs_are_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    files = bombs(tmp_path)
    legit = legit_session(tmp_path, 200_000)  # about 51 MB
    size_mb = legit.stat().st_size / 2**20
    cases = [{"label": label, "path": str(p), "cap": CHILD_CAP} for label, (p, _) in files.items()]
    cases += [{"label": "a legitimate session", "path": str(legit), "cap": 4 * CHILD_CAP},
              {"label": "a legitimate session over the address-space cap", "path": str(legit),
               "cap": int(size_mb * 2**20 * 0.5)},
              {"label": "a legitimate session over the cap, the budget set above it", "path": str(legit),
               "cap": int(size_mb * 2**20 * 0.5), "budget": 10**12}]
    answers, child_peak = run_child(cases)
    by = {a["label"]: a for a in answers}
    for label, (p, member) in files.items():
        a = by[label]
        counts.add("session loader", "inputs")
        assert a["outcome"] == "SessionFileError", a
        assert a["message"].startswith(f"{p}: {member}" if member else f"{p}: not a tui-nn session file"), a
        assert (a["member"] or "") == member and (not member or member in MEMBERS), a
        assert a["seconds"] < TIME_LIMIT and a["peak_mb"] < REFUSAL_MB, a
        counts.add("session loader", "refused")
        counts.add("hostile sessions", "bombs refused")
        counts.peak("hostile sessions", "peak MB of a refusal", round(a["peak_mb"], 1))
        counts.peak("hostile sessions", "slowest refusal s", round(a["seconds"], 3))
    ok = by["a legitimate session"]
    assert ok["outcome"] == "loaded" and ok["step"] == 2, ok
    assert ok["peak_mb"] < 1.5 * size_mb + 32, (ok, size_mb)  # about its own size (was 3.5x: 735 MB for 209 MB)
    counts.peak("hostile sessions", "peak MB of a legitimate load per MB of file", round(ok["peak_mb"] / size_mb, 2))
    for label in ("a legitimate session over the address-space cap",
                  "a legitimate session over the cap, the budget set above it"):
        a = by[label]
        assert a["outcome"] == "SessionFileError" and a["message"].startswith(str(legit)), a
        assert ("not enough memory" in a["message"]) or ("memory budget" in a["message"]), a
        counts.add("hostile sessions", "refused under an address-space cap, as SessionFileError")
    counts.peak("hostile sessions", "child peak MB (wait4)", round(child_peak, 1))


# -- generated directory entries, in this process -------------------------------------------------------------


_ZEROS: list[bytes] = []


def _zeros_stream() -> bytes:
    if not _ZEROS:
        _ZEROS.append(_zeros_deflated(256 << 20)[0])
    return _ZEROS[0]


@st.composite
def lying_archive(draw: Any) -> bytes:
    parts = base()
    members = stored(parts)
    for _ in range(draw(st.integers(1, 3))):
        m = members[draw(st.integers(0, len(members) - 1))]
        body = draw(st.sampled_from(["zeros", "real deflated", "random", "real", "empty"]))
        if body == "zeros":
            m.update(data=_zeros_stream(), method=8)
        elif body == "real deflated":
            m.update(data=zlib.compress(parts[m["name"]])[2:-4], method=8)
        elif body == "random":
            m.update(data=draw(st.binary(max_size=600)))
        elif body == "empty":
            m.update(data=b"")
        m["size"] = draw(st.one_of(st.just(m["size"]), st.integers(0, 2**32 - 1), st.integers(0, 4096),
                                   st.sampled_from([0, 1, 8, len(parts[m["name"]]), 256 << 20, 2**32 - 1])))
        m["method"] = draw(st.one_of(st.just(m["method"]), st.sampled_from([0, 8, 12, 14, 99])))
        m["flags"] = draw(st.sampled_from([0, 0, 0, 1, 8]))
        m["crc"] = draw(st.one_of(st.just(m["crc"]), st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        extra = dict(members[draw(st.integers(0, len(members) - 1))])
        members.insert(draw(st.integers(0, len(members))), extra)  # a name twice
    return craft(members)


@SETTINGS
@given(lying_archive())
def test_generated_directory_entries_are_refused_or_load(blob: bytes) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"tui-nn-hostile-{os.getpid()}.tuinn"
    path.write_bytes(blob)
    measured = _reset_peak()
    before = _status("VmRSS")

    def load() -> None:
        s = load_session(path)
        if s.trainable:
            assert Trainer(s).run(2).reason in ("done", "nonfinite")

    err = attempt("session loader", load, named=session_named(str(path)))
    peak = (_status("VmHWM") - before) / 2**20
    if err is not None and measured:
        assert peak < REFUSAL_MB, (peak, err)
        counts.peak("hostile sessions", "peak MB of a refusal", round(peak, 1))
    counts.add("hostile sessions", "generated archives")


# -- saves never replace a session that loads with one that does not ---------------------------------------------


@SETTINGS
@given(st.sampled_from(["none", "weight", "bias", "buffer", "optimizer", "inputs"]),
       st.sampled_from([float("nan"), float("inf"), float("-inf")]), st.integers(0, 10**6))
def test_autosaves_never_replace_a_loadable_session(tmp_path_factory: pytest.TempPathFactory, where: str,
                                                    value: float, index: int) -> None:
    tmp = tmp_path_factory.mktemp("autosave")
    s = Session(loads_preset(FULL), budget=2**28)
    Trainer(s).run(3)
    auto = Autosave(tmp / "auto.tuinn")
    assert auto.save_if_changed(s)
    good = auto.path.read_bytes()
    target = {"none": None, "weight": s.model[0].weight, "bias": s.model[0].bias, "buffer": s.model[1].running_var,
              "optimizer": s.optimizer.state[s.model[0].weight]["exp_avg"], "inputs": s.inputs}[where]
    if target is None:
        Trainer(s).run(1)  # the control: a good step, saved
    else:
        with torch.no_grad():
            target.view(-1)[index % target.numel()] = value
        s.step += 1  # a changed session (what a run ending with a non-finite value leaves)
    lost = 0
    try:
        wrote = auto.save_if_changed(s)
    except AutosaveSkipped as err:
        wrote = False
        assert where != "none" and "so this state was not autosaved" in str(err), err
        assert "the last good autosave is kept" in str(err)
        counts.add("saves", "autosaves skipped (the file would not reopen)")
        lost += auto.path.read_bytes() != good
    try:
        back = load_session(auto.path)
        lost += wrote and back.step != s.step
    except EngineError:
        lost += 1
    counts.add("saves", "autosaves tried")
    counts.add("saves", "lost sessions", int(lost))
    assert not lost
    assert wrote == (where == "none")


if __name__ == "__main__":
    child_main()
