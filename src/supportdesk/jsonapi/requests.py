"""Per-request helpers shared by the routers: parsed queries, the include permission rule,
the app's settings and database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from starlette.requests import Request

from supportdesk.auth.keys import ApiKey
from supportdesk.auth.service import require
from supportdesk.config import Settings
from supportdesk.db import Database
from supportdesk.jsonapi.query import parse_list_query, parse_resource_query
from supportdesk.jsonapi.spec import ResourceSpec
from supportdesk.queries import ListQuery, ResourceQuery

Q = TypeVar("Q", bound=ResourceQuery)


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _checked(key: ApiKey, spec: ResourceSpec, query: Q) -> Q:
    """Including a resource type needs that type's view permission (403 otherwise)."""
    for name in query.include:
        require(key, spec.relationship(name).permission)
    return query


def list_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ListQuery:
    return _checked(key, spec, parse_list_query(request.query_params.multi_items(), spec, specs))


def resource_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ResourceQuery:
    pairs = request.query_params.multi_items()
    return _checked(key, spec, parse_resource_query(pairs, spec, specs))
