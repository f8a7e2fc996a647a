"""Instructions per request, counted by callgrind: the fixed cost of a request, free of the
noise of wall-clock timings on a shared machine (bench/README.md, changes 8 and 9).

For each request type, the app (supportdesk's, or the baseline's) is driven in-process through
ASGI, without a server or a socket, under `valgrind --tool=callgrind` twice: once for `--requests`
requests and once for five times as many. The difference over the extra requests is the cost of
one request, start-up and warm-up excluded.

    uv run python bench/instructions.py                       # every read, app and baseline
    uv run python bench/instructions.py --only retrieve --annotate 25

`--annotate N` also prints the N functions (C level, inclusive) that cost the app most.
Seeds bench/data/bench-1000.db the first time (`supportdesk seed`), then reuses it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from shapes import SHAPES, Shape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TICKETS = 1000


def _request(shape: Shape, token: str, rng: random.Random, users: int) -> dict[str, Any]:
    def fill(text: str) -> str:
        return (
            text.replace("{ticket}", str(rng.randint(1, TICKETS)))
            .replace("{user}", str(rng.randint(users // 10 + 1, users)))
            .replace("{priority}", rng.choice(["low", "medium", "high", "urgent"]))
        )

    path = "/api/v1/admin" + fill(shape.path)
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"accept", b"application/json"),
        *((name.lower().encode(), value.encode()) for name, value in shape.headers),
    ]
    body = fill(shape.body).encode() if shape.body else b""
    if body:
        headers.append((b"content-type", b"application/json"))
    return {
        "scope": {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": shape.method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": shape.query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        },
        "body": body,
    }


async def _one(app: Any, request: dict[str, Any]) -> int:
    """One request through the app; its status."""
    sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays connected
        sent = True
        return {"type": "http.request", "body": request["body"], "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app({**request["scope"], "state": {}}, receive, send)
    return status[0]


async def _drive(app: Any, shape: Shape, token: str, users: int, count: int) -> None:
    """Start the app (its lifespan), answer `count` requests, stop it."""
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        (started if message["type"].startswith("lifespan.startup") else stopped).set()

    await lifespan.put({"type": "lifespan.startup"})
    task = asyncio.ensure_future(
        app(
            {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
            lifespan.get,
            lifespan_send,
        )
    )
    await started.wait()
    rng = random.Random(7)
    for _ in range(count):
        status = await _one(app, _request(shape, token, rng, users))
        assert status < 300, (shape.name, status)
    await lifespan.put({"type": "lifespan.shutdown"})
    await stopped.wait()
    await task


def child(args: argparse.Namespace) -> None:
    """Inside valgrind: build the app and drive it."""
    shape = next(s for s in SHAPES if s.name == args.shape)
    if args.target == "app":
        from supportdesk.app import create_app
        from supportdesk.config import Settings

        app = create_app(
            Settings(
                database_url=args.url,
                storage_dir=args.storage,
                jobs=False,
                log_level="warning",
            )
        )
    else:
        os.environ["BENCH_DATABASE_URL"] = args.url
        sys.path.insert(0, str(HERE))
        from baseline import create

        app = create()
    asyncio.run(_drive(app, shape, args.token, args.users, args.count))


def count_instructions(
    args: argparse.Namespace, target: str, shape: Shape, count: int, out: Path
) -> int:
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--child", "--target", target, "--shape", shape.name,
        "--url", args.url, "--token", args.token, "--users", str(args.users),
        "--storage", args.storage, "--count", str(count),
    ]  # fmt: skip
    # a fixed hash seed: with a random one, counts of identical runs moved by several percent
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=1800, env=env
    )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"{target} {shape.name}: {result.stderr[-2000:]}")
    return int(match.group(1))


def prepare(data: Path) -> tuple[str, str, int]:
    """A seeded copy of the small database, a key with every permission, the users' count."""
    data.mkdir(parents=True, exist_ok=True)
    pristine = data / f"bench-{TICKETS}.db"
    if not pristine.exists():
        subprocess.run(
            [sys.executable, "-m", "supportdesk", "seed", "--tickets", str(TICKETS),
             "--database-url", f"sqlite:///{pristine}"],
            check=True,
        )  # fmt: skip
    copy = data / f"bench-{TICKETS}-instructions.db"
    for suffix in ("", "-wal", "-shm", "-writer"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(pristine) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    url = f"sqlite:///{copy}"
    created = subprocess.run(
        [sys.executable, "-m", "supportdesk", "keys", "create", "--name", "instructions",
         "--all", "--rate-limit", "100000000", "--database-url", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    with sqlite3.connect(copy) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    return url, created.stdout.strip().splitlines()[-1], users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="request types whose names contain this")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--annotate", type=int, default=0)
    parser.add_argument("--writes", action="store_true", help="the write types too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("valgrind") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=True)
    args.url, args.token, args.users = prepare(HERE / "data")
    work = Path(tempfile.mkdtemp(prefix="supportdesk-callgrind-"))
    args.storage = str(work / "storage")
    shapes = [s for s in SHAPES if args.only in s.name and (args.writes or s.method == "GET")]
    few, many = args.requests, args.requests * 5
    print(
        f"{'request':28} {'app':>10} {'baseline':>10} {'base/app':>8}   (instructions per request)"
    )
    for shape in shapes:
        per: dict[str, float] = {}
        for target in ("app", "baseline"):
            low = count_instructions(args, target, shape, few, work / f"{target}-few.out")
            high = count_instructions(args, target, shape, many, work / f"{target}-many.out")
            per[target] = (high - low) / (many - few)
        print(
            f"{shape.name:28} {per['app']:10,.0f} {per['baseline']:10,.0f} "
            f"{per['baseline'] / per['app']:8.2f}",
            flush=True,
        )
        if args.annotate:
            annotated = subprocess.run(
                ["callgrind_annotate", "--inclusive=yes", str(work / "app-many.out")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            lines = [
                line for line in annotated.stdout.splitlines() if re.match(r"\s*[\d,]+ ", line)
            ]
            print("\n".join(lines[: args.annotate]))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
