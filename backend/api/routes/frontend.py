"""The explorer page: frontend/index.html rendered as a jinja2 template (the page lives in frontend/)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ..deps import RegistryDep, SettingsDep
from ..limits import route_path

router = APIRouter(tags=["page"])

# Cross-origin isolation for the page (COOP + COEP): it makes SharedArrayBuffer available, which onnxruntime-web's
# multi-threaded WASM needs. COEP require-corp only lets the page load same-origin resources or those marked with
# Cross-Origin-Resource-Policy; the page loads nothing else (its images are data: URLs, ORT comes from /static/).
ISOLATION = [
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
ISOLATED_PATHS = ("/static/",)


class IsolationHeaders:
    """Pure ASGI middleware (no per-request task, unlike BaseHTTPMiddleware): adds ISOLATION to the page ("/")
    and to its static files (the worker script and the WASM runtime must carry COEP too)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        # the path inside the app: under a prefix (root path) the page is /explorer/ as it came in
        path = route_path(scope) if scope["type"] == "http" else ""
        if path != "/" and not path.startswith(ISOLATED_PATHS):
            return await self.app(scope, receive, send)

        async def add_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *ISOLATION]}
            await send(message)

        await self.app(scope, receive, add_headers)


MISSING = (
    "<!doctype html><html><head><meta charset='utf-8'><title>InfoGAN explorer</title></head><body>"
    "<h1>InfoGAN explorer</h1><p>The explorer page (frontend/index.html) is missing. "
    "The API is up: see <a href='docs'>/docs</a>.</p></body></html>"  # relative: the page may sit under a prefix
)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, settings: SettingsDep, registry: RegistryDep):
    page = settings.frontend_dir / "index.html"
    if not page.is_file():
        return HTMLResponse(MISSING)
    templates = getattr(request.app.state, "templates", None)
    if templates is None:
        templates = request.app.state.templates = Jinja2Templates(directory=str(settings.frontend_dir))
    models = registry.to_json() if registry.ready.is_set() else []
    # under the proxy's prefix (the root path: uvicorn --root-path, ROOT_PATH) when there is one: "/static" would
    # be the proxy's own root, where the page's scripts are not
    static = request.scope.get("root_path", "").rstrip("/") + "/static"
    return templates.TemplateResponse(request, "index.html", {"models": models, "static": static})
