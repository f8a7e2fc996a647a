"""OpenAPI fragments generated from the resource declarations, so the published document lists
exactly the filters, sorts, includes and fields the parser accepts, and every error body."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from supportdesk.jsonapi.document import MEDIA_TYPE
from supportdesk.jsonapi.query import MAX_FEED_LIMIT, MAX_PER_PAGE, MAX_WAIT_S
from supportdesk.jsonapi.spec import FilterKind, ResourceSpec
from supportdesk.queries import DEFAULT_PER_PAGE, FEED_LIMIT

_ERROR = {
    "type": "object",
    "required": ["message", "code"],
    "properties": {
        "message": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}
_ERROR_TEXT = {
    400: "Unknown filter, sort, include or fields name, or a malformed query or JSON body",
    401: "Missing, unknown or disabled API key",
    403: "Address not allowed, or a permission missing",
    404: "No such resource",
    409: "Conflict",
    412: "Precondition failed: `If-Match` does not match the resource's current ETag (or, on "
    "a write, `If-None-Match` does); nothing was written",
    413: "Body too large",
    415: "Unsupported Content-Type",
    422: "Invalid body or paging parameter",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _ERROR_TEXT[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for status in (401, 403, *statuses)
    }


def _identifier(type_: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "id"],
        "properties": {"type": {"const": type_}, "id": {"type": "string"}},
    }


def resource_schema(spec: ResourceSpec, with_relationships: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "type": {"const": spec.type},
        "id": {"type": "string"},
        "attributes": {"type": "object", "properties": dict(spec.attributes)},
    }
    if with_relationships and spec.relationships:
        properties["relationships"] = {
            "type": "object",
            "properties": {
                rel.name: {
                    "type": "object",
                    "properties": {
                        "data": {"type": "array", "items": _identifier(rel.type)}
                        if rel.many
                        else {"anyOf": [_identifier(rel.type), {"type": "null"}]}
                    },
                }
                for rel in spec.relationships
            },
        }
    return {"type": "object", "required": ["type", "id", "attributes"], "properties": properties}


def _included(specs: Mapping[str, ResourceSpec]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"anyOf": [resource_schema(s, False) for s in specs.values()]},
    }


def _content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": schema}}}


def one(
    spec: ResourceSpec, specs: Mapping[str, ResourceSpec], status: int = 200, *, etag: bool = False
) -> dict[int | str, Any]:
    """A single-resource document; `etag`: its answer carries the resource's ETag."""
    schema = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": resource_schema(spec), "included": _included(specs)},
    }
    response = _content(schema, f"One {spec.type} resource")
    if etag:
        response["headers"] = _ETAG
    return {status: response}


_ETAG = {
    "ETag": {
        "description": "The strong entity tag of the resource as a GET of its URL with the same "
        "`include` and `fields` renders it; send it back in `If-None-Match` or `If-Match`",
        "required": True,
        "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
    }
}
# `*`, or a comma-separated list of entity tags, each optionally weak (`W/"..."`)
_TAG_LIST = r'^(\*|(W/)?"[!#-~]*"([ \t]*,[ \t]*(W/)?"[!#-~]*")*)$'


def not_modified() -> dict[int | str, Any]:
    """The 304 of a read whose `If-None-Match` matched: no body, the ETag."""
    return {
        304: {
            "description": "Not modified: `If-None-Match` matches the current ETag; no body",
            "headers": _ETAG,
        }
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "pattern": _TAG_LIST},
    }


_SAME_QUERY = (
    " The ETags are those of GET answers of this URL with the same `include` and `fields[...]` "
    "as this request's."
)


def conditional_parameters(*, read: bool) -> list[dict[str, Any]]:
    """`If-None-Match` and `If-Match` of a single resource (SPEC section 12)."""
    if read:
        return [
            _header(
                "If-None-Match",
                "ETags the client holds, or `*`: when one matches the current ETag (weak "
                "comparison: `W/` is ignored), the answer is 304 with no body." + _SAME_QUERY,
            ),
            _header(
                "If-Match",
                "412 unless one of these ETags (or `*`) is the current one." + _SAME_QUERY,
            ),
        ]
    return [
        _header(
            "If-Match",
            "Write only if the resource's current ETag is one of these (strong comparison: a "
            "`W/` tag never matches; `*` matches the existing resource); otherwise 412 and "
            "nothing is written." + _SAME_QUERY,
        ),
        _header(
            "If-None-Match",
            "Write only if the current ETag is none of these; `*` refuses any existing "
            "resource. Otherwise 412 and nothing is written." + _SAME_QUERY,
        ),
    ]


def all_of(spec: ResourceSpec, specs: Mapping[str, ResourceSpec]) -> dict[int | str, Any]:
    """An unpaged collection (the tickets a bulk update changed)."""
    schema = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"type": "array", "items": resource_schema(spec)},
            "included": _included(specs),
        },
    }
    return {200: _content(schema, f"The {spec.type} resources")}


def data(schema: dict[str, Any], description: str) -> dict[int | str, Any]:
    """A 200 document whose `data` has this schema (resources without a table)."""
    document = {"type": "object", "required": ["data"], "properties": {"data": schema}}
    return {200: _content(document, description)}


def many(spec: ResourceSpec, specs: Mapping[str, ResourceSpec]) -> dict[int | str, Any]:
    link = {"type": ["string", "null"], "format": "uri"}
    nullable_int = {"type": ["integer", "null"]}
    schema = {
        "type": "object",
        "required": ["data", "links", "meta"],
        "properties": {
            "data": {"type": "array", "items": resource_schema(spec)},
            "links": {
                "type": "object",
                "properties": dict.fromkeys(("first", "last", "prev", "next"), link),
            },
            "meta": {
                "type": "object",
                "properties": {
                    "current_page": {"type": "integer"},
                    "from": nullable_int,
                    "to": nullable_int,
                    "per_page": {"type": "integer"},
                    "path": {"type": "string"},
                    "total": {"type": "integer"},
                    "last_page": {"type": "integer"},
                },
            },
            "included": _included(specs),
        },
    }
    return {200: _content(schema, f"A page of {spec.type}")}


def query_param(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def resource_parameters(
    spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> list[dict[str, Any]]:
    params = []
    if spec.includes:
        permissions = ", ".join(
            f"`{name}` (needs {spec.relationship(name).permission})" for name in spec.includes
        )
        params.append(
            query_param(
                "include",
                f"Comma-separated related resources: {permissions}",
                _names_pattern(spec.includes),
            )
        )
    for type_, other in specs.items():
        names = [*other.attribute_names, *(rel.name for rel in other.relationships)]
        params.append(
            query_param(
                f"fields[{type_}]",
                f"Sparse fieldset of `{type_}`: " + ", ".join(names),
                _names_pattern(names),
            )
        )
    return params


_ID = r"[1-9][0-9]{0,17}"
_NO_NUL = r"^[^\x00]*$"
_FILTER_SCHEMAS: dict[FilterKind, dict[str, Any]] = {
    FilterKind.INTS: {"type": "string", "pattern": f"^{_ID}(,{_ID}){{0,99}}$"},
    FilterKind.INTS_OR_NULL: {"type": "string", "pattern": f"^(null|{_ID}(,{_ID}){{0,99}})?$"},
    FilterKind.STRINGS: {"type": "string", "pattern": r"^[^,\x00]*(,[^,\x00]*){0,99}$"},
    FilterKind.STRINGS_OR_NULL: {"type": "string", "pattern": r"^[^,\x00]*(,[^,\x00]*){0,99}$"},
    FilterKind.TEXT: {"type": "string", "pattern": _NO_NUL},
    FilterKind.BOOLEAN: {"type": "string", "enum": ["", "true", "false", "1", "0"]},
    FilterKind.PRESENCE: {"type": "string", "enum": ["", "null", "notnull"]},
    FilterKind.TIMESTAMP: {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$",
    },
}


def _names_pattern(names: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """A comma-separated list of these names (each may carry `prefix`), or nothing."""
    one = f"{prefix}({'|'.join(re.escape(n) for n in names)})"
    return {"type": "string", "pattern": f"^({one}(,{one})*)?$"}


def list_parameters(spec: ResourceSpec, specs: Mapping[str, ResourceSpec]) -> list[dict[str, Any]]:
    params = [
        query_param("page", "Page number, from 1", {"type": "integer", "minimum": 1, "default": 1}),
        query_param(
            "per_page",
            f"Page size, 1 to {MAX_PER_PAGE} (larger values are clamped)",
            {"type": "integer", "minimum": 1, "default": DEFAULT_PER_PAGE},
        ),
        query_param(
            "sort",
            "Comma-separated sort keys, `-` for descending: " + ", ".join(spec.sorts),
        ),
    ]
    params += [
        query_param(f"filter[{f.name}]", f"{f.description} ({f.kind.value})") for f in spec.filters
    ]
    return params + resource_parameters(spec, specs)


def body(
    model: type[BaseModel], description: str, multipart: dict[str, Any] | None = None
) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": model.model_json_schema()}
    contents = {"application/json": content, MEDIA_TYPE: content}
    if multipart is not None:
        contents["multipart/form-data"] = multipart
    return {"requestBody": {"required": True, "description": description, "content": contents}}


def upload_form(model: type[BaseModel] | None, file_field: str) -> dict[str, Any]:
    """A multipart/form-data body: the model's fields as text parts, plus repeated files."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    if model is not None:
        schema = model.model_json_schema()
        properties = {name: {"type": "string"} for name in schema.get("properties", {})}
        required = list(schema.get("required", []))
    properties[file_field] = {"type": "array", "items": {"type": "string", "format": "binary"}}
    if model is None:
        required.append(file_field)
    return {
        "schema": {"type": "object", "properties": properties, "required": required},
        "encoding": {file_field: {"contentType": "application/octet-stream"}},
    }


def feed_filters(spec: ResourceSpec) -> list[dict[str, Any]]:
    return [
        query_param(
            f"filter[{f.name}]", f"{f.description} ({f.kind.value})", _FILTER_SCHEMAS[f.kind]
        )
        for f in spec.filters
    ]


def feed_paging() -> list[dict[str, Any]]:
    return [
        query_param(
            "limit",
            f"Events per page, 1 to {MAX_FEED_LIMIT} (default {FEED_LIMIT})",
            {"type": "integer", "minimum": 1, "maximum": MAX_FEED_LIMIT},
        ),
        query_param(
            "wait",
            f"Long poll: on an empty page, wait up to this many seconds (0 to {MAX_WAIT_S})",
            {"type": "integer", "minimum": 0, "maximum": MAX_WAIT_S},
        ),
    ]


def feed(spec: ResourceSpec) -> dict[int | str, Any]:
    schema = {
        "type": "object",
        "required": ["data", "meta", "links"],
        "properties": {
            "data": {"type": "array", "items": resource_schema(spec)},
            "meta": {
                "type": "object",
                "required": ["cursor"],
                "properties": {"cursor": {"type": "string"}},
            },
            "links": {
                "type": "object",
                "properties": {"next": {"type": "string", "format": "uri"}},
            },
        },
    }
    return {200: _content(schema, "Events after the cursor, oldest first")}


# SPEC 12: every admin POST takes an Idempotency-Key (`supportdesk.idempotency`).
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: 1 to 255 visible ASCII characters, scoped to the API key, kept "
        "24 hours. A repeat of the same request (method, path, query and body; a multipart "
        "body's boundary does not count) gets the first answer again, with "
        "`Idempotent-Replayed: true`, and writes nothing. Answers kept: every 2xx and 4xx "
        "except 429; after a 5xx or 429 the key is free again and a retry runs anew."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` on the stored answer to a repeated Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before repeating a request still in progress",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_IDEMPOTENCY_ERRORS = {
    "400": "a malformed Idempotency-Key (`invalid_idempotency_key`)",
    "409": "the first request with this Idempotency-Key is still in progress "
    "(`idempotency_key_in_flight`, with `Retry-After`)",
    "413": "a body larger than its content type's limit",
    "422": "this Idempotency-Key was used with a different request (`idempotency_key_reused`)",
}


def idempotent_posts(document: dict[str, Any], prefix: str) -> None:
    """Add the Idempotency-Key header and its answers to every POST operation under
    `prefix`: whatever POST a router declares, the guard honours the header."""
    for path, item in document.get("paths", {}).items():
        operation = item.get("post")
        if operation is None or not path.startswith(prefix):
            continue
        operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_KEY))
        responses = operation.setdefault("responses", {})
        for status, text in _IDEMPOTENCY_ERRORS.items():
            response = responses.get(status)
            if response is None:
                response = responses[status] = {"description": text[0].upper() + text[1:]}
            elif status != "413":
                response["description"] = f"{response['description']}; or {text}"
            # FastAPI's default 422 has its own schema: every error body here is ours
            response["content"] = {"application/json": {"schema": _ERROR}}
        responses["409"].setdefault("headers", {}).update(_RETRY_AFTER)
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(_REPLAYED)


def install(app: FastAPI, prefix: str) -> None:
    """Generate the app's document once, with `idempotent_posts` applied."""
    generate = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        idempotent_posts(schema, prefix)
        return schema

    app.openapi = document  # type: ignore[method-assign]
