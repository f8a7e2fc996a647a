"""The Alembic revisions and the Core tables describe the same schema, on both databases, and
every revision downgrades cleanly."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from supportdesk.db import DatabaseUrl
from supportdesk.db import migrate as migrations
from supportdesk.db.migrate import include_name
from supportdesk.tables import metadata
from supportdesk.tables.search import POSTGRES_GIN, SQLITE_FTS
from tests.conftest import _recreate_database, postgres_url


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLite cannot reflect expression indexes
        return compare_metadata(context, metadata)


def _state(connection: Connection) -> tuple[set[str], list[Any], list[Any]]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    roles = (
        list(connection.execute(text("SELECT id, name FROM roles")).all())
        if "roles" in tables
        else []
    )
    if connection.dialect.name == "sqlite":
        sql = "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    else:
        sql = "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public'"
    indexes = sorted(tuple(row) for row in connection.execute(text(sql)).all())
    return tables, roles, indexes


def _search_structures(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
    names = {row[0] for row in connection.execute(text(sql)).all()}
    wanted = set(SQLITE_FTS) | {f"{fts}_{op}" for fts in SQLITE_FTS for op in ("ai", "ad", "au")}
    return names & (wanted if connection.dialect.name == "sqlite" else set(POSTGRES_GIN))


def _check(url: DatabaseUrl, run: Any) -> None:
    migrations.upgrade(url)
    assert len(run(_search_structures)) == (12 if url.is_sqlite else 3)
    tables, roles, indexes = run(_state)
    assert {"users", "roles", "tickets", "ticket_messages", "api_keys"} <= tables
    assert [tuple(r) for r in roles] == [(1, "admin")]
    declared = {
        (table.name, index.name) for table in metadata.tables.values() for index in table.indexes
    }
    assert declared <= set(indexes)
    assert ("users", "uq_users_email_lower") in indexes
    assert run(_diff) == []
    migrations.downgrade(url, "base")
    assert run(_state)[0] <= {"alembic_version"}
    assert run(_search_structures) == set()
    migrations.upgrade(url)
    assert run(_diff) == []
    assert run(_state)[2] == indexes


Runner = Callable[[Callable[[Connection], Any]], Any]


@contextmanager
def _sqlite(path: Path) -> Iterator[tuple[DatabaseUrl, Runner]]:
    """A SQLite database file, and a function that runs a check on a connection to it."""
    url = DatabaseUrl.parse(f"sqlite:///{path}")
    engine = create_engine(url.sqlalchemy_url())

    def run(fn: Callable[[Connection], Any]) -> Any:
        with engine.connect() as connection:
            return fn(connection)

    try:
        yield url, run
    finally:
        engine.dispose()


def _postgres(name: str) -> tuple[DatabaseUrl, Runner]:
    """A new empty PostgreSQL database, and a function that runs a check on it."""
    asyncio.run(_recreate_database(name))
    url = DatabaseUrl.parse(postgres_url(name))

    def run(fn: Callable[[Connection], Any]) -> Any:
        async def go() -> Any:
            engine = create_async_engine(url.sqlalchemy_url())
            try:
                async with engine.connect() as connection:
                    return await connection.run_sync(fn)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    return url, run


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    with _sqlite(tmp_path / "m.db") as (url, run):
        _check(url, run)


def test_postgres_upgrade_downgrade_upgrade(postgres_database: str) -> None:
    _check(*_postgres("supportdesk_migrations_test"))


def test_every_documented_filter_and_sort_column_is_indexed() -> None:
    from supportdesk.tables import tickets, users

    def indexed(table: Any) -> set[str]:
        names: set[str] = set()
        for index in table.indexes:
            columns = list(index.columns)
            if columns:
                names.add(columns[0].name)
        return names

    assert {
        "user_id",
        "status",
        "priority",
        "department",
        "assigned_to",
        "service_id",
        "subject",
        "created_at",
        "updated_at",
    } <= indexed(tickets)
    assert {"first_name", "last_name", "role_id", "created_at"} <= indexed(users)


_BEFORE_METRICS = [
    "INSERT INTO users (id, email, created_at, updated_at) VALUES "
    "(1, 'c@example.com', '{t0}', '{t0}'), (2, 's@example.com', '{t0}', '{t0}')",
    "INSERT INTO tickets (id, subject, status, priority, user_id, created_at, updated_at) VALUES "
    "(1, 'answered', 'replied', 'low', 1, '{t0}', '{t3}'), "
    "(2, 'waiting', 'open', 'low', 1, '{t0}', '{t1}'), "
    "(3, 'done', 'closed', 'low', 1, '{t0}', '{t2}')",
    "INSERT INTO ticket_messages (ticket_id, user_id, message, created_at, updated_at) VALUES "
    "(1, 1, 'help', '{t1}', '{t1}'), (1, 2, 'try this', '{t2}', '{t2}'), "
    "(1, 2, 'or this', '{t3}', '{t3}'), (2, 1, 'hello?', '{t1}', '{t1}')",
]


def _fill_check(url: DatabaseUrl, run: Runner) -> None:
    """Migration 0007 fills the metrics of the tickets that exist when it runs."""
    t0, t1, t2, t3 = (f"2026-01-0{day}T10:00:00.000000Z" for day in (1, 2, 3, 4))
    migrations.upgrade(url, "0006")

    def insert(connection: Connection) -> None:
        for statement in _BEFORE_METRICS:
            connection.execute(text(statement.format(t0=t0, t1=t1, t2=t2, t3=t3)))
        connection.commit()

    run(insert)
    migrations.upgrade(url)

    def metrics(connection: Connection) -> list[Any]:
        sql = (
            "SELECT message_count, first_response_at, last_staff_message_at, "
            "last_customer_message_at, resolved_at, merged_into FROM tickets ORDER BY id"
        )
        return [tuple(row) for row in connection.execute(text(sql)).all()]

    def day(value: Any) -> str | None:  # text on SQLite, a datetime on PostgreSQL
        return None if value is None else str(value)[:10]

    rows = [
        tuple(day(v) if i in (1, 2, 3, 4) else v for i, v in enumerate(r)) for r in run(metrics)
    ]
    assert rows == [
        (3, "2026-01-03", "2026-01-04", "2026-01-02", None, None),
        (1, None, None, "2026-01-02", None, None),
        (0, None, None, None, "2026-01-03", None),
    ]


def test_metrics_are_filled_for_existing_tickets(tmp_path: Path, postgres_database: str) -> None:
    with _sqlite(tmp_path / "fill.db") as (url, run):
        _fill_check(url, run)
    _fill_check(*_postgres("supportdesk_migrations_fill"))
