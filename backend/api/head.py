"""HEAD on the GET routes (RFC 9110 9.3.2: the GET answer's status and headers, no body). FastAPI's routes answer a
HEAD with 405, so a monitor that probes /healthz or /readyz with HEAD saw the service as down. Routes that take HEAD
themselves (the model files, /static) keep it: they answer without reading the body at all."""

from __future__ import annotations

from .limits import routed


class HeadAsGet:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or routed(scope):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allow_head(send))  # a 405 of a GET route names HEAD too
            return
        get = dict(scope, method="GET")
        if not routed(get):
            await self.app(scope, receive, send)  # no GET route either: the app's own 404 or 405
            return

        async def headers_only(message):
            # uvicorn writes no body for a HEAD request and keeps the GET answer's content-length
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app(get, receive, headers_only)


def _allow_head(send):
    """send, with HEAD added to a 405's Allow where it lists GET (HEAD is answered for every GET route here)."""

    async def sending(message):
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = list(message.get("headers", []))
            for i, (name, value) in enumerate(headers):
                methods = [m.strip() for m in value.decode("latin-1").split(",")]
                if name.lower() == b"allow" and "GET" in methods and "HEAD" not in methods:
                    headers[i] = (name, ", ".join([*methods, "HEAD"]).encode("latin-1"))
            message = {**message, "headers": headers}
        await send(message)

    return sending
