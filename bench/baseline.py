"""The benchmark's baseline: a raw ASGI app, with no framework and no ORM, that answers the
benchmark's request types (`shapes.py`) by executing the same SQL statements as supportdesk,
in the same transactions, and writing the same JSON.

The SQL text is taken from supportdesk's own statement objects, compiled once at start-up, so
the two cannot drift apart; every request then runs on the bare driver (`sqlite3` inline, or
an asyncpg pool) and `orjson`. What separates supportdesk's figures from these is the cost of
everything else: routing, dependency injection, query parsing, validation, rendering.

    BENCH_DATABASE_URL=sqlite:///bench.db uvicorn --app-dir bench baseline:create --factory
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from shapes import LISTS
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from supportdesk import timestamps
from supportdesk.auth import repository as auth_repository
from supportdesk.auth.service import KEY_CACHE_TTL_S
from supportdesk.config import Settings
from supportdesk.db import DatabaseUrl
from supportdesk.db.base import StatementCache
from supportdesk.jsonapi.query import parse_list_query
from supportdesk.ticket_attachments import repository as attachments_repository
from supportdesk.ticket_messages import repository as messages_repository
from supportdesk.tickets import repository as tickets_repository
from supportdesk.tickets.repository import rank
from supportdesk.tickets.resource import TICKETS
from supportdesk.users import repository as users_repository

MEDIA = b"application/vnd.api+json"
TICKET_ATTRIBUTES = TICKETS.attribute_names
USER_ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "email_verified_at",
    "role_id",
    "created_at",
    "updated_at",
)
MESSAGE_ATTRIBUTES = ("ticket_id", "user_id", "message", "created_at", "updated_at")


class Statements:
    """Every statement the bench's request types make supportdesk run, compiled once."""

    def __init__(self, dialect: Any) -> None:
        cache = StatementCache(dialect)
        self.compile = cache.get
        self.auth = cache.get(auth_repository._BY_HASH)
        self.ticket = cache.get(tickets_repository._GET)
        self.ticket_for_update = cache.get(tickets_repository._GET_FOR_UPDATE)
        self.user = cache.get(users_repository._GET)
        self.message = cache.get(messages_repository._GET)
        self.lists = {}
        for query in LISTS.values():
            parsed = parse_list_query(parse_qsl(query), TICKETS, {"tickets": TICKETS})
            page, count, params = tickets_repository.lister.statements(parsed)
            self.lists[query] = (cache.get(page), cache.get(count), params, parsed)
        settings = Settings()
        ticket_columns = ("created_at", "priority", "status", "subject", "updated_at", "user_id")
        self.insert_ticket = cache.get(
            tickets_repository.writer.insert_statement(
                tuple(sorted((*ticket_columns, "priority_rank", "status_rank")))
            )
        )
        self.update_priority = cache.get(
            tickets_repository.writer.update_statement(("priority", "priority_rank", "updated_at"))
        )
        self.update_status = cache.get(
            tickets_repository.writer.update_statement(("status", "status_rank", "updated_at"))
        )
        self.insert_message = cache.get(
            messages_repository.writer.insert_statement(
                ("created_at", "message", "ticket_id", "updated_at", "user_id")
            )
        )
        self.settings = settings

    def lookup(self, lookup: Any, count: int) -> Any:
        statement, size = lookup.statement(count)
        return self.compile(statement), size


def _args(compiled: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {**compiled.defaults, **params}


class SQLiteRunner:
    """The same connection set-up as supportdesk's (pragmas, writer lock, checkpoints off the
    request path): the baseline differs in everything but the database work."""

    def __init__(self, path: str) -> None:
        from supportdesk.db.sqlite import Checkpointer, WriterLock, connect

        self.conn = connect(path)
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self.checkpointer = Checkpointer(path)
        self.checkpointer.start()
        self.writer_lock = WriterLock(path)
        self.statements = Statements(sqlite_dialect.dialect(paramstyle="named"))

    async def run(self, write: bool, work: Callable[[Any], Awaitable[Any]]) -> Any:
        if write:
            await self.writer_lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            try:
                result = await work(self)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            return result
        finally:
            if write:
                self.writer_lock.release()

    async def all(self, compiled: Any, params: dict[str, Any]) -> list[Any]:
        return self.conn.execute(compiled.sql, _args(compiled, params)).fetchall()

    async def one(self, compiled: Any, params: dict[str, Any]) -> Any:
        return self.conn.execute(compiled.sql, _args(compiled, params)).fetchone()

    async def close(self) -> None:
        self.checkpointer.stop()
        self.conn.close()
        self.writer_lock.close()


class PostgresRunner:
    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self.statements = Statements(asyncpg_dialect.dialect())  # type: ignore[no-untyped-call]

    async def start(self) -> None:
        import asyncpg

        from supportdesk.db.postgres import SERVER_SETTINGS, _init_connection

        self.pool = await asyncpg.create_pool(
            self.url.postgres_dsn(),
            min_size=1,
            max_size=10,
            statement_cache_size=1024,
            server_settings=SERVER_SETTINGS,
            init=_init_connection,
        )

    async def run(self, write: bool, work: Callable[[Any], Awaitable[Any]]) -> Any:
        async with self.pool.acquire() as conn:
            if not write:  # reads run without a transaction, as supportdesk's do
                return await work(_PgConn(conn))
            transaction = conn.transaction()
            await transaction.start()
            try:
                result = await work(_PgConn(conn))
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
            return result

    async def close(self) -> None:
        await self.pool.close()


class _PgConn:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def all(self, compiled: Any, params: dict[str, Any]) -> list[Any]:
        values = _args(compiled, params)
        return await self.conn.fetch(compiled.sql, *[values[n] for n in compiled.positions])

    async def one(self, compiled: Any, params: dict[str, Any]) -> Any:
        values = _args(compiled, params)
        return await self.conn.fetchrow(compiled.sql, *[values[n] for n in compiled.positions])


def _first(row: Any) -> Any:
    return next(iter(row.values()))


def _ticket(row: Any, messages: list[int]) -> dict[str, Any]:
    assigned = row["assigned_to"]
    return {
        "type": "tickets",
        "id": str(row["id"]),
        "attributes": {name: row[name] for name in TICKET_ATTRIBUTES},
        "relationships": {
            "user": {"data": {"type": "users", "id": str(row["user_id"])}},
            "assigned_to": {
                "data": None if assigned is None else {"type": "users", "id": str(assigned)}
            },
            "messages": {"data": [{"type": "ticket_messages", "id": str(i)} for i in messages]},
        },
    }


def _included(type_: str, row: Any, attributes: tuple[str, ...]) -> dict[str, Any]:
    return {"type": type_, "id": str(row["id"]), "attributes": {n: row[n] for n in attributes}}


class App:
    def __init__(self) -> None:
        url = DatabaseUrl.parse(os.environ["BENCH_DATABASE_URL"])
        self.runner: Any = SQLiteRunner(url.sqlite_path) if url.is_sqlite else PostgresRunner(url)
        self.s = self.runner.statements
        self.keys: dict[str, float] = {}  # token hash -> until when it is trusted

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if isinstance(self.runner, PostgresRunner):
                        await self.runner.start()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.runner.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = await self.handle(scope, body)
        headers = [(b"content-type", MEDIA if status < 400 else b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def authenticate(self, scope: dict[str, Any]) -> bool:
        """The key is read as supportdesk reads it: once per `KEY_CACHE_TTL_S` per worker."""
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        token_hash = hashlib.sha256(header.removeprefix("Bearer ").encode()).hexdigest()
        if self.keys.get(token_hash, 0.0) > time.monotonic():
            return True

        async def work(db: Any) -> Any:
            return await db.one(self.s.auth, {"token_hash": token_hash})

        row = await self.runner.run(False, work)
        if row is None or not row["enabled"]:
            return False
        self.keys[token_hash] = time.monotonic() + KEY_CACHE_TTL_S
        return True

    async def handle(self, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        if not await self.authenticate(scope):
            return 401, b'{"message": "unauthenticated", "code": "unauthenticated"}'
        method, path = scope["method"], scope["path"].removeprefix("/api/v1/admin")
        query = scope["query_string"].decode()
        if method == "GET" and path == "/tickets":
            return 200, await self.list_tickets(scope, query)
        if method == "GET" and path.startswith("/tickets/"):
            return 200, await self.retrieve(int(path.rsplit("/", 1)[1]))
        if method == "POST" and path == "/tickets":
            return 201, await self.create_ticket(orjson.loads(body))
        if method == "POST" and path == "/ticket-messages":
            return 201, await self.create_message(orjson.loads(body))
        if method == "PATCH" and path.startswith("/tickets/"):
            return 200, await self.update_ticket(int(path.rsplit("/", 1)[1]), orjson.loads(body))
        return 404, b'{"message": "not found", "code": "not_found"}'

    async def _linkage(
        self, db: Any, ticket_ids: list[int], full: bool
    ) -> tuple[dict[int, list[int]], list[Any]]:
        linkage: dict[int, list[int]] = {i: [] for i in ticket_ids}
        if not ticket_ids:
            return linkage, []
        lookup = (
            messages_repository._by_ticket_ids if full else messages_repository._ids_by_ticket_ids
        )
        compiled, size = self.s.lookup(lookup, len(ticket_ids))
        padded = ticket_ids + [ticket_ids[-1]] * (size - len(ticket_ids))
        rows = await db.all(compiled, {f"in_{i}": v for i, v in enumerate(padded)})
        for row in rows:
            linkage[row["ticket_id"]].append(row["id"])
        return linkage, rows

    async def list_tickets(self, scope: dict[str, Any], query: str) -> bytes:
        page, count, params, parsed = self.s.lists[query.replace("%5B", "[").replace("%5D", "]")]
        include = parsed.include

        async def work(db: Any) -> tuple[Any, ...]:
            total = _first(await db.one(count, params))
            rows = await db.all(page, params) if total > parsed.offset else []
            ids = [row["id"] for row in rows]
            users: list[Any] = []
            if "user" in include:
                user_ids = list(dict.fromkeys(row["user_id"] for row in rows))
                if user_ids:
                    compiled, size = self.s.lookup(users_repository._by_ids, len(user_ids))
                    padded = user_ids + [user_ids[-1]] * (size - len(user_ids))
                    users = await db.all(compiled, {f"in_{i}": v for i, v in enumerate(padded)})
            linkage, messages = await self._linkage(db, ids, "messages" in include)
            return total, rows, linkage, users, messages

        total, rows, linkage, users, messages = await self.runner.run(False, work)
        host = dict(scope["headers"]).get(b"host", b"").decode()
        path = f"http://{host}/api/v1/admin/tickets"
        last = max(1, -(-total // parsed.per_page))
        base = (
            f"{path}?{query}&page=" if query and not query.startswith("page=") else f"{path}?page="
        )
        document: dict[str, Any] = {
            "data": [_ticket(row, linkage[row["id"]]) for row in rows],
            "links": {
                "first": f"{base}1",
                "last": f"{base}{last}",
                "prev": f"{base}{parsed.page - 1}" if parsed.page > 1 else None,
                "next": f"{base}{parsed.page + 1}" if parsed.page < last else None,
            },
            "meta": {
                "current_page": parsed.page,
                "from": parsed.offset + 1 if rows else None,
                "to": parsed.offset + len(rows) if rows else None,
                "per_page": parsed.per_page,
                "path": path,
                "total": total,
                "last_page": last,
            },
        }
        if include:
            by_id = {u["id"]: u for u in users}
            document["included"] = [
                _included("users", by_id[r["user_id"]], USER_ATTRIBUTES) for r in rows
            ] + [_included("ticket_messages", m, MESSAGE_ATTRIBUTES) for m in messages]
        return orjson.dumps(document)

    async def retrieve(self, ticket_id: int) -> bytes:
        async def work(db: Any) -> tuple[Any, ...]:
            row = await db.one(self.s.ticket, {"ticket_id": ticket_id})
            linkage, messages = await self._linkage(db, [ticket_id], True)
            return row, linkage, messages

        row, linkage, messages = await self.runner.run(False, work)
        return orjson.dumps(
            {
                "data": _ticket(row, linkage[ticket_id]),
                "included": [_included("ticket_messages", m, MESSAGE_ATTRIBUTES) for m in messages],
            }
        )

    async def create_ticket(self, body: dict[str, Any]) -> bytes:
        settings = self.s.settings
        now = timestamps.now()
        values = {
            "subject": body["subject"].strip(),
            "user_id": int(body["user_id"]),
            "priority": body["priority"],
            "status": "open",
            "created_at": now,
            "updated_at": now,
            "priority_rank": rank(body["priority"], settings.priorities),
            "status_rank": rank("open", settings.statuses),
        }

        async def work(db: Any) -> tuple[Any, ...]:
            await db.one(self.s.user, {"user_id": values["user_id"]})
            new = await db.one(self.s.insert_ticket, {f"v_{k}": v for k, v in values.items()})
            row = await db.one(self.s.ticket, {"ticket_id": new["id"]})
            linkage, _ = await self._linkage(db, [row["id"]], False)
            return row, linkage

        row, linkage = await self.runner.run(True, work)
        return orjson.dumps({"data": _ticket(row, linkage[row["id"]])})

    async def create_message(self, body: dict[str, Any]) -> bytes:
        settings = self.s.settings
        ticket_id, user_id = int(body["ticket_id"]), int(body["user_id"])

        async def work(db: Any) -> Any:
            ticket = await db.one(self.s.ticket_for_update, {"ticket_id": ticket_id})
            await db.one(self.s.user, {"user_id": user_id})
            now = timestamps.now()
            values = {
                "ticket_id": ticket_id,
                "user_id": user_id,
                "message": body["message"].strip(),
                "created_at": now,
                "updated_at": now,
            }
            new = await db.one(self.s.insert_message, {f"v_{k}": v for k, v in values.items()})
            status = (
                settings.owner_reply_status
                if ticket["user_id"] == user_id
                else settings.staff_reply_status
            )
            await db.one(
                self.s.update_status,
                {
                    "row_id": ticket_id,
                    "v_status": status,
                    "v_status_rank": rank(status, settings.statuses),
                    "v_updated_at": now,
                },
            )
            row = await db.one(self.s.message, {"message_id": new["id"]})
            compiled, _ = self.s.lookup(attachments_repository._by_message_ids, 1)
            await db.all(compiled, {"in_0": row["id"]})
            return row

        row = await self.runner.run(True, work)
        return orjson.dumps(
            {
                "data": {
                    **_included("ticket_messages", row, MESSAGE_ATTRIBUTES),
                    "relationships": {
                        "ticket": {"data": {"type": "tickets", "id": str(row["ticket_id"])}},
                        "user": {"data": {"type": "users", "id": str(row["user_id"])}},
                        "attachments": {"data": []},
                    },
                }
            }
        )

    async def update_ticket(self, ticket_id: int, body: dict[str, Any]) -> bytes:
        settings = self.s.settings
        priority = body["priority"]

        async def work(db: Any) -> tuple[Any, ...]:
            current = await db.one(self.s.ticket_for_update, {"ticket_id": ticket_id})
            if current["priority"] != priority:
                await db.one(
                    self.s.update_priority,
                    {
                        "row_id": ticket_id,
                        "v_priority": priority,
                        "v_priority_rank": rank(priority, settings.priorities),
                        "v_updated_at": timestamps.now(),
                    },
                )
            row = await db.one(self.s.ticket, {"ticket_id": ticket_id})
            linkage, _ = await self._linkage(db, [ticket_id], False)
            return row, linkage

        row, linkage = await self.runner.run(True, work)
        return orjson.dumps({"data": _ticket(row, linkage[ticket_id])})


def create() -> App:
    random.seed()
    return App()
