"""`supportdesk tickets autoclose`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from supportdesk import timestamps
from supportdesk.cli.common import DatabaseOption, fail, load_settings, run_with_db
from supportdesk.db import Database, Row
from supportdesk.tickets.service import autoclose as close_stale

app = typer.Typer(help="Ticket maintenance.", no_args_is_help=True)


@app.command()
def autoclose(
    after: str = typer.Option("7d", "--after", help="How long a ticket stays replied: 7d, 12h"),
    database_url: str | None = DatabaseOption,
) -> None:
    """Close tickets that have been `replied` (the staff-reply status) with no answer for
    longer than --after. Idempotent; safe to run from cron while the server runs."""
    try:
        age = timestamps.parse_duration(after)
    except ValueError as exc:
        fail(str(exc), 1)
    settings = load_settings(database_url=database_url)
    cutoff = timestamps.to_text(datetime.now(UTC) - age)

    async def action(db: Database) -> list[Row]:
        return await close_stale(db, settings, cutoff)

    closed = run_with_db(settings, action)
    for row in closed:
        typer.echo(f"closed ticket {row['id']} (user {row['user_id']}): {row['subject']}")
    typer.echo(f"{len(closed)} ticket(s) closed")
