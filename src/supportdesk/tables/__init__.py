"""SQLAlchemy Core table definitions, one module per table: the schema Alembic migrates to."""

from supportdesk.tables.api_keys import api_keys
from supportdesk.tables.base import metadata
from supportdesk.tables.canned_replies import canned_replies
from supportdesk.tables.events import events, job_leases
from supportdesk.tables.idempotency_keys import idempotency_keys
from supportdesk.tables.mail import mail_inbox, mail_outbox
from supportdesk.tables.meta import meta, row_count_deltas, row_counts
from supportdesk.tables.roles import roles
from supportdesk.tables.ticket_attachments import ticket_attachments
from supportdesk.tables.ticket_messages import ticket_messages
from supportdesk.tables.tickets import tickets
from supportdesk.tables.users import users
from supportdesk.tables.web import presence, sign_in_links, web_sessions
from supportdesk.tables.webhooks import webhook_deliveries, webhooks

__all__ = [
    "api_keys",
    "canned_replies",
    "events",
    "idempotency_keys",
    "job_leases",
    "mail_inbox",
    "mail_outbox",
    "meta",
    "metadata",
    "presence",
    "roles",
    "row_count_deltas",
    "row_counts",
    "sign_in_links",
    "ticket_attachments",
    "ticket_messages",
    "tickets",
    "users",
    "web_sessions",
    "webhook_deliveries",
    "webhooks",
]
