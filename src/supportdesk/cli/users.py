"""`supportdesk users create` and `supportdesk users set-password`."""

from __future__ import annotations

import sys

import typer

from supportdesk.cli.common import DatabaseOption, fail, load_settings, run_with_db
from supportdesk.db import Database
from supportdesk.users import repository
from supportdesk.users.service import create_user_simple
from supportdesk.web.sessions import MIN_PASSWORD, set_password

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


@app.command("set-password")
def set_password_command(
    email: str = typer.Argument(..., help="The user's e-mail address"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin (one line) instead"
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Set a user's password for the console or portal (asked twice, not shown); signs the
    user out everywhere."""
    settings = load_settings(database_url=database_url)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        fail(f"a password has at least {MIN_PASSWORD} characters", 1)

    async def action(db: Database) -> int | None:
        async with db.read() as conn:
            user_id = await repository.id_by_email(conn, email.strip().lower())
        if user_id is not None:
            await set_password(db, user_id, password)
        return user_id

    if run_with_db(settings, action) is None:
        fail(f"no user has the address {email}", 1)
    typer.echo(f"password set for {email}; their sessions were ended")
