"""Recording events inside the writer's transaction, and reading them back after a cursor.

Services call `record(conn, actor, [...])` once per transaction, after the writes the events
describe: the events commit or roll back with them. The actor is passed down by the caller
(the API key of a request, `SYSTEM` for jobs), never taken from a global.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from supportdesk import timestamps
from supportdesk.db import Conn, Row
from supportdesk.events import repository
from supportdesk.jsonapi.spec import ResourceSpec
from supportdesk.queries import ListQuery

EVENT_NAMES = (
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "ticket.merged",
    "ticket_message.created",
    "ticket_message.updated",
    "ticket_message.deleted",
    "ticket_attachment.created",
    "user.created",
    "user.updated",
    "user.deleted",
    "canned_reply.created",
    "canned_reply.updated",
    "canned_reply.deleted",
    "webhook.disabled",
    # recorded by `POST /webhooks/{id}/test`; delivered to that endpoint only
    "webhook.test",
    "mail.rejected",
)
FAMILIES = tuple(dict.fromkeys(name.split(".")[0] for name in EVENT_NAMES))
# Attributes every update moves, left out of `changes` (they are in `data`).
_UNCHANGED = frozenset({"updated_at"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: `api_key`, `user`, `system` or `email`, with an id where there is one."""

    type: str
    id: int | None = None


SYSTEM = Actor("system")


def api_key(key_id: int) -> Actor:
    return Actor("api_key", key_id)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    resource_type: str
    resource_id: int | None
    data: Mapping[str, Any]
    ticket_id: int | None = None
    changes: Mapping[str, Sequence[Any]] | None = None
    # who made this one change when not the transaction's actor (a workflow status move is
    # the message author's)
    actor: Actor | None = None


def attributes(spec: ResourceSpec, row: Row) -> dict[str, Any]:
    """A resource's attributes as the API renders them: the `data` of its events."""
    return {name: row[name] for name in spec.attribute_names}


def changes(before: Row, after: Row, names: Iterable[str]) -> dict[str, list[Any]]:
    """`{attribute: [before, after]}` for the attributes whose value differs."""
    return {
        name: [before[name], after[name]]
        for name in names
        if name not in _UNCHANGED and before[name] != after[name]
    }


def created(spec: ResourceSpec, row: Row, ticket_id: int | None = None) -> Event:
    return Event(f"{_family(spec)}.created", spec.type, row["id"], attributes(spec, row), ticket_id)


def deleted(spec: ResourceSpec, row: Row, ticket_id: int | None = None) -> Event:
    return Event(f"{_family(spec)}.deleted", spec.type, row["id"], attributes(spec, row), ticket_id)


def updated(
    spec: ResourceSpec, before: Row, after: Row, ticket_id: int | None = None
) -> Event | None:
    """The `*.updated` event of a change, or None when no attribute really changed."""
    diff = changes(before, after, [n for n in spec.attribute_names if n not in spec.derived])
    if not diff:
        return None
    name = f"{_family(spec)}.updated"
    return Event(name, spec.type, after["id"], attributes(spec, after), ticket_id, diff)


def _family(spec: ResourceSpec) -> str:
    """`tickets` -> `ticket`, `ticket_messages` -> `ticket_message`,
    `canned_replies` -> `canned_reply`."""
    if spec.type.endswith("ies"):
        return spec.type.removesuffix("ies") + "y"
    return spec.type.removesuffix("s")


async def record(conn: Conn, actor: Actor, events: Iterable[Event | None]) -> None:
    """Append the events (None entries are skipped) in the caller's transaction."""
    now = timestamps.now()
    rows = [
        {
            "event": event.name,
            "occurred_at": now,
            "actor_type": (event.actor or actor).type,
            "actor_id": (event.actor or actor).id,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "ticket_id": event.ticket_id,
            "data": orjson.dumps(event.data).decode(),
            "changes": None if event.changes is None else orjson.dumps(event.changes).decode(),
        }
        for event in events
        if event is not None
    ]
    if rows:
        await repository.append(conn, rows)


@dataclass(frozen=True)
class Selection:
    """Which events a reader wants: exact names, `family.` prefixes (`ticket.*`), ticket ids.
    Empty means every event."""

    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    ticket_ids: tuple[int, ...] = ()

    def matches(self, row: Row) -> bool:
        if self.ticket_ids and row["ticket_id"] not in self.ticket_ids:
            return False
        if not self.names and not self.prefixes:
            return True
        name: str = row["event"]
        return name in self.names or name.startswith(self.prefixes)


def parse_patterns(patterns: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`ticket.*`, `user.created`, `*` -> (names, prefixes); ValueError naming a bad one.
    `*` alone selects everything (both empty)."""
    names: list[str] = []
    prefixes: list[str] = []
    for raw in patterns:
        pattern = raw.strip()
        if pattern == "*":
            return (), ()
        family, dot, rest = pattern.partition(".")
        if dot and rest == "*" and family in FAMILIES:
            prefixes.append(f"{family}.")
        elif pattern in EVENT_NAMES:
            names.append(pattern)
        else:
            raise ValueError(
                f"unknown event {pattern!r}: use *, a family such as ticket.* "
                f"({', '.join(f + '.*' for f in FAMILIES)}) or one of {', '.join(EVENT_NAMES)}"
            )
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(prefixes))


async def read(conn: Conn, cursor: int, limit: int, selection: Selection) -> list[Row]:
    """Events after the cursor, oldest first, as `resource()` rows."""
    return [resource(row) for row in await read_stored(conn, cursor, limit, selection)]


async def read_stored(conn: Conn, cursor: int, limit: int, selection: Selection) -> list[Row]:
    """Events after the cursor, oldest first, as stored: `data` and `changes` are JSON text,
    for readers that use their values rather than pass them on."""
    return await repository.after(
        conn, cursor, limit, selection.names, selection.prefixes, selection.ticket_ids
    )


async def by_ids(conn: Conn, event_ids: Sequence[int]) -> list[Row]:
    """These events (those that still exist), as `resource()` rows, oldest first."""
    return [resource(row) for row in await repository.by_ids(conn, event_ids)]


def resource(row: Row) -> dict[str, Any]:
    """A stored event as the attributes of its `events` resource; `data` and `changes` are
    embedded as the JSON they were stored as, never parsed and re-serialised."""
    return {
        "id": row["id"],
        "event": row["event"],
        "occurred_at": row["occurred_at"],
        "actor": {"type": row["actor_type"], "id": row["actor_id"]},
        "resource": {"type": row["resource_type"], "id": row["resource_id"]},
        "ticket_id": row["ticket_id"],
        "data": orjson.Fragment(row["data"]),
        "changes": None if row["changes"] is None else orjson.Fragment(row["changes"]),
    }


def parsed(embedded: orjson.Fragment | None) -> Any:
    """The value of a `resource()` row's embedded `data` or `changes` (None stays None), for a
    reader that looks inside them."""
    return None if embedded is None else orjson.loads(orjson.dumps(embedded))


async def history(conn: Conn, query: ListQuery) -> tuple[list[Row], int]:
    """A page of events by ticket (`filter ticket_id`), as `resource()` rows."""
    rows, total = await repository.history(conn, query)
    return [resource(row) for row in rows], total


async def newest_id(conn: Conn) -> int:
    return await repository.newest_id(conn)


async def prune(conn: Conn, older_than: str, limit: int) -> int:
    """Delete up to `limit` events that occurred before `older_than`; returns how many."""
    return await repository.prune(conn, older_than, limit)
