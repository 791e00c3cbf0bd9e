"""serve's web page: its static files and its WebSocket, on a thread and event loop of their own.

``WebServer`` serves the files of ``static/`` (and nothing else) over HTTP, and at ``/ws`` a
WebSocket that speaks ``protocol.py``: each control the page sends goes through
``Controls.handle_message`` like an OSC message, and the state (the controls, where the sound
is, the status) goes back to every page at most ``STATE_HZ`` times a second.

The clock's thread is never touched: the page's messages only store values in ``Controls``,
as OSC's do, and the state is read (``Controls.snapshot`` and the ``status`` callable) from
this server's own thread.

Security: the WebSocket needs the token (``?token=``, from the URL's ``#token`` that serve
prints) and an Origin that is the page's own host; ``allow`` refuses other senders' HTTP and
WebSocket alike; a page sends at most ``RATE`` messages a second; oversized and bad messages
are counted (``stats``) and dropped.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import secrets
import threading
from collections import Counter
from http import HTTPStatus
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ...errors import VraeLiveError
from ..controls import Controls
from ..osc.server import IpNetwork, SenderFilter
from . import protocol

log = logging.getLogger(__name__)

STATE_HZ = 30  # state updates a second to each page, at most: smooth enough for a trail
RATE, BURST = 120, 60  # control messages a second a page may send (a finger at 60 Hz uses half)
MAX_FRAME = 16 * 1024  # bytes: websockets closes a connection whose message is larger
MAX_PAGES = 16  # open WebSockets at once
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


def new_token() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, 72 bits


def static_files() -> dict[str, tuple[bytes, str]]:
    """``/path -> (body, content type)`` for every file of ``static/``; ``/`` is ``index.html``."""
    files = {}
    for item in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in CONTENT_TYPES:
            files["/" + item.name] = (item.read_bytes(), CONTENT_TYPES[suffix])
    files["/"] = files["/index.html"]
    return files


class WebServer:
    """The page and its WebSocket on ``host``:``port``, from ``start()`` to ``stop()`` (or ``with``).

    ``status()`` gives the live part of the state (a dict of JSON values) and is called from
    this server's thread; ``model``, ``window_map`` and ``axes`` (the pad edges' labels) are sent once
    to each page.
    ``stats`` counts ``pages`` (WebSockets opened), ``messages`` and, dropped: ``oversized``,
    ``binary``, ``bad_json``, ``unknown_control``, ``bad_seq``, ``flood`` (over the rate), and
    ``refused`` (HTTP or WebSocket turned away: token, Origin, ``allow`` or too many pages).
    """

    def __init__(self, controls: Controls, host: str = "0.0.0.0", port: int = 8000, *, token: str | None = None,
                 allow: tuple[IpNetwork, ...] = (), model: str = "", window_map: dict[str, Any] | None = None,
                 status: Callable[[], dict[str, Any]] = dict, axes: dict[str, Any] | None = None) -> None:
        self.controls, self.host, self.port = controls, host, port
        self.token = token or new_token()
        self.senders = SenderFilter(allow)
        self.model, self.window_map, self.status, self.axes = model, window_map, status, axes
        self.stats: Counter[str] = Counter()
        self.files = static_files()
        self._pages: set[ServerConnection] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.address: tuple[str, int] | None = None

    # -- life

    def start(self) -> "WebServer":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="vrae-web", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            self._thread.join(2)
            raise self._error
        if self.address is None:
            raise VraeLiveError(f"the web page did not start on {self.host}:{self.port} within 10 s")
        return self

    def stop(self, timeout: float = 2.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the web server did not stop within %.1f s", timeout)
            self._thread = None

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        try:
            server = await serve(self._talk, self.host, self.port, process_request=self._check_request,
                                 max_size=MAX_FRAME, max_queue=64, compression=None, server_header=None)
        except OSError as err:
            what = "already in use (another vrae-live?)" if err.errno == errno.EADDRINUSE else (err.strerror or str(err))
            self._error = VraeLiveError(f"web port {self.port} on {self.host}: {what}; choose another with "
                                        f"--web-port, or --web-port 0 for no page")
            self._ready.set()
            return
        async with server:
            self.address = server.sockets[0].getsockname()[:2]
            self._ready.set()
            updates = asyncio.create_task(self._send_state())
            await self._stop
            updates.cancel()
            for page in list(self._pages):
                await page.close()

    # -- HTTP: the files, and the WebSocket's door

    def _refuse(self, connection: ServerConnection, status: HTTPStatus, why: str) -> Response:
        self.stats["refused"] += 1
        log.debug("web: refused %s: %s", connection.remote_address[0], why)
        return connection.respond(status, why + "\n")

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self.senders.obeys(connection.remote_address[0]):
            return self._refuse(connection, HTTPStatus.FORBIDDEN, "not in --allow")
        url = urlsplit(request.path)
        if url.path != "/ws":
            if url.path not in self.files:
                return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
            body, content_type = self.files[url.path]
            headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                               ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")])
            return Response(HTTPStatus.OK, "OK", headers, body)
        token = parse_qs(url.query).get("token", [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._refuse(connection, HTTPStatus.FORBIDDEN, "wrong token")
        origin, host = request.headers.get("Origin", ""), request.headers.get("Host", "")
        if urlsplit(origin).netloc != host or not host:
            return self._refuse(connection, HTTPStatus.FORBIDDEN, f"origin {origin!r} is not this page's")
        if len(self._pages) >= MAX_PAGES:
            return self._refuse(connection, HTTPStatus.SERVICE_UNAVAILABLE, "too many pages open")
        return None

    # -- the WebSocket

    async def _talk(self, page: ServerConnection) -> None:
        self.stats["pages"] += 1
        self._pages.add(page)
        limit = protocol.RateLimit(RATE, BURST, self._loop.time)
        try:
            await page.send(protocol.hello(self.model, self.window_map, self.status(), self.controls.snapshot(),
                                            self.axes))
            async for text in page:
                self.stats["messages"] += 1
                if not limit.allow():
                    self.stats["flood"] += 1
                    continue
                try:
                    address, args, seq = protocol.parse_control(text)
                except protocol.Ignored as ignored:
                    self.stats[ignored.reason] += 1
                    continue
                self.controls.handle_message(address, args)
                if seq is not None:
                    await page.send(protocol.applied(seq))
        except ConnectionClosed:
            pass
        finally:
            self._pages.discard(page)

    async def _send_state(self) -> None:
        last = None
        while True:
            await asyncio.sleep(1 / STATE_HZ)
            if not self._pages:
                last = None
                continue
            try:
                message = protocol.state_message(self.controls.snapshot(), self.status())
            except Exception:
                log.debug("web: status failed", exc_info=True)
                continue
            if message != last:
                last = message
                for page in list(self._pages):
                    try:
                        await page.send(message)
                    except ConnectionClosed:
                        pass

    # -- what serve prints

    def urls(self) -> list[str]:
        from ..osc.server import listen_addresses

        host, port = self.address
        places = listen_addresses(host, port) or [f"127.0.0.1:{port}"]
        return [f"http://{place}/#{self.token}" for place in places]

    def line(self) -> str:
        dropped = {k: v for k, v in self.stats.items() if k not in ("pages", "messages")}
        return (f"web: {self.stats['pages']} pages, {self.stats['messages']} messages"
                + (f", ignored or refused {dropped}" if dropped else ""))
