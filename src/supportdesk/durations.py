"""Durations as people write them in settings and CLI options: `45s`, `30m`, `12h`, `7d`, `2w`,
or `0` alone. The one parser for `SUPPORTDESK_AUTOCLOSE_AFTER`, `SUPPORTDESK_EVENTS_RETAIN`,
`tickets autoclose --after` and `events prune --older-than`."""

from __future__ import annotations

import re
from datetime import timedelta

# seconds per unit, largest first (`to_text` picks the first that fits)
_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def parse(text: str) -> timedelta:
    """`45s`, `30m`, `12h`, `7d`, `2w` or `0` -> timedelta; ValueError saying how to write one
    otherwise."""
    text = text.strip()
    if text == "0":
        return timedelta(0)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and s, m, h, d or w (7d)")
    return timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])


def to_text(duration: timedelta) -> str:
    """The shortest text `parse` reads back as the same whole number of seconds (`7d`, `90s`,
    `0`); fractions of a second are dropped."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0"
    unit = next(unit for unit, size in _SECONDS.items() if seconds % size == 0)
    return f"{seconds // _SECONDS[unit]}{unit}"
