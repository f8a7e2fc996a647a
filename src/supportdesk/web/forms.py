"""What every page handler shares: reading a posted form (CSRF checked first), redirects, and
who may be here (`staff`, `customer`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Path
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse

from supportdesk.config import Settings
from supportdesk.errors import Forbidden, SupportdeskError, ValidationFailed
from supportdesk.jsonapi.body import is_multipart, limited, read_form, validate
from supportdesk.jsonapi.fields import MAX_ID
from supportdesk.queries import ResourceQuery
from supportdesk.ticket_messages import service as messages
from supportdesk.ticket_messages.schemas import MessageCreate
from supportdesk.web import pages, sessions
from supportdesk.web.sessions import Visitor

FILE_FIELD = "attachments"
# A row id in a path: a whole number the database can hold (else a 422 page, never a database
# error); `id_param` is the same for query parameters.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
_URLENCODED_LIMIT = 64 * 1024


class SignInNeeded(Exception):
    """Not signed in: the browser goes to the sign-in page, and comes back after."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass
class Posted:
    fields: Mapping[str, str]
    lists: Mapping[str, list[str]]  # every value of a repeated field (checkboxes)
    files: list[UploadFile]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)


async def posted(request: Request) -> Posted:
    """The form of a POST, after its CSRF token was checked (403 without it): urlencoded, or
    multipart with files under `attachments` (413 past the upload limits)."""
    settings: Settings = request.app.state.settings
    if is_multipart(request):
        form = await read_form(
            request, settings.max_upload_bytes, settings.max_attachments, (FILE_FIELD,)
        )
        fields, files = form.fields, [f for f in form.files if f.filename]
        lists = {name: [value] for name, value in fields.items()}
    else:
        # cut off as it arrives (a chunked body declares no length): 413 past any form of ours
        data = await limited(request, _URLENCODED_LIMIT).form(max_files=0, max_fields=600)
        lists = {}
        for name, value in data.multi_items():
            if isinstance(value, str):
                lists.setdefault(name, []).append(value)
        fields = {name: values[-1] for name, values in lists.items()}
        files = []
    if not await sessions.csrf_ok(request, fields.get("csrf")):
        raise Forbidden(
            "This form has expired or did not come from this site (no valid CSRF token). "
            "Go back, reload the page and send it again."
        )
    return Posted(fields, lists, files)


async def add_message(
    request: Request, me: Visitor, ticket_id: int, form: Posted, *, internal: bool = False
) -> None:
    """The form's message (`message`) and files on the ticket, written by the signed-in user
    through the same service as the API; ValidationFailed when refused (nothing written)."""
    settings: Settings = request.app.state.settings
    values = {"ticket_id": ticket_id, "user_id": me.id, "message": form.get("message"),
              "internal": internal}  # fmt: skip
    data = validate(MessageCreate, values, {"max_message_length": settings.max_message_length})
    await messages.create_message(
        request.app.state.db, settings, request.app.state.storage, me.actor, data, form.files,
        ResourceQuery(),
    )  # fmt: skip


def said(exc: SupportdeskError) -> str:
    """What an error says, for a page: a validation failure's every message."""
    if isinstance(exc, ValidationFailed):
        return " ".join(m for found in exc.errors.values() for m in found)
    return exc.message


def id_param(text: str | None) -> int | None:
    """A query parameter's id, or None when it is not one the database could hold."""
    if text and text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID:
        return int(text)
    return None


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=pages.SECURITY_HEADERS)


def safe_next(url: str | None, fallback: str) -> str:
    """Where to go after signing in: only a path of this site's console or portal."""
    if url and url.startswith(("/console", "/portal")) and "//" not in url and "\\" not in url:
        return url
    return fallback


async def staff(request: Request) -> Visitor:
    """The signed-in staff user; else the sign-in page (not signed in) or 403 (a customer)."""
    visitor = await sessions.visitor(request)
    if visitor is None:
        raise SignInNeeded(_here(request))
    if not visitor.staff:
        raise Forbidden("The console is for staff. Your tickets are in the portal: /portal/")
    return visitor


async def customer(request: Request) -> Visitor:
    """The signed-in customer; else the sign-in page, or 403 for staff (who work in the
    console: a staff session is never a customer's)."""
    visitor = await sessions.visitor(request)
    if visitor is None:
        raise SignInNeeded(_here(request))
    if visitor.staff:
        raise Forbidden("The portal is for customers. Staff work in the console: /console/")
    return visitor


def _here(request: Request) -> str:
    """Where to come back to after signing in: this page; for a form sent after the session
    ran out, the page the form was on (coming back to a POST's URL would be a 405)."""
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        ours = referer.netloc == request.url.netloc
        if ours and referer.path.startswith(("/console", "/portal")):
            return referer.path + (f"?{referer.query}" if referer.query else "")
        return "/console/" if request.url.path.startswith("/console") else "/portal/"
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def sign_in_url(next_url: str) -> str:
    return f"/login?next={quote(next_url, safe='/')}"
