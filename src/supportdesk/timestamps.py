"""Timestamps are stored and sent as one string format: UTC ISO 8601 with microseconds and `Z`
(`2024-01-15T10:30:00.000000Z`). Fixed width, so text order is time order on SQLite too."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now() -> str:
    return datetime.now(UTC).strftime(FORMAT)


def to_text(moment: datetime) -> str:
    """Render an aware datetime (naive ones are taken as UTC) in the wire format."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(FORMAT)


def parse(text: str) -> str:
    """Normalise a client's ISO 8601 date or timestamp to the wire format; ValueError if bad."""
    moment = datetime.fromisoformat(text.strip())
    return to_text(moment)


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse_duration(text: str) -> timedelta:
    """`45s`, `30m`, `12h`, `7d`, `2w` -> timedelta; ValueError otherwise. Whole units only, so
    a setting reads the same to people and to the parser."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and s, m, h, d or w (7d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
