"""The API's documentation page at /docs: Swagger UI served from this process, nothing from a
CDN, so the page works on a server without internet and under a strict Content Security Policy.

FastAPI's own /docs page loads Swagger UI from a CDN and starts it with an inline script; here
the assets come from the `swagger-ui-bundle-v2` package (its `swagger_ui_path`, mounted at
/docs/assets) and the start-up script is `init.js` beside this file. The page is sent with
`Content-Security-Policy: default-src 'self'; img-src 'self' data:`: no inline script or style,
nothing from another origin. ReDoc (/redoc) is off: of the packages that ship its script, one
pulls in Django (drf-spectacular-sidecar), another keeps it where no API says (fastapi-offline).

Why not the `swagger-ui-bundle` package: its last release (1.1.0) bundles Swagger UI 4, which
cannot render OpenAPI 3.1, the version FastAPI writes. `swagger-ui-bundle-v2` is its fork kept
up to date, with the same `swagger_ui_bundle.swagger_ui_path`.
"""

from __future__ import annotations

import html
from importlib import resources

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PATH = "/docs"
ASSETS = f"{PATH}/assets"
INIT_SCRIPT = f"{PATH}/init.js"
# Swagger UI's stylesheet draws its arrows and checkboxes with `data:` SVG images
CSP = "default-src 'self'; img-src 'self' data:"


def page(title: str) -> str:
    """The page: Swagger UI's stylesheets and script, then ours, which starts it."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="stylesheet" href="{ASSETS}/index.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{INIT_SCRIPT}"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the page, our script and Swagger UI's files; none of them is in the OpenAPI
    document. The app must be created with `docs_url=None, redoc_url=None`, and keep its
    document at /openapi.json, where `init.js` looks for it."""
    if app.openapi_url != "/openapi.json":
        raise ValueError(f"init.js loads /openapi.json, not {app.openapi_url}")
    body = page(app.title).encode()
    script = resources.files(__name__).joinpath("init.js").read_bytes()

    async def docs(_: Request) -> Response:
        return HTMLResponse(body, headers={"Content-Security-Policy": CSP})

    async def init(_: Request) -> Response:
        return Response(script, media_type="text/javascript")

    app.add_route(PATH, docs, include_in_schema=False)
    app.add_route(INIT_SCRIPT, init, include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
