"""The parsed, wire-format-free form of a list or resource request.

`jsonapi.query` builds these values from a request's query string (checking every name against
the resource's whitelists); services and repositories consume them. They hold only names and
parsed Python values, so storage code can take a `ListQuery` without knowing the query syntax
or the wire format. This module imports nothing from `jsonapi`, `db` or any resource package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PER_PAGE = 15


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool


@dataclass(frozen=True)
class ResourceQuery:
    """`include` and `fields`: what every endpoint that returns a resource accepts."""

    include: tuple[str, ...] = ()
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ListQuery(ResourceQuery):
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    # filter name -> parsed value: a tuple for list kinds (None inside means "is null"), a
    # string for TEXT and TIMESTAMP kinds
    filters: Mapping[str, Any] = field(default_factory=dict)
    sort: tuple[SortKey, ...] = ()

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


FEED_LIMIT = 100


@dataclass(frozen=True)
class FeedQuery:
    """`GET /events` and `/events/stream`: a cursor, a page size, a long-poll time, filters."""

    after: int | None
    limit: int = FEED_LIMIT
    wait: int = 0
    filters: Mapping[str, Any] = field(default_factory=dict)
