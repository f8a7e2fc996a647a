"""Request bodies of the webhooks endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticCustomError

from supportdesk.events import log
from supportdesk.jsonapi.fields import Boolean, check_text, text

MAX_URL_LENGTH = 2048
TEST_EVENT = "webhook.test"


def _url(value: Any) -> str | None:
    """An absolute http or https URL with a host. Whether that host may be called is the
    service's check, which needs DNS."""
    cleaned = check_text(value, MAX_URL_LENGTH)
    assert cleaned is not None  # not nullable: None was refused
    try:
        url = httpx.URL(cleaned)
        valid = url.scheme in ("http", "https") and bool(url.host)  # `host` decodes IDNA
    except (httpx.InvalidURL, ValueError):  # ValueError: a host that is not a valid IDNA name
        valid = False
    if not valid or not (url.port is None or 0 < url.port < 65536):
        raise PydanticCustomError("url", "url")
    return cleaned


def _patterns(value: Any) -> list[str]:
    """A non-empty list of patterns that `events.log.parse_patterns` accepts, deduplicated in
    order. `webhook.test` cannot be subscribed to: only `POST /webhooks/{id}/test` sends it."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PydanticCustomError("event_list", "event_list")
    patterns = list(dict.fromkeys(v.strip() for v in value))
    for pattern in patterns:
        try:
            log.parse_patterns([pattern])
        except ValueError as exc:
            raise PydanticCustomError("event_pattern", "event_pattern", {"reason": exc}) from None
        if pattern == TEST_EVENT:
            reason = f"{TEST_EVENT} is sent only by POST /webhooks/{{id}}/test"
            raise PydanticCustomError("event_pattern", "event_pattern", {"reason": reason})
    return patterns


class WebhookUpdate(BaseModel):
    """PUT/PATCH: only the fields sent change."""

    url: Annotated[str | None, BeforeValidator(_url)] = None
    events: Annotated[list[str] | None, BeforeValidator(_patterns)] = None
    description: Annotated[str | None, text(255, nullable=True)] = None
    enabled: Boolean | None = None


class WebhookCreate(WebhookUpdate):
    """POST: `url` and `events` are required; an endpoint starts enabled."""

    url: Annotated[str | None, BeforeValidator(_url)]
    events: Annotated[list[str] | None, BeforeValidator(_patterns)]
