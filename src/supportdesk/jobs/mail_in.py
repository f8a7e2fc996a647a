"""The `mail_in` job (SPEC 13): polls the IMAP mailbox every `SUPPORTDESK_IMAP_POLL` and takes
each new mail (`mail.service.Inbox.ingest`). On only when `SUPPORTDESK_IMAP_URL` is set.

A mail is flagged processed on the server after it was taken; a crash in between fetches it
again, and its Message-ID, recorded with it, makes the second time change nothing. A mail
that cannot be taken is recorded as rejected and flagged too: one bad mail never stops the
poller; one over the size limit is rejected from its header fields, never downloaded. A step
reads the backlog in batches until the mailbox is drained.
"""

from __future__ import annotations

from supportdesk.config import Settings
from supportdesk.jobs.runner import Job, JobContext, StepFailed
from supportdesk.mail import imap, service
from supportdesk.ticket_attachments.storage import Storage

BATCH = 100


async def step(context: JobContext) -> None:
    settings = context.settings
    assert settings.imap_url is not None
    secret = await service.reply_secret(context.db, settings)
    inbox = service.Inbox(context.db, settings, Storage(settings.storage_dir), secret)
    try:
        async with imap.Mailbox(imap.parse_url(settings.imap_url)) as mailbox:
            max_bytes = service.limits(settings).max_bytes
            while batch := await mailbox.unprocessed(BATCH, max_bytes):
                taken: list[str] = []
                try:
                    for fetched in batch:
                        await inbox.ingest(fetched.data, fetched.size)
                        taken.append(fetched.uid)
                finally:  # a failure (the database down) leaves the rest for the next poll
                    await mailbox.mark_processed(taken)
                if len(batch) < BATCH:
                    break
    except imap.MailboxError as exc:
        raise StepFailed(str(exc)) from None


def job(settings: Settings) -> Job | None:
    """The job, or None without an IMAP mailbox."""
    if settings.imap_url is None:
        return None
    return Job("mail_in", settings.imap_poll.total_seconds(), step)
