"""Starting the trainer process before this process has imported torch.

The trainer process (runner.py) imports torch and torch._dynamo itself, about 4 s on the lab VM. Spawned
only once the app's own session is built, a first run waited for it seconds after the app said ready. This
module has no torch import: the app spawns the process once the preset's preview is drawn (spawned at the first
frame, it slowed the preview), so both processes import torch at the same time on different cores, and the app's
`ProcessRunner` adopts the process (`take`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

CTX = multiprocessing.get_context("spawn")  # the context torch.multiprocessing hands out too
_lock = threading.Lock()
_started: tuple[Any, Any, Any, int] | None = None  # (process, parent end of the pipe, stop event, threads)


def wants_process(prefer: str = "process") -> bool:
    """Whether the app trains in a trainer process (not with TUI_NN_RUNNER=thread)."""
    return os.environ.get("TUI_NN_RUNNER", prefer) != "thread"


def default_threads() -> int:
    return max(1, (os.cpu_count() or 1) - 1)  # leave a core to the UI


@contextmanager
def spawnable_std_streams() -> Iterator[None]:
    """A UI framework may replace sys.stdout/sys.stderr with capture objects that have no real file
    descriptor, and multiprocessing hands sys.stderr's descriptor to the processes it starts. Point
    such streams at os.devnull while spawning."""

    def usable(stream: Any) -> bool:
        try:
            return stream is not None and stream.fileno() >= 0
        except (AttributeError, OSError, ValueError):
            return False

    saved = sys.stdout, sys.stderr
    if usable(saved[0]) and usable(saved[1]):
        yield
        return
    null = open(os.devnull, "w")  # noqa: SIM115 - closed below
    try:
        sys.stdout = saved[0] if usable(saved[0]) else null
        sys.stderr = saved[1] if usable(saved[1]) else null
        yield
    finally:
        sys.stdout, sys.stderr = saved
        null.close()


class StopFlag:
    """The stop request shared with the trainer process: one byte of shared memory and no lock. (A
    multiprocessing Event takes a lock to read or to set; a trainer process killed while it held that lock, in
    the middle of its every-step check, left the app blocked for ever in its next `set()`, on quitting.)"""

    def __init__(self) -> None:
        self._flag = CTX.RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        self._flag.value = True

    def clear(self) -> None:
        self._flag.value = False

    def is_set(self) -> bool:
        return bool(self._flag.value)


def new_stop_event() -> StopFlag:
    with spawnable_std_streams():  # shared memory may start multiprocessing's resource tracker
        return StopFlag()


def child_entry(conn: Any, stop: Any, threads: int,
                parent: tuple[int, bool] | None = None) -> None:  # pragma: no cover - runs in the child process
    if parent is not None:  # before torch's import (seconds): the process ends with the app, SIGKILL included
        from .lifeline import arm

        arm(parent[0], pdeathsig=parent[1])
    from .child import _child_main  # torch is imported here, in the trainer process

    _child_main(conn, stop, threads)


def spawn(stop: Any, threads: int) -> tuple[Any, Any]:
    """Start a trainer process; (the process, this side of its pipe).

    The process ends when this one does, however this one ends (engine/lifeline.py): it watches this process's
    pid, and on Linux the kernel signals it too, but only when it is started from the main thread. The app
    starts it from a thread worker, which exits long before the app does, and the kernel's parent-death
    signal follows the starting thread, not the process."""
    parent, child = CTX.Pipe(duplex=True)
    lifeline = (os.getpid(), threading.current_thread() is threading.main_thread())
    proc = CTX.Process(target=child_entry, args=(child, stop, threads, lifeline), daemon=True,
                       name="tui-nn-trainer")
    with spawnable_std_streams():
        proc.start()
    child.close()
    return proc, parent


def prestart(threads: int | None = None) -> None:
    """Spawn the trainer process now, for the next ProcessRunner to adopt; once."""
    global _started
    with _lock:
        if _started is not None:
            return
        n = threads or default_threads()
        stop = new_stop_event()
        proc, conn = spawn(stop, n)
        _started = (proc, conn, stop, n)


def take(threads: int) -> tuple[Any, Any, Any] | None:
    """The pre-started process (process, pipe, stop event) if there is a live one for `threads` threads."""
    global _started
    with _lock:
        got, _started = _started, None
    if got is None:
        return None
    proc, conn, stop, n = got
    if n == threads and proc.is_alive():
        return proc, conn, stop
    end(proc, conn)
    return None


def discard() -> None:
    """End a pre-started process no runner took (the app quit before its first load)."""
    global _started
    with _lock:
        got, _started = _started, None
    if got is not None:
        end(got[0], got[1])


def end(proc: Any, conn: Any, timeout: float = 0.2) -> None:
    """Stop a trainer process: ask it to quit, then terminate it after `timeout` seconds (kill if wedged)."""
    try:
        conn.send(("quit",))
    except (OSError, ValueError):
        pass
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout)
    if proc.is_alive():  # pragma: no cover - a wedged child
        proc.kill()
    try:
        conn.close()
    except OSError:  # pragma: no cover
        pass
