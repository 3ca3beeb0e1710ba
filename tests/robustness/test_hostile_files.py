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
from tui_nn.engine.data.textparse import parse_tensor_text
from tui_nn.engine.errors import EngineError
from tui_nn.engine.files.preset_read import load_preset, loads_preset
from tui_nn.engine.files.session_file import load_session, session_bytes
from tui_nn.engine.training.session import Session
from tui_nn.engine.training.trainer import Trainer

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
    desc = "\n".join(MARKUP[:4])  # (an escape sequence in a description is refused at load: test_preset.py)
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
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "[@click=app.quit]x[/]" in shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
        counts.add("hostile files", "markup strings shown literally", len(MARKUP[:4]) + 1)


def _screen_text(app: Any) -> str:
    """What the terminal shows, line by line as plain text (markup would have become styles, not characters)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def _unwrapped(app: Any) -> str:
    """The screen's lines with box characters and padding removed and joined: text a dialog wrapped reads whole."""
    import re

    return "".join(re.sub(r"[\s│┃▎▊▌▐█╭╮╰╯─━┏┓┗┛▁▔▕▏]+", "", line) for line in _screen_text(app).splitlines())


async def test_markup_in_a_file_name_is_shown_literally(tmp_path: Path) -> None:
    """A preset file named `[@click=app.quit]x[b].toml` (and no [preset] name, so the app names it after the file):
    the name and the path appear literally in the status bar, the Info tab, the instructions' title, the save
    dialog and on screen; a broken file with markup in its name is named literally in the error dialog."""
    from textual.widgets import Input, Static

    from tests.ui.helpers import loaded, wait_until
    from tui_nn.ui.app import PlaygroundApp
    from tui_nn.ui.screens.dialogs import ErrorModal, SaveModal

    stem = "[@click=app.quit]x[b]"
    path = tmp_path / f"{stem}.toml"
    path.write_text(EXAMPLE.replace('name = "Hand-set 3-3-3-3 network"\n', ""))
    app = PlaygroundApp(str(path))
    shown = 0
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        assert app.session.preset.name == stem  # named after the file
        status = app.query_one("#status").text.plain
        assert stem in status, status
        # on screen: in the status bar and as the instructions' border title
        assert _screen_text(app).count(stem) >= 2, _screen_text(app)
        shown += 2
        await pilot.press("5")  # the Info tab: the name and the file's path
        await pilot.pause()
        info = str(app.query_one("#info-text", Static).render())
        assert str(path) in info and stem in info, info
        assert str(path).replace(" ", "") in _unwrapped(app), _screen_text(app)
        shown += 2
        await pilot.press("1")
        await pilot.press("ctrl+s")  # the save dialog offers a name made from the file's
        await wait_until(pilot, lambda: isinstance(app.screen, SaveModal), what="the save dialog")
        assert app.screen.query_one("#save-path", Input).value == f"{stem}-mine.toml"
        shown += 1
        await pilot.press("escape")
        await pilot.pause()
        # a broken file whose name carries markup: the error names it literally
        bad = tmp_path / "[bold red]bad[red][@click=app.quit].toml"
        bad.write_text("[model]\ninput_shape = [1, 2]\n[[model.layers]]\ntype = \"Nope\"\n")
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("slash")
        app.screen.query_one("#preset-path", Input).value = str(bad)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal) and bool(app.screen.query("#error-body")),
                         what="the error dialog")
        await pilot.pause()
        body = str(app.screen.query_one("#error-body", Static).render())
        assert body.startswith(f"{bad}: model.layers[0].type: "), body
        assert "[boldred]bad[red][@click=app.quit].toml" in _unwrapped(app), _screen_text(app)
        shown += 2
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running and app.session.preset.name == stem
    counts.add("hostile files", "markup strings shown literally", shown)


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
