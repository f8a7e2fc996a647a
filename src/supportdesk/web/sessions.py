"""Who is signed in (SPEC 14): sessions, passwords, e-mailed one-time links, CSRF tokens and
the rate limit of sign-in attempts.

A session is a random token in an HttpOnly cookie, signed with the desk's web secret (junk and
forged cookies are turned away without a query); the database keeps only the token's SHA-256,
with the session's user, its CSRF token and when it expires. Signing in always starts a new
session (a token planted before sign-in is worth nothing after it); signing out deletes the row,
so a copied cookie dies with it; setting a password ends the user's other sessions.

Forms of a session carry its CSRF token; forms shown before sign-in carry the token of a
pre-session cookie (double submit). Every POST is checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Database, Row, meta
from supportdesk.events.log import Actor
from supportdesk.users.service import hash_password
from supportdesk.web import repository

COOKIE = "sd_session"
CSRF_COOKIE = "sd_csrf"
SECRET_KEY = "web_secret"  # noqa: S105 (the name of the `meta` row)
LINK_LIFETIME = timedelta(minutes=30)
STALE_PRESENCE = timedelta(hours=1)  # presence marks older than this are deleted
MIN_PASSWORD = 8
# sign-in attempts per minute: per e-mail address, and per client address
ATTEMPTS_PER_ADDRESS = 10
ATTEMPTS_PER_CLIENT = 30
_hasher = PasswordHasher()
# verified when the address is unknown, so an unknown address costs the same time as a known one
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Visitor:
    """A signed-in user and their session."""

    session_id: int
    user: Row  # the users row, without the password hash
    csrf: str

    @property
    def id(self) -> int:
        user_id: int = self.user["id"]
        return user_id

    @property
    def staff(self) -> bool:
        return self.user["role_id"] is not None

    @property
    def actor(self) -> Actor:
        return Actor("user", self.id)

    @property
    def name(self) -> str:
        return display_name(self.user)


def display_name(user: Row | None) -> str:
    if user is None:
        return "(deleted user)"
    parts = [user["first_name"], user["last_name"]]
    return " ".join(p for p in parts if p) or str(user["email"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _secret(request: Request) -> bytes:
    """The web secret, read once per process (the first process makes it: `meta.secret`)."""
    state = request.app.state
    secret: bytes | None = getattr(state, "web_secret", None)
    if secret is None:
        secret = state.web_secret = (await meta.secret(state.db, SECRET_KEY)).encode()
    return secret


def _sign(secret: bytes, token: str) -> str:
    mac = hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{token}.{mac}"


def _unsign(secret: bytes, value: str) -> str | None:
    token = value.rpartition(".")[0]
    if not token or not hmac.compare_digest(_sign(secret, token), value):
        return None
    return token


async def visitor(request: Request) -> Visitor | None:
    """The signed-in user of this request, or None (no cookie, a forged or expired one, or a
    session ended). Looked up once per request."""
    if "visitor" in request.scope:
        found: Visitor | None = request.scope["visitor"]
        return found
    found = None
    cookie = request.cookies.get(COOKIE)
    if cookie:
        token = _unsign(await _secret(request), cookie)
        if token is not None:
            async with request.app.state.db.read() as conn:
                row = await repository.session(conn, _digest(token))
            if row is not None and row["expires_at"] > timestamps.now():
                found = Visitor(row["session_id"], row, row["csrf"])
    request.scope["visitor"] = found
    return found


async def start(request: Request, response: Response, user_id: int) -> None:
    """Sign the user in on this browser: a new session, its cookie set on `response`."""
    settings: Settings = request.app.state.settings
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + settings.session_lifetime
    async with request.app.state.db.transaction() as conn:
        # what has run out goes at each sign-in (indexed deletes, usually of nothing)
        await repository.prune(conn, timestamps.to_text(now), timestamps.ago(STALE_PRESENCE))
        await repository.add_session(
            conn,
            {
                "token_hash": _digest(token),
                "user_id": user_id,
                "csrf": secrets.token_urlsafe(32),
                "created_at": timestamps.to_text(now),
                "expires_at": timestamps.to_text(expires),
            },
        )
    value = _sign(await _secret(request), token)
    max_age = int(settings.session_lifetime.total_seconds())
    response.set_cookie(COOKIE, value, max_age=max_age, **_cookie_flags(request))
    response.delete_cookie(CSRF_COOKIE, **_cookie_flags(request))


async def end(request: Request, response: Response, signed_in: Visitor | None) -> None:
    """Sign out: the session row goes (the cookie is worthless anywhere), the cookie too."""
    if signed_in is not None:
        async with request.app.state.db.transaction() as conn:
            await repository.end_session(conn, signed_in.session_id)
    response.delete_cookie(COOKIE, **_cookie_flags(request))


def _cookie_flags(request: Request) -> dict[str, Any]:
    """HttpOnly and SameSite=Lax always; Secure when the browser came over https, or the desk's
    public URL is https (behind a TLS proxy whose forwarded scheme uvicorn does not trust)."""
    settings: Settings = request.app.state.settings
    secure = request.url.scheme == "https" or settings.base_url.startswith("https://")
    return {"httponly": True, "samesite": "lax", "secure": secure}


async def form_token(request: Request) -> str:
    """The CSRF token the forms of this page carry: the session's, or before sign-in the
    pre-session cookie's (made now when the browser has none: `keep_form_token` sets it)."""
    signed_in = await visitor(request)
    if signed_in is not None:
        return signed_in.csrf
    secret = await _secret(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    token = _unsign(secret, cookie) if cookie else None
    if token is None:
        if "new_csrf_token" not in request.scope:
            made = secrets.token_urlsafe(32)
            request.scope["new_csrf_token"] = made
            request.scope["new_csrf_cookie"] = _sign(secret, made)
        token = request.scope["new_csrf_token"]
    return str(token)


def keep_form_token(request: Request, response: Response) -> None:
    """Set the pre-session CSRF cookie that `form_token` made for this page, if it made one."""
    signed = request.scope.get("new_csrf_cookie")
    if signed is not None:
        response.set_cookie(CSRF_COOKIE, signed, **_cookie_flags(request))


async def csrf_ok(request: Request, sent: str | None) -> bool:
    """Whether a POST carries this browser's CSRF token (form field or `X-CSRF-Token`)."""
    sent = sent or request.headers.get("x-csrf-token")
    if not sent:
        return False
    signed_in = await visitor(request)
    if signed_in is not None:
        expected: str | None = signed_in.csrf
    else:
        cookie = request.cookies.get(CSRF_COOKIE)
        expected = _unsign(await _secret(request), cookie) if cookie else None
    return expected is not None and hmac.compare_digest(expected, sent)


async def check_password(db: Database, email: str, password: str) -> int | None:
    """The user's id when the password is theirs; None otherwise (also for an unknown address
    or a user without a password, after the same work)."""
    async with db.read() as conn:
        row = await repository.login(conn, email.strip())
    stored = row["password"] if row is not None and row["password"] else _DUMMY_HASH
    try:
        await run_in_threadpool(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if row is None or not row["password"] else int(row["id"])


async def set_password(db: Database, user_id: int, password: str) -> None:
    """Set the password and end every session of the user: whoever set it signs in anew."""
    hashed = await hash_password(password)
    async with db.transaction() as conn:
        await repository.set_password(conn, user_id, hashed, timestamps.now())
        await repository.end_user_sessions(conn, user_id)


async def new_link(db: Database, user_id: int) -> str:
    """A one-time sign-in link's token for the user (its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        await repository.add_link(
            conn,
            {
                "token_hash": _digest(token),
                "user_id": user_id,
                "created_at": timestamps.to_text(now),
                "expires_at": timestamps.to_text(now + LINK_LIFETIME),
            },
        )
    return token


async def link_user(db: Database, token: str, *, use: bool) -> int | None:
    """The user a link signs in, while it is unused and not expired; `use` spends it (the
    first of racing uses wins)."""
    async with db.transaction() if use else db.read() as conn:
        row = await repository.link(conn, _digest(token))
        if row is None or row["used_at"] is not None or row["expires_at"] <= timestamps.now():
            return None
        if use and not await repository.use_link(conn, row["id"], timestamps.now()):
            return None
        return int(row["user_id"])


async def attempt_allowed(request: Request, email: str) -> int:
    """Count one sign-in attempt for the address and for the client: 0 when both are within
    their limits, else the seconds until the window ends (counted in the rate limiter's shared
    store: every worker and, with Redis, every instance)."""
    counter = request.app.state.limiter.counter
    now = datetime.now(UTC).timestamp()
    window = int(now // 60)
    client = request.client.host if request.client else "unknown"
    checks = ((f"address:{email.strip().lower()}", ATTEMPTS_PER_ADDRESS),
              (f"client:{client}", ATTEMPTS_PER_CLIENT))  # fmt: skip
    counts = await asyncio.gather(*(counter.hit(_bucket(name), window) for name, _ in checks))
    if all(count <= limit for count, (_, limit) in zip(counts, checks, strict=True)):
        return 0
    return max(1, int((window + 1) * 60 - now + 0.999))


def _bucket(name: str) -> int:
    """A negative id for the rate limiter's store (API keys have the positive ones)."""
    return -1 - int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big")
