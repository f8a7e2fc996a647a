"""What every command shares: settings from options over the environment, an open database,
and one clear line (never a traceback) when the database cannot be used."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from supportdesk import durations
from supportdesk.config import Settings
from supportdesk.db import (
    Database,
    DatabaseConfigError,
    DatabaseUrl,
    IntegrityViolation,
    open_database,
)
from supportdesk.errors import SupportdeskError, ValidationFailed
from supportdesk.mail import address, imap, smtp
from supportdesk.tickets.service import sync_ranks

T = TypeVar("T")

DatabaseOption = typer.Option(
    None,
    "--database-url",
    help="sqlite:///PATH or postgresql://USER@HOST/NAME [env SUPPORTDESK_DATABASE_URL]",
    show_default=False,
)


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def duration(text: str) -> timedelta:
    """A duration option (`7d`, `12h`: supportdesk.durations), or one line and exit code 1."""
    try:
        return durations.parse(text)
    except ValueError as exc:
        fail(str(exc), 1)


# The settings the mail package reads, and what checks each (its ValueError says what is wrong
# without repeating a password).
MAIL_CHECKS: dict[str, Callable[[str], object]] = {
    "smtp_url": smtp.parse_url,
    "imap_url": imap.parse_url,
    "mail_from": address.sender,
}


def load_settings(failure_code: int = 2, **overrides: Any) -> Settings:
    """The settings, or one line and exit `failure_code` when one is wrong."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid configuration: {problems}", failure_code)
    for name, check in MAIL_CHECKS.items():
        value = getattr(settings, name)
        try:
            if value is not None:
                check(value)
        except ValueError as exc:
            fail(f"invalid configuration: {name}: {exc}", failure_code)
    return settings


def run_with_db(
    settings: Settings, action: Callable[[Database], Awaitable[T]], failure_code: int | None = None
) -> T:
    """Open the database, run `action`, close it; database and validation problems become one
    line on stderr and a non-zero exit (`failure_code` for every one of them, when given)."""

    async def main() -> T:
        db = open_database(settings.database_url)
        await db.connect()
        try:
            return await action(db)
        finally:
            await db.close()

    def code(usual: int) -> int:
        return usual if failure_code is None else failure_code

    try:
        return asyncio.run(main())
    except DatabaseConfigError as exc:
        fail(str(exc), code(2))
    except IntegrityViolation as exc:
        fail(f"the database refused the change: {exc}", code(1))
    except ValidationFailed as exc:
        for field, messages in exc.errors.items():
            for message in messages:
                typer.echo(f"error: {field}: {message}", err=True)
        raise typer.Exit(code(1)) from None
    except SupportdeskError as exc:
        fail(exc.message, code(1))
    except Exception as exc:  # one line, not a traceback: most often a schema behind the code
        hint = "is the database migrated? supportdesk migrate"
        fail(f"{type(exc).__name__}: {exc} ({hint})", code(1))


def migrate(settings: Settings) -> None:
    """Check the database answers, then apply pending migrations. (Alembic is imported here:
    a fifth of a second that `mail ingest`, run once per mail by an MTA, does without.)"""
    from supportdesk.db import migrate as migrations

    try:
        url = DatabaseUrl.parse(settings.database_url)
    except DatabaseConfigError as exc:
        fail(str(exc))
    except IntegrityViolation as exc:
        fail(f"the database refused the change: {exc}", 1)

    async def noop(_: Database) -> None:
        return None

    run_with_db(settings, noop)
    try:
        migrations.upgrade(url)
    except Exception as exc:  # a migration that fails half-way is rolled back by Alembic
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"migrating {url.masked} failed: {reason}")

    async def ranks(db: Database) -> bool:
        return await sync_ranks(db, settings)

    if run_with_db(settings, ranks):
        typer.echo("status and priority orders changed: sort ranks recomputed", err=True)
