"""Child processes that end when their parent does, however the parent ends (SIGKILL included).

`tui-nn serve` starts one app per browser session, and each app starts a trainer process (and, through
multiprocessing, its resource tracker). Killed with SIGKILL, a parent cannot stop its children, so each child
watches its parent itself (`arm`), in two ways:

* on Linux, prctl(PR_SET_PDEATHSIG): the kernel sends the child a signal the moment its parent goes. The
  kernel's "parent" is the *thread* that started the child: a child started from a thread that later exits (the
  app starts its trainer process from a Textual thread worker) would be signalled too early, so the caller says
  whether the starting thread lives as long as the process (`pdeathsig=`; the main thread does);
* everywhere, a daemon thread that compares os.getppid() with the parent's pid every `interval` seconds: an
  orphan is adopted by init (or a subreaper), so a different answer means the parent is gone. The same check
  runs once right after the prctl call, which closes the race of a parent that went before the call.

A child found orphaned sends itself `sig` (SIGTERM: the default action ends the process at once) and, should a
handler keep it alive, leaves with os._exit after `GRACE` seconds. No torch and no Textual import here: the app
arms its lifeline before importing anything else (`tui_nn/__main__.py`, from $TUI_NN_LIFELINE, which the server
sets), and the trainer process before it imports torch (trainer_boot.child_entry).

multiprocessing's resource tracker needs none of this: it leaves when the last holder of its pipe's write end (the
app and its trainer processes) is gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

ENV = "TUI_NN_LIFELINE"  # the pid of the process that must outlive this one (set by `tui-nn serve`)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
INTERVAL = 0.5
GRACE = 3.0

_watched: int | None = None  # the parent pid a watcher thread of this process already compares against


def set_pdeathsig(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for `sig` when this process's parent (thread) ends; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError, TypeError, ValueError):  # pragma: no cover - no libc prctl
        return False


def orphaned(parent_pid: int) -> bool:
    """Whether the process `parent_pid` that started this one is gone (this process has another parent now)."""
    return os.getppid() != parent_pid


def _end(sig: int) -> None:
    try:
        os.kill(os.getpid(), sig)
    except OSError:  # pragma: no cover
        pass
    time.sleep(GRACE)  # a handler caught the signal and the process is still here
    os._exit(128 + int(sig))


def _watch(parent_pid: int, sig: int, interval: float) -> None:
    while not orphaned(parent_pid):
        time.sleep(interval)
    _end(sig)


def arm(parent_pid: int, *, pdeathsig: bool = True, sig: int = signal.SIGTERM, interval: float = INTERVAL) -> None:
    """End this process (with `sig`) once the process `parent_pid`, which started it, is gone.

    `pdeathsig`: also ask the kernel (Linux) for the signal; only right when the thread that started this process
    lives as long as its process (see the module's text). The watcher thread runs in every case. Ends this
    process at once if the parent is gone already."""
    global _watched
    if pdeathsig:
        set_pdeathsig(sig)
    if orphaned(parent_pid):  # it went before the kernel was asked
        _end(sig)
    if _watched == parent_pid:
        return
    _watched = parent_pid
    threading.Thread(target=_watch, args=(parent_pid, sig, interval), name="tui-nn-lifeline", daemon=True).start()


def parse_pid(text: str | None) -> int | None:
    """The pid in $TUI_NN_LIFELINE (ASCII digits, > 1), or None."""
    if text is None or not (0 < len(text) <= 10) or not text.isascii() or not text.isdigit():
        return None
    pid = int(text)
    return pid if 1 < pid < 2**31 else None


def arm_from_env() -> int | None:
    """Arm the lifeline named in $TUI_NN_LIFELINE (and take the variable out of the environment, so that this
    process's own children do not inherit it). The parent pid, or None when the variable is not set.

    Called by `python -m tui_nn` before anything else is imported: the server starts each app from its event
    loop's thread, the main thread, which lives as long as the server, so PR_SET_PDEATHSIG is right there."""
    pid = parse_pid(os.environ.pop(ENV, None))
    if pid is not None:
        arm(pid, pdeathsig=True)
    return pid


__all__ = ["ENV", "arm", "arm_from_env", "orphaned", "parse_pid", "set_pdeathsig"]
