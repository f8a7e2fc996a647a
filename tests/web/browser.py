"""A browser for the web tests: an httpx client on the app that keeps its cookies, reads the
CSRF token out of every page it gets, and signs in through the sign-in form like a person.
Also a reader of the live pages' event streams (httpx's ASGI transport waits for a whole
response, and a stream never ends) and a snapshot of the tables a form could write."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import Table, select

from supportdesk import tables
from supportdesk.web import sessions

PASSWORD = "correct horse battery"
_CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf" value="([^"]*)">')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')

Hook = Callable[[httpx.Response], Awaitable[None]]


def csrf_of(page: str) -> str | None:
    """The CSRF token a page's forms carry (a form's hidden field, else the page's meta tag)."""
    found = _CSRF_INPUT.search(page) or _CSRF_META.search(page)
    return found.group(1) if found else None


class Browser:
    """One browser: cookies kept across requests, redirects not followed (tests look at them),
    the CSRF token of the last page that had one sent with every form."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver", hook: Hook | None = None):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(
            transport=transport,
            base_url=base_url,
            event_hooks={"response": [hook]} if hook else {},
        )
        self.csrf: str | None = None

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(url, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            self.csrf = csrf_of(response.text) or self.csrf
        return response

    async def post(
        self,
        url: str,
        data: dict[str, Any] | None = None,
        files: Any = None,
        *,
        csrf: str | None = "",
        **kwargs: Any,
    ) -> httpx.Response:
        """POST a form with this browser's token (`csrf=None`: with none; a string: that one).
        A browser that has read no page yet reads the sign-in page for its token first."""
        fields = dict(data or {})
        if csrf == "":
            if self.csrf is None:
                await self.get("/login")
            csrf = self.csrf
        if csrf is not None:
            fields["csrf"] = csrf
        response = await self.http.post(url, data=fields, files=files, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            self.csrf = csrf_of(response.text) or self.csrf
        return response

    async def sign_in(
        self, email: str, password: str = PASSWORD, next_url: str | None = None
    ) -> httpx.Response:
        """Fill in and send the sign-in form (its page read first, for the pre-session token)."""
        page = await self.get("/login", params={"next": next_url} if next_url else None)
        assert page.status_code == 200, page.text
        response = await self.post(
            "/login", {"email": email, "password": password, "next": next_url or ""}
        )
        if response.status_code == 303:
            self.csrf = None  # the session's forms carry the session's token
            await self.get(response.headers["location"])
        return response

    def plant(self, name: str, value: str) -> None:
        """Put a cookie in this browser as if the site had set it (so the site's next
        `Set-Cookie` of that name replaces it, as in a real browser)."""
        host = self.http.base_url.host
        self.http.cookies.set(name, value, domain=host if "." in host else f"{host}.local")

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(sessions.COOKIE)

    def cookie_header(self) -> str:
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.http.cookies.jar)

    async def aclose(self) -> None:
        await self.http.aclose()


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The response's `Set-Cookie` headers, by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.partition("=")[0]] = header
    return found


class LiveStream:
    """One GET of a live page's event stream, run on the app in a task: the response's status
    and headers, then its frames as they come (`frames`); leaving disconnects the client."""

    def __init__(
        self, app: FastAPI, browser: Browser, url: str, headers: dict[str, str] | None = None
    ) -> None:
        self._app = app
        parts = urlsplit(url)
        self._scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"accept", b"text/event-stream"),
                (b"cookie", browser.cookie_header().encode()),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        self._messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._asked = False
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None
        self.status = 0
        self.headers: httpx.Headers = httpx.Headers()
        self.ended = False

    async def _receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        await self._messages.put(message)

    async def __aenter__(self) -> LiveStream:
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        start = await asyncio.wait_for(self._messages.get(), 10)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = httpx.Headers([(k.decode(), v.decode()) for k, v in start["headers"]])
        return self

    async def body(self, within: float = 5) -> bytes:
        """Whatever the response sent within the time (all of it when it ended)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.ended and loop.time() < deadline:
            try:
                message = await asyncio.wait_for(
                    self._messages.get(), max(0.01, deadline - loop.time())
                )
            except TimeoutError:
                break
            self._buffer += message.get("body", b"")
            self.ended = not message.get("more_body", False)
        return self._buffer

    async def frames(
        self, until: Callable[[dict[str, str]], bool], within: float = 10
    ) -> list[dict[str, str]]:
        """The frames read until one satisfies `until` (it included); fails past `within`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        found: list[dict[str, str]] = []
        while True:
            while b"\n\n" in self._buffer:
                block, _, self._buffer = self._buffer.partition(b"\n\n")
                frame: dict[str, str] = {}
                for line in block.decode().splitlines():
                    name, _, value = line.partition(":")
                    frame[name or "comment"] = value.removeprefix(" ")
                found.append(frame)
                if until(frame):
                    return found
            assert not self.ended, f"the stream ended; frames: {found}"
            remaining = deadline - loop.time()
            assert remaining > 0, f"no such frame in time; frames: {found}"
            try:
                message = await asyncio.wait_for(self._messages.get(), remaining)
            except TimeoutError:
                continue
            self._buffer += message.get("body", b"")
            self.ended = not message.get("more_body", False)

    async def __aexit__(self, *_: object) -> None:
        self._gone.set()
        assert self._task is not None
        try:
            await asyncio.wait_for(self._task, 10)
        except TimeoutError:
            self._task.cancel()


# every table a form of the browser could write to
WRITTEN = (
    tables.events,
    tables.tickets,
    tables.ticket_messages,
    tables.ticket_attachments,
    tables.users,
    tables.canned_replies,
    tables.web_sessions,
    tables.sign_in_links,
    tables.presence,
    tables.mail_outbox,
)


async def snapshot(app: FastAPI, of: tuple[Table, ...] = WRITTEN) -> dict[str, list[Any]]:
    """Every row of the tables, to compare before and after a request that must write nothing."""
    found: dict[str, list[Any]] = {}
    async with app.state.db.read() as conn:
        for table in of:
            primary = list(table.primary_key.columns)
            rows = await conn.fetch_all(select(table).order_by(*primary))
            found[table.name] = [dict(row) for row in rows]
    return found
