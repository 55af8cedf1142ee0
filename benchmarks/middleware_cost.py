"""What each of the service's ASGI middlewares costs per request, in one run (issue 22: where the HTTP time goes).

    python benchmarks/middleware_cost.py [--requests 3000] [--rounds 5]

Calls the middleware chain in-process, no sockets: a one-image ``POST /generate`` (the body wrk sends, with the
headers a client sends) through each middleware alone and through all of them in the order ``backend/main.py`` adds
them, around a stub endpoint that reads the body and answers a fixed JSON body of the service's answer size
(1.8 KB). The scope carries the real app, so route lookups scan the service's real route table. Prints the median
µs per request over interleaved rounds for each variant, its cost over the stub alone, and the chain's cost as a
ratio of the stub's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from backend.api.head import HeadAsGet  # noqa: E402
from backend.api.limits import BodyLimitMiddleware  # noqa: E402
from backend.api.routes.frontend import IsolationHeaders  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.metrics import Metrics, MetricsMiddleware, _routes  # noqa: E402
from backend.main import create_app  # noqa: E402

BODY = b'{"model": "mnist", "n": 1}'
ANSWER = b'{"images": ["' + b"A" * 1780 + b'"]}'  # the size of a one-image /generate answer
GENERATE_ROUTE: list = []  # the app's POST /generate route, set by measure()
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"wrk"),
    (b"accept", b"*/*"),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def stub(scope, receive, send) -> None:
    """The endpoint: names its route as the router does, reads the whole body, answers 200 with ANSWER."""
    scope["route"] = GENERATE_ROUTE[0]
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


def chains(metrics: Metrics) -> dict:
    """Variant name -> ASGI app. "all" is backend/main.py's order: add_middleware puts the last added outermost."""
    return {
        "stub alone": stub,
        "HeadAsGet": HeadAsGet(stub),
        "BodyLimitMiddleware": BodyLimitMiddleware(stub),
        "IsolationHeaders": IsolationHeaders(stub),
        "MetricsMiddleware": MetricsMiddleware(stub, metrics=metrics),
        "all": MetricsMiddleware(IsolationHeaders(BodyLimitMiddleware(HeadAsGet(stub))), metrics=metrics),
    }


async def per_request_us(asgi, app, n: int) -> float:
    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message):
        pass

    start = time.perf_counter()
    for _ in range(n):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/generate",
            "raw_path": b"/generate",
            "root_path": "",
            "query_string": b"",
            "headers": HEADERS,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "app": app,  # Starlette sets it before the middleware stack; the route lookups read the table from it
        }
        await asgi(scope, receive, send)
    return (time.perf_counter() - start) / n * 1e6


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as empty:
        app = create_app(Settings(models_dir=Path(empty)))  # only its route table is read; no model is loaded
    GENERATE_ROUTE[:] = [r for r in _routes(app) if getattr(r, "path", None) == "/generate"]
    variants = chains(Metrics())
    for asgi in variants.values():  # warm-up: imports, regex caches, the metrics' label children
        await per_request_us(asgi, app, 200)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):  # interleaved, so drift in the machine's speed falls on every variant alike
        for name, asgi in variants.items():
            times[name].append(await per_request_us(asgi, app, requests))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per variant and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is printed)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds must be at least 1")
    try:
        import uvloop

        runner = uvloop.run  # as `infogan serve` runs (uvicorn picks uvloop when installed)
    except ImportError:
        runner = asyncio.run
    times = runner(measure(args.requests, args.rounds))
    base = statistics.median(times["stub alone"])
    print(f"{args.requests} requests x {args.rounds} rounds, median us/request (POST /generate, in-process)")
    print(f"{'variant':<22}{'us/request':>12}{'over stub':>12}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<22}{med:>12.1f}{med - base:>+12.1f}")
    print(f"chain/stub ratio: {statistics.median(times['all']) / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
