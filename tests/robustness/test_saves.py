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
from tui_nn.engine.files.preset_read import loads_preset
from tui_nn.engine.files.preset_write import save_preset
from tui_nn.engine.files.session_file import load_session, save_session, session_bytes
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

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


@pytest.mark.parametrize("via", ["file", "symlink"])
def test_sigkill_while_saving_never_loses_the_previous_session(tmp_path: Path, via: str) -> None:
    """Also through a symbolic link (saves follow it: storage.py), in another folder than the file it names: the
    temporary files are made beside the target, the link stays a link to it. A quarter of the kills there."""
    rnd = random.Random(int(os.environ.get("TUI_NN_KILL_SEED", "7")))
    kills = KILLS if via == "file" else max(KILLS // 4, 8)
    replay = Replay()
    real = tmp_path / "work.tuinn"
    path = real
    if via == "symlink":
        (tmp_path / "links").mkdir()
        path = tmp_path / "links" / "work.tuinn"
        path.symlink_to(os.path.join("..", "work.tuinn"))
    save_session(replay.session, path)
    assert real.is_file() and not real.is_symlink()
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
    for i in range(kills):
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
        if via == "symlink":  # the link is intact, and nothing was left beside it
            assert path.is_symlink() and os.readlink(path) == os.path.join("..", "work.tuinn")
            assert sorted(p.name for p in path.parent.iterdir()) == ["start.tuinn", "work.tuinn"]
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
        counts.add("saves", "SIGKILLs" + (" through a symlink" if via == "symlink" else ""))
        counts.add("saves", "SIGKILLs after a complete save, previous session intact")
        # the next kill starts from the original session again
        path.write_bytes(start)
    counts.add("saves", "kills inside save_session (serialising, writing or renaming)", in_save)
    counts.add("saves", "kills that left a temp file (mid-write)", mid_write)
    counts.add("saves", "kills just after a save finished (the newer file)", newer)
    counts.add("saves", "lost sessions", 0)
    print(f"{kills} kills ({via}), each after a complete save; {in_save} inside a save ({mid_write} mid-write), {newer} "
          f"found the newer file, "
          f"{len(steps_seen)} different steps on disk; one train-and-save {per_save * 1000:.1f} ms")
    assert in_save >= kills // 4, f"only {in_save} of {kills} kills fell inside a save"
    if via == "file":  # (a quarter of the kills through the link may miss every write by chance: p ~ 0.16 at 25)
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
    import tui_nn.engine.files.atomic as storage

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


# -- saves through symbolic links: followed to the file they name (storage.py) ------------------------------------

LINK_ENDS = ["file", "new file", "missing folder", "loop", "folder", "fifo"]
TINY = """
[model]
input_shape = [4, 2]
[[model.layers]]
type = "Linear"
in_features = 2
out_features = 1
[training]
seed = 2
"""


def _tree(root: Path) -> dict[str, tuple[str, Any]]:
    """Everything under root: links with what they say, files with their bytes, folders and FIFOs by kind."""
    out: dict[str, tuple[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("folder", None)
            elif p.is_file():
                out[rel] = ("file", p.read_bytes())
            else:
                out[rel] = ("other", None)
    return out


def test_generated_symlink_chains_are_followed_or_refused_and_nothing_else_changes(tmp_path: Path) -> None:
    """Random chains of 1-6 links (relative or absolute, spread over folders) that end in a session file, a new file
    in an existing folder, a file in a folder that does not exist, a loop, a folder or a FIFO. A save through the
    first link writes exactly the file at the end (created if new), with every link intact and no temporary file
    left; the other ends are refused with a message that says why, and nothing at all changes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    s = Session(loads_preset(TINY), budget=2**28)
    Trainer(s).run(3)
    runs = {"n": 0}

    @settings(max_examples=counts.examples(30), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(length=st.integers(1, 6), end=st.sampled_from(LINK_ENDS), data=st.data())
    def check(length: int, end: str, data: Any) -> None:
        runs["n"] += 1
        root = tmp_path / f"case{runs['n']}"
        folders = [root / "a", root / "a" / "b", root / "c"]
        for f in folders:
            f.mkdir(parents=True)
        links = [data.draw(st.sampled_from(folders)) / f"link{i}.tuinn" for i in range(length)]
        target = data.draw(st.sampled_from(folders)) / "target.tuinn"
        if end == "missing folder":
            target = root / "nowhere" / "target.tuinn"
        elif end == "file":
            save_session(Session(loads_preset(TINY), budget=2**28), target)  # an older session there (step 0)
        elif end == "folder":
            target.mkdir()
        elif end == "fifo":
            os.mkfifo(target)
        ends = links[data.draw(st.integers(0, length - 1))] if end == "loop" else target
        for i, link in enumerate(links):
            to = links[i + 1] if i + 1 < length else ends
            relative = data.draw(st.booleans())
            link.symlink_to(os.path.relpath(to, link.parent) if relative else to)
        before = _tree(root)
        if end in ("file", "new file"):
            assert save_session(s, links[0]) == links[0]
            after = _tree(root)
            changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
            assert changed == {str(target.relative_to(root))}, changed  # the target, and nothing else
            assert load_session(links[0]).step == 3 == load_session(target).step
            assert not target.is_symlink()
            counts.add("saves", f"saved through {length} symlinks to a {end}")
        else:
            with pytest.raises(EngineError) as info:
                save_session(s, links[0])
            text = str(info.value)
            want = {"missing folder": "whose folder does not exist", "loop": "never reaches a file",
                    "folder": "a folder", "fifo": "not a regular file"}[end]
            assert text.startswith(f"cannot save {links[0]}: ") or end == "folder" and text.startswith(str(links[0]))
            assert want in text, text
            assert _tree(root) == before, "a refused save changed something"
            counts.add("saves", f"refused through symlinks: {end}")

    check()
    assert runs["n"] >= min(counts.examples(30), 10)


def test_a_preset_saved_through_a_symlink_keeps_its_csv_path_right(tmp_path: Path) -> None:
    """save_preset rebases a relative CSV path onto the folder the file is written to: that of the link's target."""
    from tui_nn.engine.files.preset_read import load_preset

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "points.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n")
    (tmp_path / "links").mkdir()
    preset = loads_preset('[model]\ninput_shape = [4, 1]\n[[model.layers]]\ntype = "Linear"\nin_features = 1\n'
                          'out_features = 1\n[data]\ncsv = { path = "points.csv", features = ["x"], target = "y" }\n',
                          source=str(tmp_path / "data" / "p.toml"))
    link = tmp_path / "links" / "p.toml"
    link.symlink_to(os.path.join("..", "data", "p.toml"))
    save_preset(preset, link)
    assert link.is_symlink() and (tmp_path / "data" / "p.toml").is_file()
    again = load_preset(link)
    assert Session(again, budget=2**28).inputs.shape[0] == 4
