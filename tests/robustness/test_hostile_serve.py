"""Hostile clients of `tui-nn serve` (every one holding the token, as every student of a class does).

* generated terminal sizes, in the websocket's query and in `resize` messages (huge, negative, zero, floats,
  NaN and infinity as JSON text, digits past Python's int limit, strings, booleans, null, lists), mixed with junk
  messages (not JSON, not a list, deep nesting, binary frames, keys with lone surrogates), sent to a running
  server: the size each app is given (recorded where textual-serve's AppService receives it) never exceeds
  MAX_WIDTH x MAX_HEIGHT and is the clamp of what was asked, and the server answers a ping after each session;
* generated Host headers: only loopback names get in, and the server keeps serving;
* real sessions (apps with their trainer processes) behind a server that then gets kill -9: no process is left.

The first two run the server in this process with a recording AppService (no app processes: fast); the last
starts real ones, so its number of sessions is small and bounded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import re
import signal
import threading
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli.test_serve import (
    PRESET,
    alive,
    descendants,
    environ,
    kill_all,
    kind,
    start_serve,
    stop_serve,
    wait_for_kinds,
    wait_gone,
)
from tui_nn.cli import serve
from tui_nn.cli.serve import MAX_HEIGHT, MAX_WIDTH

from . import counts

CI_EXAMPLES = 40
EXAMPLES = counts.examples(CI_EXAMPLES)
LONG = "TUI_NN_FUZZ_EXAMPLES" in os.environ
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=list(HealthCheck))
TOKEN = "hostile-serve-test-token"
EVENTS: list[tuple[str, int, int]] = []  # what the recording AppService was given: ("start" | "resize", w, h)
_INT = re.compile(r"[+-]?[0-9]{1,12}")


# -- the oracle: what the server must hand on, written apart from serve.py ------------------------------

def want_query(text: str | None, default: int, high: int) -> int:
    if text is None:
        return default
    text = text.strip(" \t")
    if not (text.isascii() and _INT.fullmatch(text)):
        return default
    return max(1, min(int(text), high))


def want_resize(data: Any) -> tuple[int, int] | None:
    if not isinstance(data, dict):
        return None
    out = []
    for key, high in (("width", MAX_WIDTH), ("height", MAX_HEIGHT)):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            return None
        out.append(max(1, min(int(v), high)))
    return out[0], out[1]


# -- a server in this process, with an AppService that records instead of starting apps --------------------

@pytest.fixture(scope="module")
def inproc():
    from textual_serve.app_service import AppService

    class Recorder(AppService):
        async def start(self, width: int, height: int) -> None:
            EVENTS.append(("start", width, height))

        async def set_terminal_size(self, width: int, height: int) -> None:
            EVENTS.append(("resize", width, height))

        async def send_bytes(self, data: bytes) -> bool:
            assert isinstance(data, bytes)
            return True

        async def blur(self) -> None:
            pass

        async def focus(self) -> None:
            pass

        async def stop(self) -> None:
            pass

    class RecordingServer(serve._make_server_class()):
        service_class = Recorder

    server = RecordingServer("true", host="127.0.0.1", port=0, token=TOKEN, title="t")
    loop = asyncio.new_event_loop()
    up = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    future = asyncio.run_coroutine_threadsafe(serve._serve(server, "127.0.0.1", 0, lambda _a: up.set()), loop)
    assert up.wait(30), "the in-process server did not start"
    yield server
    future.cancel()
    time.sleep(0.2)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# -- generated input --------------------------------------------------------------------------------

SIZE_TEXT = st.one_of(
    st.integers(-10**13, 10**13).map(str),
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-inf", "1e9", "0x10", "1_000", "", " 80 ", "\u0668\u0660", "9" * 5000,
                     "+300", "80.5", "500", "501", "200", "201", "0", "-0", "1"]),
)
SIZE_JSON = st.one_of(
    st.integers(-2**70, 2**70), st.integers(-5, 600),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
    st.text(max_size=8), st.lists(st.integers(0, 9), max_size=2), st.dictionaries(st.text(max_size=3), st.none(),
                                                                                   max_size=1),
)
RAW_JUNK = st.sampled_from([
    '["resize", {"width": NaN, "height": 24}]', '["resize", {"width": 80, "height": Infinity}]',
    '["resize", {"width": -Infinity, "height": 24}]', '["resize", {"width": 1e999, "height": 24}]',
    '["resize", {"width": ' + "9" * 5000 + ', "height": 24}]', "[" * 50_000 + "]" * 50_000,
    "not json", "", "{}", "[]", "[1, 2]", "null", '"resize"', '["resize"]', '["resize", null]',
    '["resize", [80, 24]]', '["stdin", 12]', '["stdin"]', '["stdin", "\\ud800"]', '["ping"]', '["blur", 1]',
    '["focus"]', '["unknown", {}]', '[["resize"], {"width": 80, "height": 24}]',
])
MESSAGE = st.one_of(
    st.builds(lambda w, h: ("json", ["resize", {"width": w, "height": h}]), SIZE_JSON, SIZE_JSON),
    st.builds(lambda d: ("json", ["resize", d]), st.one_of(st.none(), st.integers(), st.text(max_size=4))),
    RAW_JUNK.map(lambda t: ("text", t)),
    st.text(max_size=20).map(lambda t: ("json", ["stdin", t])),
    st.binary(max_size=16).map(lambda b: ("bytes", b)),
)


def ws_url(server: Any, query: dict[str, str]) -> str:
    return f"ws://127.0.0.1:{server.port}/ws?" + urlencode({"token": TOKEN, **query})


LONGEST_LINE = 8190  # aiohttp refuses a longer request line (400)


async def one_session(server: Any, query: dict[str, str], messages: list[tuple[str, Any]]) -> bool:
    """Send `messages` in a session, then a ping: True once its pong came back (every message handled), False
    when the handshake was refused for a request line longer than aiohttp takes."""
    import aiohttp

    url = ws_url(server, query)
    async with aiohttp.ClientSession() as client:
        try:
            ws = await client.ws_connect(url, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as err:
            assert err.status == 400 and len(url) > LONGEST_LINE - 40, (err.status, len(url))
            return False
        async with ws:
            for how, item in messages:
                if how == "json":
                    await ws.send_str(json.dumps(item))
                elif how == "text":
                    await ws.send_str(item)
                else:
                    await ws.send_bytes(item)
            await ws.send_str(json.dumps(["ping", "after"]))  # answered once every message before it is handled
            while True:
                reply = await asyncio.wait_for(ws.receive(), 20)
                assert reply.type == aiohttp.WSMsgType.TEXT, reply
                if json.loads(reply.data) == ["pong", "after"]:
                    return True


@SETTINGS
@given(width=st.one_of(st.none(), SIZE_TEXT), height=st.one_of(st.none(), SIZE_TEXT),
       messages=st.lists(MESSAGE, max_size=25))
def test_generated_sizes_never_reach_an_app_unclamped(inproc, width, height, messages):
    query = {k: v for k, v in (("width", width), ("height", height)) if v is not None}
    EVENTS.clear()
    if not asyncio.run(one_session(inproc, query, messages)):
        assert EVENTS == []  # refused before any app was started
        counts.add("serve", "over-long requests refused")
        return
    want = [("start", want_query(width, 80, MAX_WIDTH), want_query(height, 24, MAX_HEIGHT))]
    for how, item in messages:
        if how == "json" and item[0] == "resize" and (size := want_resize(item[1])) is not None:
            want.append(("resize", *size))
    got = list(EVENTS)
    assert all(1 <= w <= MAX_WIDTH and 1 <= h <= MAX_HEIGHT for _, w, h in got), got
    assert got == want
    resizes = [item[1] for how, item in messages if how == "json" and item[0] == "resize"]
    counts.add("serve", "sessions")
    counts.add("serve", "resize messages", len(resizes))
    counts.add("serve", "junk messages", sum(1 for how, _ in messages if how != "json"))
    asked = [abs(v) for d in resizes if isinstance(d, dict) for v in d.values()
             if isinstance(v, int) and not isinstance(v, bool)]
    counts.peak("serve", "largest size asked (digits)", len(str(max(asked, default=0))))


def test_the_hostile_example_of_the_issue(inproc):
    """`/ws?width=50000&height=50000`, then resizes to 50000 x 50000 and 10^30 x -1: the app gets 500 x 200."""
    EVENTS.clear()
    assert asyncio.run(one_session(inproc, {"width": "50000", "height": "50000"},
                                   [("json", ["resize", {"width": 50000, "height": 50000}]),
                                    ("json", ["resize", {"width": 10**30, "height": -1}])]))
    assert EVENTS == [("start", 500, 200), ("resize", 500, 200), ("resize", 500, 1)]


HOST_TEXT = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
            max_size=40),
    st.from_regex(r"\A[a-z0-9.:\[\]%-]{0,30}\Z"),
    st.builds(lambda h, p: f"{h}:{p}", st.sampled_from(["127.0.0.1", "localhost", "[::1]", "evil.example",
                                                        "127.0.0.1.evil.example", "[::ffff:127.0.0.1]", "10.0.0.1",
                                                        "a.localhost", "[::1", "::1"]),
              st.integers(-5, 70000)),
)


def _loopback_name(value: str) -> bool:
    """The oracle: the name a Host header gives is a loopback address or a localhost name."""
    import ipaddress

    try:
        host = urlsplit("//" + value.strip(" \t")).hostname
    except ValueError:
        return False
    if host is None:
        return False
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


@SETTINGS
@given(host=HOST_TEXT)
def test_generated_host_headers_let_only_loopback_names_in(inproc, host):
    conn = http.client.HTTPConnection("127.0.0.1", inproc.port, timeout=10)
    try:
        conn.putrequest("GET", f"/?token={TOKEN}", skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        status = conn.getresponse().status
    finally:
        conn.close()
    assert status in (302, 400, 403), status
    if status == 302:
        assert _loopback_name(host), host
    counts.add("serve", "host headers")
    counts.add("serve", f"host headers {status}")
    conn = http.client.HTTPConnection("127.0.0.1", inproc.port, timeout=10)  # still serving
    try:
        conn.request("GET", f"/?token={TOKEN}")
        assert conn.getresponse().status == 302
    finally:
        conn.close()


# -- real sessions, then kill -9 of the server ------------------------------------------------------------

SESSIONS = min(counts.examples(2), 6)  # each is an app and a trainer process (a few hundred MB)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc for the process tree")
def test_killing_a_server_with_hostile_sessions_leaks_no_process():
    import aiohttp

    s, _ = start_serve(PRESET, "--port", "0")
    tree: list[int] = []

    async def sessions() -> None:
        async with aiohttp.ClientSession() as client:
            sockets = []
            for i in range(SESSIONS):
                q = urlencode({"token": s.token, "width": str(50000 * (i + 1)), "height": str(-i)})
                ws = await client.ws_connect(f"ws://127.0.0.1:{s.port}/ws?{q}")
                await ws.send_str(json.dumps(["resize", {"width": 10**9, "height": 10**9}]))
                sockets.append(ws)
            await asyncio.to_thread(wait_for_kinds, s.proc.pid, {"app", "trainer", "tracker"})
            deadline = time.monotonic() + 120
            while sum(kind(p) == "trainer" for p in alive(descendants(s.proc.pid))) < SESSIONS:
                assert time.monotonic() < deadline, "the apps did not start their trainer processes"
                await asyncio.sleep(0.2)
            tree.extend(descendants(s.proc.pid))
            for pid in tree:
                if kind(pid) == "app":
                    env = environ(pid)
                    assert (env["COLUMNS"], env["ROWS"]) == (str(MAX_WIDTH), "1")
            os.kill(s.proc.pid, signal.SIGKILL)
            for ws in sockets:
                await ws.close()

    try:
        asyncio.run(sessions())
        s.proc.wait(timeout=10)
        assert sum(kind(p) == "app" for p in tree) == SESSIONS
        left = wait_gone(tree)
        counts.add("serve", "served processes killed with the server", len(tree))
        counts.add("serve", "leaked processes", len(left))
        assert len(left) == 0, left
    finally:
        kill_all(tree)
        stop_serve(s)
