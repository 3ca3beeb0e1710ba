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
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tui_nn.serve import bind_warning, is_loopback

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


def _open_session(s: Served):
    """A websocket session (the token in the query, no browser): the server starts an app for it."""
    import socket

    sock = socket.create_connection((s.host, s.port), timeout=10)
    sock.sendall((f"GET /ws?token={s.token}&width=80&height=24 HTTP/1.1\r\nHost: {s.host}:{s.port}\r\n"
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
