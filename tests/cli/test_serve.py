"""`tui-nn serve`: the app in a browser behind an access token, on loopback unless asked.

Every server here listens on 127.0.0.1 on a free port (`--port 0`) and every request goes to it; the
one `--host 0.0.0.0` run is stopped as soon as its warning is printed and is sent nothing. The
browser test drives Debian's Chromium (/usr/bin/chromium, /usr/bin/chromedriver; CI installs them
with apt) through selenium, with the paths given so that selenium downloads nothing, and with every
host name but 127.0.0.1 mapped to nowhere.
"""

from __future__ import annotations

import http.client
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_nn.cli.serve import (
    MAX_HEIGHT,
    MAX_MESSAGE,
    MAX_WIDTH,
    HostCheck,
    bind_warning,
    bounded_int,
    is_loopback,
    is_websocket_upgrade,
    parse_envelope,
    query_size,
    resize_size,
    split_host_header,
)

PRESET = "lab000-shallow-forward"
CHROMIUM = os.environ.get("TUI_NN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TUI_NN_CHROMEDRIVER", "/usr/bin/chromedriver")
URL_RE = re.compile(r"http://\S+/\?token=[A-Za-z0-9_-]+")


@dataclass
class Served:
    proc: subprocess.Popen
    url: str  # with the token
    host: str
    port: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.url.rsplit("=", 1)[1]


def _pump(stream, sink: list[str], q: queue.Queue | None) -> None:
    for line in stream:
        sink.append(line)
        if q is not None:
            q.put(line)


def start_serve(*args: str, wait_for: re.Pattern | str = URL_RE, timeout: float = 30) -> tuple[Served | None, str]:
    """Start `tui-nn serve ARGS`; return it once a stdout or stderr line matches `wait_for`."""
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    served = Served(proc, "", "", 0)
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, served.stdout, q), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, served.stderr, q), daemon=True).start()
    pattern = re.compile(wait_for) if isinstance(wait_for, str) else wait_for
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if m := pattern.search(line):
            if pattern is URL_RE:
                served.url = m.group(0)
                parts = urlsplit(served.url)
                served.host, served.port = parts.hostname or "", parts.port or 0
            return served, line
    stop_serve(served)
    pytest.fail(f"`tui-nn serve {' '.join(args)}` did not print {pattern.pattern!r}:\n"
                f"{''.join(served.stdout)}{''.join(served.stderr)}")


def stop_serve(served: Served) -> int:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait(timeout=10)
    return served.proc.returncode


@pytest.fixture(scope="module")
def served():
    s, _ = start_serve(PRESET, "--port", "0")
    yield s
    assert stop_serve(s) == 0, "".join(s.stderr)


def request(served: Served, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    assert served.host == "127.0.0.1"  # never anything but loopback
    conn = http.client.HTTPConnection(served.host, served.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


# -- binding ----------------------------------------------------------------------------------------

def _listening(port: int) -> list[str]:
    """Local addresses listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes them)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(name)
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            cols = row.split()
            addr, hexport = cols[1].split(":")
            if cols[3] == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.append(f"{name[-4:]}:{addr}")
    return found


def test_binds_only_loopback_by_default(served):
    assert served.host == "127.0.0.1"
    assert f"listening on 127.0.0.1:{served.port}\n" in "".join(served.stdout)
    assert not any("WARNING" in line for line in served.stderr)
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to list listening sockets")
    assert _listening(served.port) == ["/tcp:0100007F"]  # 127.0.0.1 only, no IPv6, no wildcard


# -- the token ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/?token=wrong", "/?token=", "/static/js/textual.js",
                                  "/static/css/xterm.css", "/download/abc", "/nothing", "/ws"])
def test_requests_without_the_token_are_rejected(served, path):
    r = request(served, path)
    assert r.status == 403
    assert b"access token" in r.body and b"textual" not in r.body.lower()
    assert "Set-Cookie" not in r.headers


def test_websocket_without_the_token_is_rejected(served):
    assert request(served, "/ws", WS_HEADERS).status == 403
    assert request(served, "/ws", {**WS_HEADERS, "Cookie": f"tui_nn_token_{served.port}=wrong"}).status == 403
    # the right cookie under another port's name does not count either
    assert request(served, "/ws", {**WS_HEADERS, "Cookie": f"tui_nn_token_1={served.token}"}).status == 403


def test_the_token_sets_a_cookie_and_the_cookie_lets_the_page_in(served):
    r = request(served, f"/?token={served.token}&fontsize=14")
    assert r.status == 302
    assert r.headers["Location"] == "/?fontsize=14"  # the token leaves the address bar
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"tui_nn_token_{served.port}={served.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    jar = {"Cookie": f"tui_nn_token_{served.port}={served.token}"}

    page = request(served, "/?fontsize=14", jar)
    assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    html = page.body.decode()
    assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws"' in html
    assert f"http://127.0.0.1:{served.port}/static/js/textual.js" in html
    assert "googleapis" not in html  # the served page calls nothing outside
    for path in ("/static/js/textual.js", "/static/css/xterm.css"):
        assert request(served, path, jar).status == 200
        assert request(served, f"{path}?token={served.token}").status == 200
    assert request(served, "/nothing", jar).status == 404


def test_a_websocket_from_another_origin_is_rejected(served):
    jar = {"Cookie": f"tui_nn_token_{served.port}={served.token}"}
    for origin in ("http://127.0.0.1:1", "http://evil.example", f"http://localhost:{served.port}", "null"):
        assert request(served, "/ws", {**WS_HEADERS, **jar, "Origin": origin}).status == 403, origin


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _wait_no_children(pid: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (kids := _children(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not kids, f"sessions still running: {kids}"


def _open_session(s: Served, size: str = "width=80&height=24"):
    """A websocket session (the token in the query, no browser): the server starts an app for it."""
    import socket

    sock = socket.create_connection((s.host, s.port), timeout=10)
    sock.sendall((f"GET /ws?token={s.token}&{size} HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in WS_HEADERS.items()) + "\r\n").encode())
    assert sock.recv(64).startswith(b"HTTP/1.1 101 ")
    return sock


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc for child processes")
def test_stopping_the_server_stops_its_sessions():
    s, _ = start_serve("--port", "0")
    sock = None
    try:
        sock = _open_session(s)
        deadline = time.monotonic() + 15
        cmdline: list[bytes] = []
        while time.monotonic() < deadline:  # the shell textual-serve starts becomes the app (exec)
            kids = _children(s.proc.pid)
            try:
                cmdline = Path(f"/proc/{kids[0]}/cmdline").read_bytes().split(b"\0") if kids else []
            except OSError:
                cmdline = []
            if cmdline[1:3] == [b"-m", b"tui_nn"]:
                break
            time.sleep(0.1)
        assert len(kids) == 1 and cmdline[1:3] == [b"-m", b"tui_nn"], (kids, cmdline)
        time.sleep(1.0)
    finally:
        assert stop_serve(s) == 0, "".join(s.stderr)
        if sock is not None:
            sock.close()
    assert not [k for k in kids if Path(f"/proc/{k}").exists()], "the session's app outlived the server"


# -- processes: each session's app, its trainer process and multiprocessing's resource tracker -----

def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter), from /proc/*/stat."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                rest = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry.name)] = (int(rest[1]), rest[0])
    return table


def descendants(pid: int) -> list[int]:
    table = process_table()
    kids: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        kids.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` still running (a zombie, dead but not yet reaped, counts as gone)."""
    table = process_table()
    return [p for p in pids if p in table and table[p][1] not in ("Z", "X")]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def kind(pid: int) -> str:
    """What a descendant of the server is: "app", "trainer", "tracker" or "other"."""
    text = cmdline(pid)
    if "-m tui_nn" in text:
        return "app"
    if "multiprocessing.spawn" in text:
        return "trainer"
    if "multiprocessing.resource_tracker" in text:
        return "tracker"
    return "other"


def wait_for_kinds(root: int, kinds: set[str], timeout: float = 90) -> list[int]:
    """Wait until `root`'s descendants include one of each of `kinds` (the app pre-starts its trainer once its
    preview is drawn, seconds); the descendants then."""
    deadline = time.monotonic() + timeout
    while True:
        found = descendants(root)
        if kinds <= {kind(p) for p in alive(found)} or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def wait_gone(pids: list[int], timeout: float = 15) -> list[int]:
    """Wait (at most `timeout` seconds, generous: the check is that they go, not how fast) until none of `pids`
    runs; those still running then."""
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def kill_all(pids: list[int]) -> None:
    for pid in alive(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc for the process tree")
def test_a_killed_server_takes_its_apps_trainers_and_resource_trackers_with_it():
    """kill -9 of `tui-nn serve`: nothing can stop the sessions then, so each app watches the server (and its
    trainer process the app): every process the server started goes, the trainer at work included."""
    s, _ = start_serve(PRESET, "--port", "0")
    tree: list[int] = []
    sock = None
    try:
        sock = _open_session(s, "width=50000&height=-7")
        tree = wait_for_kinds(s.proc.pid, {"app", "trainer", "tracker"})
        kinds = {p: kind(p) for p in alive(tree)}
        assert sorted(kinds.values()) == ["app", "tracker", "trainer"], {p: cmdline(p) for p in tree}
        app = next(p for p, k in kinds.items() if k == "app")
        env = environ(app)
        # the query's sizes were clamped before the app was started with them; the app knows whom to watch
        assert (env["COLUMNS"], env["ROWS"]) == ("500", "1")
        assert env["TUI_NN_LIFELINE"] == str(s.proc.pid)
        trainer = next(p for p, k in kinds.items() if k == "trainer")
        assert "TUI_NN_LIFELINE" not in environ(trainer)  # the app took it out of its environment
        os.kill(s.proc.pid, signal.SIGKILL)
        s.proc.wait(timeout=10)
        left = wait_gone(tree)
        assert not left, f"outlived the server: {[(p, cmdline(p)) for p in left]}"
    finally:
        kill_all(tree)
        stop_serve(s)
        if sock is not None:
            sock.close()


# -- the Host header: a DNS-rebinding defence ---------------------------------------------------

@pytest.mark.parametrize("value, want", [
    ("127.0.0.1:8000", ("127.0.0.1", 8000)), ("127.0.0.1", ("127.0.0.1", None)), ("[::1]:8000", ("::1", 8000)),
    ("[::1]", ("::1", None)), ("LocalHost.:80", ("localhost", 80)), (" evil.example:8000\t", ("evil.example", 8000)),
    ("[fe80::1%25eth0]:80", ("fe80::1%eth0", 80)), ("[::ffff:127.0.0.1]:9", ("::ffff:127.0.0.1", 9)),
    ("::1", None), ("[::1", None), ("[::1]x", None), ("[::1]:", None), ("[127.0.0.1]", None), ("127.0.0.1:", None),
    ("127.0.0.1:0", None), ("127.0.0.1:65536", None), ("127.0.0.1:+80", None), ("127.0.0.1:８０", None),
    ("1.2.3.4:12:3", None), ("", None), ("a b", None), ("münchen.de", None), ("-x.example", None),
    ("127.0.0.1\xa0", None), ("x" * 400, None), (None, None),
])
def test_host_header_parsing(value, want):
    assert split_host_header(value) == want


def test_host_check_names():
    loop = HostCheck("127.0.0.1")
    for host in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "localhost", "app.localhost"):
        assert loop.allowed(host), host
    for host in ("evil.example", "127.0.0.1.evil.example", "10.0.0.1", "::2", "2130706433", socket.gethostname()):
        assert not loop.allowed(host), host
    lan = HostCheck("192.168.1.20")
    assert lan.allowed("192.168.1.20") and lan.allowed("::ffff:192.168.1.20") and lan.allowed("localhost")
    assert not lan.allowed("192.168.1.21") and not lan.allowed("evil.example")
    named = HostCheck("Lab-Box.example.")
    named.add_addresses([("192.168.1.5", 8000)])  # what the name resolved to, once bound
    assert named.allowed("lab-box.example") and named.allowed("192.168.1.5") and not named.allowed("evil.example")
    v6 = HostCheck("[2001:db8::1]")
    assert v6.allowed("2001:db8::1") and v6.allowed("2001:0db8:0::1") and not v6.allowed("2001:db8::2")
    every = HostCheck("0.0.0.0")
    assert every.allowed("10.1.2.3") and every.allowed("fe80::1") and every.allowed(socket.gethostname().lower())
    assert not every.allowed("evil.example")
    assert loop.verdict([]) == "malformed" and loop.verdict(["127.0.0.1", "127.0.0.1"]) == "malformed"
    assert loop.verdict(["evil.example:1"]) == "foreign" and loop.verdict(["localhost:1"]) == "ok"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"\A[a-z0-9.:\[\]%-]{0,30}\Z"),
                 st.builds(lambda h, p: f"{h}:{p}", st.from_regex(r"\A[a-z][a-z0-9-]{0,20}(\.[a-z0-9-]{1,10}){0,3}\Z"),
                           st.integers(-10, 70000))))
def test_only_loopback_hosts_pass_a_loopback_server(value):
    check = HostCheck("127.0.0.1")
    verdict = check.verdict([value])
    assert verdict in ("ok", "malformed", "foreign")
    parsed = split_host_header(value)
    assert (verdict == "malformed") == (parsed is None)
    if verdict == "ok":
        assert is_loopback(parsed[0]), value
    if parsed is not None and not is_loopback(parsed[0]):
        assert verdict == "foreign"


def test_a_foreign_host_is_refused_on_every_path_before_the_token(served):
    """A page on evil.example whose name an attacker re-points at 127.0.0.1 talks to the server through the
    browser with Host: evil.example; even holding the token (a student in the class), it gets nothing."""
    t = served.token
    here = f"127.0.0.1:{served.port}"
    for host in (f"evil.example:{served.port}", "evil.example", f"127.0.0.1.evil.example:{served.port}",
                 f"[::2]:{served.port}", "10.0.0.1", "2130706433"):
        for path, extra in (("/?token=" + t, {}), ("/static/js/textual.js?token=" + t, {}),
                            ("/download/abc?token=" + t, {}), ("/ws?token=" + t, WS_HEADERS),
                            ("/nothing", {})):
            r = request(served, path, {**extra, "Host": host})
            assert r.status == 403, (host, path, r.status)
            assert b"answers only to the address" in r.body and "Set-Cookie" not in r.headers
    for host in ("127.0.0.1:99999", "::1", "", "127.0.0.1:80x", "ev il", "caf\xe9.example"):
        r = request(served, "/?token=" + t, {"Host": host})
        assert r.status == 400, (host, r.status)
    for host in (here, f"localhost:{served.port}", f"[::1]:{served.port}", "127.0.0.1:1", "LOCALHOST"):
        r = request(served, "/?token=" + t, {"Host": host})  # loopback under any port: an SSH tunnel's, say
        assert r.status == 302, (host, r.status)


def _raw(served: Served, lines: list[bytes]) -> bytes:
    """Send a request of raw header lines (bytes, as sent); the status line of the answer."""
    with socket.create_connection((served.host, served.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        return sock.recv(200).split(b"\r\n", 1)[0]


def test_a_request_without_a_host_or_with_two_is_refused(served):
    path = f"GET /?token={served.token} HTTP/1.1".encode()
    assert _raw(served, [path]).startswith(b"HTTP/1.0 400 ")  # aiohttp's own refusal
    assert _raw(served, [path.replace(b"1.1", b"1.0")]).startswith(b"HTTP/1.0 400 ")  # ours: HTTP/1.0 may omit it
    here = f"Host: 127.0.0.1:{served.port}".encode()
    assert b" 400 " in _raw(served, [path, here, b"Host: evil.example"])  # aiohttp's or ours
    assert b" 400 " in _raw(served, [path, here, here])
    assert _raw(served, [path, here]).startswith(b"HTTP/1.1 302 ")


def test_malformed_requests_are_one_line_each_on_the_servers_stderr_not_a_traceback(served):
    """aiohttp logged a traceback for each request it could not parse: any client, token or not, could fill the
    terminal of whoever runs the server."""
    before = len(served.stderr)
    for raw in ([b"GET / HTTP/1.1"], [b"GET /\x1b[31m HTTP/1.1", b"Host: a"], [b"GET / HTTP/1.1", b"X: \x1b]0;t\x07"]):
        assert _raw(served, raw).startswith(b"HTTP/1.0 400 ")
    deadline = time.monotonic() + 5
    while len(served.stderr) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = served.stderr[before:]
    assert lines and all(line.startswith("tui-nn serve: a request was refused (") for line in lines), lines
    assert not any("\x1b" in line for line in lines)


@pytest.mark.parametrize("upgrade", [b"websocket\xc2\xa0", b"websocket\xc2\x85", b"\xc2\xa0websocket",
                                     b"websocket\xa0", b"websocket\x85", b"websocket\x0b", b"web socket",
                                     b"websocket, h2c", b"h2c", b"websocke\xc5\xbft"])
def test_an_upgrade_header_that_is_not_exactly_websocket_is_refused(served, upgrade):
    """aiohttp strips any Unicode space from the Upgrade header, so "websocket" followed by an NBSP (or NEL)
    opened a websocket that the Origin check had not looked at (it compared the raw header)."""
    lines = [f"GET /ws?token={served.token}&width=80&height=24 HTTP/1.1".encode(),
             f"Host: 127.0.0.1:{served.port}".encode(), b"Connection: Upgrade", b"Upgrade: " + upgrade,
             b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             b"Origin: http://evil.example"]
    assert b" 400 " in _raw(served, lines)  # ours, or aiohttp's for a control character (never a 101)
    assert not _children(served.proc.pid)  # no app was started


def test_the_upgrade_token_is_case_insensitive_with_ascii_blanks():
    for value in ("websocket", "WebSocket", " websocket\t", "WEBSOCKET "):
        assert is_websocket_upgrade(value), value
    for value in ("websocket\xa0", "websocket\x85", "\u2003websocket", "websocket\n", "websockets", "",
                  "WEBſOCKET"):
        assert not is_websocket_upgrade(value), value


def test_a_websocket_with_an_odd_handshake_is_a_clear_refusal(served):
    """The /ws route takes only a websocket handshake; a broken one is a 400, not a traceback (aiohttp's own
    refusal echoed the header and failed to encode undecodable bytes)."""
    jar = {"Cookie": f"tui_nn_token_{served.port}={served.token}"}
    assert request(served, "/ws", jar).status == 400  # no Upgrade at all
    lines = [f"GET /ws?token={served.token} HTTP/1.1".encode(), f"Host: 127.0.0.1:{served.port}".encode(),
             b"Connection: Upgrade", b"Upgrade: websocket", b"Sec-WebSocket-Version: 13\xff",
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    assert _raw(served, lines).startswith(b"HTTP/1.1 400 ")  # ours: aiohttp's own refusal failed to build
    assert not any("Traceback" in line for line in served.stderr)


# -- what clients send: bounded -----------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    (None, 16), ("14", 14), ("100000", 72), ("-5", 6), ("0", 6), ("abc", 16), ("1e9", 16), ("1_4", 16), ("١٤", 16),
    (" 20 ", 20), ("9" * 5000, 16), ("+30", 30), ("14.5", 16),
])
def test_bounded_int(text, want):
    assert bounded_int(text, 16, 6, 72) == want


def test_query_and_resize_sizes_are_clamped():
    assert query_size({}) == (80, 24)
    assert query_size({"width": "50000", "height": "50000"}) == (MAX_WIDTH, MAX_HEIGHT)
    assert query_size({"width": "-3", "height": "0"}) == (1, 1)
    assert query_size({"width": "nan", "height": "1e3"}) == (80, 24)
    assert resize_size({"width": 50000, "height": 10**30}) == (MAX_WIDTH, MAX_HEIGHT)
    assert resize_size({"width": 120.7, "height": -4}) == (120, 1)
    for bad in (None, [], "80x24", {"width": 80}, {"width": True, "height": 24}, {"width": "80", "height": 24},
                {"width": float("nan"), "height": 24}, {"width": 80, "height": float("inf")},
                {"width": [80], "height": 24}, {"width": None, "height": None}):
        assert resize_size(bad) is None, bad
    assert parse_envelope('["resize", {"width": NaN, "height": 24}]') is None
    assert parse_envelope("[" * 100_000 + "]" * 100_000) is None  # nesting deeper than the JSON parser goes
    assert parse_envelope('["stdin", "' + "1" * (MAX_MESSAGE + 1) + '"]') is None
    assert parse_envelope('{"type": "resize"}') is None and parse_envelope("[1]") is None
    assert parse_envelope("[]") is None and parse_envelope("not json") is None
    assert parse_envelope('["resize", {"width": 80, "height": 24}]') == ["resize", {"width": 80, "height": 24}]


def test_the_page_font_size_is_bounded(served):
    jar = {"Cookie": f"tui_nn_token_{served.port}={served.token}"}
    for query, want in (("fontsize=100000", "72"), ("fontsize=-5", "6"), ("fontsize=abc", "16"), ("", "16"),
                        ("fontsize=" + "9" * 5000, "16"), ("fontsize=14", "14")):
        page = request(served, "/?" + query, jar)
        assert page.status == 200
        assert f'data-font-size="{want}"' in page.body.decode(), query


def test_the_textual_serve_interface_we_rely_on():
    """TokenServer replaces textual-serve's handle_index, handle_websocket and _process_messages (so that sizes
    are bounded) and uses the rest as it is: this fails loudly when an upgrade of textual-serve changes any of it."""
    import inspect

    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    from tui_nn.cli.serve import _make_server_class

    server_class = _make_server_class()
    for name in ("handle_index", "handle_websocket", "_process_messages", "_make_app", "on_shutdown"):
        assert name in server_class.__dict__, name  # ours, not inherited
    assert set(inspect.signature(Server.__init__).parameters) >= {"command", "host", "port", "title"}
    assert inspect.iscoroutinefunction(Server.handle_download)
    init = inspect.signature(AppService.__init__).parameters
    assert set(init) >= {"command", "write_bytes", "write_str", "close", "download_manager", "debug"}
    for method, args in {"start": ["width", "height"], "set_terminal_size": ["width", "height"],
                         "send_bytes": ["data"], "blur": [], "focus": [], "stop": []}.items():
        fn = getattr(AppService, method)
        assert inspect.iscoroutinefunction(fn), method
        assert list(inspect.signature(fn).parameters)[1:] == args, method
    server = server_class("true", host="127.0.0.1", port=0, token="t", title="t")
    page = (Path(server.templates_path) / "app_index.html").read_text(encoding="utf-8")
    assert "{{ font_size }}" in page and "{{ app_websocket_url }}" in page
    assert Path(server.statics_path, "js", "textual.js").exists() and server.download_manager is not None

    async def nothing(*_a):
        return None

    service = AppService("true", write_bytes=nothing, write_str=nothing, close=nothing,
                         download_manager=server.download_manager)
    assert hasattr(service, "_process")  # _stop_session kills an app that does not stop through it


# -- the warning --------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST.",
                                  "::ffff:127.0.0.1"])
def test_no_warning_on_loopback(host):
    assert is_loopback(host) and bind_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "fe80::1", "example.com", "[::]"])
def test_warning_on_other_addresses(host):
    text = bind_warning(host, 8000)
    assert not is_loopback(host) and text
    assert text.startswith("tui-nn serve: WARNING: listening on ")
    assert "plain HTTP" in text and "--host 127.0.0.1" in text and "port 8000" in text


def test_the_warning_is_printed_on_stderr_for_0000():
    # started and stopped as soon as the warning shows; nothing is sent to it
    s, line = start_serve("--host", "0.0.0.0", "--port", "0", wait_for="WARNING")
    try:
        assert line in s.stderr
        assert "every network interface" in line and "token" in line
        deadline = time.monotonic() + 30  # the address it then says it listens on is the wildcard, not loopback
        while not any("listening on" in out for out in s.stdout) and time.monotonic() < deadline:
            time.sleep(0.1)
        said = next(out for out in s.stdout if "listening on" in out)
        assert "0.0.0.0:" in said and "every network interface" in said and "127.0.0.1" not in said
    finally:
        stop_serve(s)
    assert not any("WARNING" in out for out in s.stdout)


# -- usage --------------------------------------------------------------------------------------

def test_usage_and_preset_errors():
    run = [sys.executable, "-m", "tui_nn", "serve"]
    out = subprocess.run([*run, "--port", "70000"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--port" in out.stderr
    out = subprocess.run([*run, "no-such-preset-xyz", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no such file or bundled preset" in out.stderr and "Traceback" not in out.stderr


def test_a_taken_port_is_a_clear_error():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "tui_nn", "serve", "--port", str(port)], capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in out.stderr and "--port 0" in out.stderr
    assert "Traceback" not in out.stderr and "token=" not in out.stdout


# -- a real browser -----------------------------------------------------------------------------

# Keeps a copy of the app's output (the bytes the page writes to its terminal) for the test to read:
# the terminal draws on a canvas, so the page's DOM holds no text.
CAPTURE_JS = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__tuiText = "";
  function Capturing(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") {
        window.__tuiText += decoder.decode(new Uint8Array(e.data), {stream: true});
      }
    });
    return ws;
  }
  Capturing.prototype = Native.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Capturing[k] = Native[k];
  window.WebSocket = Capturing;
})();
"""
ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b.")


def _chromium(profile: Path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: the browser test needs Debian's Chromium: "
                    "apt-get install -y chromium chromium-driver (or set TUI_NN_CHROMIUM / TUI_NN_CHROMEDRIVER)")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
                 "--disable-dev-shm-usage", "--window-size=1280,800", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def _screen_text(driver) -> str:
    return ANSI_RE.sub("", driver.execute_script("return window.__tuiText || ''"))


def _wait_for(driver, words: tuple[str, ...], since: int = 0, timeout: float = 40) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _screen_text(driver)[since:]
        if all(w in text for w in words):
            return text
        time.sleep(0.25)
    raise AssertionError(f"{words} never appeared in the app's output; its last 2000 characters: {text[-2000:]!r}")


def test_the_app_renders_in_chromium_and_takes_keys(served, tmp_path):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("TUI_NN_SERVE_SCREENSHOTS", tmp_path))
    driver = _chromium(tmp_path / "chromium-profile")
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CAPTURE_JS})
        driver.get(served.url)
        assert "token=" not in driver.current_url  # redirected, with the cookie set
        assert driver.current_url.startswith(f"http://127.0.0.1:{served.port}/")
        _wait_for(driver, ("Layers", "Tensors", "Train"))  # the app's tabs
        _wait_for(driver, ("Linear", "ReLU", "Softmax"))  # the preset, loaded: its layers in the table
        deadline = time.monotonic() + 10  # the page shows the terminal after its first bytes
        while "-first-byte" not in (driver.find_element(By.TAG_NAME, "body").get_attribute("class") or ""):
            assert time.monotonic() < deadline, "the page never showed the terminal"
            time.sleep(0.2)
        time.sleep(1.0)
        driver.save_screenshot(str(shots / "tui_nn_serve_app.png"))
        assert "Everywhere" not in _screen_text(driver)

        mark = len(_screen_text(driver))
        driver.find_element(By.CSS_SELECTOR, ".xterm-helper-textarea").send_keys("?")
        _wait_for(driver, ("Keys", "Everywhere"), since=mark, timeout=15)  # the help screen
        time.sleep(0.5)
        driver.save_screenshot(str(shots / "tui_nn_serve_help.png"))
    finally:
        driver.quit()
    if Path("/proc/self/stat").exists():
        _wait_no_children(served.proc.pid)  # the tab closed: its app stopped
