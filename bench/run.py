"""The supportdesk benchmark: one command that seeds (or reuses) a database, serves it with
`supportdesk serve` and with the raw baseline app (`baseline.py`) side by side, drives both
with wrk on 127.0.0.1, and prints req/s, p50, p99 and errors for every request type, with
each figure as a ratio to the baseline's in the same run.

    uv run python bench/run.py                          # SQLite and PostgreSQL, 100k tickets
    uv run python bench/run.py --db sqlite --tickets 1000000 --duration 10

Every server it starts is stopped when it ends, however it ends. wrk comes from Debian's
packages; the bench installs it with apt-get when it is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from shapes import SHAPES, Shape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    created: int = 0  # answers that were 201 Created


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package)", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL
    )
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-q"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL
        )
        found = shutil.which("wrk")
    assert found, "wrk could not be installed"
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "-m", "supportdesk", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=3600,
    )
    return result.stdout


async def _row_count(url: str, table: str) -> int:
    """The trigger-kept row count of a table of the (migrated) database."""
    from supportdesk.db import open_database
    from supportdesk.db.counts import table_total

    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            value: int = await conn.fetch_value(table_total(table))
        return value
    finally:
        await db.close()


def bench_key(url: str) -> str:
    """A new key with every permission; the rate limiter stays on, with a limit above any
    benchmark's load."""
    created = cli(
        "keys", "create", "--name", "bench", "--all", "--rate-limit", "100000000",
        "--database-url", url,
    )  # fmt: skip
    return created.strip().splitlines()[-1]


def fresh_copy(backend: str, url: str, postgres_admin: str, suffix: str = "run") -> str:
    """A copy of the seeded database for one run, so that every run starts from the same data
    (the write benchmarks add tickets and messages); one per server, named by `suffix`."""
    if backend == "sqlite":
        import sqlite3

        source_path = url.removeprefix("sqlite:///")
        target_path = source_path.replace(".db", f"-{suffix}.db")
        for suffix in ("", "-wal", "-shm", "-writer"):
            Path(target_path + suffix).unlink(missing_ok=True)
        source, target = sqlite3.connect(source_path), sqlite3.connect(target_path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return f"sqlite:///{target_path}"
    import asyncpg

    from supportdesk.db import DatabaseUrl

    pristine = DatabaseUrl.parse(url).url.database
    copy = f"{pristine}_{suffix}"

    async def clone() -> None:
        conn = await asyncpg.connect(postgres_admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{pristine}"')
        finally:
            await conn.close()

    asyncio.run(clone())
    return DatabaseUrl.parse(url).url.set(database=copy).render_as_string(hide_password=False)


def prepare_database(backend: str, tickets: int, data_dir: Path, postgres_admin: str) -> str:
    """A seeded database with at least `tickets` tickets: reused when it is there."""
    if backend == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{data_dir / f'bench-{tickets}.db'}"
    else:
        import asyncpg

        name = f"supportdesk_bench_{tickets}"

        async def create() -> None:
            conn = await asyncpg.connect(postgres_admin)
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not exists:
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        from supportdesk.db import DatabaseUrl

        url = (
            DatabaseUrl.parse(postgres_admin)
            .url.set(database=name)
            .render_as_string(hide_password=False)
        )
    cli("migrate", "--database-url", url)  # a database seeded by an older version catches up
    have = asyncio.run(_row_count(url, "tickets"))
    if have < tickets:
        print(
            f"seeding {tickets - have} tickets into {backend} (once; later runs reuse it)",
            flush=True,
        )
        started = time.monotonic()
        subprocess.run(
            [
                PYTHON,
                "-m",
                "supportdesk",
                "seed",
                "--tickets",
                str(tickets - have),
                "--users",  # a hundred tickets per user, at least a thousand users
                str(max(1000, tickets // 100)),
                "--database-url",
                url,
            ],
            check=True,
        )
        print(f"seeded in {time.monotonic() - started:.0f}s", flush=True)
    return url


@contextmanager
def build_of(revision: str) -> Iterator[Path]:
    """A checkout of `revision` in a temporary git worktree, removed afterwards. A server runs
    it with the worktree's `src` first on PYTHONPATH, on this environment's dependencies."""
    where = Path(tempfile.mkdtemp(prefix="supportdesk-build-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), revision],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, check=False)


def to_schema_of(build: Path, url: str) -> None:
    """Take a copy of the seeded data back to the newest revision a build knows: it cannot
    migrate a database that is ahead of it."""
    from alembic.script import ScriptDirectory

    from supportdesk.db import DatabaseUrl, migrate

    head = ScriptDirectory(str(build / "src/supportdesk/db/migrations")).get_current_head()
    migrate.downgrade(DatabaseUrl.parse(url), head or "base")


@contextmanager
def server(
    command: list[str], port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def children(master: int) -> dict[int, list[str]]:
    """The master's child processes (its workers): pid -> the fields of /proc/PID/stat after
    the command name (state, ppid, ...)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                found[int(entry.name)] = fields
    return found


def worker_rss_mb(master: int) -> list[float]:
    """Resident memory of the master's worker processes (the master itself when it serves)."""
    pids = list(children(master))
    sizes = []
    for pid in pids or [master]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


LUA = """
local tickets, users = %(tickets)d, %(users)d
local priorities = {"low", "medium", "high", "urgent"}
-- the request types, each {method, path, body, headers, weight}; a request picks one by weight
local shapes = {%(shapes)s}
local total = 0
for _, shape in ipairs(shapes) do total = total + shape[5] end
local threads = {}
setup = function(thread)
  thread:set("seed", math.random(1, 1000000))
  table.insert(threads, thread)
end
init = function(args) math.randomseed(seed); created = 0 end
local function fill(text)
  if text == nil then return nil end
  text = string.gsub(text, "{ticket}", tostring(math.random(1, tickets)))
  text = string.gsub(text, "{user}", tostring(math.random(math.floor(users / 10) + 1, users)))
  text = string.gsub(text, "{priority}", priorities[math.random(1, 4)])
  return text
end
request = function()
  local pick = math.random(1, total)
  for _, shape in ipairs(shapes) do
    pick = pick - shape[5]
    if pick <= 0 then return wrk.format(shape[1], fill(shape[2]), shape[4], fill(shape[3])) end
  end
end
response = function(status, headers, body) if status == 201 then created = created + 1 end end
done = function(summary, latency, requests)
  local e = summary.errors
  local acknowledged = 0
  for _, thread in ipairs(threads) do acknowledged = acknowledged + thread:get("created") end
  io.write(string.format("BENCH %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, acknowledged))
end
"""


def _lua_string(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)


def _lua_shape(shape: Shape, token: str, weight: int) -> str:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        **dict(shape.headers),
    }
    path = "/api/v1/admin" + shape.path + (f"?{shape.query}" if shape.query else "")
    table = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    return (
        f"{{{_lua_string(shape.method)}, {_lua_string(path)}, {_lua_string(shape.body)}, "
        f"{{{table}}}, {weight}}}"
    )


def drive(
    wrk: str,
    port: int,
    shape: Shape | list[tuple[Shape, int]],
    token: str,
    tickets: int,
    users: int,
    seconds: int,
    connections: int,
) -> Figures:
    """wrk on 127.0.0.1:`port` for `seconds`: one request type, or a mix of them (with
    weights). `Figures.created` counts the answers that were 201 Created."""
    mix = [(shape, 1)] if isinstance(shape, Shape) else shape
    script = LUA % {
        "tickets": tickets,
        "users": users,
        "shapes": ", ".join(_lua_shape(s, token, weight) for s, weight in mix),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(handle.name)
    line = next(out for out in result.stdout.splitlines() if out.startswith("BENCH "))
    requests, duration_us, p50, p99, errors, created = (int(x) for x in line.split()[1:])
    return Figures(
        requests / (duration_us / 1e6), p50 / 1000, p99 / 1000, errors, requests, created
    )


def median_run(runs: list[Figures]) -> Figures:
    """The round of median throughput (the lower middle of an even number)."""
    return sorted(runs, key=lambda figures: figures.rps)[(len(runs) - 1) // 2]


def app_command(port: int, workers: int, storage: Path) -> list[str]:
    return [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--storage-dir", str(storage),
    ]  # fmt: skip


def run_backend(backend: str, args: argparse.Namespace, wrk: str) -> dict[str, object]:
    """Serve one database with supportdesk, the baseline and, with `--against REV`, the build
    of REV (each on its own copy of the seeded data), and drive each request type at each."""
    pristine = prepare_database(backend, args.tickets, Path(args.data_dir), args.postgres_url)
    url = fresh_copy(backend, pristine, args.postgres_url)
    token = bench_key(url)
    logs = Path(tempfile.mkdtemp(prefix="supportdesk-bench-"))
    app_port, base_port = free_port(), free_port()
    base_cmd = [
        PYTHON, "-m", "uvicorn", "--app-dir", str(HERE), "baseline:create", "--factory",
        "--port", str(base_port), "--workers", str(args.workers), "--loop", "uvloop",
        "--http", "httptools", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    shapes = [s for s in SHAPES if not args.only or any(n in s.name for n in args.only)]
    targets = [("app", app_port), ("baseline", base_port)]
    results: dict[str, dict[str, object]] = {}
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(
            server(
                app_command(app_port, args.workers, logs / "storage"),
                app_port,
                {"SUPPORTDESK_DATABASE_URL": url},
                logs / "app.log",
            )
        )
        stack.enter_context(
            server(base_cmd, base_port, {"BENCH_DATABASE_URL": url}, logs / "baseline.log")
        )
        if args.against:
            build = stack.enter_context(build_of(args.against))
            other_url = fresh_copy(backend, pristine, args.postgres_url, "against")
            to_schema_of(build, other_url)
            other_token = bench_key(other_url)
            other_port = free_port()
            stack.enter_context(
                server(
                    app_command(other_port, args.workers, logs / "storage-against"),
                    other_port,
                    {"SUPPORTDESK_DATABASE_URL": other_url, "PYTHONPATH": str(build / "src")},
                    logs / "against.log",
                )
            )
            targets.insert(1, ("against", other_port))
        users = asyncio.run(_row_count(url, "users"))
        for shape in shapes:
            rounds: dict[str, list[Figures]] = {label: [] for label, _ in targets}
            for _ in range(args.rounds):
                for label, port in targets:
                    key = other_token if label == "against" else token
                    drive(wrk, port, shape, key, args.tickets, users, 1, args.connections)
                    run = drive(
                        wrk, port, shape, key, args.tickets, users, args.duration, args.connections
                    )
                    rounds[label].append(run)
            pair = {label: median_run(runs) for label, runs in rounds.items()}
            results[shape.name] = {k: asdict(v) for k, v in pair.items()}
            print(
                f"  {shape.name:28} "
                + "  ".join(f"{label} {pair[label].rps:8.0f} req/s" for label, _ in targets),
                flush=True,
            )
        rss = worker_rss_mb(app.pid)
    return {
        "backend": backend,
        "tickets": args.tickets,
        "workers": args.workers,
        "connections": args.connections,
        "against": args.against,
        "results": results,
        "rss_mb": rss,
    }


def table(run: dict[str, object]) -> str:
    lines = [
        f"{run['backend']}: {run['tickets']} tickets, {run['workers']} workers, "
        f"{run['connections']} connections",
        f"{'request':28} {'req/s':>8} {'x base':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | "
        f"{'base req/s':>10} {'p50':>6} {'p99':>6}",
    ]
    against = run.get("against")
    if against:
        lines[1] += f" | {'x ' + str(against)[:10]:>12} {'req/s':>8} {'p50':>6} {'p99':>6}"
    for name, pair in run["results"].items():  # type: ignore[attr-defined]
        a, b = pair["app"], pair["baseline"]
        ratio = a["rps"] / b["rps"] if b["rps"] else 0
        line = (
            f"{name:28} {a['rps']:8.0f} {ratio:7.2f} {a['p50_ms']:7.2f} {a['p99_ms']:7.2f} "
            f"{a['errors']:6d} | {b['rps']:10.0f} {b['p50_ms']:6.2f} {b['p99_ms']:6.2f}"
        )
        if against:
            o = pair["against"]
            line += (
                f" | {a['rps'] / o['rps'] if o['rps'] else 0:12.2f} {o['rps']:8.0f} "
                f"{o['p50_ms']:6.2f} {o['p99_ms']:6.2f}"
            )
        lines.append(line)
    rss = ", ".join(f"{mb:.0f}" for mb in run["rss_mb"])  # type: ignore[attr-defined]
    lines.append(f"resident memory per worker after the run: {rss} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds per request type and server"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds of each request type, the servers taking turns in each; the round of "
        "median req/s is reported (the machines are shared: single rounds vary by 20%%)",
    )
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",")],
        default=[],
        help="request types whose names contain one of these (comma-separated)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also serve the build of this git revision (its own copy of the data) and print "
        "supportdesk's req/s as a ratio to it",
    )
    parser.add_argument(
        "--scale",
        action="store_true",
        help="every figure of issue 13 in one run: SQLite against the baseline (and --against "
        "REV), then bench/scale.py: PostgreSQL at 10M tickets, its cost per request, 1-3 "
        "instances behind haproxy, the capacity model",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    wrk = ensure_wrk()
    if args.scale:
        import scale

        # parts 1 and 2 (writes and reads on SQLite, against the baseline and, with
        # --against, a build of another revision), then parts 3 and 4
        sqlite = run_backend("sqlite", args, wrk)
        figures = scale.run(args, wrk)
        print(f"\n{table(sqlite)}\n\n{figures}")
        return
    runs = []
    for backend in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        print(f"== {backend}", flush=True)
        runs.append(run_backend(backend, args, wrk))
    print()
    for run in runs:
        print(table(run))
        print()
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
