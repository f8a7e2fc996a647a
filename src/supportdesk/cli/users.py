"""`supportdesk users create`."""

from __future__ import annotations

import typer

from supportdesk.cli.common import DatabaseOption, load_settings, run_with_db
from supportdesk.db import Database
from supportdesk.users.service import create_user_simple

app = typer.Typer(help="Manage users.", no_args_is_help=True)


@app.command()
def create(
    email: str = typer.Option(..., "--email", help="Unique, case-insensitively"),
    first_name: str | None = typer.Option(None, "--first-name"),
    last_name: str | None = typer.Option(None, "--last-name"),
    staff: bool = typer.Option(False, "--staff", help="Give the user role 1 (admin): staff"),
    database_url: str | None = DatabaseOption,
) -> None:
    """Create a user and print their id."""
    settings = load_settings(database_url=database_url)

    async def action(db: Database) -> int:
        return await create_user_simple(db, email, first_name, last_name, staff)

    typer.echo(run_with_db(settings, action))
