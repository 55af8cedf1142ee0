"""The inference service: ``uvicorn backend.main:app`` (or ``infogan serve``). Imports no torch.

``create_app`` builds the app; models load in the lifespan handler (in a background thread, so /healthz
answers while /readyz says 503), never at import time. ``app`` is built on first access (uvicorn's import): that
reads the settings and, for DEVICE=cuda only, checks CUDA (a child process builds one session), so either failure is
one line before uvicorn serves; importing the module for ``create_app`` does neither.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from spec.latent import SpecError

from .api.docs import install_docs
from .api.head import HeadAsGet
from .api.limits import BodyLimitMiddleware, RootPath
from .api.responses import error_response
from .api.routes import files, frontend, generate, health, infer, models
from .core.config import Settings, settings_or_exit
from .core.device import cuda_or_exit
from .core.images import UploadError
from .core.metrics import Metrics, MetricsMiddleware
from .core.registry import Registry

log = logging.getLogger("backend")

# uvicorn's exit status for "failed before serving" (uvicorn.config.STARTUP_FAILURE): its --workers parent stops on
# it instead of restarting the worker
STARTUP_FAILURE = 3


def _field(loc: tuple) -> str:
    # ('body', 'codes', 'digit') -> 'codes.digit'; query/path locations keep their prefix
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_detail(exc: RequestValidationError) -> str:
    # never echo the input: it may be NaN/inf, which JSON cannot carry
    return "; ".join(
        "body: invalid JSON"
        if e.get("type") == "json_invalid"
        else f"{_field(e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in exc.errors()
    )


class LateStaticFiles(StaticFiles):
    """StaticFiles for a folder that may appear after start-up (the page is written separately): 404, not 500,
    while it is missing."""

    async def check_config(self) -> None:
        if self.directory is not None and os.path.isdir(self.directory):
            await super().check_config()


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def create_app(settings: Settings | None = None, *, device: str | None = None) -> FastAPI:
    """``device``: the device already resolved from ``settings.device`` ('cuda' after device.cuda_or_exit), else
    the lifespan resolves it (DEVICE=cuda without CUDA then fails the start-up with DeviceError)."""
    settings = settings or Settings()
    _configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        registry = Registry(settings, app.state.metrics)
        app.state.registry = registry
        registry.start(device)
        yield
        registry.close()

    app = FastAPI(
        title="InfoGAN explorer",
        version="1.0.0",
        description="Generate images from InfoGAN models (Chen et al., 2016) with chosen latent codes, sweep one "
        'code, and infer the codes of an uploaded image. Errors are JSON {"detail": ...} naming the '
        "field.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: Swagger UI from the installed package, not a CDN
    )
    app.state.settings = settings
    app.state.metrics = Metrics()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(validation_detail(exc), 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if (
            exc.status_code == 400
        ):  # FastAPI's "error parsing the body" (e.g. not UTF-8): a malformed field, like bad JSON
            return error_response(f"body: {exc.detail}", 422)
        return error_response(str(exc.detail), exc.status_code, exc.headers)

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError):
        return error_response(str(exc), 422)

    @app.exception_handler(UploadError)
    async def _upload(request: Request, exc: UploadError):
        return error_response(exc.detail, exc.status, exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        # a fault of the service, not the request (a model run that fails, a file gone from disk): answered like
        # every other error, as JSON naming no internals (starlette's default is a plain-text "Internal Server
        # Error"); starlette's ServerErrorMiddleware re-raises it after this answer, so uvicorn logs the traceback
        return error_response("internal error: the service could not answer this request (see its log)", 500)

    for module in (models, files, generate, infer, health, frontend):
        app.include_router(module.router)
    app.mount(
        "/static", LateStaticFiles(directory=str(settings.frontend_dir / "static"), check_dir=False), name="static"
    )
    install_docs(app)
    app.add_middleware(HeadAsGet)  # innermost: the metrics and the limits see the request as it came (HEAD)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(frontend.IsolationHeaders)  # COOP/COEP for the page: multi-threaded WASM
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.root_path:  # outermost: every middleware sees the path as under uvicorn --root-path
        app.add_middleware(RootPath, root_path=settings.root_path)
    return app


def _app_for_uvicorn() -> FastAPI:
    """The app `uvicorn backend.main:app` imports. A bad setting, or DEVICE=cuda where CUDA cannot run, is one line on
    stderr and exit status 3 before uvicorn starts serving. Else a bad setting was pydantic's traceback from the
    import, and a failed CUDA requirement (raised in the lifespan) uvicorn's start-up traceback. Status 3 is uvicorn's
    STARTUP_FAILURE: under `uvicorn --workers N` the parent restarts a worker that exits with any other status, so
    status 1 printed the line again every few seconds for ever."""
    _configure_logging()  # before the CUDA check, whose "device: cuda (...)" line would otherwise go unprinted
    try:
        settings = settings_or_exit("backend.main")
        device = cuda_or_exit("backend.main", settings)  # DEVICE=cuda only: one probe, not repeated in the lifespan
    except SystemExit as exc:
        print(exc.code, file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from None
    return create_app(settings, device=device)


def __getattr__(name: str) -> FastAPI:
    """``app``, built on first access (PEP 562), which is how uvicorn's import reaches it: importing this module for
    ``create_app`` (the tests, benchmarks) reads no settings, probes nothing and cannot exit."""
    if name == "app":
        globals()["app"] = built = _app_for_uvicorn()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
