"""`supportdesk keys create|list|disable|delete`."""

from __future__ import annotations

import json
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from supportdesk.auth import repository
from supportdesk.auth.keys import ALL, PERMISSIONS
from supportdesk.auth.service import create_key
from supportdesk.cli.common import DatabaseOption, fail, load_settings, run_with_db
from supportdesk.db import Database, Row

app = typer.Typer(
    help="Manage API keys (there is no HTTP endpoint for this).", no_args_is_help=True
)


_PERMISSION_HELP = f"Repeatable: {', '.join(PERMISSIONS)} or * (admin. prefix accepted)"


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="A label for the key"),
    permission: list[str] = typer.Option(
        [],
        "--permission",
        help=_PERMISSION_HELP,
    ),
    all_permissions: bool = typer.Option(False, "--all", help="Every permission (*)"),
    allow_ip: list[str] = typer.Option(
        [], "--allow-ip", help="Repeatable: an address or CIDR range allowed to use the key"
    ),
    rate_limit: int | None = typer.Option(
        None,
        "--rate-limit",
        min=0,
        help="Requests per minute for this key; 0 for none [the server's default, 6000]",
    ),
    database_url: str | None = DatabaseOption,
) -> None:
    """Create a key. The token is printed once, alone on the last line."""
    permissions = [ALL] if all_permissions else permission
    if not permissions:
        fail("give at least one --permission, or --all", 1)
    settings = load_settings(database_url=database_url)

    async def action(db: Database) -> tuple[int, str]:
        return await create_key(db, name, permissions, allow_ip, rate_limit)

    try:
        key_id, token = run_with_db(settings, action)
    except ValueError as exc:
        fail(str(exc), 1)
    typer.echo(f"Created API key {key_id} ({name}); store this token now, it is not shown again:")
    typer.echo(token)


@app.command("list")
def list_keys(database_url: str | None = DatabaseOption) -> None:
    """List keys (never their tokens)."""
    settings = load_settings(database_url=database_url)

    async def action(db: Database) -> list[Row]:
        async with db.read() as conn:
            return await repository.list_all(conn)

    rows = run_with_db(settings, action)
    table = Table(
        "id", "name", "permissions", "allowed ips", "rate limit", "enabled", "last used", "created"
    )
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            ", ".join(json.loads(row["permissions"])),
            ", ".join(json.loads(row["allowed_ips"])) or "any",
            "default" if row["rate_limit"] is None else str(row["rate_limit"] or "none"),
            "yes" if row["enabled"] else "no",
            row["last_used_at"] or "never",
            row["created_at"],
        )
    Console(width=160).print(table)


KeyIdArgument = typer.Argument(..., help="The key's id")

# command -> (new enabled flag, or None to delete; what it says when done; its help)
_CHANGES = {
    "disable": (False, "disabled", "Disable a key: it answers 401 until enabled again."),
    "enable": (True, "enabled", "Enable a disabled key."),
    "delete": (None, "deleted", "Delete a key for good."),
}


def _change_command(enabled: bool | None, done: str, help_text: str) -> Callable[..., None]:
    def command(key_id: int = KeyIdArgument, database_url: str | None = DatabaseOption) -> None:
        settings = load_settings(database_url=database_url)

        async def action(db: Database) -> bool:
            async with db.transaction() as conn:
                if enabled is None:
                    return await repository.remove(conn, key_id)
                return await repository.set_enabled(conn, key_id, enabled)

        if not run_with_db(settings, action):
            fail(f"no API key with id {key_id}", 1)
        typer.echo(f"API key {key_id} {done}")

    command.__doc__ = help_text
    return command


for _name, (_enabled, _done, _help) in _CHANGES.items():
    app.command(_name)(_change_command(_enabled, _done, _help))
