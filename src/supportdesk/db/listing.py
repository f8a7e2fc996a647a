"""Filtered, sorted, paged selects built from a parsed `ListQuery`, and `IN (...)` lookups.

Statements are cached by *shape* (which filters, how many values, which sorts), never by
value, so each shape is built and compiled once; values travel as bound parameters. Every
filter name maps to a `ListFilter` chosen by the repository: no client string becomes SQL.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    ColumnElement,
    Select,
    String,
    Table,
    any_,
    bindparam,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.sql.elements import BindParameter, UnaryExpression

from supportdesk.db import counts
from supportdesk.db.base import Conn, Row
from supportdesk.db.fulltext import (
    MIN_SUBSTRING,
    SearchMatches,
    SubjectContains,
    TicketSearch,
    search_query,
)
from supportdesk.queries import ListQuery

# From this offset on, pages are read through a deferred join (see `Lister._build`).
DEFERRED_JOIN_FROM = 1000


class ListFilter(abc.ABC):
    """Turns a parsed filter value into bound parameters, and a parameter shape into a clause."""

    @abc.abstractmethod
    def params(self, name: str, value: Any) -> dict[str, Any]:
        """Parameter names must determine the clause: they are the statement's cache key."""

    @abc.abstractmethod
    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        """The WHERE clause for these parameter names."""


class AnyOf(ListFilter):
    """Exact match on any of the values; `None` among them matches NULL."""

    def __init__(self, column: ColumnElement[Any], transform: Callable[[Any], Any] | None = None):
        self.column = column
        self.transform = transform

    def params(self, name: str, value: Any) -> dict[str, Any]:
        values = [v for v in value if v is not None]
        if self.transform is not None:
            values = [self.transform(v) for v in values]
        out = {f"{name}_{i}": v for i, v in enumerate(values)}
        if None in value:
            out[f"{name}_null"] = None
        return out

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        binds: list[BindParameter[Any]] = [bindparam(k) for k in keys if not k.endswith("_null")]
        parts: list[ColumnElement[bool]] = []
        if len(binds) == 1:
            parts.append(self.column == binds[0])
        elif binds:
            parts.append(self.column.in_(binds))
        if len(binds) < len(keys):
            parts.append(self.column.is_(None))
        return or_(*parts) if parts else false()


class Present(ListFilter):
    """`column IS NOT NULL` for (True,), `column IS NULL` for (False,)."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def params(self, name: str, value: Any) -> dict[str, Any]:
        return {f"{name}_{'notnull' if value[0] else 'null'}": None}

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        return self.column.is_not(None) if keys[0].endswith("_notnull") else self.column.is_(None)


class Compare(ListFilter):
    """`column >= value` (op "ge") or `column < value` (op "lt")."""

    def __init__(self, column: ColumnElement[Any], op: str) -> None:
        self.column = column
        self.op = op

    def params(self, name: str, value: Any) -> dict[str, Any]:
        return {name: value}

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        bound: BindParameter[Any] = bindparam(name)
        return self.column >= bound if self.op == "ge" else self.column < bound


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in `text` escaped (escape character `\\`)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Contains(ListFilter):
    """Case-insensitive substring match."""

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    def params(self, name: str, value: Any) -> dict[str, Any]:
        return {name: like_pattern(value)}

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        return self.column.ilike(bindparam(name), escape="\\")


class Substring(ListFilter):
    """Case-insensitive substring: through the trigram index from three characters on (a
    shorter one has no trigram and is a plain LIKE)."""

    def __init__(self, ticket_id: ColumnElement[Any], column: ColumnElement[Any]) -> None:
        self.ticket_id = ticket_id
        self.short = Contains(column)
        self.column = column

    def params(self, name: str, value: Any) -> dict[str, Any]:
        if len(value) >= MIN_SUBSTRING:
            return {name: value}
        return self.short.params(f"{name}_short", value)

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        if name in keys:
            return SubjectContains(self.ticket_id, self.column, name)
        return self.short.clause(f"{name}_short", keys)


# On PostgreSQL a search's matches are found first when there are at most this many; the page
# and the count then take them as a parameter, where each found them again (bench/README.md,
# change 14). A search with more matches is left to the two statements.
PREFETCH_LIMIT = 10_000


class FullText(ListFilter):
    """Words in a ticket's subject or messages, through the full-text index."""

    def __init__(self, ticket_id: ColumnElement[Any]) -> None:
        self.ticket_id = ticket_id
        self._matches: dict[str, Select[Any]] = {}

    def params(self, name: str, value: Any) -> dict[str, Any]:
        query = search_query(value)
        return {name: query} if query is not None else {f"{name}_none": None}

    def clause(self, name: str, keys: Sequence[str]) -> ColumnElement[bool]:
        if f"{name}_ids" in keys:
            return self.ticket_id == any_(bindparam(f"{name}_ids", type_=ARRAY(BigInteger())))
        return TicketSearch(self.ticket_id, name) if name in keys else false()

    async def prefetch(self, conn: Conn, name: str, value: Any) -> list[int] | None:
        """PostgreSQL: the ids of the matching tickets, when there are at most PREFETCH_LIMIT
        (the parameter `{name}_ids` of the page and the count); None otherwise."""
        if conn.dialect != "postgresql":
            return None
        params = self.params(name, value)
        if name not in params:  # no words: nothing to find
            return None
        ids: list[int] = await conn.fetch_value(self.matches(name), params)
        return ids if len(ids) <= PREFETCH_LIMIT else None

    def matches(self, name: str) -> Select[Any]:
        """The statement `prefetch` runs (PostgreSQL): one array of PREFETCH_LIMIT + 1 ids at
        the most."""
        statement = self._matches.get(name)
        if statement is None:
            statement = self._matches[name] = select(SearchMatches(name, PREFETCH_LIMIT + 1))
        return statement


@dataclass(frozen=True)
class Listing:
    table: Table
    filters: Mapping[str, ListFilter]
    # sort name -> expression (ascending order)
    sorts: Mapping[str, ColumnElement[Any]]
    # the columns to select (default: all)
    columns: Sequence[ColumnElement[Any]] = ()
    # the table's trigger-kept counts (`supportdesk.db.counts`), cheaper than counting: the
    # total of an unfiltered list, and of a list filtered only by one of the `counted` columns
    # (`AnyOf` filters of the same name). Default: count the rows.
    counted_table: str | None = None
    counted: frozenset[str] = frozenset()


class Lister:
    """Runs list queries for one table, caching one (page, count) statement pair per shape."""

    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self._cache: dict[Hashable, tuple[Select[Any], Select[Any]]] = {}

    def _build(
        self,
        filter_keys: Sequence[tuple[str, tuple[str, ...]]],
        sort: Sequence[tuple[str, bool]],
        deep: bool,
    ) -> tuple[Select[Any], Select[Any]]:
        table = self.listing.table
        where = [self.listing.filters[name].clause(name, keys) for name, keys in filter_keys]
        order: list[UnaryExpression[Any]] = []
        for name, descending in sort:
            expr = self.listing.sorts[name]
            ordered = expr.desc() if descending else expr.asc()
            if isinstance(expr, Column) and expr.nullable:
                # NULLs after values ascending, before them descending, on both databases
                ordered = ordered.nulls_first() if descending else ordered.nulls_last()
            order.append(ordered)
        if not sort or sort[-1][0] != "id":
            last_descending = bool(sort) and sort[-1][1]
            order.append(table.c.id.desc() if last_descending else table.c.id.asc())
        columns = self.listing.columns or table.columns
        if deep:
            # A deferred join: skip the offset over ids alone (an index-only scan on
            # PostgreSQL), then read the page's rows: page 1000 in 1.1 ms instead of 2.6.
            ids = (
                select(table.c.id)
                .where(*where)
                .order_by(*order)
                .limit(bindparam("limit"))
                .offset(bindparam("offset"))
            )
            page = select(*columns).where(table.c.id.in_(ids)).order_by(*order)
        else:
            page = (
                select(*columns)
                .where(*where)
                .order_by(*order)
                .limit(bindparam("limit"))
                .offset(bindparam("offset"))
            )
        count = self._counted(filter_keys)
        if count is None:
            count = select(func.count()).select_from(table).where(*where)
        return page, count

    def _counted(self, filter_keys: Sequence[tuple[str, tuple[str, ...]]]) -> Select[Any] | None:
        """The total read from the trigger-kept counts, when they hold it."""
        table = self.listing.counted_table
        if table is None:
            return None
        if not filter_keys:
            return counts.table_total(table)
        if len(filter_keys) > 1:
            return None
        name, keys = filter_keys[0]
        if name not in self.listing.counted or any(k.endswith("_null") for k in keys):
            return None
        return counts.total(
            [counts.value_count(table, name, bindparam(k, type_=String)) for k in keys]
        )

    def statements(
        self, query: ListQuery, prefetched: Mapping[str, list[int]] | None = None
    ) -> tuple[Select[Any], Select[Any], dict[str, Any]]:
        """The page and count statements for the query's shape, and their parameters; a filter
        in `prefetched` takes its matches' ids (see `FullText.prefetch`)."""
        params: dict[str, Any] = {"limit": query.per_page, "offset": query.offset}
        filter_keys = []
        for name, value in sorted(query.filters.items()):
            if prefetched and name in prefetched:
                bound = {f"{name}_ids": prefetched[name]}
            else:
                bound = self.listing.filters[name].params(name, value)
            params.update(bound)
            filter_keys.append((name, tuple(bound)))
        sort = tuple((key.name, key.descending) for key in query.sort)
        deep = query.offset >= DEFERRED_JOIN_FROM
        shape = (tuple(filter_keys), sort, deep)
        statements = self._cache.get(shape)
        if statements is None:
            statements = self._cache[shape] = self._build(filter_keys, sort, deep)
        return statements[0], statements[1], params

    async def prefetch(self, conn: Conn, query: ListQuery) -> dict[str, list[int]]:
        """The matches of the query's searches found first (see `FullText.prefetch`)."""
        found = {}
        for name, value in query.filters.items():
            search = self.listing.filters[name]
            if isinstance(search, FullText):
                ids = await search.prefetch(conn, name, value)
                if ids is not None:
                    found[name] = ids
        return found

    async def _total(
        self, conn: Conn, query: ListQuery, prefetched: dict[str, list[int]]
    ) -> tuple[Select[Any], dict[str, Any], int]:
        """The page statement and its parameters, and the total: the number of prefetched
        matches (distinct tickets) when they are the only filter."""
        page, count, params = self.statements(query, prefetched)
        if prefetched and len(query.filters) == 1:
            return page, params, len(next(iter(prefetched.values())))
        total: int = await conn.fetch_value(count, params)
        return page, params, total

    async def count(self, conn: Conn, query: ListQuery) -> int:
        """How many rows the query's filters select (no page is read)."""
        _, _, total = await self._total(conn, query, await self.prefetch(conn, query))
        return total

    async def page(self, conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
        page, params, total = await self._total(conn, query, await self.prefetch(conn, query))
        rows = await conn.fetch_all(page, params) if total > query.offset else []
        return rows, total


class InLookup:
    """`SELECT ... WHERE column IN (...)`, with the id list padded to a power of two so only a
    handful of statement shapes exist."""

    def __init__(
        self, build: Callable[[ColumnElement[bool]], Select[Any]], column: ColumnElement[Any]
    ):
        self._build = build
        self._column = column
        self._cache: dict[int, Select[Any]] = {}

    def statement(self, count: int) -> tuple[Select[Any], int]:
        """The statement for `count` ids (> 0) and the padded size it takes."""
        size = 1 << (count - 1).bit_length()
        statement = self._cache.get(size)
        if statement is None:
            binds: list[BindParameter[Any]] = [bindparam(f"in_{i}") for i in range(size)]
            statement = self._cache[size] = self._build(self._column.in_(binds))
        return statement, size

    async def fetch(self, conn: Conn, ids: Sequence[Any], **params: Any) -> list[Row]:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        statement, size = self.statement(len(unique))
        padded = unique + [unique[-1]] * (size - len(unique))
        return await conn.fetch_all(
            statement, {**params, **{f"in_{i}": v for i, v in enumerate(padded)}}
        )
