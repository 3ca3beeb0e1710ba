"""Goals 3, 6 and 7: the real app (`python -m tui_nn PRESET`) under a pseudo-terminal, 80x24, TERM=xterm-256color.

A reader thread timestamps every chunk the app writes. Start-up: fork -> the first chunk that draws the tab
bar (first frame: the one ui/splash.py writes before Textual is imported; the next chunk that draws it again is
Textual's own first paint, an informational line); -> the first chunk with the preset's preview (its layers and
shapes on screen, keys act on tabs, table and help; the status says "loading PyTorch…"): interactive; -> the
first chunk whose status bar says " ready " (torch loaded, the session built: training and edits act), an
informational line. The launches use
compiled bytecode, as every launch after a user's first does (`compileall` first; PYTHONDONTWRITEBYTECODE,
set on the lab VM, would make each launch compile the app's modules again). Output rate: bytes per second
written while a run trains at full speed with the Train tab (the loss plot) on screen. Key -> frame: a key byte
written into the pty master while training, timed to the first chunk that shows its effect: `l` on the Train tab
(the plot's title gains "(log scale)"; turned off again between presses), and, as an extra line, tab switches
`1` (Layers tab: its table header "in → out") and `3` (Train tab: its "shuffle" label), alternately, so that each
marker can only come from its key.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from .measure import line, percentile

ROOT = Path(__file__).resolve().parent.parent


def long_lab004(steps: int = 10**9) -> str:
    """The lab004 preset with a run long enough to train at full speed for the whole measurement."""
    from tui_nn.engine.files.bundled import find_bundled

    src = find_bundled("lab004-hand-set-network")
    assert src is not None
    text = src.read_text()
    text, n = re.subn(r"(?m)^steps\s*=\s*\d+", f"steps = {steps}", text)
    assert n == 1, "lab004 preset: no steps line"
    path = Path(tempfile.mkdtemp(prefix="tui-nn-bench-")) / "lab004-long.toml"
    path.write_text(text)
    return str(path)


class Pty:
    def __init__(self, args: list[str], cols: int = 80, rows: int = 24) -> None:
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows),
                   PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("TEXTUAL", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: the app on the pty's slave side
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.chdir(ROOT)
                os.execve(sys.executable, [sys.executable, "-m", "tui_nn", *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.chunks: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:
                data = b""
            now = time.perf_counter()
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                self.chunks.append((now, data))
                self.cond.notify_all()

    def mark(self) -> int:
        with self.lock:
            return len(self.chunks)

    def wait_for(self, marker: bytes, start: int, timeout: float) -> float | None:
        """perf_counter time of the first chunk from index `start` on whose text (with the previous chunk's
        tail, in case the marker straddles two reads) contains `marker`."""
        found = self.find(marker, start, timeout)
        return None if found is None else found[0]

    def find(self, marker: bytes, start: int, timeout: float) -> tuple[float, int] | None:
        """(time, index) of that chunk."""
        end = time.perf_counter() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.chunks):
                    prev = self.chunks[i - 1][1][-len(marker):] if i > start else b""
                    if marker in prev + self.chunks[i][1]:
                        return self.chunks[i][0], i
                    i += 1
                left = end - time.perf_counter()
                if left <= 0 or self.closed:
                    return None
                self.cond.wait(left)

    def bytes_between(self, t1: float, t2: float) -> int:
        with self.lock:
            return sum(len(b) for t, b in self.chunks if t1 <= t < t2)

    def send(self, data: bytes) -> float:
        t = time.perf_counter()
        os.write(self.fd, data)
        return t

    def close(self) -> None:
        try:
            os.write(self.fd, b"\x11")  # ctrl+q
        except OSError:
            pass
        end = time.time() + 3
        while time.time() < end:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        self.reader.join(1)
        try:
            os.close(self.fd)
        except OSError:
            pass


FIRST_FRAME = b"1 Layers"
PREVIEW = "loading PyTorch…".encode()  # tui_nn.ui.app.PREVIEW_NOTE
READY = b" ready "
MARK_LAYERS = "in → out".encode()
MARK_TRAIN = b"shuffle"
MARK_LOG = b"(log scale)"


def measure(quick: bool = False) -> list[str]:
    out: list[str] = []
    startup_first: list[float] = []
    startup_preview: list[float] = []
    startup_ready: list[float] = []
    startup_textual: list[float] = []
    import compileall

    compileall.compile_dir(str(ROOT / "tui_nn"), quiet=1)  # what a user's first launch leaves behind
    for _ in range(1 if quick else 3):  # start-up: the median of a few launches
        p = Pty(["lab004-hand-set-network"])
        try:
            found = p.find(FIRST_FRAME, 0, 30)
            first = found[0] if found else None
            again = p.find(FIRST_FRAME, found[1] + 1, 30) if found else None  # Textual's paint over the splash
            textual = again[0] if again else None
            preview = p.wait_for(PREVIEW, 0, 60)
            ready = p.wait_for(READY, 0, 60)
            for got, into in ((first, startup_first), (textual, startup_textual), (preview, startup_preview),
                              (ready, startup_ready)):
                if got is not None:
                    into.append(got - p.t0)
        finally:
            p.close()
    f = percentile(startup_first, 0.5)
    v = percentile(startup_preview, 0.5)
    r = percentile(startup_ready, 0.5)
    n = len(startup_first)
    x = percentile(startup_textual, 0.5)
    out.append(line("startup_first_frame", f"{f * 1000:.0f} ms (median of {n} launches; the frame drawn before "
                    "Textual is imported, ui/splash.py)", "<= 500 ms", f <= 0.5))
    out.append(line("startup_textual_frame", f"{x * 1000:.0f} ms (Textual's first paint of the same frame)",
                    "informational", None))
    out.append(line("startup_interactive", f"{v * 1000:.0f} ms (the preset's layers and shapes on screen, keys "
                    "act; torch still loading)", "<= 2000 ms", v <= 2.0))
    out.append(line("startup_engine_ready", f"{r * 1000:.0f} ms (torch loaded, session built: training acts)",
                    "informational", None))

    p = Pty([long_lab004()])
    try:
        if p.wait_for(READY, 0, 60) is None:
            raise RuntimeError("the app did not load the preset")
        time.sleep(0.3)
        i = p.mark()
        p.send(b"3")
        p.wait_for(MARK_TRAIN, i, 10)
        time.sleep(0.3)
        for _ in range(30):  # `r` is refused while the app is still busy after the first ready frame
            i = p.mark()
            p.send(b"r")
            if p.wait_for(b" running ", i, 2) is not None:
                break
        if p.wait_for(b"ETA", i, 60) is None:  # the status shows an ETA once the first report is in
            raise RuntimeError("the run did not start")
        time.sleep(1.0)  # the trainer process up to speed
        window = 2.0 if quick else 6.0
        t1 = time.perf_counter()
        time.sleep(window)
        t2 = time.perf_counter()
        rate = p.bytes_between(t1, t2) / (t2 - t1)
        out.append(line("ssh_bytes_per_s_80x24", f"{rate / 1000:.1f} KB/s (training, Train tab, plot live)",
                        "<= 20 KB/s", rate <= 20_000))

        presses = 10 if quick else 60  # a p95 of 40 presses is their second-slowest
        # `l` (log scale on): the plot's title gains "(log scale)"; turned off again, untimed, between presses
        lat, missed = [], 0
        for _ in range(presses):
            time.sleep(0.3)
            i = p.mark()
            t = p.send(b"l")
            seen = p.wait_for(MARK_LOG, i, 5)
            if seen is None:
                missed += 1
            else:
                lat.append(seen - t)
            p.send(b"l")
            time.sleep(0.5)  # linear again, and no log-scale frame still in flight
        p50, p95 = percentile(lat, 0.5) * 1000, percentile(lat, 0.95) * 1000
        extra = f", {missed} not seen" if missed else ""
        out.append(line("key_to_frame_p50", f"{p50:.1f} ms (`l` log scale, {len(lat)} presses while training{extra})",
                        "<= 20 ms", p50 <= 20))
        out.append(line("key_to_frame_p95", f"{p95:.1f} ms", "<= 50 ms", p95 <= 50))
        # tab switches (`1` Layers, `3` Train, alternately): Textual restyles and lays out the whole pane
        tabs, missed = [], 0
        for k in range(presses // 2):
            key, marker = (b"1", MARK_LAYERS) if k % 2 == 0 else (b"3", MARK_TRAIN)
            time.sleep(0.3)
            i = p.mark()
            t = p.send(key)
            seen = p.wait_for(marker, i, 5)
            if seen is None:
                missed += 1
            else:
                tabs.append(seen - t)
        extra = f", {missed} not seen" if missed else ""
        out.append(line("key_to_frame_tab_switch", f"p50 {percentile(tabs, 0.5) * 1000:.1f} ms, p95 "
                        f"{percentile(tabs, 0.95) * 1000:.1f} ms ({len(tabs)} switches while training{extra})",
                        "informational", None))
    finally:
        p.close()
    return out
