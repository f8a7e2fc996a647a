"""The staff console (SPEC 14): queues with live counts, search, filters, sorts and bulk
actions; the ticket page with its thread, notes, files, reply box, fields, history and merge.
Every write goes through the same services as the API, as the signed-in user."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from supportdesk.canned_replies import service as canned
from supportdesk.canned_replies.schemas import RenderRequest
from supportdesk.config import Settings
from supportdesk.db import Row
from supportdesk.errors import BadQuery, ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.jsonapi.body import validate
from supportdesk.jsonapi.query import parse_list_query
from supportdesk.queries import ListQuery, ResourceQuery, SortKey
from supportdesk.ticket_attachments.service import content_disposition
from supportdesk.tickets import service as tickets
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.schemas import Merge, TicketUpdate
from supportdesk.users import repository as users
from supportdesk.web import forms, pages, presence, views
from supportdesk.web.sessions import Visitor

router = APIRouter(prefix="/console", include_in_schema=False)
PER_PAGE = 25
SPECS = {TICKETS.type: TICKETS}
QUEUES = (
    ("attention", "Needs attention"),
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("hold", "On hold"),
    ("closed", "Closed"),
    ("all", "All"),
)
_NONE = ""  # the form value of "nobody" / "no department"
# parameters of the page itself, not of the query: the queue, and `focus` (the `/` key)
_PAGE_ONLY = frozenset({"queue", "focus"})


def queue_params(queue: str, settings: Settings, me: int) -> dict[str, str]:
    """A queue as the API's query parameters (SPEC 4); a visitor's own filters go on top."""
    closed = settings.closed_status
    open_statuses = ",".join(s for s in settings.statuses if s != closed)
    if queue == "attention":
        wanted = [s for s in ("open", "customer-reply") if s in settings.statuses]
        return {"filter[status]": ",".join(wanted) or open_statuses, "sort": "updated_at"}
    if queue == "mine":
        return {"filter[assigned_to]": str(me), "filter[status]": open_statuses}
    if queue == "unassigned":
        return {"filter[assigned_to]": "null", "filter[status]": open_statuses}
    if queue == "hold":
        return {"filter[status]": "on-hold"}
    if queue == "closed":
        return {"filter[status]": closed}
    return {}


def _query(params: dict[str, str]) -> ListQuery:
    return parse_list_query(params.items(), TICKETS, SPECS)


@router.get("/")
async def queue_page(request: Request) -> Response:
    me = await forms.staff(request)
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    queue = request.query_params.get("queue", "attention")
    if queue not in dict(QUEUES):
        raise BadQuery(f"There is no queue {queue!r}.")
    mine = {k: v for k, v in request.query_params.items() if k not in _PAGE_ONLY and v != ""}
    params = {"sort": "-updated_at", **queue_params(queue, settings, me.id), **mine}
    params.setdefault("per_page", str(PER_PAGE))  # SPEC 4's paging: `page` and `per_page`
    query = _query(params)
    rows, total, _ = await tickets.list_tickets(db, settings, query)
    counts = await tickets.count_tickets(
        db, [replace(_query(queue_params(name, settings, me.id)), sort=()) for name, _ in QUEUES]
    )
    async with db.read() as conn:
        staff = await users.staff(conn)
        owners = await users.by_ids(conn, [r["user_id"] for r in rows])
    people = {u["id"]: u for u in owners}
    people.update({u["id"]: u for u in staff})
    here = {"queue": queue, **mine}
    pages_count = max(1, -(-total // query.per_page))
    return await pages.page(
        request,
        "console/queue.html",
        {
            "queues": [
                (name, label, count) for (name, label), count in zip(QUEUES, counts, strict=True)
            ],
            "queue": queue,
            "rows": rows,
            "total": total,
            "people": people,
            "staff": staff,
            "settings": settings,
            "mine": mine,
            "sort": params.get("sort", ""),
            "page_number": query.page,
            "pages_count": pages_count,
            "here": "/console/?" + urlencode(here),
            "page_url": lambda number: "/console/?" + urlencode({**here, "page": number}),
        },
    )


@router.post("/tickets/bulk")
async def bulk(request: Request) -> Response:
    me = await forms.staff(request)
    form = await forms.posted(request)
    settings: Settings = request.app.state.settings
    back = forms.safe_next(form.get("back"), "/console/")
    ids = [found for i in form.lists.get("ids", []) if (found := forms.id_param(i)) is not None]
    if not ids:
        raise ValidationFailed.field("ids", "Select at least one ticket.")
    action, _, value = form.get("action").partition(":")
    actions: dict[str, dict[str, Any]] = {
        "assign_me": {"assigned_to": me.id},
        "assign": {"assigned_to": forms.id_param(value) or value},
        "unassign": {"assigned_to": None},
        "close": {"status": settings.closed_status},
        "status": {"status": value},
        "priority": {"priority": value},
    }
    changes = actions.get(action, {})
    if not changes:
        raise ValidationFailed.field("action", "Choose what to do with the selected tickets.")
    data = validate(TicketUpdate, changes, tickets.validation_context(settings))
    await tickets.bulk_update(request.app.state.db, settings, me.actor, ids, data, ResourceQuery())
    return forms.redirect(back)


async def _ticket_page(
    request: Request, me: Visitor, ticket_id: int, status: int = 200, **extra: Any
) -> Response:
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    view = await views.ticket_view(db, ticket_id)
    history, _ = await tickets.history(
        db, ticket_id, ListQuery(per_page=100, sort=(SortKey("id", descending=True),))
    )
    replies, _ = await canned.list_canned_replies(db, ListQuery(per_page=100))
    department = view.ticket["department"]
    replies = [r for r in replies if r["department"] in (None, department)]
    async with db.read() as conn:
        staff = await users.staff(conn)
    draft = extra.pop("draft", "")
    chosen = forms.id_param(request.query_params.get("canned"))
    if chosen is not None and not draft:
        try:
            rendered = await canned.render(
                db, chosen, RenderRequest(ticket_id=ticket_id, user_id=me.id)
            )
            draft = rendered["body"]
        except (ResourceNotFound, ValidationFailed) as exc:  # deleted since, another department
            extra.setdefault("error", f"The canned reply could not be inserted: {forms.said(exc)}")
    return await pages.page(
        request,
        "console/ticket.html",
        {
            "view": view,
            "ticket": view.ticket,
            "history": [_described(event) for event in reversed(history)],
            "replies": replies,
            "staff": staff,
            "settings": settings,
            "draft": draft,
            "error": extra.pop("error", None),
            "others": await presence.others(db, ticket_id, me.id),
            "me": me,
            **extra,
        },
        status,
    )


def _described(event: Row) -> dict[str, Any]:
    """A history entry with its changes as (field, before, after) for the page."""
    changes = log.parsed(event["changes"]) or {}
    moves = [(name, pair[0], pair[1]) for name, pair in changes.items()]
    return {**event, "moves": moves}


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: forms.Id) -> Response:
    me = await forms.staff(request)
    return await _ticket_page(request, me, ticket_id)


@router.post("/tickets/{ticket_id}")
async def edit(request: Request, ticket_id: forms.Id) -> Response:
    """The ticket's fields: status, priority, department, assignee."""
    me = await forms.staff(request)
    form = await forms.posted(request)
    settings: Settings = request.app.state.settings
    changes: dict[str, Any] = {}
    for name in ("status", "priority", "department", "assigned_to"):
        if name in form.fields:
            value = form.get(name)
            changes[name] = None if value == _NONE and name != "status" else value
    assignee = changes.get("assigned_to")
    if isinstance(assignee, str) and forms.id_param(assignee) is not None:
        changes["assigned_to"] = forms.id_param(assignee)
    data = validate(TicketUpdate, changes, tickets.validation_context(settings))
    await tickets.update_ticket(
        request.app.state.db, settings, me.actor, ticket_id, data, ResourceQuery()
    )
    return forms.redirect(f"/console/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/messages")
async def reply(request: Request, ticket_id: forms.Id) -> Response:
    """A public reply or an internal note, with files; optionally a status set with it."""
    me = await forms.staff(request)
    form = await forms.posted(request)
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    status = form.get("status")
    try:
        # the status is checked before the message goes: a refused one sends nothing
        data_update = (
            validate(TicketUpdate, {"status": status}, tickets.validation_context(settings))
            if status
            else None
        )
        await forms.add_message(request, me, ticket_id, form, internal=form.get("kind") == "note")
    except ValidationFailed as exc:
        return await _ticket_page(
            request, me, ticket_id, 422, draft=form.get("message"), error=forms.said(exc)
        )
    if data_update is not None:
        await tickets.update_ticket(db, settings, me.actor, ticket_id, data_update, ResourceQuery())
    await presence.leave(db, ticket_id, me.id)
    return forms.redirect(f"/console/tickets/{ticket_id}#latest")


@router.post("/tickets/{ticket_id}/merge")
async def merge(request: Request, ticket_id: forms.Id) -> Response:
    me = await forms.staff(request)
    form = await forms.posted(request)
    words = form.get("source_ids").replace(",", " ").replace("#", " ").split()
    sources = [forms.id_param(word) for word in words]
    if not sources or None in sources:
        raise ValidationFailed.field("source_ids", "Give the numbers of the tickets to merge.")
    data = validate(Merge, {"source_ids": sources, "user_id": me.id})
    settings: Settings = request.app.state.settings
    await tickets.merge(request.app.state.db, settings, me.actor, ticket_id, data, ResourceQuery())
    return forms.redirect(f"/console/tickets/{ticket_id}")


@router.post("/tickets/{ticket_id}/presence")
async def here(request: Request, ticket_id: forms.Id) -> Response:
    """The page says who is here (`viewing`, `replying`, `left`); the answer lists the others."""
    me = await forms.staff(request)
    form = await forms.posted(request)
    db = request.app.state.db
    await presence.update(db, ticket_id, me.id, form.get("state"))
    others = await presence.others(db, ticket_id, me.id)
    return await pages.page(request, "console/_presence.html", {"others": others})


@router.get("/attachments/{attachment_id}")
async def download(request: Request, attachment_id: forms.Id) -> Response:
    await forms.staff(request)
    row = await views.attachment_for(request.app.state.db, attachment_id, owner_id=None)
    return file_response(request, row)


def file_response(request: Request, row: Any) -> Response:
    """A stored file: inline only for the raster images the thread shows, otherwise a
    download; sandboxed either way, so a file that is really HTML runs nothing."""
    path = request.app.state.storage.locate(row["stored_name"])
    if path is None:
        return pages.error_page(request, 404, "The file is gone from storage.")
    disposition = content_disposition(row["filename"])
    if request.query_params.get("inline") and row["mime_type"] in views.INLINE_IMAGES:
        disposition = "inline" + disposition.removeprefix("attachment")
    headers = {
        **pages.SECURITY_HEADERS,
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Content-Disposition": disposition,
        "Cache-Control": "no-store",  # private files: nothing left in a shared computer's cache
    }
    return FileResponse(path, media_type=row["mime_type"], headers=headers)
