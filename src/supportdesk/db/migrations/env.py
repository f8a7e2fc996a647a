"""Alembic environment: SQLite through pysqlite, PostgreSQL through asyncpg (the driver the
service already uses), with the URL handed over in `config.attributes`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine

from supportdesk.db.migrate import include_name
from supportdesk.db.url import DatabaseUrl
from supportdesk.tables import metadata

url: DatabaseUrl = context.config.attributes["database_url"]


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=url.is_sqlite,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_postgres() -> None:
    engine = create_async_engine(url.sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


if url.is_sqlite:
    engine = create_engine(url.sqlalchemy_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()
else:
    asyncio.run(_migrate_postgres())
