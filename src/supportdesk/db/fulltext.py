"""Searches through the full-text structures of `supportdesk.tables.search`, never a LIKE
scan of the table:

- `TicketSearch` (`filter[search]`): words in a ticket's subject or in any of its messages;
  FTS5 MATCH on SQLite, a `tsvector` match on PostgreSQL.
- `SubjectContains` (`filter[subject]`): a case-insensitive substring of three or more
  characters; an FTS5 trigram phrase on SQLite, ILIKE through a pg_trgm index on PostgreSQL.

Each is one Core element compiled per dialect, so the listing code stays dialect-neutral, and
the raw text is the only parameter: each dialect turns it into its own syntax in SQL.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import ARRAY, BigInteger, Boolean

from supportdesk.tables.search import TS_CONFIG

MAX_WORDS = 32
_WORD = re.compile(r"\w+")


def search_query(text: str) -> str | None:
    """The words of `text` as a query both engines read the same way: each word a quoted FTS5
    phrase (all must match), which PostgreSQL's plainto_tsquery reads as word & word. None when
    there is no word at all."""
    words = _WORD.findall(text)[:MAX_WORDS]
    return " ".join(f'"{word}"' for word in words) if words else None


class TicketSearch(ColumnElement[bool]):
    """`tickets.id IN (tickets whose subject matches UNION tickets with a matching message)`."""

    type = Boolean()
    inherit_cache = False
    # a predicate as it stands: without this SQLAlchemy writes `(... IN (...)) = 1` on SQLite,
    # which hides the IN from the planner and scans every ticket
    _is_implicitly_boolean = True

    def __init__(self, ticket_id: ColumnElement[Any], name: str) -> None:
        self.ticket_id = ticket_id
        self.query: BindParameter[str] = bindparam(name)


@compiles(TicketSearch, "sqlite")
def _sqlite(element: TicketSearch, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.ticket_id, **kw)
    query = compiler.process(element.query, **kw)
    return (
        f"{column} IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH {query} "
        "UNION SELECT m.ticket_id FROM ticket_messages_fts "
        "JOIN ticket_messages AS m ON m.id = ticket_messages_fts.rowid "
        f"WHERE ticket_messages_fts MATCH {query})"
    )


def _postgresql_matches(query: str) -> str:
    """`ARRAY(...)` of the ids of the tickets that match the compiled query parameter. The
    expressions must read exactly as the GIN indexes' for the planner to use them."""
    tsquery = f"plainto_tsquery('{TS_CONFIG}', {query})"
    return (
        f"ARRAY(SELECT s.id FROM tickets AS s "
        f"WHERE to_tsvector('{TS_CONFIG}', s.subject) @@ {tsquery} "
        "UNION SELECT m.ticket_id FROM ticket_messages AS m "
        f"WHERE to_tsvector('{TS_CONFIG}', m.message) @@ {tsquery}"
    )


@compiles(TicketSearch, "postgresql")
def _postgresql(element: TicketSearch, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.ticket_id, **kw)
    # `= ANY(ARRAY(...))` has the matches collected once, then looked up by primary key in id
    # order: with `IN (...)` the planner misjudges how few they are and merges them with a
    # walk over the whole primary key.
    return f"{column} = ANY({_postgresql_matches(compiler.process(element.query, **kw))}))"


class SearchMatches(ColumnElement[Any]):
    """PostgreSQL only: the ids of the matching tickets as one array, at most `limit` of them
    (see `supportdesk.db.listing.FullText.prefetch`)."""

    type = ARRAY(BigInteger())
    inherit_cache = False

    def __init__(self, name: str, limit: int) -> None:
        self.query: BindParameter[str] = bindparam(name)
        self.limit = limit


@compiles(SearchMatches, "postgresql")
def _postgresql_search_matches(element: SearchMatches, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_postgresql_matches(compiler.process(element.query, **kw))} LIMIT {element.limit})"


# Substrings shorter than this have no trigram to look up.
MIN_SUBSTRING = 3


class SubjectContains(ColumnElement[bool]):
    """The ticket's subject contains the parameter's text, ignoring case."""

    type = Boolean()
    inherit_cache = False
    _is_implicitly_boolean = True

    def __init__(self, ticket_id: ColumnElement[Any], subject: ColumnElement[Any], name: str):
        self.ticket_id = ticket_id
        self.subject = subject
        self.text: BindParameter[str] = bindparam(name)


@compiles(SubjectContains, "sqlite")
def _sqlite_substring(element: SubjectContains, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.ticket_id, **kw)
    value = compiler.process(element.text, **kw)
    # a quoted trigram phrase is a substring match (FTS5's trigram tokenizer folds case)
    return (
        f"{column} IN (SELECT rowid FROM tickets_subject_fts WHERE tickets_subject_fts "
        f"MATCH '\"' || replace({value}, '\"', '\"\"') || '\"')"
    )


@compiles(SubjectContains, "postgresql")
def _postgresql_substring(element: SubjectContains, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.subject, **kw)
    value = compiler.process(element.text, **kw)
    escaped = f"replace(replace(replace({value}, '\\', '\\\\'), '%', '\\%'), '_', '\\_')"
    return f"{column} ILIKE '%' || {escaped} || '%'"
