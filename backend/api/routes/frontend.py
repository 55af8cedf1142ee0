"""The explorer page: frontend/index.html rendered as a jinja2 template (the page lives in frontend/)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ..deps import RegistryDep, SettingsDep

router = APIRouter(tags=["page"])

MISSING = (
    "<!doctype html><html><head><meta charset='utf-8'><title>InfoGAN explorer</title></head><body>"
    "<h1>InfoGAN explorer</h1><p>The explorer page (frontend/index.html) is missing. "
    "The API is up: see <a href='/docs'>/docs</a>.</p></body></html>"
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
    return templates.TemplateResponse(request, "index.html", {"models": models, "static": "/static"})
