from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from supportdesk.config import Settings
from supportdesk.db import Database
from supportdesk.events.bus import Bus


@dataclass(frozen=True)
class Job:
    name: str
    interval: float
    step: Callable[[JobContext], Awaitable[None]]
    wake_on_events: bool = False


@dataclass
class JobContext:
    db: Database
    settings: Settings
    bus: Bus
    holder: str
