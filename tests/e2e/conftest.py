"""The real `supportdesk serve` process on a free port, and the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_DATABASE, _recreate_database, postgres_url
from tests.ports import free_port

STARTUP_TIMEOUT_S = 30
DEMO_STAFF = "admin@example.com"
DEMO_LOGIN = "Created a demo staff login for the console"


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "supportdesk", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"supportdesk {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Server:
    base_url: str
    database_url: str
    database_path: Path
    demo_token: str
    output: Path
    process: subprocess.Popen[bytes]
    # the demo staff login's password (admin@example.com), printed with the demo key on a
    # fresh database; None when serve printed none (a database that had keys already)
    demo_password: str | None = None
    demo_staff: str = DEMO_STAFF


def wait_until_healthy(
    base: str, process: subprocess.Popen[bytes], timeout_s: float, output: Path
) -> None:
    """Poll `base`/health until it answers 200; fail, with the process's output, when the
    process ends first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{process.args!r} did not start: {output.read_text()}")
        time.sleep(0.1)


@contextmanager
def serving(
    tmp_path: Path, database_url: str, *extra: str, token: str | None = None
) -> Iterator[Server]:
    """`supportdesk serve` on a free port until the block ends; the whole process group
    (master and workers) is always stopped. On a database that has keys already, pass the
    `token` to use: serve prints a demo key only on an empty one."""
    port = free_port()
    output = tmp_path / f"serve-{port}.log"
    command = [
        sys.executable, "-m", "supportdesk", "serve", "--port", str(port),
        "--database-url", database_url, "--storage-dir", str(tmp_path / "storage"), *extra,
    ]  # fmt: skip
    with output.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base, process, STARTUP_TIMEOUT_S, output)
        printed = output.read_text().splitlines()
        if token is None:
            demo = next(line for line in printed if "Bearer" in line)
            token = demo.split("Bearer ")[1].strip()
        path = Path(database_url.removeprefix("sqlite:///"))
        yield Server(base, database_url, path, token, output, process, demo_password(printed))
    finally:
        stop(process)


def demo_password(printed: list[str]) -> str | None:
    """The password of the demo staff login from serve's output: the line
    `  admin@example.com / <password>` after the line that announces it."""
    for announce, login in itertools.pairwise(printed):
        if announce.startswith(DEMO_LOGIN):
            email, _, password = login.strip().partition(" / ")
            assert email == DEMO_STAFF and password, f"unexpected demo login line {login!r}"
            return password
    return None


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the server's process group and wait for it (SIGKILL if it lingers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path, f"sqlite:///{tmp_path / 'e2e.db'}") as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (not migrated) on each backend, for tests of whole processes."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    request.getfixturevalue("postgres_database")
    asyncio.run(_recreate_database(f"{TEST_DATABASE}_e2e"))
    return postgres_url(f"{TEST_DATABASE}_e2e")
