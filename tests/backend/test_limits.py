"""Body size, body time, content type and header timeout (issue 23 items 2-4, 6) on a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.api.docs import install_docs
from backend.api.limits import (
    ROUTED_MEMO_PATH_MAX,
    ROUTED_MEMO_SIZE,
    BodyLimitMiddleware,
    _routed_memo,
    header_timeout_protocol,
    routed,
)


class Req(BaseModel):
    n: int = 1
    z: list[float] | None = None


def tiny_app() -> FastAPI:
    app = FastAPI(docs_url=None)

    @app.post("/generate")
    def gen(req: Req) -> dict:
        return {"n": req.n}

    @app.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    @app.get("/big")
    def big() -> StreamingResponse:
        # 32 MiB in 64 KiB chunks, as FileResponse sends an ONNX file: more than the socket buffers hold
        chunk = bytes(64 * 1024)
        return StreamingResponse((chunk for _ in range(512)), media_type="application/octet-stream")

    @app.post("/slow")
    async def slow(req: Req) -> dict:
        # async, so it runs in the task the body timer belongs to: the timer firing now must not cancel it
        await asyncio.sleep(1.5)
        return {"n": req.n}

    install_docs(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=64 * 1024, timeout_s=1.0)
    return app


def start(app, **protocol) -> tuple[uvicorn.Server, threading.Thread, int]:
    """A uvicorn server in a thread, with the header-timeout protocol (``protocol``: its class attributes)."""
    proto = type("P", (header_timeout_protocol(),), {"header_timeout_s": 0.5, **protocol})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=proto, log_level="warning", lifespan="off")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, t, port


@contextlib.contextmanager
def running(app):
    server, t, port = start(app)
    try:
        yield port
    finally:
        server.should_exit = True
        t.join(10)


@pytest.fixture(scope="module")
def port():
    with running(tiny_app()) as p:
        yield p


def raw(port: int, data: bytes, read_s: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        s.settimeout(read_s)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
        return out


def test_declared_oversize_body_refused_unread(port):
    head = b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 44040192\r\n\r\n"
    t = time.perf_counter()
    out = raw(port, head + b"{", read_s=3)  # the 42 MB never follow
    assert out.startswith(b"HTTP/1.1 413") and b"over the limit" in out
    assert time.perf_counter() - t < 2


@pytest.mark.parametrize("size", [64 * 1024 + 1, 3 * 1024 * 1024])
def test_chunked_body_counted_while_streaming(port, size):
    def chunks():
        sent = 0
        while sent < size:
            part = min(8192, size - sent)
            sent += part
            yield b" " * part

    r = httpx.post(f"http://127.0.0.1:{port}/generate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text


def test_body_just_under_the_limit_passes(port):
    body = b'{"n": 2}' + b" " * (64 * 1024 - 8)
    r = httpx.post(f"http://127.0.0.1:{port}/generate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json() == {"n": 2}


@pytest.mark.parametrize(
    "headers",
    [
        b"X-Big: " + b"a" * (100 * 1024) + b"\r\n",  # one long header (httptools once took 32 MiB)
        b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 40) for i in range(5000)),  # or many short ones
    ],
)
def test_headers_over_the_limit_are_431_and_closed(port, headers):
    out = raw(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", read_s=3)
    assert out.startswith(b"HTTP/1.1 431") and b"over the limit of 65536 bytes" in out, out[:200]
    assert out.count(b"HTTP/1.1") == 1  # closed: the rest of the request never reached the app


def test_headers_under_the_limit_and_large_bodies_pass(port):
    out = raw(port, b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    # headers and a 60 KB body in one write: the chunk that completes the headers carries body bytes, not counted
    body = b'{"n": 4}' + b" " * 60_000
    head = b"POST /generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
    out = raw(port, head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b'{"n":4}')
    # the blank line split between two chunks, the body after it: still the body's bytes (headers + body > 64 KiB)
    body = b'{"n": 4}' + b" " * 65_500
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head + b"Content-Length: %d\r\n\r" % len(body))
        time.sleep(0.2)
        s.sendall(b"\n" + body)
        s.settimeout(5)
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b'{"n":4}')


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
def test_json_route_wrong_content_type_is_415(port, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = httpx.post(f"http://127.0.0.1:{port}/generate", content=b'{"n": 1}', headers=headers)
    assert r.status_code == 415 and r.json()["detail"].startswith("content-type: expected application/json")


def test_json_with_charset_accepted(port):
    r = httpx.post(
        f"http://127.0.0.1:{port}/generate",
        content=b'{"n": 3}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200


def test_stalled_clients_time_out_and_cost_others_nothing(port):
    heads = [
        b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        b"POST /generate HTTP/1.1\r\nHost: x\r\nConte",
        b"",
    ]  # half a body, half the headers, nothing
    socks = []
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(heads[i % 3])
        socks.append(s)
    t = time.perf_counter()
    lat = []
    with httpx.Client() as c:
        for _ in range(20):
            t0 = time.perf_counter()
            assert c.get(f"http://127.0.0.1:{port}/ping").status_code == 200
            lat.append(time.perf_counter() - t0)
    assert sorted(lat)[len(lat) // 2] < 0.1
    closed = 0
    for s in socks:
        s.settimeout(max(0.1, 4 - (time.perf_counter() - t)))
        try:
            data = s.recv(65536)
            while data and b"408" in data[:12] and (more := s.recv(65536)):
                data = more
            closed += 1  # EOF or a 408 then EOF
        except OSError:
            pass
        s.close()
    assert closed == len(socks)


def trickle(port: int, path: str, body: bytes, gap_s: float) -> tuple[bytes, float]:
    """POST ``body`` one byte every ``gap_s``; (the answer, seconds from the headers to the answer)."""
    head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head % (path.encode(), len(body)))
        t = time.perf_counter()
        s.settimeout(0.01)
        out = b""
        for byte in body:
            with contextlib.suppress(OSError):
                s.sendall(bytes([byte]))  # fails once the server has answered and closed
            time.sleep(gap_s)
            with contextlib.suppress(OSError):
                out += s.recv(65536)
            if out:
                break
        s.settimeout(5)
        with contextlib.suppress(OSError):
            while not out.endswith(b"}") and (chunk := s.recv(65536)):
                out += chunk
        return out, time.perf_counter() - t


def test_body_deadline_counts_from_the_first_read_not_per_read(port):
    # every byte comes well within the 1 s limit of the last, the whole body does not: 408 at ~1 s, not at the end
    out, took = trickle(port, "/generate", b'{"n": 1}' + b" " * 40, gap_s=0.1)
    assert out.startswith(b"HTTP/1.1 408") and b"not received within 1 s" in out, out[:200]
    assert 0.8 < took < 2.5


def test_body_in_several_reads_within_the_deadline_passes(port):
    out, _ = trickle(port, "/generate", b'{"n": 5}', gap_s=0.05)  # 8 reads, 0.4 s in all
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b'{"n":5}'), out[:200]


def test_endpoint_slower_than_the_body_deadline_after_its_body_is_answered(port):
    # the deadline passes while the endpoint awaits, after its last read: the body timer must leave it alone
    r = httpx.post(f"http://127.0.0.1:{port}/slow", json={"n": 6}, timeout=10)
    assert r.status_code == 200 and r.json() == {"n": 6}
    r = httpx.post(f"http://127.0.0.1:{port}/generate", json={"n": 7})  # the connection's next request too
    assert r.status_code == 200 and r.json() == {"n": 7}


def test_routed_memo_sees_a_later_route_and_stays_bounded():
    app = FastAPI()

    def scope(path: str, method: str = "POST") -> dict:
        return {"type": "http", "method": method, "path": path, "root_path": "", "app": app}

    assert not routed(scope("/later"))
    assert routed(scope("/later")) is False  # remembered, same answer

    @app.post("/later")
    def later() -> dict:
        return {}

    assert routed(scope("/later")) and not routed(scope("/later", "GET"))
    for i in range(3 * ROUTED_MEMO_SIZE):  # a scanner's stream of new paths
        routed(scope(f"/scan/{i}"))
    assert len(_routed_memo(app)) <= ROUTED_MEMO_SIZE
    assert routed({"type": "http", "method": "POST", "path": "/x", "root_path": ""}) is False  # no app in the scope


def test_routed_memo_keeps_no_long_paths():
    # 1,000 requests with 60 KB paths held +58 MiB of a server's RSS in the memo, until 1,024 other paths flushed it
    app = FastAPI()

    @app.post("/generate")
    def gen() -> dict:
        return {}

    def scope(method: str, path: str, root_path: str = "") -> dict:
        return {"type": "http", "method": method, "path": path, "root_path": root_path, "app": app}

    for i in range(ROUTED_MEMO_SIZE):
        assert not routed(scope("GET", f"/{i}" + "a" * 60_000))
    routed(scope("POST", "/generate", "/" + "p" * 60_000))
    assert sum(len(path) + len(root) for _, _, root, path in _routed_memo(app)) <= ROUTED_MEMO_PATH_MAX
    assert routed(scope("POST", "/generate"))  # a route's own path is kept
    assert len(_routed_memo(app)) == 1


def test_shutdown_aborts_a_response_its_client_stopped_reading():
    # uvicorn waits, with no limit, for every response in flight: a client that stopped reading a download kept the
    # process alive after SIGTERM for as long as it held its socket
    server, t, port = start(tiny_app(), shutdown_grace_s=0.5)
    with socket.socket() as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert stalled.recv(64).startswith(b"HTTP/1.1 200")  # then reads no more
        with httpx.Client() as c:  # a request already answered on a kept-alive connection does not hold it either
            assert c.get(f"http://127.0.0.1:{port}/ping").status_code == 200
            server.should_exit = True
            t.join(10)
            assert not t.is_alive(), "the server still waits for a client that does not read"


def test_shutdown_lets_a_request_in_flight_finish_within_the_grace():
    server, t, port = start(tiny_app(), shutdown_grace_s=10.0)
    answer: list = []
    client = threading.Thread(
        target=lambda: answer.append(httpx.post(f"http://127.0.0.1:{port}/slow", json={"n": 3}, timeout=10))
    )
    client.start()
    deadline = time.monotonic() + 5
    while not server.server_state.tasks and time.monotonic() < deadline:  # the request is in the app (1.5 s)
        time.sleep(0.01)
    server.should_exit = True
    client.join(10)
    t.join(10)
    assert answer and answer[0].status_code == 200 and answer[0].json() == {"n": 3}
    assert not t.is_alive()


def test_docs_served_offline(port):
    page = httpx.get(f"http://127.0.0.1:{port}/docs").text
    assert "cdn" not in page.lower() and "/docs-assets/swagger-ui-bundle.js" in page
    js = httpx.get(f"http://127.0.0.1:{port}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
