"""Per-request helpers shared by the routers: parsed queries, the include permission rule,
the app's settings and database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from starlette.requests import Request

from supportdesk.auth.keys import ApiKey
from supportdesk.auth.service import require
from supportdesk.config import Settings
from supportdesk.db import Database
from supportdesk.jsonapi.query import parse_list_query, parse_resource_query
from supportdesk.jsonapi.spec import ResourceSpec
from supportdesk.queries import ListQuery, ResourceQuery

Q = TypeVar("Q", bound=ResourceQuery)


# Both read the app from the scope itself: Starlette's `request.app` is a property, a call of
# its own on every use.
def settings(request: Request) -> Settings:
    value: Settings = request.scope["app"].state.settings
    return value


def database(request: Request) -> Database:
    db: Database = request.scope["app"].state.db
    return db


def _checked(key: ApiKey, spec: ResourceSpec, query: Q) -> Q:
    """Including a resource type needs that type's view permission (403 otherwise)."""
    for name in query.include:
        require(key, spec.relationship(name).permission)
    return query


Parse = Callable[[list[tuple[str, str]], ResourceSpec, Mapping[str, ResourceSpec]], Q]
# Parsed queries (immutable) by parser, specs and raw query string, so that a query seen before
# (a retrieve's include, a list a client polls) costs a dictionary lookup instead of a parse,
# a fifth of a cheap read's bytecodes. A query that fails to parse is never kept. Each entry
# holds its specs, so their ids stay theirs while it is kept; cleared when full.
_PARSED: dict[tuple[Any, int, int, bytes], tuple[object, object, ResourceQuery]] = {}
PARSED_KEPT = 1024


def _parsed(
    request: Request, parse: Parse[Q], spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> Q:
    raw: bytes = request.scope["query_string"]
    key = (parse, id(spec), id(specs), raw)
    kept = _PARSED.get(key)
    if kept is not None:
        return cast(Q, kept[2])
    query = parse(request.query_params.multi_items(), spec, specs)
    if len(_PARSED) >= PARSED_KEPT:
        _PARSED.clear()
    _PARSED[key] = (spec, specs, query)
    return query


def list_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ListQuery:
    return _checked(key, spec, _parsed(request, parse_list_query, spec, specs))


def resource_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ResourceQuery:
    return _checked(key, spec, _parsed(request, parse_resource_query, spec, specs))
