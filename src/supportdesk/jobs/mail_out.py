"""The `mail_out` job (SPEC 13): turns new events into mails in the outbox and sends what is
due. On only when `SUPPORTDESK_SMTP_URL` is set.

The outbox fills whether or not the SMTP server answers, so an outage loses nothing. While the
server cannot be used, sending pauses (5 s, doubling to 5 min) instead of trying on every
event; the failure shows as the job's `last_error` in `/health`.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from supportdesk.config import Settings
from supportdesk.jobs.runner import Job, JobContext, StepFailed
from supportdesk.mail import address, outbox, service, smtp
from supportdesk.mail.compose import Composer

INTERVAL_S = 5.0
BUDGET_S = 2.0
PAUSE_S = 5.0
MAX_PAUSE_S = 300.0


@dataclass
class _State:
    composer: Composer | None = None
    failures: int = 0
    paused_until: float = 0.0


async def step(context: JobContext, state: _State) -> None:
    settings = context.settings
    assert settings.smtp_url is not None
    if state.composer is None:
        secret = await service.reply_secret(context.db, settings)
        sender = address.sender(settings.mail_from)
        state.composer = Composer(sender, secret, settings.mail_templates)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUDGET_S
    while await outbox.fan_out(context.db, settings, state.composer):
        if loop.time() > deadline:
            return
    if loop.time() < state.paused_until:
        return
    target = smtp.parse_url(settings.smtp_url)
    try:
        while await outbox.send_due(context.db, target, state.composer) == outbox.SEND_BATCH:
            if loop.time() > deadline:
                return
    except smtp.Unavailable as exc:
        state.failures += 1
        pause = min(PAUSE_S * 2 ** (state.failures - 1), MAX_PAUSE_S)
        state.paused_until = loop.time() + pause
        raise StepFailed(f"{exc}; trying again in {pause:.0f} s") from None
    state.failures = 0


def job(settings: Settings) -> Job | None:
    """The job, or None without an SMTP server (no mail, nothing queued)."""
    if settings.smtp_url is None:
        return None
    return Job(
        "mail_out",
        INTERVAL_S,
        functools.partial(step, state=_State()),
        wake_on_events=True,
    )
