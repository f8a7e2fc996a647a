"""Request bodies of the canned-replies endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from supportdesk.canned_replies import placeholders
from supportdesk.jsonapi.fields import check_text, choice, integer, text


def _body(value: Any, info: ValidationInfo) -> str | None:
    """Required, trimmed, at most `max_message_length` (a filled reply becomes a message), and
    every placeholder a known one."""
    limit: int = (info.context or {}).get("max_message_length", 5000)
    cleaned = check_text(value, limit)
    assert cleaned is not None  # not nullable: None was refused
    unknown = placeholders.unknown(cleaned)
    if unknown:
        names = ", ".join(f"{{{{ {name} }}}}" for name in unknown)
        known = ", ".join(placeholders.PLACEHOLDERS)
        raise PydanticCustomError("placeholder", "placeholder", {"names": names, "known": known})
    return cleaned


Body = Annotated[str | None, BeforeValidator(_body)]


class CannedReplyUpdate(BaseModel):
    """PUT/PATCH: every field optional; only the fields sent change."""

    name: Annotated[str | None, text(255)] = None
    body: Body = None
    department: Annotated[str | None, choice("departments", nullable=True)] = None


class CannedReplyCreate(CannedReplyUpdate):
    """POST: `name` and `body` are required; without a department a reply fits every ticket."""

    name: Annotated[str | None, text(255)]
    body: Body


class RenderRequest(BaseModel):
    """`POST /canned-replies/{id}/render`: the ticket to fill the reply for, and optionally the
    staff user answering (default: the ticket's assignee)."""

    ticket_id: Annotated[int | None, integer()]
    user_id: Annotated[int | None, integer(nullable=True)] = None
