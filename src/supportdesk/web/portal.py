"""The customer portal (SPEC 14): my tickets, open one, read one (public messages only), reply,
close. Another customer's ticket, message or file is 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from supportdesk.config import Settings
from supportdesk.errors import ValidationFailed
from supportdesk.jsonapi.body import validate
from supportdesk.queries import ListQuery, ResourceQuery, SortKey
from supportdesk.ticket_messages.schemas import MessageUpdate
from supportdesk.tickets import service as tickets
from supportdesk.tickets.schemas import TicketCreate, TicketUpdate
from supportdesk.web import forms, pages, views
from supportdesk.web.console import file_response
from supportdesk.web.sessions import Visitor

router = APIRouter(prefix="/portal", include_in_schema=False)
PER_PAGE = 25


@router.get("/")
async def my_tickets(request: Request) -> Response:
    me = await forms.customer(request)
    settings: Settings = request.app.state.settings
    number = request.query_params.get("page", "1")
    found = forms.id_param(number)
    page_number = found if found is not None and found < 10_000 else 1
    query = ListQuery(
        page=page_number,
        per_page=PER_PAGE,
        filters={"user_id": (me.id,)},
        sort=(SortKey("updated_at", descending=True),),
    )
    rows, total, _ = await tickets.list_tickets(request.app.state.db, settings, query)
    return await pages.page(
        request,
        "portal/list.html",
        {"rows": rows, "total": total, "page_number": page_number,
         "pages_count": max(1, -(-total // PER_PAGE)), "settings": settings},
    )  # fmt: skip


@router.get("/tickets/new")
async def new_ticket_page(request: Request) -> Response:
    await forms.customer(request)
    return await _new_form(request)


async def _new_form(request: Request, status: int = 200, **values: Any) -> Response:
    context = {"settings": request.app.state.settings, "errors": {}, "subject": "",
               "department": "", "message": "", **values}  # fmt: skip
    return await pages.page(request, "portal/new.html", context, status)


@router.post("/tickets/new")
async def open_ticket(request: Request) -> Response:
    """The ticket and its first message (with files) in one go: a message that cannot be
    written leaves no ticket behind."""
    me = await forms.customer(request)
    form = await forms.posted(request)
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    subject, department, text = form.get("subject"), form.get("department"), form.get("message")
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"subject": subject, "user_id": me.id}
    if department:
        values["department"] = department
    try:
        data = validate(TicketCreate, values, tickets.validation_context(settings))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if not text.strip() and not form.files:
        errors["message"] = ["Write what you need help with."]
    else:
        try:  # the API's own rules for a message's text (length, no NUL)
            validate(
                MessageUpdate,
                {"message": text},
                {"max_message_length": settings.max_message_length},
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        return await _new_form(request, 422, errors=errors, subject=subject,
                               department=department, message=text)  # fmt: skip
    ticket_id = await tickets.open_with_message(
        db, settings, request.app.state.storage, me.actor, data, text.strip(), form.files
    )
    return forms.redirect(f"/portal/tickets/{ticket_id}")


async def _ticket_page(
    request: Request, me: Visitor, ticket_id: int, status: int = 200, **extra: Any
) -> Response:
    view = await views.ticket_view(request.app.state.db, ticket_id, owner_id=me.id)
    context = {"view": view, "ticket": view.ticket, "settings": request.app.state.settings,
               "error": None, "draft": "", **extra}  # fmt: skip
    return await pages.page(request, "portal/ticket.html", context, status)


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: forms.Id) -> Response:
    me = await forms.customer(request)
    return await _ticket_page(request, me, ticket_id)


@router.post("/tickets/{ticket_id}/messages")
async def reply(request: Request, ticket_id: forms.Id) -> Response:
    me = await forms.customer(request)
    form = await forms.posted(request)
    await views.ticket_view(request.app.state.db, ticket_id, owner_id=me.id)  # 404 unless theirs
    try:
        await forms.add_message(request, me, ticket_id, form)
    except ValidationFailed as exc:
        return await _ticket_page(
            request, me, ticket_id, 422, draft=form.get("message"), error=forms.said(exc)
        )
    return forms.redirect(f"/portal/tickets/{ticket_id}#latest")


@router.post("/tickets/{ticket_id}/close")
async def close(request: Request, ticket_id: forms.Id) -> Response:
    me = await forms.customer(request)
    await forms.posted(request)
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    await views.ticket_view(db, ticket_id, owner_id=me.id)
    data = validate(TicketUpdate, {"status": settings.closed_status},
                    tickets.validation_context(settings))  # fmt: skip
    await tickets.update_ticket(db, settings, me.actor, ticket_id, data, ResourceQuery())
    return forms.redirect(f"/portal/tickets/{ticket_id}")


@router.get("/attachments/{attachment_id}")
async def download(request: Request, attachment_id: forms.Id) -> Response:
    me = await forms.customer(request)
    row = await views.attachment_for(request.app.state.db, attachment_id, owner_id=me.id)
    return file_response(request, row)
