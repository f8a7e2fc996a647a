"""The prune job (SPEC 9, 11 and 13), every hour: deletes the events older than
`SUPPORTDESK_EVENTS_RETAIN` (the same work as `supportdesk events prune --older-than`) and the
records of mail sent and received older than `SUPPORTDESK_MAIL_RETAIN`, in short batches beside
the running server. `0` keeps either forever; with both `0` the job is off."""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.events.service import prune as prune_events
from supportdesk.jobs.runner import Job, JobContext
from supportdesk.mail.outbox import prune as prune_mail

INTERVAL_S = 3600.0


async def step(context: JobContext) -> None:
    settings = context.settings
    if settings.events_retain:
        await prune_events(context.db, settings.events_retain)
    if settings.mail_retain:
        await prune_mail(context.db, settings.mail_retain)


def job(settings: Settings) -> Job | None:
    """The job, or None when events and mail records are kept forever."""
    if not (settings.events_retain or settings.mail_retain):
        return None
    return Job("prune", INTERVAL_S, step)
