"""Conditional requests (SPEC 12, issue 10): what ETags cost, and what a 304 saves.

Two builds serve the same seeded database in turn: this tree, and a build of the commit
before ETags (`--before`, checked out into a temporary git worktree and run with its `src`
first on PYTHONPATH, in this environment). Each request type is driven against both in
A B B A order (`--rounds` times) and the req/s of each build averaged, so a drift of the
machine's load during the run weighs on both alike. Then, on this tree alone, a retrieve of
one ticket with a matching `If-None-Match` (304, no body) against the same retrieve without it
(200).

    uv run python bench/conditional.py --db sqlite --duration 8
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
from pathlib import Path

import httpx
from run import (
    HERE,
    PYTHON,
    ROOT,
    _row_count,
    bench_key,
    drive,
    ensure_wrk,
    free_port,
    fresh_copy,
    prepare_database,
    server,
)
from shapes import Shape

# the last commit whose answers carry no ETag (the merge of the canned replies, before ETags)
BEFORE_ETAGS = "ebc2c003bde0a3c37a697a930c5123f0bd62ac35"

# each build's workers warm their own page cache first
WARM_UP_S = 3

COMPARED = [
    Shape("list page 1", "GET", "/tickets"),
    Shape("list include=user,messages", "GET", "/tickets", "include=user,messages"),
    Shape("retrieve", "GET", "/tickets/{ticket}"),
    Shape("retrieve include=messages", "GET", "/tickets/{ticket}", "include=messages"),
]


def serve_command(port: int, storage: Path) -> list[str]:
    return [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", "2",
        "--log-level", "warning", "--no-jobs", "--storage-dir", str(storage),
    ]  # fmt: skip


def etag_of(port: int, token: str, path: str) -> str | None:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/admin{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.headers.get("etag")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds per request type")
    parser.add_argument(
        "--only", help="comma-separated request types to compare (default: all of COMPARED)"
    )
    parser.add_argument("--before", default=BEFORE_ETAGS, help="the build to compare with")
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    wrk = ensure_wrk()
    pristine = prepare_database(args.db, args.tickets, Path(args.data_dir), args.postgres_url)
    url = fresh_copy(args.db, pristine, args.postgres_url)
    token = bench_key(url)
    users = asyncio.run(_row_count(url, "users"))
    work = Path(tempfile.mkdtemp(prefix="supportdesk-conditional-"))
    before_tree = work / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(before_tree), args.before],
        cwd=ROOT,
        check=True,
    )
    try:
        ports = {"before": free_port(), "now": free_port()}
        envs = {
            "before": {"SUPPORTDESK_DATABASE_URL": url, "PYTHONPATH": str(before_tree / "src")},
            "now": {"SUPPORTDESK_DATABASE_URL": url},
        }

        def run(build: str, shape: Shape, seconds: int) -> float:
            figures = drive(
                wrk, ports[build], shape, token, args.tickets, users, seconds, args.connections
            )
            assert figures.errors == 0, f"{build} {shape.name}: {figures.errors} errors"
            return figures.rps

        with (
            server(serve_command(ports["before"], work / "s1"), ports["before"],
                   envs["before"], work / "before.log"),
            server(serve_command(ports["now"], work / "s2"), ports["now"],
                   envs["now"], work / "now.log"),
        ):  # fmt: skip
            assert etag_of(ports["before"], token, "/tickets/1") is None, "--before has ETags"
            tag = etag_of(ports["now"], token, "/tickets/1")
            assert tag is not None
            rows = []
            wanted = args.only.split(",") if args.only else [s.name for s in COMPARED]
            for shape in (s for s in COMPARED if s.name in wanted):
                totals = {"before": 0.0, "now": 0.0}
                for build in ("before", "now"):
                    run(build, shape, WARM_UP_S)
                for build in ("before", "now", "now", "before") * args.rounds:
                    totals[build] += run(build, shape, args.duration)
                runs = 2 * args.rounds
                rows.append((shape.name, totals["before"] / runs, totals["now"] / runs))
                print(f"  {shape.name:30} before {rows[-1][1]:8.0f}  now {rows[-1][2]:8.0f}")
            full = Shape("retrieve ticket 1 (200)", "GET", "/tickets/1")
            cached = Shape(
                "retrieve ticket 1 (304)", "GET", "/tickets/1", headers=(("If-None-Match", tag),)
            )
            pair = {"full": 0.0, "cached": 0.0}
            run("now", full, WARM_UP_S)
            for name, shape in (("full", full), ("cached", cached), ("cached", cached),
                                ("full", full)) * args.rounds:  # fmt: skip
                pair[name] += run("now", shape, args.duration)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT, check=False
        )
    print()
    print(f"{args.db}: {args.tickets} tickets, 2 workers, {args.connections} connections")
    print(f"{'request':30} {'before req/s':>12} {'now req/s':>10} {'now/before':>10}")
    for name, before, now in rows:
        print(f"{name:30} {before:12.0f} {now:10.0f} {now / before:10.3f}")
    full_rps, cached_rps = pair["full"] / (2 * args.rounds), pair["cached"] / (2 * args.rounds)
    print(f"{'retrieve ticket 1, 200':30} {'':12} {full_rps:10.0f}")
    ratio = cached_rps / full_rps
    print(f"{'same, If-None-Match -> 304':30} {'':12} {cached_rps:10.0f} {ratio:10.3f}")
    print("(the last ratio: 304 req/s over the full retrieve's)")


if __name__ == "__main__":
    main()
