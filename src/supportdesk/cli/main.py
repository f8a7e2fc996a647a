"""`supportdesk`: serve, worker, migrate, keys, users, tickets, events, mail, seed."""

from __future__ import annotations

import secrets

import typer

from supportdesk.auth import repository as keys_repository
from supportdesk.auth.keys import ALL
from supportdesk.auth.service import create_key
from supportdesk.cli import events, keys, mail, seed, tickets, users, worker
from supportdesk.cli.common import DatabaseOption, load_settings, migrate, run_with_db
from supportdesk.db import Database
from supportdesk.jobs import registry
from supportdesk.ticket_attachments.service import recover
from supportdesk.ticket_attachments.storage import Storage
from supportdesk.users import repository as users_repository
from supportdesk.users.service import create_user_simple

app = typer.Typer(
    help="supportdesk: a support-ticket service with a Paymenter-compatible admin API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
DEMO_STAFF = "admin@example.com"  # the console's demo login, made with the demo key

app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(tickets.app, name="tickets")
app.add_typer(events.app, name="events")
app.add_typer(mail.app, name="mail")
app.command("seed")(seed.command)
app.command("worker")(worker.command)


@app.command("migrate")
def migrate_command(database_url: str | None = DatabaseOption) -> None:
    """Apply pending database migrations (SQLite and PostgreSQL)."""
    settings = load_settings(database_url=database_url)
    migrate(settings)
    typer.echo("database is up to date")


# How long an idle client connection stays open. Longer than clients and proxies keep theirs
# (httpx 5 s, haproxy's and load balancers' 60 s by default): with uvicorn's 5 s, equal to
# httpx's, a request sent on a connection just as the server closed it was lost (ReadError).
KEEP_ALIVE_S = 65


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Listen address [env SUPPORTDESK_HOST; 127.0.0.1]"),
    port: int | None = typer.Option(None, help="Listen port [env SUPPORTDESK_PORT; 8000]"),
    workers: int | None = typer.Option(None, help="Worker processes [env SUPPORTDESK_WORKERS; 1]"),
    database_url: str | None = DatabaseOption,
    storage_dir: str | None = typer.Option(
        None, help="Attachment files [env SUPPORTDESK_STORAGE_DIR; ./storage]"
    ),
    log_level: str | None = typer.Option(None, help="Server log level [info]"),
    jobs: bool | None = typer.Option(
        None,
        "--jobs/--no-jobs",
        help="Also run the background jobs, in every worker [env SUPPORTDESK_JOBS; --jobs]",
        show_default=False,
    ),
) -> None:
    """Apply pending migrations, then serve the API and run the background jobs (each in one
    worker of one instance at a time; --no-jobs leaves them to `supportdesk worker`). On a
    database with no API key, create a demo key with every permission and print it once."""
    import uvicorn

    settings = load_settings(
        host=host,
        port=port,
        workers=workers,
        database_url=database_url,
        storage_dir=storage_dir,
        log_level=log_level,
        jobs=jobs,
    )
    migrate(settings)

    async def demo_key(db: Database) -> tuple[str, str | None] | None:
        """On a database without keys: the demo key, and the demo staff login's password
        (None when that address is a user already)."""
        async with db.read() as conn:
            if await keys_repository.any_exists(conn):
                return None
            taken = await users_repository.id_by_email(conn, DEMO_STAFF)
        token = (await create_key(db, "demo", [ALL], []))[1]
        if taken is not None:
            return token, None
        password = secrets.token_urlsafe(12)
        await create_user_simple(db, DEMO_STAFF, "Demo", "Staff", True, password)
        return token, password

    demo = run_with_db(settings, demo_key)

    async def recover_files(db: Database) -> tuple[int, int]:
        return await recover(db, Storage(settings.storage_dir))

    restored, deleted = run_with_db(settings, recover_files)
    if restored or deleted:
        typer.echo(
            f"Attachment files left by a crash: {restored} restored, {deleted} orphans deleted"
        )
    if demo is not None:
        token, password = demo
        typer.echo("Created a demo API key with every permission (shown only this once):")
        typer.echo(f"  Authorization: Bearer {token}")
        if password is not None:
            typer.echo("Created a demo staff login for the console (shown only this once):")
            typer.echo(f"  {DEMO_STAFF} / {password}")
    where = f"http://{settings.host}:{settings.port}"
    typer.echo(f"Serving on {where} (docs at /docs)")
    typer.echo(f"Console: {where}/console/  Portal: {where}/portal/")
    running = worker.job_names(registry.jobs(settings)) if settings.jobs else "off"
    typer.echo(f"Jobs: {running}")
    typer.echo(f"Mail: {mail.summary(settings)}")
    settings.to_environ()
    uvicorn.run(
        "supportdesk.app:create_app_from_environ",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
