"""`supportdesk events prune`."""

from __future__ import annotations

import typer

from supportdesk.cli.common import DatabaseOption, duration, load_settings, run_with_db
from supportdesk.db import Database
from supportdesk.events.service import prune as prune_events

app = typer.Typer(help="The event log.", no_args_is_help=True)


@app.command()
def prune(
    older_than: str = typer.Option(
        ..., "--older-than", help="Remove events older than this: 180d, 12w, 24h"
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Remove the events that occurred longer ago than --older-than, in short batches; safe
    while the server runs. (SUPPORTDESK_EVENTS_RETAIN makes a job of it.)"""
    age = duration(older_than)
    settings = load_settings(database_url=database_url)

    async def action(db: Database) -> int:
        return await prune_events(db, age)

    typer.echo(f"{run_with_db(settings, action)} event(s) removed")
