"""`supportdesk worker`: the background jobs without the API (SPEC 11)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import typer

from supportdesk import logs
from supportdesk.cli.common import DatabaseOption, load_settings, migrate, run_with_db
from supportdesk.db import Database
from supportdesk.events.bus import Bus
from supportdesk.jobs import registry
from supportdesk.jobs.runner import Job, Runner


def job_names(jobs: Sequence[Job]) -> str:
    """The jobs' names for one line of output."""
    return ", ".join(job.name for job in jobs) or "none"


def command(
    database_url: str | None = DatabaseOption,
    log_level: str | None = typer.Option(None, help="Log level [env SUPPORTDESK_LOG_LEVEL; info]"),
) -> None:
    """Apply pending migrations, then run the background jobs only (no HTTP) until SIGINT or
    SIGTERM, and release their leases on the way out. Run as many as you like, beside
    `serve` or instead of its jobs (`serve --no-jobs`): each job runs in one of them at a time,
    and another takes it over within 30 s when that one dies."""
    settings = load_settings(database_url=database_url, log_level=log_level)
    migrate(settings)
    logs.configure(settings.log_level)
    jobs = registry.jobs(settings)

    async def work(db: Database) -> None:
        bus = Bus(db, settings.event_poll_interval)
        await bus.start()
        runner = Runner(db, settings, bus, jobs)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        typer.echo(f"Running jobs: {job_names(jobs)} (as {runner.holder})")
        await runner.start()
        try:
            await stopping.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await runner.stop()
            await bus.stop()

    run_with_db(settings, work)
    typer.echo("jobs stopped, leases released")
