"""Timestamps are stored and sent as one string format: UTC ISO 8601 with microseconds and `Z`
(`2024-01-15T10:30:00.000000Z`). Fixed width, so text order is time order on SQLite too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> str:
    return datetime.now(UTC).strftime(FORMAT)


def ago(age: timedelta) -> str:
    """The moment `age` before now, in the wire format (a cutoff for "older than")."""
    return to_text(datetime.now(UTC) - age)


def to_text(moment: datetime) -> str:
    """Render an aware datetime (naive ones are taken as UTC) in the wire format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(FORMAT)


def parse(text: str) -> str:
    """Normalise a client's ISO 8601 date or timestamp to the wire format; ValueError if bad."""
    moment = datetime.fromisoformat(text.strip())
    return to_text(moment)
