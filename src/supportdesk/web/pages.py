"""Rendering the browser's pages: the Jinja2 templates, the filters they use, the headers every
page carries (`Content-Security-Policy: default-src 'self'` first), our static files, and the
error pages that stand in for the API's JSON errors under /console, /portal and /login."""

from __future__ import annotations

import gzip
import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from supportdesk.web import sessions

# what every page sends: nothing runs or loads that we did not serve, no framing, no sniffing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold private data: never kept by a shared cache
}
BROWSER_PREFIXES = ("/console", "/portal", "/login", "/logout", "/account")
_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def linkify(text: str | None) -> Markup:
    """Plain text as HTML: everything escaped, http(s) URLs made links that open apart from
    the page and tell the target nothing (`noopener noreferrer`; `nofollow` for spam)."""
    if not text:
        return Markup("")
    parts: list[str] = []
    position = 0
    for found in _URL.finditer(text):
        parts.append(html.escape(text[position : found.start()]))
        url = html.escape(found.group(), quote=True)
        parts.append(
            f'<a href="{url}" rel="noopener noreferrer nofollow" target="_blank">{url}</a>'
        )
        position = found.end()
    parts.append(html.escape(text[position:]))
    return Markup("".join(parts))  # noqa: S704 (every piece of text above is escaped)


def when(value: str | None) -> Markup:
    """A stored timestamp as a `<time>` a person reads (`3 Dec 2026 07:24 UTC`)."""
    if not value:
        return Markup("")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    shown = f"{moment.day} {moment:%b %Y %H:%M} UTC"
    return Markup('<time datetime="{}">{}</time>').format(value, shown)


def size(value: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return f"{value} bytes"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    version: str  # a hash of the body: the URL changes when the file does


# Pages and assets are sent gzipped to a browser that takes it (a long thread is mostly text).
# Not the API's JSON: its clients and benchmarks are measured as they are.
_GZIP_LEVEL = 6
_GZIP_FROM = 1024


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


def _compressed(request: Request, body: bytes, headers: dict[str, str]) -> bytes:
    """`body`, gzipped (with its headers set) when the browser takes it and it is worth it."""
    headers["Vary"] = "Accept-Encoding"
    if len(body) < _GZIP_FROM or not _accepts_gzip(request):
        return body
    headers["Content-Encoding"] = "gzip"
    return gzip.compress(body, _GZIP_LEVEL, mtime=0)


def _load_assets() -> dict[str, Asset]:
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".svg": "image/svg+xml"}  # fmt: skip
    found: dict[str, Asset] = {}
    for entry in resources.files("supportdesk.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in types:
            body = entry.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:12]
            zipped = gzip.compress(body, 9, mtime=0)
            found[entry.name] = Asset(body, zipped, types[suffix], version)
    return found


ASSETS = _load_assets()


def asset_url(name: str) -> str:
    return f"/static/{name}?v={ASSETS[name].version}"


def static(request: Request) -> Response:
    """One of our static files; cached for a year when asked for by its versioned URL."""
    asset = ASSETS.get(request.path_params["name"])
    if asset is None:
        return error_page(request, 404, "There is no such file.")
    etag = f'"{asset.version}"'
    versioned = request.query_params.get("v") == asset.version
    headers = {
        **SECURITY_HEADERS,
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable" if versioned else "no-cache",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    headers["Vary"] = "Accept-Encoding"
    body = asset.body
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        body = asset.gzipped
    return Response(body, media_type=asset.media_type, headers=headers)


templates = Environment(
    loader=PackageLoader("supportdesk.web", "templates"),
    autoescape=True,
    auto_reload=False,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(linkify=linkify, when=when, size=size, name=sessions.display_name)
templates.globals.update(asset=asset_url)


async def page(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A whole page, with this browser's CSRF token and the signed-in user (the script takes
    the parts it swaps from whole pages too: there are no fragment routes)."""
    values = {
        "request": request,
        "visitor": await sessions.visitor(request),
        "csrf": await sessions.form_token(request),
        "area": _area(request.url.path),
        **(context or {}),
    }
    sent = {**SECURITY_HEADERS, **(headers or {})}
    body = _compressed(request, templates.get_template(template).render(values).encode(), sent)
    response = HTMLResponse(body, status_code=status, headers=sent)
    sessions.keep_form_token(request, response)
    return response


def _area(path: str) -> str:
    return "console" if path.startswith("/console") else "portal"


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The page for an error under the browser's paths: its status and a way on. (No session
    lookup: an error page must render even when the database is down.) A visitor already
    looked up gets the session's token, or the page's "Sign out" would be refused too."""
    visitor = request.scope.get("visitor")
    body = templates.get_template("error.html").render(
        request=request, status=status, message=message, visitor=visitor,
        area=_area(request.url.path), csrf=visitor.csrf if visitor is not None else "",
    )  # fmt: skip
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def browser_error(request: Request, status: int, message: str) -> Response | None:
    """`jsonapi.errors`' hook: an HTML error page for the browser's paths, else None."""
    if request.url.path.startswith(BROWSER_PREFIXES):
        return error_page(request, status, message)
    return None
