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
  on 127.0.0.1:other-port is the same "site" and would otherwise send the cookie).

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
import re
import secrets
import shlex
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
TOKEN_PARAM = "token"
COOKIE_PREFIX = "tui_nn_token_"
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


def app_command(preset: str | None) -> str:
    """The shell command textual-serve runs for each browser session (`exec`: the app replaces the
    shell, so that stopping a session reaches the app itself)."""
    argv = [sys.executable, "-m", "tui_nn"]
    if preset is not None:
        path = Path(preset)
        argv.append(str(path.resolve()) if path.exists() else preset)
    return "exec " + shlex.join(argv)


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


def make_token_middleware(token: str, cookie_name: Any) -> Any:
    """An aiohttp middleware that lets through only requests with the token (query) or its cookie.

    `cookie_name` is a callable returning the cookie's name (it holds the port, known after binding)."""
    from aiohttp import hdrs, web

    def forbidden() -> web.Response:
        return web.Response(status=403, text=FORBIDDEN_TEXT, headers=_SECURITY_HEADERS)

    @web.middleware
    async def token_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        name = cookie_name()
        by_query = _same(request.query.get(TOKEN_PARAM), token)
        if not by_query and not _same(request.cookies.get(name), token):
            return forbidden()
        is_websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
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
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    class TokenServer(Server):
        """textual-serve's Server behind `token_middleware`, with per-request URLs and sessions that
        are stopped (and, failing that, killed) when the server stops."""

        def __init__(self, command: str, *, host: str, port: int, token: str, title: str) -> None:
            super().__init__(command, host=host, port=port, title=title)
            self.token = token
            self.sessions: set[AppService] = set()

        def cookie_name(self) -> str:
            return f"{COOKIE_PREFIX}{self.port}"

        def _template_loader(self) -> jinja2.BaseLoader:
            page = (Path(self.templates_path) / "app_index.html").read_text(encoding="utf-8")
            return jinja2.DictLoader({"app_index.html": _EXTERNAL_LINK.sub("", page)})

        async def _make_app(self) -> web.Application:
            app = web.Application(middlewares=[make_token_middleware(self.token, self.cookie_name)])
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
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws_base + str(request.app.router["websocket"].url_for()),
                "config": {"static": {"url": base + static}},
                "application": {"name": self.title},
            }

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            websocket = web.WebSocketResponse(heartbeat=15)
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            service: AppService | None = None
            try:
                await websocket.prepare(request)
                service = AppService(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                     close=websocket.close, download_manager=self.download_manager,
                                     debug=self.debug)
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


async def _serve(server: Any, host: str, port: int, ready: Any) -> None:
    from aiohttp import web

    app = await server._make_app()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, _strip_brackets(host), port)
        await site.start()
        addresses = runner.addresses
        server.port = addresses[0][1] if addresses else port
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
    from .engine.bundled import bundled_presets, find_bundled

    if Path(preset).exists() or find_bundled(preset) is not None:
        return None
    from .engine.errors import did_you_mean  # no torch import

    names = [b.stem for b in bundled_presets()]
    return f"{preset}: no such file or bundled preset{did_you_mean(Path(preset).stem, names)}"


def cmd_serve(preset: str | None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    from .cli import EXIT_OK, _fail

    if preset is not None and (message := _check_preset(preset)):
        return _fail(message, "`tui-nn presets` lists the bundled presets")
    try:
        server_class = _make_server_class()
    except ImportError as err:
        return _fail(f"serving needs textual-serve, which is not installed ({err})",
                     "pip install 'tui-nn[serve]'  (or: pip install textual-serve)")
    warning = bind_warning(host, port)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    token = secrets.token_urlsafe(32)
    command = app_command(preset)
    server = server_class(command, host=host, port=port, token=token, title=f"tui-nn {preset or ''}".strip())

    def ready(addresses: list[Any]) -> None:
        bound = ", ".join(_bound_text(str(a[0]), a[1]) for a in addresses) or _bound_text(host, server.port)
        url = f"http://{_url_host(host)}:{server.port}/?{TOKEN_PARAM}={token}"
        print(f"tui-nn serve: serving `{command.removeprefix('exec ')}` (one per browser tab), "
              f"listening on {bound}", flush=True)
        if is_wildcard(host):
            print("From other machines, use this machine's address in place of the one below.", flush=True)
        print(f"Open this URL in a browser (it holds the access token; keep it private):\n\n    {url}\n\n"
              "Press Ctrl+C to stop.", flush=True)

    try:
        asyncio.run(_serve(server, host, port, ready))
    except OSError as err:
        return _fail(f"cannot listen on {host}:{port}: {err.strerror or err}",
                     "another program may use the port: try --port 0 (a free one) or another --port")
    except KeyboardInterrupt:  # pragma: no cover - the signal handlers normally catch it
        pass
    print("tui-nn serve: stopped", file=sys.stderr)
    return EXIT_OK


__all__ = ["add_parser", "app_command", "bind_warning", "cmd_serve", "dispatch", "is_loopback",
           "make_token_middleware"]
