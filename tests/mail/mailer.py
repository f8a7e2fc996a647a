"""The `mail_out` job's step as the job runner drives it, for tests that send mail."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from supportdesk.jobs import mail_out
from supportdesk.jobs.runner import JobContext
from tests.mail.smtp_receiver import Receiver


class Mailer:
    """The step on the app's settings with mail going to `smtp`, and any other `settings`
    changed (only for the job: the app's own settings stay as they are)."""

    def __init__(self, app: FastAPI, smtp: Receiver, **settings: Any) -> None:
        changed = app.state.settings.model_copy(update={"smtp_url": smtp.url, **settings})
        self.context = JobContext(app.state.db, changed, app.state.bus, "test")
        job = mail_out.job(changed)
        assert job is not None
        self.job = job

    async def step(self) -> None:
        await self.job.step(self.context)
