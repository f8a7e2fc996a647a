"""The CLI as a user runs it: help, keys, users, and one clear line for a bad database."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from supportdesk.auth.keys import PERMISSIONS
from tests.e2e.conftest import Server, run_cli


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["migrate"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "disable"],
        ["keys", "delete"],
        ["users"],
        ["users", "create"],
        ["users", "set-password"],
        ["worker"],
        ["events"],
        ["events", "prune"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert "Usage:" in result.stdout


def test_keys_create_help_lists_every_permission() -> None:
    result = run_cli("keys", "create", "--help", env={"COLUMNS": "2000"})
    for permission in PERMISSIONS:
        assert permission in result.stdout, permission
    assert "canned_replies.delete" in PERMISSIONS


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://someone:hunter2@127.0.0.1:1/nothing",
            "cannot connect to PostgreSQL at postgresql://someone:***@127.0.0.1:1/nothing",
        ),
        ("mysql://root@localhost/db", "unsupported database URL scheme"),
        ("sqlite:////no/such/folder/x.db", "no folder"),
        ("not a url", "invalid database URL"),
    ],
)
def test_bad_database_url_is_one_clear_line(url: str, expected: str) -> None:
    for args in (["migrate"], ["keys", "list"], ["serve", "--port", "1"]):
        result = run_cli(*args, "--database-url", url, check=False)
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0]
        assert "hunter2" not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr


def test_settings_from_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = run_cli("migrate", env={"SUPPORTDESK_DATABASE_URL": url})
    assert (tmp_path / "env.db").exists() and "up to date" in result.stdout
    result = run_cli(
        "migrate",
        env={"SUPPORTDESK_DATABASE_URL": url, "SUPPORTDESK_PORT": "notaport"},
        check=False,
    )
    assert result.returncode != 0 and "port" in result.stderr


def test_keys_lifecycle(server: Server) -> None:
    db = ["--database-url", server.database_url]
    created = run_cli(
        "keys",
        "create",
        "--name",
        "bot",
        "--permission",
        "tickets.view",
        "--permission",
        "admin.users.view",
        "--permission",
        "canned_replies.view",
        "--allow-ip",
        "127.0.0.0/8",
        *db,
    )
    token = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split("API key ")[1].split(" ")[0]
    listing = run_cli("keys", "list", *db).stdout
    assert "bot" in listing and "tickets.view" in listing and "127.0.0.0/8" in listing
    assert token not in listing
    url = f"{server.base_url}/api/v1/admin/tickets"
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(url, headers=headers).status_code == 200
    assert httpx.post(url, headers=headers, json={}).status_code == 403
    replies = f"{server.base_url}/api/v1/admin/canned-replies"
    assert httpx.get(replies, headers=headers).status_code == 200
    assert httpx.post(replies, headers=headers, json={}).status_code == 403
    run_cli("keys", "disable", key_id, *db)
    assert httpx.get(url, headers=headers).status_code == 401
    run_cli("keys", "delete", key_id, *db)
    assert "bot" not in run_cli("keys", "list", *db).stdout
    missing = run_cli("keys", "delete", key_id, *db, check=False)
    assert missing.returncode != 0 and "no API key" in missing.stderr
    bad = run_cli("keys", "create", "--name", "x", "--permission", "tickets.fly", *db, check=False)
    assert bad.returncode != 0 and "unknown permission" in bad.stderr
    bad = run_cli(
        "keys",
        "create",
        "--name",
        "x",
        "--permission",
        "*",
        "--allow-ip",
        "300.1.1.1",
        *db,
        check=False,
    )
    assert bad.returncode != 0 and "300.1.1.1" in bad.stderr
    none = run_cli("keys", "create", "--name", "x", *db, check=False)
    assert none.returncode != 0


def test_users_create_validation(server: Server) -> None:
    db = ["--database-url", server.database_url]
    run_cli("users", "create", "--email", "dup@example.com", *db)
    dup = run_cli("users", "create", "--email", "DUP@example.com", *db, check=False)
    assert dup.returncode == 1 and "already been taken" in dup.stderr
    bad = run_cli("users", "create", "--email", "nope", *db, check=False)
    assert bad.returncode == 1 and "valid email" in bad.stderr


def test_serve_prints_the_demo_key_only_on_an_empty_database(server: Server) -> None:
    assert server.demo_token.startswith("sdk_")
    assert server.output.read_text().count("Bearer") == 1


def _signs_in(server: Server, email: str, password: str) -> bool:
    """Whether the console's sign-in form takes this e-mail and password."""
    with httpx.Client(base_url=server.base_url, timeout=10) as browser:
        form = browser.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        answer = browser.post(
            "/login", data={"csrf": csrf[1], "email": email, "password": password}
        )
        return answer.status_code == 303 and answer.headers["location"] == "/console/"


def test_serve_prints_a_demo_staff_login_that_signs_in(server: Server) -> None:
    output = server.output.read_text()
    found = re.search(r"^  (admin@example\.com) / (\S+)$", output, re.MULTILINE)
    assert found is not None, output
    assert output.count("demo staff login") == 1
    assert f"Console: {server.base_url}/console/  Portal: {server.base_url}/portal/" in output
    assert _signs_in(server, found[1], found[2])
    assert not _signs_in(server, found[1], found[2] + "x")


def test_users_set_password(server: Server) -> None:
    db = ["--database-url", server.database_url]
    run_cli("users", "create", "--email", "agent@example.com", "--staff", *db)
    result = subprocess.run(
        [sys.executable, "-m", "supportdesk", "users", "set-password", "Agent@Example.com",
         "--password-stdin", *db],
        input="correct horse battery\n", capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "password set for Agent@Example.com" in result.stdout
    assert _signs_in(server, "agent@example.com", "correct horse battery")
    for email, password, complaint in (
        ("agent@example.com", "short", "a password has at least 8 characters"),
        ("nobody@example.com", "long enough", "no user has the address nobody@example.com"),
    ):
        refused = subprocess.run(
            [sys.executable, "-m", "supportdesk", "users", "set-password", email,
             "--password-stdin", *db],
            input=password + "\n", capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: {complaint}"
