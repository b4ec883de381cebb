"""The interactive API documentation (Swagger UI), served by the hub itself.

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script: an
offline hub would show a blank page, and the inline script would need the CSP relaxed. Here the
files come from the `fastapi-offline` package, mounted under `/static/swagger/`, and the page
starts Swagger UI from a static file (`/static/docs.js`), so the strict CSP holds on it too.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER = Path(fastapi_offline.__file__).parent / "static"
SWAGGER_URL = "/static/swagger"
DOCS_URL = "/api/docs"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · API</title>
<link rel="stylesheet" href="{swagger}/swagger-ui.css">
<link rel="stylesheet" href="/static/docs.css">
<link rel="icon" href="{swagger}/favicon.png">
<script src="{swagger}/swagger-ui-bundle.js" defer></script>
<script src="/static/docs.js" defer></script>
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
</body>
</html>
"""

# Swagger UI sets inline styles from its script (React `style` props, a few <style> elements):
# this page alone allows inline styles; scripts stay limited to this hub's own files.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    """Adds the docs page and the Swagger UI files (before the `/static` mount claims them)."""
    openapi = app.openapi_url or "/api/openapi.json"
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_URL, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        page = PAGE.format(title=app.title, swagger=SWAGGER_URL, openapi=openapi)
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

    app.include_router(router)
    app.mount(SWAGGER_URL, StaticFiles(directory=SWAGGER), name="swagger")
