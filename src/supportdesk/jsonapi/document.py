"""Rendering of JSON:API documents from database rows.

A repository returns plain rows; the service collects what `include` and the to-many
relationships need into a `Related`; these functions turn both into the bytes of a document.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from supportdesk.db import Row
from supportdesk.jsonapi.spec import ResourceSpec
from supportdesk.queries import ListQuery, ResourceQuery

MEDIA_TYPE = "application/vnd.api+json"


@dataclass
class Related:
    """What was loaded alongside the primary rows.

    `many[relationship][parent_id]` lists the ids of a to-many relationship in order;
    `included` holds the resources of the `included` member, in order (duplicates are dropped
    when rendering).
    """

    many: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    included: list[tuple[ResourceSpec, Row]] = field(default_factory=list)


def _attributes(spec: ResourceSpec, row: Row, fields: frozenset[str] | None) -> dict[str, Any]:
    names = (
        spec.attribute_names if fields is None else [n for n in spec.attribute_names if n in fields]
    )
    return dict(zip(names, map(row.__getitem__, names), strict=True))


def _relationships(
    spec: ResourceSpec, row: Row, related: Related, fields: frozenset[str] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rel in spec.relationships:
        if fields is not None and rel.name not in fields:
            continue
        if rel.many:
            if rel.name not in related.many:  # not loaded: linkage only when asked for
                continue
            ids = related.many[rel.name].get(row["id"], [])
            out[rel.name] = {"data": [{"type": rel.type, "id": str(i)} for i in ids]}
        else:
            value = row[rel.key or rel.name]
            out[rel.name] = {
                "data": None if value is None else {"type": rel.type, "id": str(value)}
            }
    return out


def resource_object(
    spec: ResourceSpec, row: Row, related: Related | None, query: ResourceQuery
) -> dict[str, Any]:
    """One resource object; `related=None` renders it without relationships (as in `included`)."""
    fields = query.fields.get(spec.type)
    obj: dict[str, Any] = {
        "type": spec.type,
        "id": str(row["id"]),
        "attributes": _attributes(spec, row, fields),
    }
    if related is not None and spec.relationships:
        relationships = _relationships(spec, row, related, fields)
        if relationships:
            obj["relationships"] = relationships
    return obj


def _included(related: Related, query: ResourceQuery) -> list[dict[str, Any]]:
    seen: set[tuple[str, Any]] = set()
    out = []
    for spec, row in related.included:
        key = (spec.type, row["id"])
        if key not in seen:
            seen.add(key)
            out.append(resource_object(spec, row, None, query))
    return out


class DocumentResponse(Response):
    """A JSON:API document's response, its header list built directly: Starlette's own looks
    through the given headers for a length and a type, and adds a charset to a text type
    (a seventh of a cheap read's framework bytecodes; this type is not text)."""

    media_type = MEDIA_TYPE

    def __init__(self, body: bytes, status: int, headers: dict[str, str] | None) -> None:
        self.body = body
        self.status_code = status
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", _MEDIA_TYPE_BYTES),
        ]
        if headers:
            self.raw_headers += [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ]


_MEDIA_TYPE_BYTES = MEDIA_TYPE.encode()


def respond(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON:API response of these document bytes."""
    return DocumentResponse(body, status, headers)


def _response(document: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return respond(orjson.dumps(document), status, headers)


def one_document(spec: ResourceSpec, row: Row, related: Related, query: ResourceQuery) -> bytes:
    """The bytes of a single-resource document: what `render_one` sends, and what a resource's
    entity tag is computed from (`jsonapi.conditional`)."""
    document: dict[str, Any] = {"data": resource_object(spec, row, related, query)}
    if query.include:
        document["included"] = _included(related, query)
    return orjson.dumps(document)


def render_one(
    spec: ResourceSpec,
    row: Row,
    related: Related,
    query: ResourceQuery,
    status: int = 200,
    location: str | None = None,
) -> Response:
    headers = {"Location": location} if location else None
    return respond(one_document(spec, row, related, query), status, headers)


def render_all(
    spec: ResourceSpec, rows: Sequence[Row], related: Related, query: ResourceQuery
) -> Response:
    """Every resource a write touched (a bulk update), unpaged, with relationships."""
    document: dict[str, Any] = {
        "data": [resource_object(spec, row, related, query) for row in rows]
    }
    if query.include:
        document["included"] = _included(related, query)
    return _response(document)


def page_url(request: Request, page: int) -> str:
    """The request's own URL with only `page` changed: filters, sorts, includes and `per_page`
    carry over, unlike Paymenter's links. Brackets are percent-encoded (`filter%5Bstatus%5D`),
    as a URI requires."""
    return with_param(request, "page", str(page))


def render_page(
    spec: ResourceSpec,
    rows: Sequence[Row],
    total: int,
    related: Related,
    query: ListQuery,
    request: Request,
) -> Response:
    last_page = max(1, -(-total // query.per_page))
    first = query.offset + 1 if rows else None
    document: dict[str, Any] = {
        "data": [resource_object(spec, row, related, query) for row in rows],
        "links": {
            "first": page_url(request, 1),
            "last": page_url(request, last_page),
            "prev": page_url(request, query.page - 1) if query.page > 1 else None,
            "next": page_url(request, query.page + 1) if query.page < last_page else None,
        },
        "meta": {
            "current_page": query.page,
            "from": first,
            "to": query.offset + len(rows) if rows else None,
            "per_page": query.per_page,
            "path": str(request.url.replace(query="")),
            "total": total,
            "last_page": last_page,
        },
    }
    if query.include:
        document["included"] = _included(related, query)
    return _response(document)


def render_data(type_: str, id_: str, attributes: dict[str, Any]) -> Response:
    """A document for a resource that has no table (ticket settings)."""
    return _response({"data": {"type": type_, "id": id_, "attributes": attributes}})


def render_list(spec: ResourceSpec, rows: Iterable[Row]) -> Response:
    """An unpaginated collection of a small table (roles)."""
    return _response({"data": [resource_object(spec, row, None, ResourceQuery()) for row in rows]})


def no_content() -> Response:
    return Response(status_code=204)


def render_feed(spec: ResourceSpec, rows: Sequence[Row], cursor: int, next_url: str) -> Response:
    """A page of the changes feed: the events, the cursor to resume from, the next page."""
    query = ResourceQuery()
    return _response(
        {
            "data": [resource_object(spec, row, None, query) for row in rows],
            "meta": {"cursor": str(cursor)},
            "links": {"next": next_url},
        }
    )


def with_param(request: Request, name: str, value: str) -> str:
    """The request's own URL with one parameter set (brackets percent-encoded)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != name]
    params.append((name, value))
    return f"{request.url.replace(query='')}?{urlencode(params, safe=',')}"


def sse_event(spec: ResourceSpec, row: Row) -> bytes:
    """One event as a server-sent event: `id:` the cursor, `event:` its name, `data:` the
    resource object on one line."""
    data = orjson.dumps(resource_object(spec, row, None, ResourceQuery()))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (row["id"], row["event"].encode(), data)
