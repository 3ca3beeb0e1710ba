"""The trainer process's main loop (runs in the child process; torch is imported there)."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.multiprocessing

from .session import Session
from .trainer import Report, Trainer, freeze_startup_objects


def _child_main(conn: Any, stop: Any, threads: int) -> None:  # pragma: no cover - runs in the child process
    # Nothing the trainer process prints may reach the terminal the app draws on.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    torch.set_num_threads(threads)
    # the first optimizer of a process imports torch._dynamo (about a second): do it before the first run
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    freeze_startup_objects()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "quit":
            return
        if msg[0] == "ping":
            conn.send(("pong",))
            continue
        _, payload = msg
        try:
            session = Session.for_worker(payload["preset"], payload["state"], payload["inputs"], payload["targets"])
            session.test_inputs, session.test_targets = payload["test"]  # evaluated at report time (metrics.py)
            session.apply_train_state(payload["session"])

            def send(r: Report) -> None:
                conn.send(("progress", r))

            fin = Trainer(session).run(payload["steps"], report=send, should_stop=stop.is_set,
                                       **payload["kwargs"])
            conn.send(("finished", fin, session.train_state()))
        except Exception as err:  # noqa: BLE001 - anything is reported, the process lives on
            from ..errors import friendly_error

            message, hint = friendly_error(err)
            conn.send(("failed", message, hint))
