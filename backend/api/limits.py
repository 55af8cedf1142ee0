"""Request limits below the routes: body size, body time, content type (ASGI middleware), and a header timeout for
connections (uvicorn protocol classes, used by ``infogan serve``).

* Body size: a JSON route refuses a body over ``MAX_JSON_BYTES`` (1 MiB: 256 noise rows of 62 floats are ~0.35 MB)
  with 413 from ``Content-Length`` before reading, and by counting bytes as they stream when the header is absent
  (chunked) or lies. /infer-codes counts its own, larger limit (backend/api/deps.py) and is left to it.
* Body time: the whole body must arrive within ``BODY_TIMEOUT_S`` of the first read, else 408 (a client that sends
  headers and then a byte a minute holds no worker).
* Content type: a JSON route answers 415 for any other declared type, with the upload route's wording.
* Headers: uvicorn only times out idle keep-alive connections; one that connects and sends nothing, or half its
  headers, stays open. ``HeaderTimeout*`` close such a connection ``HEADER_TIMEOUT_S`` after it went quiet. They
  also answer 431 and close once a request's headers pass ``MAX_HEADER_BYTES`` still incomplete: httptools buffers
  headers without a bound (a 32 MiB header was accepted), h11 bounds them at uvicorn's 64 KiB.
* Shutdown: uvicorn lets every in-flight response finish, with no limit. ``HeaderTimeout*`` abort a connection still
  open ``SHUTDOWN_GRACE_S`` after the shutdown began, so a client that stopped reading cannot keep the process alive.
"""

from __future__ import annotations

import asyncio
import json
import weakref

from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from spec.latent import sent_text

from .responses import error_response

MAX_JSON_BYTES = 1024 * 1024
BODY_TIMEOUT_S = 20.0
HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024  # a request line and its headers: nginx's default large_client_header_buffers is 4 x 8k
# seconds an open connection gets once a shutdown (SIGTERM, SIGINT) began, before it is aborted: a model run takes
# well under 1 s, and Docker's `stop` kills the process 10 s after its SIGTERM
SHUTDOWN_GRACE_S = 5.0
OWN_BODY_PATHS = frozenset({"/infer-codes"})  # routes that read and bound their own body (multipart uploads)
_CLOSE = {"Connection": "close"}  # the rest of the body stays unread: the connection cannot be reused
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# HTTPExceptions, so that FastAPI's body parsing (which turns other errors while reading into 400) lets them
# through to the app's handler; one that escapes the app is answered here.
class _TooLarge(HTTPException):
    pass


class _TooSlow(HTTPException):
    pass


def is_json_type(ctype: str) -> bool:
    main = ctype.split(";")[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


async def _answer(scope, receive, send, status: int, detail: str) -> None:
    """The API's error body (``responses.error_response``) from the middleware, with Connection: close: the rest of
    the request's body is not read, so the connection cannot be reused."""
    await error_response(detail, status, {"connection": "close"})(scope, receive, send)


ROUTED_MEMO_SIZE = 1024  # (method, path) answers kept per app; a scanner's stream of new paths empties it, no more
# Longest path remembered (characters). The routes' own paths are short (/models/{id}/files/{name}: an id is at most
# 128); a longer one is scanned each time. Without it the memo kept each path whole: 1,000 requests with 60 KB paths
# (under the 64 KiB header limit) held +58 MiB of the server's RSS until 1,024 other paths flushed them.
ROUTED_MEMO_PATH_MAX = 512


def route_path(scope) -> str:
    """The request's path inside the app: behind a proxy that serves it under a prefix (``uvicorn --root-path
    /explorer``, or ``ROOT_PATH``), scope["path"] may hold the prefix (uvicorn puts its root path in front of every
    path), which the routes do not. Starlette's own get_route_path, which is private: a path that does not start
    with the root path (FastAPI(root_path=...) sets only the root path) is taken as it is."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


class RootPath:
    """``ROOT_PATH``: what uvicorn's --root-path does (its root path put in front of scope["path"], and set as
    scope["root_path"]), for `infogan serve`, which passes no such option. A path that already starts with it (a
    proxy that forwards the prefix) is left as it is."""

    def __init__(self, app, root_path: str):
        self.app, self.root = app, root_path

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            path, root = scope["path"], self.root
            if path != root and not path.startswith(root + "/"):
                raw = scope.get("raw_path")
                scope = {**scope, "path": root + path, **({"raw_path": root.encode() + raw} if raw else {})}
            scope = {**scope, "root_path": root}
        await self.app(scope, receive, send)


def routed(scope) -> bool:
    """Does a route of the app take this path with this method (Starlette's Match.FULL)? A mount (/static) matches
    every method in full; it answers for itself (StaticFiles: GET and HEAD, else 405), so it is not counted here.

    Remembered per app for each (method, root_path, path): scanning the route table runs every route's regex and
    was ~12 us of the event loop's time on each POST (benchmarks/middleware_cost.py). The memo is keyed by the
    table's length too, so a route added later is seen. A path longer than ``ROUTED_MEMO_PATH_MAX`` is not kept."""
    app = scope.get("app")
    routes = getattr(app, "routes", ())
    key = (len(routes), scope["method"], scope.get("root_path", ""), scope["path"])
    memo = _routed_memo(app)
    found = memo.get(key)
    if found is None:
        found = any(not isinstance(route, Mount) and route.matches(scope)[0] == Match.FULL for route in routes)
        if len(scope["path"]) + len(key[2]) > ROUTED_MEMO_PATH_MAX:
            return found
        if len(memo) >= ROUTED_MEMO_SIZE:
            memo.clear()
        memo[key] = found
    return found


_MEMOS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _routed_memo(app) -> dict:
    try:
        return _MEMOS[app]
    except KeyError:
        return _MEMOS.setdefault(app, {})
    except TypeError:  # no app in the scope, or one that cannot be weakly referenced: nothing is remembered
        return {}


class BodyLimitMiddleware:
    def __init__(
        self,
        app,
        max_bytes: int = MAX_JSON_BYTES,
        timeout_s: float = BODY_TIMEOUT_S,
        own_body_paths: frozenset[str] = OWN_BODY_PATHS,
    ):
        self.app, self.max_bytes, self.timeout_s, self.own = app, max_bytes, timeout_s, own_body_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not routed(scope):
            # an unknown path or method gets the router's 404 / 405, not a content-type or size answer
            return await self.app(scope, receive, send)
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:  # the first of a repeated header, as Starlette's Request reads it
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        own = route_path(scope) in self.own  # /infer-codes under a prefix too (it was 415 for an upload there)
        if not own:
            ctype = headers.get("content-type", "")
            if not is_json_type(ctype):
                sent = sent_text(ctype) if ctype else "none"  # quoted and clipped: a 3,000-character type is not echoed
                return await _answer(scope, receive, send, 415, f"content-type: expected application/json, got {sent}")
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                return await _answer(
                    scope, receive, send, 413, f"body: {declared} bytes, over the limit of {self.max_bytes}"
                )
        size, started = 0, False
        # The body deadline: one timer per request, armed at the first read. While a read waits past it, the timer
        # cancels this task and that read raises 408; a read after it raises 408 at once. (anyio.fail_after around
        # each read cost ~8 us a request, most of the limit's time on a small POST whose body is already there.)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        timer: asyncio.TimerHandle | None = None
        waiting = expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if waiting:
                task.cancel()

        def too_slow() -> _TooSlow:
            return _TooSlow(408, f"body: not received within {self.timeout_s:g} s", headers=_CLOSE)

        async def limited_receive():
            nonlocal size, timer, waiting
            if timer is None:
                timer = loop.call_later(self.timeout_s, expire)
            if expired:
                raise too_slow()
            waiting = True
            try:
                message = await receive()
            except asyncio.CancelledError:
                if expired and task.uncancel() == 0:  # our cancel, no other pending: the deadline passed
                    raise too_slow() from None
                raise
            finally:
                waiting = False
            if message["type"] == "http.request" and not own:
                size += len(message.get("body", b""))
                if size > self.max_bytes:  # Content-Length absent (chunked) or lying
                    raise _TooLarge(413, f"body: over the limit of {self.max_bytes} bytes", headers=_CLOSE)
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (_TooLarge, _TooSlow) as exc:
            if not started:
                await _answer(scope, receive, send, exc.status_code, str(exc.detail))
        finally:
            if timer is not None:
                timer.cancel()


class _HeaderTimeoutMixin:
    """Close a connection that has sent nothing, or part of a request's headers, for HEADER_TIMEOUT_S. A request
    whose headers are complete is the app's (and BodyLimitMiddleware's body timeout) to time. At shutdown, abort a
    connection still open after SHUTDOWN_GRACE_S."""

    header_timeout_s = HEADER_TIMEOUT_S
    max_header_bytes = MAX_HEADER_BYTES
    shutdown_grace_s = SHUTDOWN_GRACE_S
    _header_timer: asyncio.TimerHandle | None = None
    _shutdown_timer: asyncio.TimerHandle | None = None
    _lost = False
    _seen_cycle = None
    _header_bytes = 0  # bytes of the headers of the request being received, up to their blank line
    _header_tail = b""  # the last bytes of the previous chunk: a blank line split between two chunks is still seen

    def _waiting_for_headers(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None and self._waiting_for_headers():
            self._header_timer = asyncio.get_event_loop().call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        transport = getattr(self, "transport", None)
        if self._waiting_for_headers() and transport is not None and not transport.is_closing():
            transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._arm()
        if self._waiting_for_headers():
            # counted before the parser sees them, up to the blank line that ends them (body bytes after it in the
            # same chunk are the body's): a request over the limit never reaches the app
            joined = self._header_tail + data
            end = joined.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._header_tail))
            self._header_tail = joined[-3:] if end < 0 else b""
            if self._header_bytes > self.max_header_bytes:
                self._refuse_headers()
                return
        super().data_received(data)  # type: ignore[misc]
        cycle = getattr(self, "cycle", None)
        if cycle is not None and cycle is not self._seen_cycle:  # a request's headers completed
            self._seen_cycle = cycle
            self._header_bytes, self._header_tail = 0, b""
            self._disarm()
            if cycle.response_complete:  # answered at once (e.g. 413 from Content-Length): time what follows
                self._arm()

    def _refuse_headers(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is None or transport.is_closing():
            return
        body = json.dumps({"detail": f"headers: over the limit of {self.max_header_bytes} bytes"}).encode()
        transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self._disarm()
        transport.close()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown closes idle connections and waits, with no limit (``infogan serve`` sets no
        ``timeout_graceful_shutdown``), for every other to finish its response. A client that stopped reading one (a
        14 MB ONNX download) kept the process alive after SIGTERM for as long as it held its socket: still running
        40 s later, measured. So a connection still open ``shutdown_grace_s`` from now is aborted: close() would wait
        for its unsent bytes to flush, which that client never lets happen."""
        super().shutdown()  # type: ignore[misc]
        if not self._lost:
            self._shutdown_timer = asyncio.get_event_loop().call_later(self.shutdown_grace_s, self._abort)

    def _abort(self) -> None:
        self._shutdown_timer = None
        transport = getattr(self, "transport", None)
        if not self._lost and transport is not None:
            transport.abort()  # connection_lost follows: a response still being written gets http.disconnect

    def connection_lost(self, exc) -> None:
        self._lost = True
        self._disarm()
        if self._shutdown_timer is not None:
            self._shutdown_timer.cancel()
            self._shutdown_timer = None
        super().connection_lost(exc)  # type: ignore[misc]


def header_timeout_protocol() -> type:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the header timeout."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # httptools missing
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base
    return type("HeaderTimeout" + Base.__name__, (_HeaderTimeoutMixin, Base), {})


# By import path ("backend.api.limits:HeaderTimeoutProtocol"): `infogan serve --workers N` spawns worker processes,
# which receive uvicorn's config pickled, and a class made at run time cannot be pickled.
HeaderTimeoutProtocol = header_timeout_protocol()
HeaderTimeoutProtocol.__name__ = HeaderTimeoutProtocol.__qualname__ = "HeaderTimeoutProtocol"
