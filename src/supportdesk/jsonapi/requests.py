"""Per-request helpers shared by the routers: parsed queries, the include permission rule,
the app's settings and database."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from supportdesk.auth.keys import ApiKey
from supportdesk.auth.service import require
from supportdesk.config import Settings
from supportdesk.jsonapi.query import (
    ListQuery,
    ResourceQuery,
    parse_list_query,
    parse_resource_query,
)
from supportdesk.jsonapi.spec import ResourceSpec


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def _check_includes(key: ApiKey, spec: ResourceSpec, query: ResourceQuery) -> None:
    """Including a resource type needs that type's view permission (403 otherwise)."""
    for name in query.include:
        require(key, spec.relationship(name).permission)


def list_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ListQuery:
    query = parse_list_query(request.query_params.multi_items(), spec, specs)
    _check_includes(key, spec, query)
    return query


def resource_query(
    request: Request, key: ApiKey, spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ResourceQuery:
    query = parse_resource_query(request.query_params.multi_items(), spec, specs)
    _check_includes(key, spec, query)
    return query
