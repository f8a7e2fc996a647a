"""Request bodies of the tickets endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel

from supportdesk.jsonapi.fields import choice, integer, text


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
