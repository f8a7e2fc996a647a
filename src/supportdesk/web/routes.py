"""The browser's routes, added to the app: sign-in, console, portal, live streams, static files,
and the redirect to the sign-in page that a page needing a signed-in user answers with."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from supportdesk.web import console, forms, live, pages, portal, signin

ROUTERS = (signin.router, console.router, portal.router, live.router)


def _sign_in(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, forms.SignInNeeded)
    return forms.redirect(forms.sign_in_url(exc.next_url))


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    app.router.routes.append(Route("/static/{name}", pages.static, methods=["GET", "HEAD"]))
    app.add_exception_handler(forms.SignInNeeded, _sign_in)
