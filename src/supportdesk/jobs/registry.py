"""Which jobs run: every job module's `job(settings)`, which returns its `Job` or None when the
settings turn it off. A new job adds its module's `job` to `JOBS`."""

from __future__ import annotations

from collections.abc import Callable

from supportdesk.config import Settings
from supportdesk.jobs import autoclose, counts, idempotency, mail_in, mail_out, prune, webhooks
from supportdesk.jobs.runner import Job

JOBS: tuple[Callable[[Settings], Job | None], ...] = (
    autoclose.job,
    counts.job,
    idempotency.job,
    mail_in.job,
    mail_out.job,
    prune.job,
    webhooks.job,
)


def jobs(settings: Settings) -> list[Job]:
    """The jobs these settings enable, in `JOBS` order."""
    return [job for make in JOBS if (job := make(settings)) is not None]
