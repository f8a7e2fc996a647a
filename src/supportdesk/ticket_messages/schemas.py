"""Request bodies of the ticket-messages endpoints (JSON, or the text fields of a multipart
form)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationInfo

from supportdesk.jsonapi.fields import TEXT_BOOLEANS, check_boolean, check_text, integer


def _message(value: Any, info: ValidationInfo) -> str | None:
    """Trimmed; at most `max_message_length` (from the validation context). Blank is allowed
    here and judged by the service, which knows whether files come with it."""
    limit: int = (info.context or {}).get("max_message_length", 5000)
    return check_text(value, limit, nullable=True)


Message = Annotated[str | None, BeforeValidator(_message)]


def _internal(value: Any, info: ValidationInfo) -> bool:
    """A JSON boolean; in a multipart form (context `form`), `true`/`false`/`1`/`0`."""
    if isinstance(value, str) and (info.context or {}).get("form"):
        value = TEXT_BOOLEANS.get(value.strip().lower(), value)
    return check_boolean(value)


class MessageUpdate(BaseModel):
    message: Message = None
    # SPEC 12: an internal note, for staff only (written by a staff user; never moves the
    # ticket's status, never mailed to the customer or shown in the portal)
    internal: Annotated[bool | None, BeforeValidator(_internal)] = None


class MessageCreate(MessageUpdate):
    ticket_id: Annotated[int | None, integer()]
    user_id: Annotated[int | None, integer()]
