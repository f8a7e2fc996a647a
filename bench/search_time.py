"""Search latency, in process (no HTTP): `filter[search]` against an exact filter on the same
database, so the ratio is read against a baseline measured in the same run.

    uv run python bench/search_time.py --database-url sqlite:///bench.db [--tickets 100000]

Seeds the database first when it holds fewer tickets than asked for.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from supportdesk.config import Settings
from supportdesk.db import open_database
from supportdesk.jsonapi.query import parse_list_query
from supportdesk.tickets.resource import TICKETS
from supportdesk.tickets.router import SPECS
from supportdesk.tickets.service import list_tickets

QUERIES = {
    "baseline: filter[status]=open": {"filter[status]": "customer-reply"},
    "search: one common word": {"filter[search]": "invoice"},
    "search: two words": {"filter[search]": "refund expired"},
    "search: rare word": {"filter[search]": "kangaroo"},
    "search + filter + sort": {
        "filter[search]": "dns",
        "filter[priority]": "high",
        "sort": "-updated_at",
    },
}


async def count(url: str) -> int:
    db = open_database(url)
    await db.connect()
    try:
        async with db.read() as conn:
            from sqlalchemy import func, select

            from supportdesk.tables import tickets

            return int(await conn.fetch_value(select(func.count()).select_from(tickets)))
    finally:
        await db.close()


async def measure(url: str, rounds: int) -> list[tuple[str, float, float, int]]:
    settings = Settings(database_url=url)
    db = open_database(url)
    await db.connect()
    rows = []
    try:
        for name, params in QUERIES.items():
            query = parse_list_query(params.items(), TICKETS, SPECS)
            timings = []
            total = 0
            for _ in range(rounds):
                started = time.perf_counter()
                _, total, _ = await list_tickets(db, settings, query)
                timings.append((time.perf_counter() - started) * 1000)
            timings.sort()
            rows.append(
                (name, statistics.median(timings), timings[int(len(timings) * 0.99) - 1], total)
            )
    finally:
        await db.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    have = asyncio.run(count(args.database_url))
    if have < args.tickets:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "supportdesk",
                "seed",
                "--tickets",
                str(args.tickets - have),
                "--database-url",
                args.database_url,
            ],
            check=True,
        )
    results = asyncio.run(measure(args.database_url, args.rounds))
    base = results[0][1]
    print(f"{'query':34} {'p50 ms':>8} {'p99 ms':>8} {'x base':>7} {'matches':>8}")
    for name, p50, p99, total in results:
        print(f"{name:34} {p50:8.2f} {p99:8.2f} {p50 / base:7.2f} {total:8d}")


if __name__ == "__main__":
    main()
