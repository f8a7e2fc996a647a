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
    """Render an aware datetime (naive ones are taken as UTC) in the wire format. Through
    `isoformat`, which pads every year to four digits (`strftime("%Y")` writes year 133 as
    `133`, neither ISO 8601 nor fixed width)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def parse(text: str) -> str:
    """Normalise a client's ISO 8601 date or timestamp to the wire format; ValueError if bad,
    also for a moment that is out of range once moved to UTC (`0001-01-01T00:00+05:00`)."""
    moment = datetime.fromisoformat(text.strip())
    try:
        return to_text(moment)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range in UTC") from None
