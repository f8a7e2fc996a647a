"""/docs is Swagger UI served by supportdesk itself: nothing from another origin, no inline
script or style (the page is sent with `Content-Security-Policy: default-src 'self'`, and
`img-src 'self' data:` for the images in Swagger UI's stylesheet)."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx

CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


class Page(HTMLParser):
    """The URLs a page refers to, and what it has inline."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls.extend(value or "" for name, value in attrs if name in ("src", "href"))
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"attribute of <{tag}>")
        if tag == "style" or (tag == "script" and "src" not in found):
            self.inline.append(f"<{tag}>")
        self._tag = tag

    def handle_endtag(self, tag: str) -> None:
        self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(f"text in <{self._tag}>")


async def docs_page(anonymous: httpx.AsyncClient) -> Page:
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "default-src 'self'; img-src 'self' data:"
    return Page(response.text)


async def test_docs_page_refers_only_to_its_own_origin(anonymous: httpx.AsyncClient) -> None:
    page = await docs_page(anonymous)
    assert page.urls
    for url in page.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert "http" not in url.lower(), url
    assert page.inline == []


async def test_every_asset_the_page_refers_to_is_served(anonymous: httpx.AsyncClient) -> None:
    page = await docs_page(anonymous)
    suffixes = set()
    for url in page.urls:
        suffix = url[url.rindex(".") :]
        response = await anonymous.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert response.content, url
        suffixes.add(suffix)
    assert {".js", ".css"} <= suffixes


async def test_init_script_starts_swagger_ui_on_the_openapi_document(
    anonymous: httpx.AsyncClient,
) -> None:
    page = await docs_page(anonymous)
    assert page.urls.index("/docs/assets/swagger-ui-bundle.js") < page.urls.index("/docs/init.js")
    script = (await anonymous.get("/docs/init.js")).text
    assert "SwaggerUIBundle({" in script
    assert 'url: "/openapi.json"' in script
    assert 'dom_id: "#swagger-ui"' in script
    assert (await anonymous.get("/openapi.json")).status_code == 200


async def test_redoc_is_not_served(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/redoc")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_docs_routes_are_not_in_the_openapi_document(anonymous: httpx.AsyncClient) -> None:
    paths = (await anonymous.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if path.startswith("/docs")] == []
