"""The idempotency job: deletes the Idempotency-Key rows past their 24 hours (SPEC 12), in
short batches beside the running server. A repeat ignores an expired row anyway (and replaces
it); this keeps the table to a day of keys."""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.idempotency.service import purge
from supportdesk.jobs.runner import Job, JobContext

INTERVAL_S = 600.0


async def step(context: JobContext) -> None:
    await purge(context.db)


def job(settings: Settings) -> Job:
    """Always on: keys expire whatever the settings."""
    return Job("idempotency", INTERVAL_S, step)
