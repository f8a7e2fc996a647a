"""Request bodies of the tickets endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema

from supportdesk.jsonapi.fields import choice, id_list, integer, text

MAX_BULK = 500
MAX_MERGE = 100


class TicketUpdate(BaseModel):
    """PUT/PATCH: every field optional; only the fields sent change."""

    subject: Annotated[str | None, text(255)] = None
    user_id: Annotated[int | None, integer()] = None
    status: Annotated[str | None, choice("statuses")] = None
    priority: Annotated[str | None, choice("priorities")] = None
    department: Annotated[str | None, choice("departments", nullable=True)] = None
    assigned_to: Annotated[int | None, integer(nullable=True)] = None
    service_id: Annotated[int | None, integer(nullable=True)] = None


class TicketCreate(TicketUpdate):
    """POST: `subject` and `user_id` are required; status and priority have defaults."""

    subject: Annotated[str | None, text(255)]
    user_id: Annotated[int | None, integer()]


class BulkUpdate(BaseModel):
    """`PATCH /tickets`: the tickets, and the changes for all of them (validated as a
    `TicketUpdate` by the service's caller, so its errors name `changes.<field>`)."""

    ids: Annotated[list[int], id_list(MAX_BULK)]
    changes: Annotated[dict[str, Any], WithJsonSchema(TicketUpdate.model_json_schema())]


class Merge(BaseModel):
    """`POST /tickets/{id}/merge`: the tickets merged into this one, and the staff user who
    signs the notes left on them (default: this ticket's assignee)."""

    source_ids: Annotated[list[int], id_list(MAX_MERGE)]
    user_id: Annotated[int | None, integer(nullable=True)] = None
