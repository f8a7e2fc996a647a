"""Request bodies: content type (415), size (413), JSON syntax (400), then validation (422)
against a Pydantic model whose errors are worded as Laravel words them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import Message, Scope

from supportdesk.errors import (
    InvalidBody,
    InvalidJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

JSON_TYPES = ("application/json", "application/vnd.api+json")

Model = TypeVar("Model", bound=BaseModel)

# Pydantic error type -> message; `{attribute}` is the field name with spaces.
MESSAGES = {
    "missing": "The {attribute} field is required.",
    "required": "The {attribute} field is required.",
    "string_type": "The {attribute} field must be a string.",
    "too_long": "The {attribute} field must not be greater than {max} characters.",
    "too_short": "The {attribute} field must be at least {min} characters.",
    "integer": "The {attribute} field must be an integer.",
    "id_list": "The {attribute} field must be a list of 1 to {max} ids.",
    "choice": "The selected {attribute} is invalid.",
    "email": "The {attribute} field must be a valid email address.",
    "date": "The {attribute} field must be a valid date.",
    "nul": "The {attribute} field must not contain NUL characters.",
    "boolean": "The {attribute} field must be true or false.",
    "url": "The {attribute} field must be an http or https URL.",
    "event_list": "The {attribute} field must be a non-empty list of event names.",
    "event_pattern": "The {attribute} field is invalid: {reason}.",
    "placeholder": "The {attribute} field has unknown placeholders: {names}. "
    "Known placeholders are {known}.",
}


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object. An empty body counts as `{}`. A JSON:API document
    (`{"data": {"attributes": {...}}}`) is unwrapped to its attributes."""
    raw = await limited(request, limit).body()
    content_type = _media_type(request)
    if not raw.strip() and content_type in ("", *JSON_TYPES):
        return {}
    if content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"Unsupported Content-Type `{content_type or '(none)'}`: send application/json."
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate in string" in str(exc):  # well-formed JSON whose text is not Unicode
            raise ValidationFailed.field(
                "body", "The request body contains a lone surrogate, which is not valid text."
            ) from None
        raise InvalidJson(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "The request body must be a JSON object.")
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("attributes"), dict):
        return dict(data["attributes"])
    return body


MULTIPART = "multipart/form-data"


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_multipart(request: Request) -> bool:
    return _media_type(request) == MULTIPART


# Where `buffer_body` leaves a body read ahead of the route, in the ASGI scope.
_BUFFERED = "supportdesk.body"
_CHUNK = 64 * 1024
_SPOOL_MEMORY = 1024 * 1024  # a buffered body past this goes to a temporary file


@dataclass
class _Buffered:
    file: SpooledTemporaryFile[bytes]
    size: int = 0


async def buffer_body(request: Request, limit: int, sink: Callable[[bytes], None]) -> None:
    """Read the whole body now (413 past `limit`), handing each chunk to `sink` as it arrives,
    for a step that needs it before the route (the Idempotency-Key fingerprint). The route's
    own reads then get the same bytes, under the route's own limit, from a spooled copy (in
    memory up to 1 MiB, then in a temporary file, as Starlette keeps uploads). Whoever calls
    this calls `close_buffered` once the request is over."""
    counted = limited(request, limit)
    spool = SpooledTemporaryFile(_SPOOL_MEMORY)  # noqa: SIM115 - closed by close_buffered
    buffered = request.scope[_BUFFERED] = _Buffered(spool)
    async for chunk in counted.stream():
        sink(chunk)
        buffered.file.write(chunk)
        buffered.size += len(chunk)


def close_buffered(scope: Scope) -> None:
    """Free what `buffer_body` kept of this request's body, if anything."""
    buffered: _Buffered | None = scope.pop(_BUFFERED, None)
    if buffered is not None:
        buffered.file.close()


def limited(request: Request, limit: int) -> Request:
    """The same request, whose body stream raises 413 past `limit` bytes (checked as it
    arrives, so an endless upload is cut off, not buffered)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    buffered: _Buffered | None = request.scope.get(_BUFFERED)
    if buffered is not None:
        if buffered.size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return _replaying(request, buffered)
    received = 0
    receive = request.receive

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return message

    return Request(request.scope, counted)


def _replaying(request: Request, buffered: _Buffered) -> Request:
    """The same request, whose body stream is the buffered body from its start, then the
    client's own messages (a disconnect)."""
    position = 0

    async def replay() -> Message:
        nonlocal position
        if position > buffered.size:
            return await request.receive()
        buffered.file.seek(position)
        chunk = buffered.file.read(_CHUNK)
        position += len(chunk)
        more = position < buffered.size
        if not more:
            position = buffered.size + 1  # sent whole
        return {"type": "http.request", "body": chunk, "more_body": more}

    return Request(request.scope, replay)


@dataclass
class Form:
    fields: dict[str, str]
    files: list[UploadFile]


async def read_form(
    request: Request, limit: int, max_files: int, file_fields: tuple[str, ...]
) -> Form:
    """A multipart/form-data body: its text fields and the files under `file_fields`."""
    try:
        form = await limited(request, limit).form(max_files=max_files, max_fields=50)
    except StarletteHTTPException as exc:
        raise InvalidBody(f"Malformed multipart body: {exc.detail}") from None
    fields: dict[str, str] = {}
    files: list[UploadFile] = []
    for name, value in form.multi_items():
        if name in file_fields and isinstance(value, str):
            raise ValidationFailed.field(name, f"The {name} field must be a file.")
        if isinstance(value, str):
            fields[name] = value
        elif name in file_fields:
            files.append(value)
        else:
            raise InvalidBody(f"Unexpected file field `{name}`: send files as {file_fields[0]}.")
    return Form(fields, files)


def _message(error: Any) -> tuple[str, str]:
    field = str(error["loc"][0]) if error["loc"] else "body"
    template = MESSAGES.get(error["type"])
    attribute = field.replace("_", " ")
    if template is None:
        return field, f"The {attribute} field is invalid."
    return field, template.format(attribute=attribute, **(error.get("ctx") or {}))


def validate(
    model: type[Model], data: dict[str, Any], context: dict[str, Any] | None = None
) -> Model:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field, message = _message(error)
            errors.setdefault(field, []).append(message)
        raise ValidationFailed(errors) from None


async def read_body(
    request: Request, model: type[Model], limit: int, context: dict[str, Any] | None = None
) -> Model:
    return validate(model, await read_json(request, limit), context)
