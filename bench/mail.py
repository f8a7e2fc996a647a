"""The e-mail benchmark (issue 11): how fast mail comes in, and what mail going out costs the
API.

    uv run python bench/mail.py ingest --mails 1000      # `mail ingest` on a backlog, and per mail
    uv run python bench/mail.py poller --mails 1000      # the IMAP poller on a backlog (dovecot)
    uv run python bench/mail.py writes --rounds 4        # create message, SMTP off / on
    uv run python bench/mail.py flow --rate 100          # mail latency at a steady load

The backlog is half new tickets (a Gmail-style mail from each of `mails/2` senders, text and
HTML) and half replies to them (to the signed reply address, quoting the mail they answer).
Rates of whole runs are counted from the first mail recorded to the last (the `mail_inbox`
rows' times), so process start-up is left out; the `mail ingest` per-process figure is the
other way round, start-up included, as an MTA piping each mail meets it. Every process the
benchmark starts is stopped when it ends; everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
from events import subprocess_running
from run import (
    HERE,
    PYTHON,
    ROOT,
    bench_key,
    children,
    cli,
    drive,
    ensure_wrk,
    free_port,
    fresh_copy,
    prepare_database,
    server,
)
from shapes import SHAPES

sys.path.insert(0, str(ROOT))

from tests.mail.dovecot import running

from supportdesk.mail.address import sender

SECRET = "bench-secret"  # noqa: S105 (signs the backlog's reply addresses)
DESK = "Support <support@example.net>"
MAIL_ENV = {"SUPPORTDESK_MAIL_SECRET": SECRET, "SUPPORTDESK_MAIL_FROM": DESK}


def backlog(count: int) -> list[bytes]:
    """`count` mails: new tickets from `count // 2` senders, then a reply from each."""
    ours = sender(DESK)
    senders = count // 2
    mails = []
    for n in range(1, senders + 1):
        message = EmailMessage()
        message["From"] = f"Customer {n} <customer{n}@example.org>"
        message["To"] = ours.address
        message["Subject"] = f"Server {n} does not boot"
        message["Message-ID"] = f"<new-{n}@mail.example.org>"
        text = (
            f"Hello,\n\nserver {n} stopped booting after the kernel update last night. "
            "The console shows a kernel panic right after the initramfs loads.\n\n"
            f"Thanks,\nCustomer {n}\n"
        )
        message.set_content(text)
        message.add_alternative(f"<div dir=\"ltr\">{text.replace(chr(10), '<br>')}</div>",
                                subtype="html")  # fmt: skip
        mails.append(message.as_bytes())
    for n in range(1, count - senders + 1):
        message = EmailMessage()
        message["From"] = f"Customer {n} <customer{n}@example.org>"
        message["To"] = ours.reply_to(n, SECRET)
        message["Subject"] = f"Re: [#{n}] Server {n} does not boot"
        message["Message-ID"] = f"<reply-{n}@mail.example.org>"
        message["In-Reply-To"] = ours.message_id(n, n, n)
        message["References"] = f"{ours.root_id(n)} {ours.message_id(n, n, n)}"
        message.set_content(
            "Booting the previous kernel works, thank you!\n\n"
            f"On Wed, 2 Dec 2026 at 10:{n % 60:02d}, Support <support@example.net> wrote:\n"
            "> Please boot the previous kernel from the GRUB menu and tell us how it goes.\n"
            ">\n> Support\n"
        )
        mails.append(message.as_bytes())
    return mails


def inbox_rate(database: Path) -> tuple[int, int, float]:
    """Accepted and rejected mails recorded, and mails a second from the first to the last."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT state, received_at FROM mail_inbox ORDER BY id").fetchall()
    accepted = sum(1 for state, _ in rows if state == "accepted")
    times = [datetime.fromisoformat(at.replace("Z", "+00:00")) for _, at in rows]
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    return accepted, len(rows) - accepted, (len(rows) - 1) / span if span else 0.0


def fresh(data: Path, name: str) -> tuple[Path, dict[str, str]]:
    database = data / f"{name}.db"
    env = {
        **MAIL_ENV,
        "SUPPORTDESK_DATABASE_URL": f"sqlite:///{database}",
        "SUPPORTDESK_STORAGE_DIR": str(data / "storage"),
    }
    cli("migrate", env=env)
    return database, env


def ingest(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-mail-"))
    mails = backlog(args.mails)
    files = []
    for n, raw in enumerate(mails):
        path = data / f"{n:05}.eml"
        path.write_bytes(raw)
        files.append(str(path))
    database, env = fresh(data, "ingest")
    started = time.monotonic()
    cli("mail", "ingest", *files, env=env)
    wall = time.monotonic() - started
    accepted, rejected, rate = inbox_rate(database)
    print(f"mail ingest, {len(files)} files in one run: {accepted} accepted, {rejected} "
          f"rejected; {rate:.0f} mails/s ({len(files) / wall:.0f}/s with start-up)")  # fmt: skip
    database, env = fresh(data, "pipe")
    # as installed: with bytecode (this machine sets PYTHONDONTWRITEBYTECODE, which makes every
    # start compile the sources again, 2 s more); the first run writes it
    child = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for raw in [mails[0], *mails[: args.pipe]]:
        started = time.monotonic()
        subprocess.run([PYTHON, "-m", "supportdesk", "mail", "ingest"], input=raw, check=True,
                       env={**child, **env}, cwd=ROOT, capture_output=True)  # fmt: skip
        times.append(time.monotonic() - started)
    times = times[1:]
    per = statistics.median(times)
    print(f"mail ingest, one process per mail ({args.pipe} mails, as an MTA pipes them): "
          f"median {per * 1000:.0f} ms each, {1 / per:.1f} mails/s")  # fmt: skip


def poller(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-mail-"))
    mails = backlog(args.mails)
    database, env = fresh(data, "poller")
    with running() as dovecot:
        started = time.monotonic()
        for raw in mails:
            dovecot.append(raw)
        print(f"{len(mails)} mails put into the mailbox in {time.monotonic() - started:.1f}s")
        env = {**env, "SUPPORTDESK_IMAP_URL": dovecot.url, "SUPPORTDESK_IMAP_POLL": "1s"}
        with subprocess_running([PYTHON, "-m", "supportdesk", "worker"], env, data / "w.log"):
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                time.sleep(1)
                with sqlite3.connect(database) as conn:
                    done = conn.execute("SELECT count(*) FROM mail_inbox").fetchone()[0]
                if done >= len(mails):
                    break
    accepted, rejected, rate = inbox_rate(database)
    print(f"IMAP poller (supportdesk worker), {len(mails)} mails: {accepted} accepted, "
          f"{rejected} rejected; {rate:.0f} mails/s")  # fmt: skip


def outbox_state(url: str) -> dict[str, int]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT state, count(*) FROM mail_outbox GROUP BY state").fetchall()
    return dict(rows)


def cpu_seconds(master: int) -> float:
    """CPU time of a server's worker processes (the master's children) so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    # utime and stime: fields 14 and 15 of /proc/PID/stat, 11 and 12 after the command name
    return sum((int(f[11]) + int(f[12])) / ticks for f in children(master).values())


def sink_status(path: Path) -> tuple[int, float]:
    time.sleep(0.6)  # a fresh status line
    count, cpu = path.read_text().split()
    return int(count), float(cpu)


def writes(args: argparse.Namespace) -> None:
    """Create-message throughput with SMTP off and on (the server restarted between), in
    A B B A order; each reply is a mail to the ticket's customer."""
    wrk = ensure_wrk()
    pristine = prepare_database("sqlite", args.tickets, Path(args.data_dir), "")
    url = fresh_copy("sqlite", pristine, "")
    token = bench_key(url)
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-mail-"))
    port, smtp_port = free_port(), free_port()
    shape = next(s for s in SHAPES if s.name == "create message")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    serve = [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", "2",
        "--log-level", "warning", "--storage-dir", str(data / "storage"),
    ]  # fmt: skip
    order = [False, True, True, False] * (args.rounds // 2) + [False, True] * (args.rounds % 2)
    totals: dict[bool, list[float]] = {False: [], True: []}
    status = data / "sink.status"
    sink = [PYTHON, str(HERE / "smtp_sink.py"), "--port", str(smtp_port), "--status", str(status)]
    with subprocess_running(sink, {}, data / "sink.log"):
        for phase, mail_on in enumerate(order):
            env = {"SUPPORTDESK_DATABASE_URL": url, **MAIL_ENV}
            if mail_on:
                env["SUPPORTDESK_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
                with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
                    conn.execute("DELETE FROM meta WHERE key = 'mail_cursor'")  # from now on
            log = data / f"serve-{phase}-{'on' if mail_on else 'off'}.log"
            with server(serve, port, env, log) as master:
                time.sleep(1.0)  # the jobs take their leases; the mail cursor is set
                mails, sink_cpu = sink_status(status)
                server_cpu = cpu_seconds(master.pid)
                figures = drive(wrk, port, shape, token, args.tickets, users, args.duration, 32)
                server_cpu = cpu_seconds(master.pid) - server_cpu
                sent, sink_used = sink_status(status)
                totals[mail_on].append(figures.rps)
                state = outbox_state(url) if mail_on else {}
                print(f"  smtp={'on ' if mail_on else 'off'} {figures.rps:7.0f} req/s, "
                      f"server {server_cpu / args.duration:.2f} cores, sink "
                      f"{(sink_used - sink_cpu) / args.duration:.2f} cores for "
                      f"{sent - mails} mails; outbox {state}", flush=True)  # fmt: skip
                if mail_on:
                    drained = time.monotonic()
                    while outbox_state(url).get("pending", 0) and time.monotonic() - drained < 300:
                        time.sleep(0.5)
                    print(f"  outbox drained {time.monotonic() - drained:.1f}s after the load "
                          f"stopped: {outbox_state(url)}", flush=True)  # fmt: skip
    off, on = statistics.mean(totals[False]), statistics.mean(totals[True])
    print(f"create message, SMTP off / on (SQLite, {args.tickets} tickets, 2 workers, "
          "32 connections, a mail to the customer for each):")  # fmt: skip
    print(f"{'off req/s':>10} {'on req/s':>9} {'ratio':>6}")
    print(f"{off:10.0f} {on:9.0f} {on / off:6.2f}")


def flow(args: argparse.Namespace) -> None:
    """Mail latency in normal running: create messages at a steady `--rate` with SMTP on, then
    the time from each event's commit to its mail's acceptance by the SMTP server."""
    pristine = prepare_database("sqlite", args.tickets, Path(args.data_dir), "")
    url = fresh_copy("sqlite", pristine, "")
    token = bench_key(url)
    data = Path(tempfile.mkdtemp(prefix="supportdesk-bench-mail-"))
    port, smtp_port = free_port(), free_port()
    status = data / "sink.status"
    sink = [PYTHON, str(HERE / "smtp_sink.py"), "--port", str(smtp_port), "--status", str(status)]
    serve = [
        PYTHON, "-m", "supportdesk", "serve", "--port", str(port), "--workers", "2",
        "--log-level", "warning", "--storage-dir", str(data / "storage"),
    ]  # fmt: skip
    env = {"SUPPORTDESK_DATABASE_URL": url, "SUPPORTDESK_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
           **MAIL_ENV}  # fmt: skip
    total = int(args.rate * args.seconds)
    with subprocess_running(sink, {}, data / "sink.log"), server(serve, port, env, data / "s.log"):
        time.sleep(1.0)
        asyncio.run(_steady(port, token, args.rate, total, args.tickets))
        deadline = time.monotonic() + 120
        while outbox_state(url).get("pending", 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(
            "SELECT e.occurred_at, o.sent_at FROM mail_outbox o JOIN events e ON e.id = o.event_id"
            " WHERE o.state = 'sent'"
        ).fetchall()
    waits = sorted(
        (datetime.fromisoformat(sent.replace("Z", "+00:00"))
         - datetime.fromisoformat(at.replace("Z", "+00:00"))).total_seconds() * 1000
        for at, sent in rows
    )  # fmt: skip
    print(f"mail latency at {args.rate:.0f} replies/s for {args.seconds:.0f} s (SQLite, "
          "2 workers): "
          f"{len(waits)} of {total} mails sent; from commit to the SMTP server's 250: "
          f"p50 {waits[len(waits) // 2]:.0f} ms, p99 {waits[int(len(waits) * 0.99)]:.0f} ms, "
          f"max {waits[-1]:.0f} ms")  # fmt: skip


async def _steady(port: int, token: str, rate: float, total: int, tickets: int) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}/api/v1/admin",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        started = time.monotonic()
        pending = []
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            body = {"ticket_id": random.randint(1, tickets), "user_id": 1, "message": "A reply."}
            pending.append(asyncio.ensure_future(client.post("/ticket-messages", json=body)))
        for response in await asyncio.gather(*pending):
            assert response.status_code == 201, response.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    taking = commands.add_parser("ingest", help="`mail ingest` on a backlog and per mail")
    taking.add_argument("--mails", type=int, default=1000)
    taking.add_argument("--pipe", type=int, default=30, help="mails piped one process each")
    polling = commands.add_parser("poller", help="the IMAP poller on a backlog")
    polling.add_argument("--mails", type=int, default=1000)
    load = commands.add_parser("writes", help="create-message throughput, SMTP off and on")
    load.add_argument("--tickets", type=int, default=10_000)
    load.add_argument("--duration", type=int, default=8)
    load.add_argument("--rounds", type=int, default=4, help="runs of each (off, on)")
    load.add_argument("--data-dir", default=str(HERE / "data"))
    steady = commands.add_parser("flow", help="mail latency at a steady rate of replies")
    steady.add_argument("--rate", type=float, default=100.0)
    steady.add_argument("--seconds", type=float, default=10.0)
    steady.add_argument("--tickets", type=int, default=10_000)
    steady.add_argument("--data-dir", default=str(HERE / "data"))
    args = parser.parse_args()
    {"ingest": ingest, "poller": poller, "writes": writes, "flow": flow}[args.command](args)


if __name__ == "__main__":
    main()
