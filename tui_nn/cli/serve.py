"""`tui-nn serve`: the app in a web browser, through textual-serve, behind a random access token.

Off unless asked. Each browser session runs its own `python -m tui_nn [PRESET]` (textual-serve
starts one process per websocket). textual-serve has no authentication, so every request, the
page, its static files, downloads and the websocket, goes through `token_middleware`:

* `?token=T` with the right token is accepted on any path; on the page itself (`GET /`) the
  answer is a redirect to the same address without the token that sets an HttpOnly,
  SameSite=Strict cookie holding it, so the page's own static-file and websocket requests
  carry it and the token leaves the address bar (and history, and Referer headers);
* the cookie (named after the port: cookies are not port-scoped) is accepted instead;
* anything else gets 403. Tokens are compared in constant time (hmac.compare_digest);
* a websocket whose browser Origin is not this server's own address gets 403 (another page
  on 127.0.0.1:other-port is the same "site" and would otherwise send the cookie); an
  `Upgrade` header other than `websocket` (ASCII, any case, ASCII blanks around) gets 400;
* a request whose `Host` names neither the bound address, nor a loopback address or the
  name localhost, nor the name given with --host gets 400 or 403, before the token is
  looked at (a DNS-rebinding page on another name must not reach the server through the
  browser). A server bound to every interface takes any address literal and this
  machine's host name.

What a client sends is bounded before it reaches the app: terminal sizes (the websocket's
`width`/`height` query and every `resize` message) are clamped to MAX_WIDTH x MAX_HEIGHT,
the page's `fontsize` to FONT_SIZES; malformed messages are ignored; messages over
MAX_MESSAGE bytes end the session. Each app ends with the server, SIGKILL included
(engine/training/lifeline.py; its trainer process ends with it in turn, training/process.py).

Bound to 127.0.0.1 by default; any other address prints a warning on stderr. The page is
textual-serve's own, less its Google Fonts link (a served page should not call out; the font
falls back to the local monospace one), with URLs built from the request's Host so that it
works for whichever address the browser used. Exit codes as in `cli.py`: 0 ok, 1 an error
(unknown preset, textual-serve missing, the port taken), 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..engine.text import printable  # the preset path and --host are outside text

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_PARAM = "token"
COOKIE_PREFIX = "tui_nn_token_"
MAX_WIDTH, MAX_HEIGHT = 500, 200  # terminal cells a client may ask for (500 x 200: ~13 MB more than 80 x 24)
DEFAULT_SIZE = (80, 24)
FONT_SIZES = range(6, 73)  # the page's font size, pixels
DEFAULT_FONT_SIZE = 16
MAX_MESSAGE = 1 << 20  # bytes in one websocket message from the browser (a paste); more ends the session
_ASCII_BLANKS = " \t"
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,12}")  # ASCII digits only (int() also takes "1_0", " 12 ", "١٢")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"  # a DNS label (and "_", which some hosts' names hold)
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
BAD_REQUEST_TEXT = "400 Bad Request: tui-nn serve refused a malformed Host or Upgrade header.\n"
WRONG_HOST_TEXT = ("403 Forbidden: tui-nn serve answers only to the address it listens on (or localhost). Open the "
                   "URL that `tui-nn serve` printed.\n")
FORBIDDEN_TEXT = ("403 Forbidden: tui-nn serve needs its access token. Open the full URL that `tui-nn serve` "
                  "printed (it ends in ?token=...).\n")
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=\"https?://[^>]*>", re.IGNORECASE)  # the Google Fonts one
_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def add_parser(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the app in a web browser (textual-serve), with an access token",
                       description="Serve the app in a web browser through textual-serve. Every browser tab runs "
                                   "its own app. The printed URL holds a random access token; requests without "
                                   "it are refused. Bound to 127.0.0.1 unless --host says otherwise.")
    s.add_argument("preset", nargs="?", help="a preset file or a bundled preset name (default: a scratch network)")
    s.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default {DEFAULT_HOST}; anything else is reachable from other machines)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free one)")


def dispatch(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 0 <= ns.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if not ns.host.strip():
        parser.error("--host must not be empty (0.0.0.0 is every IPv4 interface)")
    return cmd_serve(ns.preset, host=ns.host.strip(), port=ns.port)


# -- addresses ------------------------------------------------------------------------------------

def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or the name localhost. Other
    names count as not loopback: they are not resolved here (no DNS traffic to decide a warning)."""
    host = _strip_brackets(host.strip()).rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def is_wildcard(host: str) -> bool:
    host = _strip_brackets(host.strip())
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def bind_warning(host: str, port: int | None = None) -> str | None:
    """The warning printed on stderr before binding `host`, or None when it is a loopback address."""
    if is_loopback(host):
        return None
    where = "every network interface" if is_wildcard(host) else f"{host}, a non-loopback address"
    on_port = f" on port {port}" if port else ""
    return (f"tui-nn serve: WARNING: listening on {where}{on_port}. Anyone who can reach this machine and gets "
            "the URL's token controls the app as you (it opens, saves and runs presets with your files). The "
            "connection is plain HTTP, not encrypted: the token and the session can be read on the network. "
            f"Unless you trust the network, keep the default --host {DEFAULT_HOST} and use an SSH tunnel "
            "(ssh -L PORT:127.0.0.1:PORT host).")


def _url_host(host: str) -> str:
    """`host` as it goes into a URL: wildcards become the loopback address, IPv6 gets brackets."""
    host = _strip_brackets(host)
    if is_wildcard(host):
        host = "::1" if ":" in host else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _bound_text(host: str, port: int) -> str:
    """The address a socket is bound to, as said to the user: a wildcard is named as such (not as loopback)."""
    host = _strip_brackets(host)
    if is_wildcard(host):
        return f"{'[::]' if ':' in host else '0.0.0.0'}:{port} (every network interface)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _canonical(host: str) -> str:
    """An address literal in its canonical form (IPv4-mapped IPv6 as IPv4), a name as it is."""
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _looks_like_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def split_host_header(value: str | None) -> tuple[str, int | None] | None:
    """(host, port) from a Host header: the host in lower case, an IPv6 address without its brackets, a name
    without a trailing dot; the port or None. None when the header is malformed (not ASCII, an IPv6 address
    without brackets, a port that is not 1-65535, a name that is not a DNS name)."""
    if value is None:
        return None
    text = value.strip(_ASCII_BLANKS)
    if not text or len(text) > 300 or not text.isascii():
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end].lower(), text[end + 1:]
        try:
            ipaddress.IPv6Address(host.replace("%25", "%", 1))  # a zone id is written %25 in a URL (RFC 6874)
        except ValueError:
            return None
        host = host.replace("%25", "%", 1)
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
        host = host.lower()
        if host.endswith("."):
            host = host[:-1]
        if not _looks_like_ip(host) and not (len(host) <= 253 and _HOST_NAME.fullmatch(host)):
            return None
    port = None
    if rest:
        digits = rest[1:]
        if not rest.startswith(":") or not (0 < len(digits) <= 5) or not digits.isdigit():
            return None
        port = int(digits)
        if not 0 < port <= 65535:
            return None
    return host, port


class HostCheck:
    """Which names a request's Host header may give (a DNS-rebinding defence): a loopback address or the name
    localhost (the URL printed, an SSH tunnel), the address or name the server was asked to bind (--host), the
    addresses it is bound to, and, for a server bound to every interface, any address literal and this
    machine's host name. Any port: a tunnel or a proxy may forward another one."""

    def __init__(self, bind_host: str) -> None:
        host = _strip_brackets(bind_host.strip()).lower()
        if host.endswith(".") and not _looks_like_ip(host):
            host = host[:-1]
        self.wildcard = is_wildcard(host)
        self.names: set[str] = {_canonical(host)}
        if self.wildcard:
            try:
                self.names.add(socket.gethostname().lower().rstrip("."))
            except OSError:  # pragma: no cover
                pass

    def add_addresses(self, addresses: Any) -> None:
        """The addresses the server's sockets are bound to (aiohttp's runner.addresses)."""
        for address in addresses:
            if isinstance(address, (tuple, list)) and address and isinstance(address[0], str):
                self.names.add(_canonical(address[0].lower()))

    def allowed(self, host: str) -> bool:
        if is_loopback(host) or _canonical(host) in self.names:
            return True
        return self.wildcard and _looks_like_ip(host)

    def verdict(self, values: list[str]) -> str:
        """"ok", "malformed" (400) or "foreign" (403) for the request's Host header values."""
        if len(values) != 1:
            return "malformed"
        parsed = split_host_header(values[0])
        if parsed is None:
            return "malformed"
        return "ok" if self.allowed(parsed[0]) else "foreign"


# -- what clients send: bounded -------------------------------------------------------------------

def bounded_int(text: str | None, default: int, low: int, high: int) -> int:
    """An integer from a query parameter, clamped into [low, high]; `default` when it is missing or not an
    integer written in ASCII digits."""
    if text is None:
        return default
    text = text.strip(_ASCII_BLANKS)
    if not _INT_TEXT.fullmatch(text):
        return default
    return min(max(int(text), low), high)


def size_value(value: Any, high: int) -> int | None:
    """A terminal size from a JSON message (an int or a finite float), clamped into [1, high]; None for
    anything else (a bool, a string, NaN, infinity, a list, null)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and math.isfinite(value):
        n = int(value)
    else:
        return None
    return min(max(n, 1), high)


def query_size(query: Any) -> tuple[int, int]:
    """The terminal size a websocket's query asks for, clamped."""
    return (bounded_int(query.get("width"), DEFAULT_SIZE[0], 1, MAX_WIDTH),
            bounded_int(query.get("height"), DEFAULT_SIZE[1], 1, MAX_HEIGHT))


def resize_size(data: Any) -> tuple[int, int] | None:
    """The clamped size of a `resize` message's data ({"width": W, "height": H}), or None when malformed."""
    if not isinstance(data, dict):
        return None
    width, height = size_value(data.get("width"), MAX_WIDTH), size_value(data.get("height"), MAX_HEIGHT)
    return None if width is None or height is None else (width, height)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number here")


def parse_envelope(text: Any) -> list[Any] | None:
    """A browser message (a JSON list whose first item is its type, a string), or None when it is not one."""
    if not isinstance(text, str) or len(text) > MAX_MESSAGE:
        return None
    try:
        envelope = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # bad JSON, NaN, an int over Python's digit limit, deep nesting
        return None
    if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
        return None
    return envelope


def app_command(preset: str | None) -> str:
    """The shell command textual-serve runs for each browser session (`exec`: the app replaces the
    shell, so that stopping a session reaches the app itself)."""
    argv = [sys.executable, "-m", "tui_nn"]
    if preset is not None:
        path = Path(preset)
        argv.append(str(path.resolve()) if path.exists() else preset)
    return "exec " + shlex.join(argv)


def served_command(preset: str | None, server_pid: int | None = None) -> str:
    """`app_command` with $TUI_NN_LIFELINE set to the server's pid: the app ends when the server does, SIGKILL
    included (engine/lifeline.py, armed by `python -m tui_nn`)."""
    from ..engine.training.lifeline import ENV

    return f"export {ENV}={os.getpid() if server_pid is None else int(server_pid)}; {app_command(preset)}"


# -- the token check ------------------------------------------------------------------------------

def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode())


def _origin_ok(request: Any) -> bool:
    """A browser's websocket names the page's origin: it must be this server's own address."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser; the token or cookie was checked already
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (request.host or "").lower()


def is_websocket_upgrade(value: str) -> bool:
    """An `Upgrade` header that asks for a websocket: the token `websocket` in any case (RFC 6455), with only
    ASCII blanks around it. (aiohttp strips any Unicode space, so "websocket\\xa0" opens a websocket there.)"""
    text = value.strip(_ASCII_BLANKS)
    return text.isascii() and text.lower() == "websocket"


def make_token_middleware(token: str, cookie_name: Any, host_check: HostCheck | None = None) -> Any:
    """An aiohttp middleware that lets through only requests with the token (query) or its cookie.

    `cookie_name` is a callable returning the cookie's name (it holds the port, known after binding).
    `host_check`: the names the Host header may give, checked first, on every request (None: not checked)."""
    from aiohttp import hdrs, web

    def forbidden(text: str = FORBIDDEN_TEXT) -> web.Response:
        return web.Response(status=403, text=text, headers=_SECURITY_HEADERS)

    def bad_request() -> web.Response:
        return web.Response(status=400, text=BAD_REQUEST_TEXT, headers=_SECURITY_HEADERS)

    @web.middleware
    async def token_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if host_check is not None:
            verdict = host_check.verdict(request.headers.getall(hdrs.HOST, []))
            if verdict != "ok":
                return bad_request() if verdict == "malformed" else forbidden(WRONG_HOST_TEXT)
        upgrades = request.headers.getall(hdrs.UPGRADE, [])
        if len(upgrades) > 1 or (upgrades and not is_websocket_upgrade(upgrades[0])):
            return bad_request()  # nothing here upgrades to anything else
        name = cookie_name()
        by_query = _same(request.query.get(TOKEN_PARAM), token)
        if not by_query and not _same(request.cookies.get(name), token):
            return forbidden()
        route = getattr(request.match_info, "route", None)
        is_websocket = bool(upgrades) or getattr(route, "name", None) == "websocket"
        if is_websocket and not _origin_ok(request):
            return forbidden()
        if by_query and request.method in ("GET", "HEAD") and request.path == "/" and not is_websocket:
            rest = [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
            response: web.StreamResponse = web.Response(
                status=302, headers={"Location": "/" + (f"?{urlencode(rest)}" if rest else "")})
            response.set_cookie(name, token, path="/", httponly=True, samesite="Strict")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # 404 and friends: still add the headers
                for key, value in _SECURITY_HEADERS.items():
                    exc.headers.setdefault(key, value)
                raise
        if not response.prepared:  # a websocket or a streamed download has sent its headers already
            for key, value in _SECURITY_HEADERS.items():
                if not (key == "Cache-Control" and request.path.startswith("/static/")):
                    response.headers.setdefault(key, value)
        return response

    return token_middleware


# -- the server -----------------------------------------------------------------------------------

def _make_server_class() -> type:
    import aiohttp_jinja2
    import jinja2
    from aiohttp import WSMsgType, web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    class TokenServer(Server):
        """textual-serve's Server behind `token_middleware`, with per-request URLs, bounded client input
        (`handle_websocket`, `_process_messages`: both ours, textual-serve's are not called) and sessions
        that are stopped (and, failing that, killed) when the server stops.

        What is used of textual-serve: Server's constructor (paths, the download manager), its
        `handle_download`, its template and static files, and AppService's public methods (its `_process`
        only to kill an app that does not stop); tests/test_serve.py checks their signatures."""

        service_class: type = AppService  # one per websocket; a test may record what it is sent

        def __init__(self, command: str, *, host: str, port: int, token: str, title: str) -> None:
            super().__init__(command, host=host, port=port, title=title)
            self.token = token
            self.hosts = HostCheck(host)
            self.sessions: set[AppService] = set()

        def cookie_name(self) -> str:
            return f"{COOKIE_PREFIX}{self.port}"

        def _template_loader(self) -> jinja2.BaseLoader:
            page = (Path(self.templates_path) / "app_index.html").read_text(encoding="utf-8")
            return jinja2.DictLoader({"app_index.html": _EXTERNAL_LINK.sub("", page)})

        async def _make_app(self) -> web.Application:
            app = web.Application(middlewares=[make_token_middleware(self.token, self.cookie_name, self.hosts)])
            aiohttp_jinja2.setup(app, loader=self._template_loader())
            app.add_routes([
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, show_index=False, name="static"),
            ])
            app.on_shutdown.append(self.on_shutdown)
            return app

        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request: web.Request) -> dict[str, Any]:
            base = f"{request.scheme}://{request.host}"
            ws_base = ("wss:" if request.scheme == "https" else "ws:") + base.split(":", 1)[1]
            static = str(request.app.router["static"].url_for(filename="/")).rstrip("/") + "/"
            return {
                "font_size": bounded_int(request.query.get("fontsize"), DEFAULT_FONT_SIZE, FONT_SIZES.start,
                                         FONT_SIZES.stop - 1),
                "app_websocket_url": ws_base + str(request.app.router["websocket"].url_for()),
                "config": {"static": {"url": base + static}},
                "application": {"name": self.title},
            }

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_MESSAGE)
            try:  # aiohttp's own refusal fails to build for a header with undecodable bytes (its text echoes it)
                ready = websocket.can_prepare(request).ok
            except Exception:  # noqa: BLE001
                ready = False
            if not ready:
                raise web.HTTPBadRequest(text="400 Bad Request: /ws takes only a websocket handshake.\n")
            width, height = query_size(request.query)
            service: AppService | None = None
            try:
                await websocket.prepare(request)
                service = self.service_class(self.command, write_bytes=websocket.send_bytes,
                                             write_str=websocket.send_str, close=websocket.close,
                                             download_manager=self.download_manager, debug=self.debug)
                self.sessions.add(service)
                await service.start(width, height)
                await self._process_messages(websocket, service)
            except asyncio.CancelledError:
                await websocket.close()
            except Exception as error:  # noqa: BLE001 - one session's failure must not stop the server
                print(f"tui-nn serve: a session failed: {error!r}", file=sys.stderr)
            finally:
                if service is not None:
                    await _stop_session(service)
                    self.sessions.discard(service)
            return websocket

        async def _process_messages(self, websocket: web.WebSocketResponse, service: AppService) -> None:
            """The browser's messages to the app: keys (`stdin`), `resize` (clamped), `ping`, `blur`, `focus`.
            A malformed message is ignored; the session goes on."""
            async for message in websocket:
                if message.type != WSMsgType.TEXT:
                    continue
                envelope = parse_envelope(message.data)
                if envelope is None:
                    continue
                kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
                if kind == "stdin":
                    if isinstance(data, str):
                        await service.send_bytes(data.encode("utf-8", "replace"))  # a lone surrogate: "?"
                elif kind == "resize":
                    size = resize_size(data)
                    if size is not None:
                        await service.set_terminal_size(*size)
                elif kind == "ping":
                    await websocket.send_json(["pong", data])
                elif kind == "blur":
                    await service.blur()
                elif kind == "focus":
                    await service.focus()

        async def on_shutdown(self, app: web.Application) -> None:
            await asyncio.gather(*(_stop_session(s) for s in list(self.sessions)), return_exceptions=True)

    return TokenServer


async def _stop_session(service: Any, timeout: float = 3.0) -> None:
    """Ask the session's app to quit; kill it if it has not after `timeout` seconds."""
    process = getattr(service, "_process", None)
    try:
        await asyncio.wait_for(asyncio.shield(service.stop()), timeout)
    except (asyncio.TimeoutError, Exception):  # noqa: BLE001
        pass
    if process is not None and process.returncode is None:
        try:
            process.kill()
        except ProcessLookupError:
            pass
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class _OneLineLog:
    """aiohttp logs a traceback on stderr for every malformed request ("Error handling request"): any client
    could fill the server's terminal with them. This says it in one line, without the request's text, and
    stops after `limit` lines."""

    def __init__(self, limit: int = 20) -> None:
        import logging

        self.limit = limit
        self.shown = 0
        self.handler = logging.Handler()
        self.handler.emit = self.emit  # type: ignore[method-assign]

    def emit(self, record: Any) -> None:
        if self.shown > self.limit:
            return
        self.shown += 1
        if self.shown > self.limit:
            print("tui-nn serve: further refused requests are not shown", file=sys.stderr, flush=True)
            return
        error = record.exc_info[1] if record.exc_info else None
        what = type(error).__name__ if error is not None else record.levelname.lower()
        status = getattr(error, "code", None)
        print(f"tui-nn serve: a request was refused ({what}{f', {status}' if status else ''})", file=sys.stderr,
              flush=True)

    def install(self) -> None:
        """Replace any one installed before (a server started twice in one process)."""
        import logging

        log = logging.getLogger("aiohttp.server")
        for old in [h for h in log.handlers if getattr(h, "tui_nn_one_line", False)]:
            log.removeHandler(old)
        self.handler.tui_nn_one_line = True  # type: ignore[attr-defined]
        log.addHandler(self.handler)
        log.propagate = False


async def _serve(server: Any, host: str, port: int, ready: Any) -> None:
    from aiohttp import web

    _OneLineLog().install()
    app = await server._make_app()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, _strip_brackets(host), port)
        await site.start()
        addresses = runner.addresses
        server.port = addresses[0][1] if addresses else port
        server.hosts.add_addresses(addresses)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                pass
        ready(addresses)
        await stop.wait()
    finally:
        await runner.cleanup()


def _check_preset(preset: str) -> str | None:
    from ..engine.files.bundled import bundled_presets, find_bundled

    if Path(preset).exists() or find_bundled(preset) is not None:
        return None
    from ..engine.errors import did_you_mean  # no torch import

    names = [b.stem for b in bundled_presets()]
    return f"{preset}: no such file or bundled preset{did_you_mean(Path(preset).stem, names)}"


def cmd_serve(preset: str | None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    from .output import EXIT_OK, _fail

    if preset is not None and (message := _check_preset(preset)):
        return _fail(message, "`tui-nn presets` lists the bundled presets")
    try:
        server_class = _make_server_class()
    except ImportError as err:
        return _fail(f"serving needs textual-serve, which is not installed ({err})",
                     "pip install 'tui-nn[serve]'  (or: pip install textual-serve)")
    warning = bind_warning(host, port)
    if warning:
        print(printable(warning), file=sys.stderr, flush=True)
    token = secrets.token_urlsafe(32)
    command = served_command(preset)
    server = server_class(command, host=host, port=port, token=token, title=f"tui-nn {preset or ''}".strip())

    def ready(addresses: list[Any]) -> None:
        bound = ", ".join(_bound_text(str(a[0]), a[1]) for a in addresses) or _bound_text(host, server.port)
        url = f"http://{_url_host(host)}:{server.port}/?{TOKEN_PARAM}={token}"
        print(printable(f"tui-nn serve: serving `{app_command(preset).removeprefix('exec ')}` (one per browser "
                        f"tab), listening on {bound}"), flush=True)
        if is_wildcard(host):
            print("From other machines, use this machine's address in place of the one below.", flush=True)
        print(printable(f"Open this URL in a browser (it holds the access token; keep it private):\n\n    {url}"
                        "\n\nPress Ctrl+C to stop."), flush=True)

    try:
        asyncio.run(_serve(server, host, port, ready))
    except OSError as err:
        return _fail(f"cannot listen on {host}:{port}: {err.strerror or err}",
                     "another program may use the port: try --port 0 (a free one) or another --port")
    except KeyboardInterrupt:  # pragma: no cover - the signal handlers normally catch it
        pass
    print("tui-nn serve: stopped", file=sys.stderr)
    return EXIT_OK


__all__ = ["HostCheck", "add_parser", "app_command", "bind_warning", "bounded_int", "cmd_serve", "dispatch",
           "is_loopback", "is_websocket_upgrade", "make_token_middleware", "parse_envelope", "query_size",
           "resize_size", "served_command", "size_value", "split_host_header"]
