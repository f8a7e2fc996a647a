"""Alembic, driven from code: the revisions ship inside the package, so `supportdesk migrate`
works from an installed wheel."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from supportdesk.db.url import DatabaseUrl
from supportdesk.tables.search import is_search_structure

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


def include_name(name: str | None, type_: str, _: object) -> bool:
    """Autogenerate and schema comparison leave the full-text structures alone: the revisions
    own them."""
    return name is None or not is_search_structure(name, type_)
