"""Saves: the saving process is killed with SIGKILL at random moments, and ENOSPC is injected at random write
offsets; the previous session always loads intact.

The kill count is $TUI_NN_KILLS (CI: 100). A forked child keeps training one step and saving the session to one
file, and reports each save that returned. The parent waits for the first complete save, so there is always a
previous session to lose, then kills the child after a random delay (uniform over two train-and-save cycles, most
of which is saving: the kills land inside writes, between them, and at the rename). The file must then load, hold
the last step the child reported saved (or the next one, whose save finished but was not reported yet), and
exactly the weights of a replay of the same training at that step.
"""

from __future__ import annotations

import errno
import os
import random
import select
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tui_nn.engine.errors import EngineError
from tui_nn.engine.preset import loads_preset, save_preset
from tui_nn.engine.session import Session
from tui_nn.engine.sessionio import load_session, save_session, session_bytes
from tui_nn.engine.trainer import Trainer

from . import counts

KILLS = counts.kills(100)
PRESET = """
[model]
input_shape = [32, 64]
[[model.layers]]
type = "Linear"
in_features = 64
out_features = 256
[[model.layers]]
type = "ReLU"
[[model.layers]]
type = "Linear"
in_features = 256
out_features = 64
[training]
optimizer = { type = "Adam", lr = 0.001 }
seed = 3
"""


def new_session() -> Session:
    return Session(loads_preset(PRESET), budget=2**28)


class Replay:
    """The weights after each step of the same training (deterministic on the CPU)."""

    def __init__(self) -> None:
        self.session = new_session()
        self.weights = {0: self.state()}

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.session.model.state_dict().items()}

    def at(self, step: int) -> dict[str, torch.Tensor]:
        while self.session.step < step:
            Trainer(self.session).run(1)
            self.weights[self.session.step] = self.state()
        return self.weights[step]


def _child(path: Path, start: bytes, report_w: int) -> None:  # pragma: no cover - runs in the forked child
    try:
        p = path.with_name("start.tuinn")
        p.write_bytes(start)
        s = load_session(p)
        while True:
            Trainer(s).run(1)
            os.write(report_w, struct.pack("<I", SAVING))  # a save starts
            save_session(s, path)
            os.write(report_w, struct.pack("<I", s.step))  # this step's save returned: it is on disk
    finally:
        os._exit(0)


SAVING = 0xFFFFFFFF  # the child's report that a save has started


def _reports(r: int, timeout: float | None) -> list[int]:
    """The child's reports (SAVING, or a step saved): wait for a saved step (timeout), or read what is there
    (timeout None)."""
    out: list[int] = []
    buf = b""
    while True:
        wait = 0 if timeout is None or any(v != SAVING for v in out) else timeout
        ready, _, _ = select.select([r], [], [], wait)
        if not ready:
            break
        chunk = os.read(r, 4096)
        if not chunk:  # the child is gone
            break
        buf += chunk
        while len(buf) >= 4:
            out.append(struct.unpack("<I", buf[:4])[0])
            buf = buf[4:]
    return out


def test_sigkill_while_saving_never_loses_the_previous_session(tmp_path: Path) -> None:
    rnd = random.Random(int(os.environ.get("TUI_NN_KILL_SEED", "7")))
    replay = Replay()
    path = tmp_path / "work.tuinn"
    save_session(replay.session, path)
    start = path.read_bytes()
    # how long one train-and-save takes here, so the kills fall anywhere over a few of them
    s = load_session(path)
    t0 = time.perf_counter()
    for _ in range(5):
        Trainer(s).run(1)
        save_session(s, tmp_path / "timing.tuinn")
    per_save = (time.perf_counter() - t0) / 5
    mid_write = 0
    in_save = 0
    newer = 0  # kills after a save had finished but before the child reported it
    steps_seen = set()
    for i in range(KILLS):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os.close(r)
            _child(path, start, w)
        os.close(w)
        first = _reports(r, timeout=60)
        assert any(v != SAVING for v in first), "the child never completed a save"
        time.sleep(rnd.uniform(0, 2 * per_save))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        saved = first + _reports(r, timeout=None)
        os.close(r)
        done = [v for v in saved if v != SAVING][-1]  # the last save the child saw return
        in_save += saved[-1] == SAVING  # killed between the start of a save and its return
        temps = list(tmp_path.glob(".work.tuinn.*.tmp"))
        mid_write += bool(temps)
        for t in temps:  # what a killed save leaves behind: a temporary file, never the target
            t.unlink()
        loaded = load_session(path)  # must load: the last complete save, or one that completed after it
        step = loaded.step
        assert step in (done, done + 1), f"kill {i}: the file holds step {step}; the last complete save was {done}"
        newer += step == done + 1
        want = replay.at(step)
        got = loaded.model.state_dict()
        assert set(got) == set(want)
        for k in want:
            assert torch.equal(got[k], want[k]), f"kill {i}: {k} differs from step {step}'s weights"
        assert loaded.history.steps == step
        steps_seen.add(step)
        counts.add("saves", "SIGKILLs")
        counts.add("saves", "SIGKILLs after a complete save, previous session intact")
        # the next kill starts from the original session again
        path.write_bytes(start)
    counts.add("saves", "kills inside save_session (serialising, writing or renaming)", in_save)
    counts.add("saves", "kills that left a temp file (mid-write)", mid_write)
    counts.add("saves", "kills just after a save finished (the newer file)", newer)
    counts.add("saves", "lost sessions", 0)
    print(f"{KILLS} kills, each after a complete save; {in_save} inside a save ({mid_write} mid-write), {newer} "
          f"found the newer file, "
          f"{len(steps_seen)} different steps on disk; one train-and-save {per_save * 1000:.1f} ms")
    assert in_save >= KILLS // 4, f"only {in_save} of {KILLS} kills fell inside a save"
    assert mid_write > 0, "no kill fell inside a write: the delays are too long to test anything"


class _Full:
    """A file object whose write stores `limit` bytes and then fails with ENOSPC (or whose fsync does)."""

    def __init__(self, fd: int, limit: int, where: str) -> None:
        self.fd, self.limit, self.where = fd, limit, where

    def __enter__(self) -> "_Full":
        return self

    def __exit__(self, *exc: Any) -> None:
        os.close(self.fd)

    def write(self, data: bytes) -> int:
        if self.where == "write":
            os.write(self.fd, data[:self.limit])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(self.fd, data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd


@pytest.mark.parametrize("what", ["session", "preset"])
def test_enospc_at_random_offsets_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           what: str) -> None:
    import tui_nn.engine.storage as storage

    rnd = random.Random(11)
    s = new_session()
    Trainer(s).run(2)
    target = tmp_path / ("work.tuinn" if what == "session" else "work.toml")
    if what == "session":
        save_session(s, target)
    else:
        save_preset(s.current_preset(), target)
    before = target.read_bytes()
    Trainer(s).run(3)
    size = len(session_bytes(s)) if what == "session" else len(before)
    real_fsync = os.fsync
    trials = 60
    for i in range(trials):
        where = rnd.choice(["write", "write", "write", "fsync"])
        limit = rnd.randrange(0, size + 1)
        monkeypatch.setattr(storage.os, "fdopen", lambda fd, mode, _l=limit, _w=where: _Full(fd, _l, _w))
        if where == "fsync":
            def fsync(fd: int) -> None:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            monkeypatch.setattr(storage.os, "fsync", fsync)
        with pytest.raises((EngineError, OSError)) as info:
            if what == "session":
                save_session(s, target)
            else:
                save_preset(s.current_preset(), target)
        if what == "session":  # the session saver turns it into its own error, naming the file
            assert isinstance(info.value, EngineError) and "No space left" in str(info.value), info.value
        monkeypatch.setattr(storage.os, "fsync", real_fsync)
        monkeypatch.undo()
        assert target.read_bytes() == before, f"trial {i}: the previous file changed"
        assert [p.name for p in tmp_path.iterdir()] == [target.name], "a temporary file was left behind"
        if what == "session":
            assert load_session(target).step == 2
        counts.add("saves", f"ENOSPC injections ({what})")
