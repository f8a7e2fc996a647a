"""The prune job: deletes the events older than `SUPPORTDESK_EVENTS_RETAIN` (SPEC 9 and 11;
unset or `0` keeps them forever), in short batches beside the running server. The same work as
`supportdesk events prune --older-than`."""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.events.service import prune
from supportdesk.jobs.runner import Job, JobContext

INTERVAL_S = 3600.0


async def step(context: JobContext) -> None:
    await prune(context.db, context.settings.events_retain)


def job(settings: Settings) -> Job | None:
    """The job, or None when events are kept forever."""
    return Job("prune", INTERVAL_S, step) if settings.events_retain else None
