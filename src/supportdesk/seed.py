"""Realistic demo data in bulk: users (a tenth of them staff), tickets with a spread of
statuses, priorities, departments, assignees and dates, and conversations of varied length.

Rows get explicit ids after the current largest, and go in with one bulk load per table and
batch (`Conn.load`: one prepared INSERT on SQLite, COPY on PostgreSQL), so a million tickets
load in minutes. On PostgreSQL, a seed that more than doubles the tickets runs in one
transaction that drops the secondary indexes of tickets and messages, loads, and builds them
again at the end: one sorted build per index instead of millions of scattered inserts (ten
million tickets load in well under an hour), and a failure leaves the database as it was.
Deterministic for a given `random_seed`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Table, func, select, text

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.db import Conn, Database
from supportdesk.tables import ticket_messages, tickets, users
from supportdesk.tickets.repository import rank

BATCH = 5_000
SPAN = timedelta(days=730)

_TOPICS = [
    "hosting panel",
    "invoice",
    "DNS records",
    "SSL certificate",
    "email delivery",
    "backup",
    "database",
    "VPS",
    "domain transfer",
    "payment",
    "refund",
    "upgrade",
    "migration",
    "firewall",
    "FTP access",
    "WordPress site",
    "API key",
    "nameservers",
    "disk quota",
    "CDN",
]
_PROBLEMS = [
    "Unable to access {}",
    "Question about {}",
    "{} not working",
    "Problem with {}",
    "Need help with {}",
    "{} is very slow",
    "Error after {} change",
    "How do I set up {}?",
    "Urgent: {} down",
    "Billing issue with {}",
]
_WORDS = [
    "the",
    "a",
    "my",
    "our",
    "your",
    "it",
    "is",
    "was",
    "not",
    "cannot",
    "after",
    "before",
    "when",
    "since",
    "please",
    "thanks",
    "help",
    "server",
    "site",
    "page",
    "error",
    "timeout",
    "login",
    "password",
    "reset",
    "account",
    "invoice",
    "payment",
    "charge",
    "refund",
    "plan",
    "upgrade",
    "downgrade",
    "domain",
    "email",
    "mailbox",
    "spam",
    "dns",
    "record",
    "certificate",
    "expired",
    "renew",
    "backup",
    "restore",
    "database",
    "query",
    "slow",
    "fast",
    "today",
    "yesterday",
    "again",
    "still",
    "now",
    "check",
    "logs",
    "attached",
    "screenshot",
    "support",
    "ticket",
    "team",
    "customer",
    "service",
    "working",
    "broken",
    "fixed",
    "issue",
    "problem",
    "question",
    "update",
    "configuration",
    "settings",
    "port",
    "firewall",
    "blocked",
    "allowed",
    "access",
    "denied",
    "permission",
    "file",
    "upload",
    "download",
    "limit",
    "quota",
    "disk",
    "memory",
    "cpu",
    "usage",
    "high",
]


# Words that each turn up in about one message in ten thousand (names, products, error codes):
# what people really search for. The benchmark searches for one of them.
RARE_WORDS = ("wombat", "quokka", "axolotl", "narwhal", "pangolin", "okapi", "tapir", "ibex")


def _weighted(options: dict[Any, int]) -> tuple[list[Any], list[int]]:
    return list(options), list(options.values())


@dataclass(frozen=True)
class Plan:
    tickets: int
    messages_per_ticket: int = 3
    users: int = 1000
    random_seed: int = 42


@dataclass(frozen=True)
class Result:
    users: int
    tickets: int
    messages: int


Progress = Callable[[str, int], None]

_MAX_IDS = select(
    select(func.coalesce(func.max(users.c.id), 0)).scalar_subquery().label("users"),
    select(func.coalesce(func.max(tickets.c.id), 0)).scalar_subquery().label("tickets"),
    select(func.coalesce(func.max(ticket_messages.c.id), 0)).scalar_subquery().label("messages"),
)


class _Generator:
    def __init__(self, plan: Plan, settings: Settings) -> None:
        self.plan = plan
        self.settings = settings
        self.rng = random.Random(plan.random_seed)
        self.sentences = [self._sentence() for _ in range(4000)]
        self.priorities = _weighted(
            dict(zip(settings.priorities, [30, 45, 20, 5, 1, 1, 1, 1], strict=False))
        )
        departments: dict[str | None, int] = dict.fromkeys(settings.departments, 10)
        departments[None] = 2
        self.departments = _weighted(departments)

    def _sentence(self) -> str:
        words = self.rng.choices(_WORDS, k=self.rng.randint(5, 16))
        return " ".join(words).capitalize() + self.rng.choice(".?!.")

    def message_text(self) -> str:
        # mostly short, sometimes long: 1 to 40 sentences, skewed low
        count = min(40, int(self.rng.paretovariate(1.2)) + self.rng.randint(0, 2))
        body = " ".join(self.rng.choices(self.sentences, k=max(1, count)))
        if self.rng.random() < 0.0008:
            body = f"{self.rng.choice(RARE_WORDS)} {body}"
        return body[: self.settings.max_message_length]

    def subject(self) -> str:
        return self.rng.choice(_PROBLEMS).format(self.rng.choice(_TOPICS))


def _ts(moment: datetime) -> str:
    return timestamps.to_text(moment)


async def _max_ids(db: Database) -> tuple[int, int, int]:
    async with db.read() as conn:
        row = await conn.fetch_one(_MAX_IDS)
    assert row is not None
    return int(row["users"]), int(row["tickets"]), int(row["messages"])


Batch = Sequence[tuple[Table, Sequence[dict[str, Any]]]]
Load = Callable[[Batch], Awaitable[None]]

# The secondary indexes of the bulk tables (not those behind a primary key or a constraint):
# their names and the statements that build them again.
_SECONDARY_INDEXES = text(
    "SELECT c.relname AS name, pg_get_indexdef(x.indexrelid) AS definition "
    "FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
    "WHERE x.indrelid IN ('tickets'::regclass, 'ticket_messages'::regclass) "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) "
    "ORDER BY c.relname"
)


@asynccontextmanager
async def _bulk(db: Database, rebuild: bool, progress: Progress) -> AsyncIterator[Load]:
    """Loads users, tickets and messages a batch at a time: a transaction per batch, or
    (`rebuild`) one transaction around every batch with the secondary indexes of tickets and
    messages dropped first and built again at the end (PostgreSQL)."""

    async def load_into(conn: Conn, batch: Batch) -> None:
        for table, rows in batch:
            await conn.load(table, rows)

    if not rebuild:

        async def load_alone(batch: Batch) -> None:
            async with db.transaction() as conn:
                await load_into(conn, batch)

        yield load_alone
        return
    async with db.transaction() as conn:
        indexes = await conn.fetch_all(_SECONDARY_INDEXES)
        for index in indexes:
            await conn.maintain(f'DROP INDEX "{index["name"]}"')
        yield partial(load_into, conn)
        await conn.maintain("SET LOCAL maintenance_work_mem = '1GB'")
        for index in indexes:
            await conn.maintain(index["definition"])
            progress("indexes", 1)


async def _fix_sequences(conn: Conn) -> None:
    for table in ("users", "tickets", "ticket_messages"):
        await conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )


async def _analyze(db: Database) -> None:
    """Fresh planner statistics after a bulk load; on PostgreSQL also VACUUM, which sets the
    visibility map (index-only scans) and merges the GIN indexes' pending lists (searches)."""
    if db.dialect == "postgresql":
        async with db.read() as conn:  # autocommit: VACUUM cannot run in a transaction
            await conn.maintain("VACUUM ANALYZE")
    else:
        async with db.transaction() as conn:
            await conn.maintain("ANALYZE")


async def seed(db: Database, settings: Settings, plan: Plan, progress: Progress) -> Result:
    gen = _Generator(plan, settings)
    rng = gen.rng
    user_base, ticket_base, message_base = await _max_ids(db)
    now = datetime.now(UTC)
    start = now - SPAN

    staff_count = max(1, plan.users // 10)
    user_rows: list[dict[str, Any]] = []
    for n in range(plan.users):
        joined = _ts(start + timedelta(seconds=n))
        user_rows.append(
            {
                "id": user_base + n + 1,
                "email": f"seed-user-{user_base + n + 1}@example.com",
                "first_name": rng.choice(["Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]),
                "last_name": rng.choice(["Smith", "Jones", "Lee", "Khan", "Novak", "Silva"]),
                "role_id": 1 if n < staff_count else None,
                "created_at": joined,
                "updated_at": joined,
            }
        )
    staff = [row["id"] for row in user_rows[:staff_count]]
    customers = [row["id"] for row in user_rows[staff_count:]] or staff

    rebuild = db.dialect == "postgresql" and plan.tickets > ticket_base
    async with _bulk(db, rebuild, progress) as load:
        for first in range(0, len(user_rows), BATCH):
            await load([(users, user_rows[first : first + BATCH])])
        progress("users", plan.users)
        message_id = await _tickets(
            gen, plan, (staff, customers), (ticket_base, message_base), now, load, progress
        )
    if db.dialect == "postgresql":
        async with db.transaction() as conn:
            await _fix_sequences(conn)
    await _analyze(db)
    return Result(plan.users, plan.tickets, message_id - message_base)


async def _tickets(
    gen: _Generator,
    plan: Plan,
    people: tuple[list[int], list[int]],
    bases: tuple[int, int],
    now: datetime,
    load: Load,
    progress: Progress,
) -> int:
    """Generates and loads the tickets and their conversations, after the given (staff,
    customers) and largest (ticket, message) ids; the last message id."""
    settings, rng = gen.settings, gen.rng
    (staff, customers), (ticket_base, message_id) = people, bases
    start = now - SPAN
    step = SPAN / max(1, plan.tickets)
    closed, replied, owner_reply = (
        settings.closed_status,
        settings.staff_reply_status,
        settings.owner_reply_status,
    )
    first_status = settings.statuses[0]
    on_hold = [s for s in settings.statuses if s not in (closed, replied, owner_reply)]
    for first in range(0, plan.tickets, BATCH):
        ticket_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []
        for n in range(first, min(first + BATCH, plan.tickets)):
            ticket_id = ticket_base + n + 1
            owner = rng.choice(customers)
            created = start + step * n + timedelta(seconds=rng.random() * 60)
            moment = created
            last_author = owner
            said: dict[bool, list[str]] = {True: [], False: []}  # by the owner?
            for k in range(plan.messages_per_ticket):
                moment += timedelta(minutes=rng.expovariate(1 / 240))
                author = owner if k == 0 or rng.random() < 0.45 else rng.choice(staff)
                last_author = author
                message_id += 1
                stamp = _ts(min(moment, now))
                said[author == owner].append(stamp)
                message_rows.append(
                    {
                        "id": message_id,
                        "ticket_id": ticket_id,
                        "user_id": author,
                        "message": gen.message_text(),
                        "internal": False,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
            # A helpdesk's history is mostly closed: tickets older than two weeks are closed but
            # for a few left replied or on hold; recent ones are still being worked on.
            settled = now - created > timedelta(days=14)
            if plan.messages_per_ticket == 0:
                status = first_status
            elif rng.random() < (0.96 if settled else 0.15):
                status = closed
            elif on_hold and rng.random() < 0.3:
                status = rng.choice(on_hold)
            else:
                status = owner_reply if last_author == owner else replied
            priority = rng.choices(*gen.priorities)[0]
            ticket_rows.append(
                {
                    "id": ticket_id,
                    "subject": gen.subject(),
                    "status": status,
                    "status_rank": rank(status, settings.statuses),
                    "priority": priority,
                    "priority_rank": rank(priority, settings.priorities),
                    "department": rng.choices(*gen.departments)[0],
                    "user_id": owner,
                    "assigned_to": rng.choice(staff) if rng.random() < 0.6 else None,
                    "service_id": rng.randint(1, 50_000) if rng.random() < 0.5 else None,
                    "created_at": _ts(created),
                    "updated_at": _ts(min(moment, now)),
                    # the metrics (SPEC 12) of this conversation
                    "message_count": plan.messages_per_ticket,
                    "first_response_at": said[False][0] if said[False] else None,
                    "last_staff_message_at": said[False][-1] if said[False] else None,
                    "last_customer_message_at": said[True][-1] if said[True] else None,
                    "resolved_at": _ts(min(moment, now)) if status == closed else None,
                    "merged_into": None,
                }
            )
        await load([(tickets, ticket_rows), (ticket_messages, message_rows)])
        progress("tickets", len(ticket_rows))
    return message_id
