"""Alembic, driven from code: the revisions ship inside the package, so `supportdesk migrate`
works from an installed wheel."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from supportdesk.db.url import DatabaseUrl

SCRIPT_LOCATION = "supportdesk.db:migrations"


def alembic_config(url: DatabaseUrl) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = url
    return config


def upgrade(url: DatabaseUrl, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: DatabaseUrl, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(
        alembic_config(DatabaseUrl.parse("sqlite:///x"))
    ).get_current_head()


def sqlite_current_revision(url: DatabaseUrl) -> str | None:
    """The applied revision of a SQLite database (PostgreSQL goes through `migrations/env.py`)."""
    engine = create_engine(url.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
