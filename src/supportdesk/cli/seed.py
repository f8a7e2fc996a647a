"""`supportdesk seed`."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from supportdesk.cli.common import DatabaseOption, load_settings, migrate, run_with_db
from supportdesk.db import Database
from supportdesk.seed import Plan, Result, seed


def command(
    tickets: int = typer.Option(..., "--tickets", min=0, help="How many tickets"),
    messages_per_ticket: int = typer.Option(3, "--messages-per-ticket", min=0, max=100),
    users: int = typer.Option(1000, "--users", min=1, help="How many users (a tenth staff)"),
    random_seed: int = typer.Option(42, "--random-seed", help="Same seed, same data"),
    database_url: str | None = DatabaseOption,
) -> None:
    """Fill the database with realistic demo data, in bulk, with a progress bar. Adds to
    what is there; runs the migrations first."""
    settings = load_settings(database_url=database_url)
    migrate(settings)
    plan = Plan(tickets, messages_per_ticket, users, random_seed)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, transient=False) as progress:
        tasks = {
            "users": progress.add_task("users", total=users),
            "tickets": progress.add_task(
                f"tickets (+{messages_per_ticket} messages each)", total=tickets
            ),
        }

        def advance(what: str, count: int) -> None:
            if what not in tasks:  # "indexes": built again after a bulk load (PostgreSQL)
                tasks[what] = progress.add_task(f"{what} built", total=None)
            progress.advance(tasks[what], count)

        async def action(db: Database) -> Result:
            return await seed(db, settings, plan, advance)

        result = run_with_db(settings, action)
    elapsed = time.monotonic() - started
    typer.echo(
        f"seeded {result.users} users, {result.tickets} tickets and {result.messages} messages "
        f"in {elapsed:.1f}s"
    )
