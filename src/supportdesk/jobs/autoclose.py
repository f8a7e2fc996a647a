"""The autoclose job: closes tickets left in the staff-reply status longer than
`SUPPORTDESK_AUTOCLOSE_AFTER` (SPEC 11; `0` turns it off). Each step is one
`tickets.service.autoclose` transaction, which records a `ticket.updated` event of the `system`
actor per ticket closed: idempotent, so a repeated or overlapping step closes nothing twice."""

from __future__ import annotations

from supportdesk import timestamps
from supportdesk.config import Settings
from supportdesk.jobs.runner import Job, JobContext
from supportdesk.tickets.service import autoclose

INTERVAL_S = 60.0


async def step(context: JobContext) -> None:
    settings = context.settings
    await autoclose(context.db, settings, timestamps.ago(settings.autoclose_after))


def job(settings: Settings) -> Job | None:
    """The job, or None when autoclose is off."""
    return Job("autoclose", INTERVAL_S, step) if settings.autoclose_after else None
