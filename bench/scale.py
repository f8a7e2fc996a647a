"""Issue 13's figures past one machine, printed by `bench/run.py --scale` in one run:

1. PostgreSQL at 10M tickets (30M messages, `supportdesk seed` with COPY): the Needs-attention
   queue, a deep page, search and retrieve, p50 and p99 at a light load (latency, not
   throughput: 8 connections on 2 workers).
2. PostgreSQL's own cost per request type, on the 100k database: `pg_stat_statements`
   (statements, execution time, shared buffers hit and read, per request) and the CPU time
   of PostgreSQL's processes and of the app's, per request, from /proc.
3. 1, 2 and 3 instances (`supportdesk serve --workers 1` each) behind Debian's haproxy on one
   PostgreSQL and one Redis, under a mixed load (MIX): req/s, latency, errors, CPU per request
   on each side, and every acknowledged write found in the database afterwards.
4. The capacity model those give: how many app cores one PostgreSQL of N cores carries for
   that mix. A model, from the figures above, not a measurement of bigger machines.

`pg_stat_statements` must be loaded at server start: where it is not, the bench says so and
sets `shared_preload_libraries` and restarts the local cluster (`pg_ctlcluster`) first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
from run import (
    ROOT,
    Figures,
    _row_count,
    app_command,
    bench_key,
    children,
    drive,
    free_port,
    fresh_copy,
    prepare_database,
    server,
)
from shapes import SHAPES, Shape

sys.path.insert(0, str(ROOT))
from tests.haproxy import HAPROXY, running_haproxy

BIG = 10_000_000
SMALL = 100_000
LATENCY_CONNECTIONS = 8
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CLK_TCK = os.sysconf("SC_CLK_TCK")

QUEUE = Shape(
    "needs-attention queue", "GET", "/tickets", "filter[status]=open,customer-reply&sort=updated_at"
)
DEEP = Shape("deep page (page 2000)", "GET", "/tickets", "page=2000")
# the request types bench/shapes.py already has, by name
_SHAPES = {shape.name: shape for shape in SHAPES}
SEARCH = _SHAPES["search"]
RETRIEVE = _SHAPES["retrieve include=messages"]
CREATE_TICKET = _SHAPES["create ticket"]
CREATE_MESSAGE = _SHAPES["create message"]
UPDATE = _SHAPES["update ticket"]
LIST = _SHAPES["list page 1"]

BIG_SHAPES = [QUEUE, DEEP, SEARCH, RETRIEVE]
COST_SHAPES = [LIST, QUEUE, DEEP, SEARCH, RETRIEVE, CREATE_TICKET, CREATE_MESSAGE, UPDATE]
# The mixed load: mostly reads, as a help desk's API and console are used; weights in percent.
MIX = [
    (RETRIEVE, 35),
    (LIST, 15),
    (QUEUE, 10),
    (SEARCH, 5),
    (CREATE_MESSAGE, 15),
    (UPDATE, 12),
    (CREATE_TICKET, 8),
]


# -- PostgreSQL's side -------------------------------------------------------------------------


def ensure_pg_stat_statements(admin: str) -> None:
    """Load pg_stat_statements (a restart of the local cluster, once) if it is not loaded."""

    async def loaded() -> bool:
        conn = await asyncpg.connect(admin)
        try:
            libraries = await conn.fetchval("SHOW shared_preload_libraries")
            if "pg_stat_statements" in libraries:
                return True
            await conn.execute(
                "ALTER SYSTEM SET shared_preload_libraries = "
                f"'{','.join(filter(None, [libraries, 'pg_stat_statements']))}'"
            )
            return False
        finally:
            await conn.close()

    if asyncio.run(loaded()):
        return
    version = next(Path("/etc/postgresql").iterdir()).name
    print(f"loading pg_stat_statements: restarting PostgreSQL {version}/main", flush=True)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True
    )


async def _statements(url: str, reset: bool) -> dict[str, float]:
    """The totals of pg_stat_statements for the database of `url` (and reset them)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        row = await conn.fetchrow(
            "SELECT coalesce(sum(calls), 0) AS calls, "
            "coalesce(sum(total_exec_time), 0) AS exec_ms, "
            "coalesce(sum(shared_blks_hit), 0) AS hit, coalesce(sum(shared_blks_read), 0) AS read "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())"
        )
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
        return {k: float(v) for k, v in dict(row).items()}
    finally:
        await conn.close()


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes (those still running)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
    return found


def app_pids(masters: list[int]) -> list[int]:
    return [pid for master in masters for pid in [master, *children(master)]]


@dataclass
class Cost:
    """A load's figures and its cost per request: PostgreSQL's statements, both sides' CPU."""

    figures: Figures
    statements: float
    exec_ms: float
    buffers_hit: float
    buffers_read: float
    pg_cpu_ms: float
    app_cpu_ms: float


def costed(url: str, masters: list[int], load: Callable[[], Figures]) -> Cost:
    """Runs `load` and measures what it cost per request: pg_stat_statements of the database
    of `url` (reset first), and the CPU time of every PostgreSQL process and of the app's."""
    asyncio.run(_statements(url, reset=True))
    pg, app = postgres_pids(), app_pids(masters)
    pg_before, app_before = cpu_seconds(pg), cpu_seconds(app)
    figures = load()
    pg_cpu, app_cpu = cpu_seconds(pg) - pg_before, cpu_seconds(app) - app_before
    totals = asyncio.run(_statements(url, reset=False))
    n = max(1, figures.requests)
    return Cost(
        figures,
        totals["calls"] / n,
        totals["exec_ms"] / n,
        totals["hit"] / n,
        totals["read"] / n,
        pg_cpu * 1000 / n,
        app_cpu * 1000 / n,
    )


# -- the runs ----------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    wrk: str
    logs: Path

    def serve(
        self, stack: contextlib.ExitStack, url: str, workers: int, name: str
    ) -> tuple[int, int]:
        """One `supportdesk serve` on `url` until the stack closes: (port, master pid)."""
        port = free_port()
        env = {"SUPPORTDESK_DATABASE_URL": url, "SUPPORTDESK_REDIS_URL": REDIS_URL}
        process = stack.enter_context(
            server(
                app_command(port, workers, self.logs / f"storage-{name}"),
                port,
                env,
                self.logs / f"{name}.log",
            )
        )
        return port, process.pid


def keyed(url: str) -> tuple[str, int]:
    """A bench key for the database of `url`, and its users' count (the load's `{user}`)."""
    return bench_key(url), asyncio.run(_row_count(url, "users"))


def big_database(ctx: Context) -> list[tuple[Shape, Figures]]:
    """Part 1: reads at 10M tickets, served straight from the seeded database (reads change
    nothing there but the bench's key)."""
    url = prepare_database("postgres", BIG, Path(ctx.args.data_dir), ctx.args.postgres_url)
    token, users = keyed(url)
    found = []
    with contextlib.ExitStack() as stack:
        port, _ = ctx.serve(stack, url, 2, "big")
        for shape in BIG_SHAPES:
            drive(ctx.wrk, port, shape, token, BIG, users, 2, LATENCY_CONNECTIONS)  # warm up
            figures = drive(
                ctx.wrk, port, shape, token, BIG, users, ctx.args.duration, LATENCY_CONNECTIONS
            )
            print(f"  10M {shape.name:28} p50 {figures.p50_ms:6.2f} ms", flush=True)
            found.append((shape, figures))
    print("\n".join(asyncio.run(plans(url))), flush=True)
    return found


def _cut(line: str, width: int = 160) -> str:
    return line if len(line) <= width else f"{line[:width]} ..."


async def plans(url: str) -> list[str]:
    """PostgreSQL's plans (EXPLAIN) of the page and count statements of the lists
    measured at 10M tickets, as tests/db/test_query_plans.py checks them on a small database."""
    from urllib.parse import parse_qsl

    from supportdesk.db import open_database
    from supportdesk.db.listing import FullText
    from supportdesk.jsonapi.query import parse_list_query
    from supportdesk.tickets import repository
    from supportdesk.tickets.resource import TICKETS

    db = open_database(url)
    await db.connect()
    lines = []
    try:
        for shape in BIG_SHAPES:
            if shape.path != "/tickets":
                continue
            query = parse_list_query(parse_qsl(shape.query), TICKETS, {TICKETS.type: TICKETS})
            async with db.read() as conn:
                # as the app runs them: a search's matches found first, then looked up by key
                prefetched = await repository.lister.prefetch(conn, query)
                page, count, params = repository.lister.statements(query, prefetched)
                statements = [("page", page, params), ("count", count, params)]
                for name, value in query.filters.items():
                    search = repository.lister.listing.filters[name]
                    if name in prefetched and isinstance(search, FullText):
                        matches = search.matches(name)
                        statements.insert(0, ("matches", matches, search.params(name, value)))
                        if len(query.filters) == 1:
                            statements.pop()  # the total is the number of matches
                for kind, statement, values in statements:
                    plan = await conn.explain(statement, values)
                    # the prefetched ids are written out in the plan: the first few say enough
                    lines += [f"{shape.name}, {kind}:", *(f"    {_cut(line)}" for line in plan)]
    finally:
        await db.close()
    return lines


def costs(ctx: Context, pristine: str) -> list[tuple[Shape, Cost]]:
    """Part 2: each request type alone on one instance of 2 workers, at 32 connections."""
    url = fresh_copy("postgres", pristine, ctx.args.postgres_url, "cost")
    token, users = keyed(url)
    found = []
    with contextlib.ExitStack() as stack:
        port, master = ctx.serve(stack, url, 2, "cost")
        for shape in COST_SHAPES:
            drive(ctx.wrk, port, shape, token, SMALL, users, 1, 32)  # warm up

            def load(shape: Shape = shape) -> Figures:
                return drive(ctx.wrk, port, shape, token, SMALL, users, ctx.args.duration, 32)

            cost = costed(url, [master], load)
            print(f"  cost {shape.name:28} PostgreSQL {cost.exec_ms:6.3f} ms", flush=True)
            found.append((shape, cost))
    return found


def instances(ctx: Context, pristine: str, count: int) -> tuple[Cost, int, int]:
    """Part 3: `count` instances of one worker behind haproxy, the mixed load through it; the
    cost, and the tickets and messages the database gained (to hold against the 201s)."""
    url = fresh_copy("postgres", pristine, ctx.args.postgres_url, f"x{count}")
    token, users = keyed(url)
    with contextlib.ExitStack() as stack:
        served = [ctx.serve(stack, url, 1, f"x{count}-{n}") for n in range(count)]
        proxy = stack.enter_context(
            running_haproxy(ctx.logs / f"haproxy-{count}", [p for p, _ in served])
        )
        drive(ctx.wrk, proxy, MIX, token, SMALL, users, 1, 32)  # warm up

        def load() -> Figures:
            return drive(ctx.wrk, proxy, MIX, token, SMALL, users, ctx.args.duration, 32)

        mid = sum(asyncio.run(_counts(url)))
        cost = costed(url, [master for _, master in served], load)
        after = sum(asyncio.run(_counts(url)))
    print(f"  {count} instance(s): {cost.figures.rps:8.0f} req/s", flush=True)
    return cost, cost.figures.created, after - mid


async def _counts(url: str) -> tuple[int, int]:
    return await _row_count(url, "tickets"), await _row_count(url, "ticket_messages")


# -- the report --------------------------------------------------------------------------------

MIX_TEXT = ", ".join(f"{shape.name} {weight}%" for shape, weight in MIX)
UTILISATION = 0.7  # how busy the model lets PostgreSQL's cores be


def report(
    big: list[tuple[Shape, Figures]],
    cost: list[tuple[Shape, Cost]],
    scaled: list[tuple[int, Cost, int, int]],
) -> str:
    lines = [
        f"PostgreSQL, {BIG:,} tickets ({3 * BIG:,} messages), 2 workers, "
        f"{LATENCY_CONNECTIONS} connections",
        f"{'request':30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}",
    ]
    for shape, f in big:
        lines.append(f"{shape.name:30} {f.rps:8.0f} {f.p50_ms:7.2f} {f.p99_ms:7.2f} {f.errors:6d}")
    lines += [
        "",
        f"PostgreSQL's cost per request ({SMALL:,} tickets, one instance of 2 workers, "
        "32 connections; pg_stat_statements and /proc)",
        f"{'request':30} {'req/s':>8} {'stmts':>6} {'exec ms':>8} {'buf hit':>8} "
        f"{'buf read':>8} {'pg cpu ms':>9} {'app cpu ms':>10} {'app/pg':>7}",
    ]
    for shape, c in cost:
        lines.append(
            f"{shape.name:30} {c.figures.rps:8.0f} {c.statements:6.1f} {c.exec_ms:8.3f} "
            f"{c.buffers_hit:8.1f} {c.buffers_read:8.2f} {c.pg_cpu_ms:9.3f} "
            f"{c.app_cpu_ms:10.3f} {c.app_cpu_ms / max(c.pg_cpu_ms, 1e-9):7.1f}"
        )
    lines += [
        "",
        f"Instances (--workers 1 each) behind haproxy, one PostgreSQL, one Redis; mix: {MIX_TEXT}",
        f"{'instances':>9} {'req/s':>8} {'x one':>6} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'pg cpu ms':>9} {'app cpu ms':>10} {'writes acked':>12} {'found':>6}",
    ]
    one = scaled[0][1].figures.rps if scaled else 0
    for count, c, acked, found in scaled:
        f = c.figures
        lines.append(
            f"{count:9d} {f.rps:8.0f} {f.rps / one if one else 0:6.2f} {f.p50_ms:7.2f} "
            f"{f.p99_ms:7.2f} {f.errors:6d} {c.pg_cpu_ms:9.3f} {c.app_cpu_ms:10.3f} "
            f"{acked:12d} {found:6d}"
        )
    if scaled:
        lines += ["", *model(scaled[0][1])]
    return "\n".join(lines)


def model(mix: Cost) -> list[str]:
    """How many app cores one PostgreSQL of N cores carries for the mix: PostgreSQL's cores
    busy to UTILISATION answer N * UTILISATION / pg_cpu requests a second; the app needs
    app_cpu for each. A model: it assumes CPU bounds both sides (the data fits in memory) and
    that both scale linearly with cores."""
    pg, app = mix.pg_cpu_ms / 1000, mix.app_cpu_ms / 1000
    lines = [
        f"Model (from one instance's mix): {mix.app_cpu_ms:.2f} ms of app CPU and "
        f"{mix.pg_cpu_ms:.2f} ms of PostgreSQL CPU per request: one PostgreSQL core carries "
        f"{app / pg:.1f} app cores ({UTILISATION:.0%} busy)",
        f"{'PostgreSQL cores':>16} {'req/s':>9} {'app cores':>10}",
    ]
    for cores in (2, 4, 8, 16, 32):
        rate = cores * UTILISATION / pg
        lines.append(f"{cores:16d} {rate:9,.0f} {rate * app:10.1f}")
    return lines


def ensure_haproxy() -> None:
    if not HAPROXY.is_file():
        print("installing haproxy (Debian package)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "haproxy"], check=True)
        subprocess.run(["service", "haproxy", "stop"], check=False)


def run(args: argparse.Namespace, wrk: str) -> str:
    """Every part, in one run; the report, also written as JSON with `--json`."""
    ensure_haproxy()
    ensure_pg_stat_statements(args.postgres_url)
    ctx = Context(args, wrk, Path(tempfile.mkdtemp(prefix="supportdesk-scale-")))
    print("== PostgreSQL at 10M tickets", flush=True)
    big = big_database(ctx)
    pristine = prepare_database("postgres", SMALL, Path(args.data_dir), args.postgres_url)
    print("== PostgreSQL's cost per request", flush=True)
    cost = costs(ctx, pristine)
    print("== instances behind haproxy", flush=True)
    scaled = []
    for count in (1, 2, 3):
        c, acked, found = instances(ctx, pristine, count)
        scaled.append((count, c, acked, found))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "big": [(s.name, asdict(f)) for s, f in big],
                    "cost": [(s.name, asdict(c)) for s, c in cost],
                    "instances": [(n, asdict(c), a, f) for n, c, a, f in scaled],
                },
                indent=2,
            )
        )
    return report(big, cost, scaled)
