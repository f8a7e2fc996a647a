"""Alembic, driven from code: the revisions ship inside the package, so `supportdesk migrate`
works from an installed wheel."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

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
