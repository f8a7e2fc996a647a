"""Request bodies of the ticket-messages endpoints (JSON, or the text fields of a multipart
form)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationInfo

from supportdesk.jsonapi.fields import check_text, integer


def _message(value: Any, info: ValidationInfo) -> str | None:
    """Trimmed; at most `max_message_length` (from the validation context). Blank is allowed
    here and judged by the service, which knows whether files come with it."""
    limit: int = (info.context or {}).get("max_message_length", 5000)
    return check_text(value, limit, nullable=True)


Message = Annotated[str | None, BeforeValidator(_message)]


class MessageUpdate(BaseModel):
    message: Message = None


class MessageCreate(MessageUpdate):
    ticket_id: Annotated[int | None, integer()]
    user_id: Annotated[int | None, integer()]
