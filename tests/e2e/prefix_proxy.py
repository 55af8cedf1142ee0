"""A reverse proxy on 127.0.0.1 that serves an upstream under a path prefix and strips it on the way in, as nginx's
``location /explorer/ { proxy_pass http://upstream/; }`` or Traefik's StripPrefix do. Anything outside the prefix is
a 404 from the proxy itself (the proxy's own root), so a URL the page builds from "/" fails here as it would there.

``redirect``: "/explorer" (no trailing slash) answers 301 to "/explorer/", as nginx does; without it the bare
prefix is forwarded as "/" (Traefik), so the page is shown at a URL without its trailing slash. Every request path
(prefix kept) is recorded in ``seen``."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn

# hop-by-hop headers, and those httpx sets itself
_DROP_REQUEST = {b"host", b"content-length", b"connection", b"transfer-encoding"}
_DROP_RESPONSE = {b"transfer-encoding", b"connection"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefixProxy:
    def __init__(self, upstream: str, prefix: str, *, redirect: bool = True):
        self.upstream, self.prefix, self.redirect = upstream, prefix, redirect
        self.seen: list[str] = []
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self._app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> PrefixProxy:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the proxy did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def _answer(self, send, status: int, headers: list, body: bytes = b"") -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _app(self, scope, receive, send) -> None:
        path, prefix = scope["path"], self.prefix
        self.seen.append(path)
        if path == prefix and self.redirect:
            return await self._answer(send, 301, [(b"location", f"{prefix}/".encode())])
        if path != prefix and not path.startswith(prefix + "/"):
            return await self._answer(send, 404, [(b"content-type", b"text/plain")], b"not under the proxy's prefix")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        target = scope["raw_path"].decode("latin-1")[len(prefix) :] or "/"
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROP_REQUEST]
        async with httpx.AsyncClient(base_url=self.upstream, timeout=60) as client:
            request = client.build_request(scope["method"], target, headers=headers, content=body)
            response = await client.send(request, stream=True)
            try:
                out = [(k, v) for k, v in response.headers.raw if k.lower() not in _DROP_RESPONSE]
                await send({"type": "http.response.start", "status": response.status_code, "headers": out})
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                await response.aclose()
