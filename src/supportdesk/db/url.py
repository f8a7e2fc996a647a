"""Database URLs: `sqlite:///path` or `postgresql://user:password@host:port/name`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from supportdesk.db.base import Database, DatabaseConfigError

_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}


@dataclass(frozen=True)
class DatabaseUrl:
    url: URL

    @classmethod
    def parse(cls, text: str) -> DatabaseUrl:
        try:
            url = make_url(text)
        except ArgumentError:
            raise DatabaseConfigError(
                f"invalid database URL {mask(text)!r}: expected sqlite:///PATH or "
                "postgresql://USER@HOST/NAME"
            ) from None
        if url.drivername == "sqlite":
            if not url.database or url.database == ":memory:":
                raise DatabaseConfigError("a SQLite database URL needs a file: sqlite:///PATH")
        elif url.drivername not in _POSTGRES_SCHEMES:
            raise DatabaseConfigError(
                f"unsupported database URL scheme {url.drivername!r} in "
                f"{url.render_as_string(hide_password=True)}: use sqlite:/// or postgresql://"
            )
        elif not url.database:
            raise DatabaseConfigError(
                f"the PostgreSQL URL {url.render_as_string(hide_password=True)} names no database"
            )
        return cls(url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.drivername == "sqlite"

    @property
    def masked(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> str:
        assert self.is_sqlite and self.url.database
        return self.url.database

    def postgres_dsn(self) -> str:
        """The URL as asyncpg takes it (plain postgresql:// scheme, password included)."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def sqlalchemy_url(self) -> URL:
        """The URL for SQLAlchemy engines (Alembic): pysqlite or asyncpg."""
        return self.url if self.is_sqlite else self.url.set(drivername="postgresql+asyncpg")


def mask(text: str) -> str:
    """Hide the password of a URL that may not even parse."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    credentials, _, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def open_database(url: DatabaseUrl | str, *, server: bool = False) -> Database:
    """A backend for the URL; call `await db.connect()` before use. `server` is for the
    long-running API process (SQLite then checkpoints its WAL in the background)."""
    parsed = url if isinstance(url, DatabaseUrl) else DatabaseUrl.parse(url)
    if parsed.is_sqlite:
        from supportdesk.db.sqlite import SQLiteDatabase

        return SQLiteDatabase(parsed.sqlite_path, background_checkpoints=server)
    from supportdesk.db.postgres import PostgresDatabase

    return PostgresDatabase(parsed)
