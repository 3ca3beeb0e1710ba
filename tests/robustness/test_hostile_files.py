"""Hostile files: pickle payloads that would create a canary file (in a .pt, disguised as a session, as a
safetensors member, as a CSV or a preset), truncated, empty and random safetensors, an overflowing header,
weights with NaN/Inf or the wrong shape, markup in names and descriptions.

Every file goes through every loader: zero canary files, every case a clean EngineError, markup shown literally.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from safetensors.torch import save as st_save

from tests.engine.conftest import EXAMPLE
from tui_nn.engine.errors import EngineError
from tui_nn.engine.preset import load_preset, loads_preset
from tui_nn.engine.session import Session
from tui_nn.engine.sessionio import load_session, session_bytes
from tui_nn.engine.textparse import parse_tensor_text
from tui_nn.engine.trainer import Trainer

from . import counts


class Payload:
    """Unpickling this opens (creates) the canary file: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def pt_file(canary: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"0.weight": Payload(str(canary)), "0.bias": torch.zeros(3)}, buf)
    return buf.getvalue()


def raw_pickle(canary: Path) -> bytes:
    return pickle.dumps({"format": Payload(str(canary))}, protocol=2)


def base_session() -> bytes:
    s = Session(loads_preset(EXAMPLE), budget=2**28)
    Trainer(s).run(2)
    return session_bytes(s)


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def pack(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in parts.items():
            zf.writestr(name, body)
    return buf.getvalue()


def safetensors_cases(good: bytes) -> dict[str, bytes]:
    header_len = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + header_len])
    name = next(k for k in header if k != "__metadata__")

    def with_header(h: dict[str, Any], body: bytes | None = None) -> bytes:
        text = json.dumps(h).encode()
        return struct.pack("<Q", len(text)) + text + (good[8 + header_len:] if body is None else body)

    over = dict(header)
    over[name] = {**header[name], "data_offsets": [0, 2**64 - 1]}
    huge_shape = dict(header)
    huge_shape[name] = {**header[name], "shape": [2**62, 2**62]}
    neg = dict(header)
    neg[name] = {**header[name], "shape": [-1, 3]}
    return {
        "empty safetensors": b"",
        "truncated safetensors (header)": good[:5],
        "truncated safetensors (data)": good[:len(good) - 7],
        "random safetensors": os.urandom(600),
        "header length 2**64-1": struct.pack("<Q", 2**64 - 1) + good[8:],
        "header length past the end": struct.pack("<Q", len(good)) + good[8:],
        "header not JSON": struct.pack("<Q", 4) + b"\xff\xfe{[" + good[8:],
        "overflowing data offsets": with_header(over),
        "overflowing shape": with_header(huge_shape),
        "negative shape": with_header(neg),
        "deeply nested header": struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000,
    }


def loaders(tmp: Path) -> dict[str, Callable[[bytes], Any]]:
    """Every way a file reaches the engine."""
    base = members(base_session())

    def as_file(data: bytes, name: str) -> Path:
        p = tmp / name
        p.write_bytes(data)
        return p

    def session_file(data: bytes) -> Any:
        return load_session(as_file(data, "shared.tuinn"))

    def preset_file(data: bytes) -> Any:
        return Session(load_preset(as_file(data, "shared.toml")), budget=2**28)

    def member(name: str) -> Callable[[bytes], Any]:
        return lambda data: load_session(as_file(pack({**base, name: data}), f"member-{name}.tuinn"))

    def csv_file(data: bytes) -> Any:
        as_file(data, "points.csv")
        text = ("[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 2\n"
                "out_features = 1\n[data]\ncsv = { path = \"points.csv\", features = [\"x1\", \"x2\"], "
                "target = \"y\" }\n")
        return Session(load_preset(as_file(text.encode(), "csv-preset.toml")), budget=2**28)

    def weight_text(data: bytes) -> Any:
        return parse_tensor_text(data.decode("latin-1"))

    return {"load_session": session_file, "load_preset": preset_file, "weights.safetensors": member(
        "weights.safetensors"), "optimizer.safetensors": member("optimizer.safetensors"),
        "data.safetensors": member("data.safetensors"), "state.json": member("state.json"),
        "csv": csv_file, "weight text": weight_text}


def test_the_pickle_payload_does_run_code_when_unpickled(tmp_path: Path) -> None:
    """The positive control: torch.load(weights_only=False) on the .pt would create the canary."""
    canary = tmp_path / "control"
    torch.load(io.BytesIO(pt_file(canary)), weights_only=False)
    assert canary.exists()


def test_hostile_files_through_every_loader(tmp_path: Path, canary: Path) -> None:
    good_weights = members(base_session())["weights.safetensors"]
    files: dict[str, bytes] = {
        "pickle payload in a .pt": pt_file(canary),
        "raw pickle": raw_pickle(canary),
        ".pt renamed .tuinn with format.json": pack({"format.json": json.dumps(
            {"format": "tui-nn session", "version": 1}).encode(), "data.pkl": raw_pickle(canary)}),
        "pickle as every session member": pack({n: raw_pickle(canary) for n in members(base_session())}),
        "empty file": b"",
        "random bytes": os.urandom(4096),
        **safetensors_cases(good_weights),
    }
    calls = loaders(tmp_path)
    errors = 0
    for label, data in files.items():
        for via, load in calls.items():
            counts.add("hostile files", "cases")
            try:
                load(data)
            except EngineError as err:
                errors += 1
                assert str(err).strip()
            except BaseException as err:  # noqa: BLE001 - the point: nothing else may come out
                pytest.fail(f"{label} via {via}: {type(err).__name__}: {err}")
            else:
                counts.add("hostile files", "loaded")  # only possible for harmless input
                assert via in ("weight text",) or label == "random bytes" and via == "csv", (label, via)
            assert not canary.exists(), f"{label} via {via} ran code"
    counts.add("hostile files", "clean errors", errors)
    counts.add("hostile files", "code executions", int(canary.exists()))
    assert not canary.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_and_wrong_shape_weights_are_refused(tmp_path: Path, value: str) -> None:
    base = members(base_session())
    # in a session file
    from safetensors.torch import load as st_load

    weights = st_load(base["weights.safetensors"])
    bad = {k: torch.full_like(v, float(value)) for k, v in weights.items()}
    wrong = {k: v.reshape(-1)[:1] for k, v in weights.items()}
    for label, w in (("non-finite", bad), ("wrong shape", wrong)):
        p = tmp_path / f"{label}.tuinn"
        p.write_bytes(pack({**base, "weights.safetensors": st_save(w)}))
        with pytest.raises(EngineError, match=str(p)):
            load_session(p)
        counts.add("hostile files", "cases")
        counts.add("hostile files", "clean errors")
    # in a preset (TOML has nan and inf)
    text = EXAMPLE.replace("weight = [[0.1, 0.3, 0.4]", f"weight = [[{value}, 0.3, 0.4]")
    with pytest.raises(EngineError, match="model.layers"):
        Session(loads_preset(text, "nan.toml"), budget=2**28)
    with pytest.raises(EngineError, match="model.layers"):
        Session(loads_preset(EXAMPLE.replace("[0.3, 0.7, 0.9]]", "[0.3, 0.7]]"), "shape.toml"), budget=2**28)
    # typed into the weight editor
    s = Session(loads_preset(EXAMPLE), budget=2**28)
    before = s.get_param("0.weight").clone()
    for typed in (f"{value} 1 2; 3 4 5; 6 7 8", "1 2; 3 4", "[[1e999, 0, 0], [0, 0, 0], [0, 0, 0]]"):
        with pytest.raises(EngineError):
            s.set_param("0.weight", parse_tensor_text(typed) if "1e999" not in typed else typed)
    assert torch.equal(s.get_param("0.weight"), before)
    counts.add("hostile files", "cases", 5)
    counts.add("hostile files", "clean errors", 5)


MARKUP = ["[@click=app.quit]quit[/]", "[/", "[bold red]x[/bold red]", "[link=file:///etc/passwd]x[/link]", "\x1b[2J"]


async def test_markup_in_names_and_descriptions_is_shown_literally(tmp_path: Path) -> None:
    from textual.widgets import Static

    from tests.ui.helpers import loaded, wait_until
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal

    name = MARKUP[0] + " " + MARKUP[1]
    desc = "\n".join(MARKUP)
    text = EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"', f"name = {json.dumps(name)}\nlab = \"[/\"").replace(
        '"""Shown in the app as the exercise\'s instructions."""', json.dumps(desc))
    path = tmp_path / "[@click=app.quit]markup[b].toml"
    path.write_text(text)
    app = PlaygroundApp(str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert app.session.preset.name == name
        await pilot.press("5")  # the Info tab
        await pilot.pause()
        info = str(app.query_one("#info-text", Static).render())
        for m in MARKUP[:4]:
            assert m in info, m
        # a file whose error message carries markup: shown in the error dialog, literally
        bad = tmp_path / "bad[b][@click=app.quit].toml"
        bad.write_text("[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = \"[@click=app.quit]x[/]\"\n")
        app.open_preset_path(str(bad))
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal), what="the error dialog")
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "[@click=app.quit]x[/]" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
        counts.add("hostile files", "markup strings shown literally", len(MARKUP[:4]) + 1)


def test_fifos_and_devices_are_refused_not_read(tmp_path: Path) -> None:
    """A shared preset can name any path: a FIFO or a device must be refused, not block or read forever."""
    import signal

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    csv_preset = ("[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = \"Linear\"\nin_features = 2\n"
                  "out_features = 1\n[data]\ncsv = { path = \"PATH\", features = [\"x1\", \"x2\"], target = \"y\" }\n")
    cases: dict[str, Callable[[], Any]] = {
        "a FIFO as a preset": lambda: load_preset(fifo),
        "a FIFO as a session": lambda: load_session(fifo),
        "/dev/zero as a session": lambda: load_session("/dev/zero"),
        "a folder as a session": lambda: load_session(tmp_path),
    }
    for target in (str(fifo), "/dev/zero", "/dev/stdin"):
        path = tmp_path / f"csv-{len(cases)}.toml"
        path.write_text(csv_preset.replace("PATH", target))
        cases[f"{target} as a CSV file"] = lambda path=path: Session(load_preset(path), budget=2**28)

    def hang(*_a: Any) -> None:
        raise TimeoutError("blocked on a special file")

    old = signal.signal(signal.SIGALRM, hang)
    try:
        for label, load in cases.items():
            signal.alarm(10)
            with pytest.raises(EngineError, match="regular file"):
                load()
            signal.alarm(0)
            counts.add("hostile files", "cases")
            counts.add("hostile files", "clean errors")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
