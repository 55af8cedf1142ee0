"""Prometheus metrics, one registry per app (tests build several apps in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "infogan_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "infogan_http_request_seconds",
            "HTTP request latency per route (s)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "infogan_inference_seconds",
            "ONNX Runtime run() time (s)",
            ["model", "network"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "infogan_generator_batch_rows", "images per generator run()", ["model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "infogan_generator_batch_requests",
            "requests merged into one generator run()",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.images = Counter("infogan_images_generated_total", "images generated", ["model"], registry=r)


# The method label's values: a client chooses the method (h11 takes any token, httptools ~46 known ones such as
# PROPFIND), and each new one would open a series on every route; the rest are counted as "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): counts and times every request by route template."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [500]
        as_sent = dict(scope)  # the router rewrites root_path for a mount; matched against as it came in

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # the template (/models/{model_id}), never the raw path: unknown paths must not grow the label set
            path = getattr(route, "path", None) or _template(as_sent)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, path, str(status[0])).inc()


def _template(scope) -> str:
    """The route or mount a request's path belongs to when the router set no scope["route"]: answered before
    routing (BodyLimitMiddleware's 413 and 415) or by a mount (/static, the docs' assets). Those were counted as
    "unmatched", with the 404s of scanners."""
    from starlette.routing import Match

    for r in _routes(scope.get("app")):
        if getattr(r, "path", None) and r.matches(scope)[0] != Match.NONE:
            return r.path
    return "unmatched"


def _routes(app):
    """The app's routes and mounts, those of included routers too (FastAPI lists an included router as one entry,
    without a path, whose own routes have theirs)."""
    for r in getattr(app, "routes", ()):
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _routes(inner)
        else:
            yield r
