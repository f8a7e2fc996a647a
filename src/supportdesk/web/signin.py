"""Signing in and out (SPEC 14): `/login` with e-mail and password, e-mailed one-time links
(which also reset a password), `/logout`."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from supportdesk.config import Settings
from supportdesk.errors import TooManyRequests
from supportdesk.mail import address, outbox, service
from supportdesk.mail.compose import Composer
from supportdesk.users import repository as users
from supportdesk.web import forms, pages, sessions

router = APIRouter(include_in_schema=False)


def _landing(visitor_staff: bool) -> str:
    return "/console/" if visitor_staff else "/portal/"


@router.get("/login")
async def login_page(request: Request) -> Response:
    visitor = await sessions.visitor(request)
    next_url = request.query_params.get("next", "")
    if visitor is not None:
        return forms.redirect(forms.safe_next(next_url, _landing(visitor.staff)))
    return await _login_form(request, next_url)


async def _login_form(
    request: Request, next_url: str, status: int = 200, **context: object
) -> Response:
    settings: Settings = request.app.state.settings
    values = {"next": next_url, "links": settings.smtp_url is not None, "email": "",
              "error": None, "notice": None, **context}  # fmt: skip
    return await pages.page(request, "login.html", values, status)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await forms.posted(request)
    email, next_url = form.get("email").strip(), form.get("next")
    await _limit(request, email)
    user_id = await sessions.check_password(request.app.state.db, email, form.get("password"))
    if user_id is None:
        return await _login_form(
            request, next_url, 401, email=email, error="Wrong email or password."
        )
    async with request.app.state.db.read() as conn:
        user = await users.get(conn, user_id)
    assert user is not None
    response = forms.redirect(forms.safe_next(next_url, _landing(user["role_id"] is not None)))
    await sessions.end(request, response, await sessions.visitor(request))  # whoever was here
    await sessions.start(request, response, user_id)
    return response


async def _limit(request: Request, email: str) -> None:
    wait = await sessions.attempt_allowed(request, email)
    if wait:
        refused = TooManyRequests(f"Too many sign-in attempts. Try again in {wait} s.")
        refused.headers = {"Retry-After": str(wait)}
        raise refused


@router.post("/login/link")
async def request_link(request: Request) -> Response:
    """Mail a one-time sign-in link. The answer is the same whether or not the address has an
    account (nobody learns who is a user here)."""
    form = await forms.posted(request)
    settings: Settings = request.app.state.settings
    email, next_url = form.get("email").strip(), form.get("next")
    if settings.smtp_url is None:
        return await _login_form(
            request, next_url, 400, email=email,
            error="Sign-in links need e-mail, which this desk has not set up.",
        )  # fmt: skip
    await _limit(request, email)
    db = request.app.state.db
    async with db.read() as conn:
        user_id = await users.id_by_email(conn, email.lower())
        user = None if user_id is None else await users.get(conn, user_id)
    if user is not None:
        token = await sessions.new_link(db, user["id"])
        url = f"{settings.base_url}/login/link/{token}"
        await outbox.enqueue_sign_in(db, await _composer(request), user, url)
    return await _login_form(
        request, next_url, email=email,
        notice=f"If {email} has an account here, a sign-in link is on its way. "
        "It works once, within 30 minutes.",
    )  # fmt: skip


async def _composer(request: Request) -> Composer:
    state = request.app.state
    composer: Composer | None = getattr(state, "composer", None)
    if composer is None:
        settings: Settings = state.settings
        secret = await service.reply_secret(state.db, settings)
        composer = Composer(address.sender(settings.mail_from), secret, settings.mail_templates)
        state.composer = composer
    return composer


@router.get("/login/link/{token}")
async def link_page(request: Request, token: str) -> Response:
    """Show what the link does; only the button (a POST) spends it, so a mail scanner that
    opens every link signs nobody in."""
    db = request.app.state.db
    user_id = await sessions.link_user(db, token, use=False)
    if user_id is None:
        return pages.error_page(request, 410, _SPENT)
    async with db.read() as conn:
        user = await users.get(conn, user_id)
    return await pages.page(request, "link.html", {"user": user, "token": token, "error": None})


_SPENT = "This sign-in link has expired or was used already. Ask for a new one at /login."


@router.post("/login/link/{token}")
async def use_link(request: Request, token: str) -> Response:
    form = await forms.posted(request)
    db = request.app.state.db
    password = form.get("password")
    if password and len(password) < sessions.MIN_PASSWORD:
        user_id = await sessions.link_user(db, token, use=False)
        if user_id is None:
            return pages.error_page(request, 410, _SPENT)
        async with db.read() as conn:
            user = await users.get(conn, user_id)
        error = f"A password has at least {sessions.MIN_PASSWORD} characters."
        return await pages.page(
            request, "link.html", {"user": user, "token": token, "error": error}, 422
        )
    user_id = await sessions.link_user(db, token, use=True)
    if user_id is None:
        return pages.error_page(request, 410, _SPENT)
    if password:
        await sessions.set_password(db, user_id, password)
    async with db.read() as conn:
        user = await users.get(conn, user_id)
    assert user is not None
    response = forms.redirect(_landing(user["role_id"] is not None))
    await sessions.end(request, response, await sessions.visitor(request))  # whoever was here
    await sessions.start(request, response, user_id)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Sign out. Without a session (it ran out meanwhile) there is nothing to protect: the
    cookie is cleared without asking for the form's token, which died with the session."""
    signed_in = await sessions.visitor(request)
    if signed_in is not None:
        await forms.posted(request)
    response = forms.redirect("/login")
    await sessions.end(request, response, signed_in)
    return response
