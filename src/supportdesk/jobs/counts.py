"""The counts job (PostgreSQL only), every second: folds the row-count deltas that the triggers
append (revision 0013) into `row_counts`, so reading a count stays a few rows whatever the
write rate. Counts are exact without it; it only keeps them cheap to read."""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.db.counts import fold
from supportdesk.db.url import DatabaseUrl
from supportdesk.jobs.runner import Job, JobContext

INTERVAL_S = 1.0


async def step(context: JobContext) -> None:
    async with context.db.transaction() as conn:
        await fold(conn)


def job(settings: Settings) -> Job | None:
    """The job, or None on SQLite, whose triggers update the counts in place."""
    if DatabaseUrl.parse(settings.database_url).is_sqlite:
        return None
    return Job("counts", INTERVAL_S, step)
