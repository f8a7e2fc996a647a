from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, text

from supportdesk.tables.base import Id, Timestamp, id_column, metadata

# The mail outbox (SPEC section 13): one row per notice of one event to one address. The
# `mail_out` job adds them from the event log (the UNIQUE pair makes a repeated fan-out add
# nothing), sends the due ones and records how it went. `content` is the whole RFC 5322
# message, rendered when the row is added, so a send repeats exactly what was meant.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    id_column(),
    # no foreign keys: pruning events or deleting a ticket or user keeps the record of the mail
    Column("event_id", BigInteger, nullable=True),  # none: a sign-in link (SPEC 14)
    Column("ticket_id", BigInteger, nullable=True),
    Column("user_id", BigInteger, nullable=True),
    Column("recipient", String(255), nullable=False),
    Column("notice", String(32), nullable=False),  # opened, reply, closed, new_ticket, ...
    Column("message_id", String(255), nullable=False),  # the mail's Message-ID
    Column("content", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Timestamp, nullable=True),
    Column("sent_at", Timestamp, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Index("uq_mail_outbox_event_id_recipient", "event_id", "recipient", unique=True),
    # what is due: only pending rows have a next attempt
    Index("ix_mail_outbox_next_attempt_at", "next_attempt_at"),
    Index("ix_mail_outbox_message_id", "message_id"),
    Index("ix_mail_outbox_created_at", "created_at"),  # pruning
    sqlite_autoincrement=True,
)

# Mail received (IMAP or `mail ingest`), accepted or rejected: the Message-ID makes a mail
# fetched twice count once, and the sender's accepted mails in the last hour are its limit.
mail_inbox = Table(
    "mail_inbox",
    metadata,
    id_column(),
    # the Message-ID, or `sha256:<hex>` of the raw mail when it has none
    Column("message_id", String(255), nullable=False),
    Column("sender", String(255), nullable=False),
    Column("state", String(16), nullable=False),  # accepted, rejected
    Column("reason", Text, nullable=True),
    Column("ticket_id", Id, nullable=True),
    Column("ticket_message_id", Id, nullable=True),
    Column("received_at", Timestamp, nullable=False),
    Index("uq_mail_inbox_message_id", "message_id", unique=True),
    Index("ix_mail_inbox_sender_state_received_at", "sender", "state", "received_at"),
    Index("ix_mail_inbox_ticket_id_id", "ticket_id", "id"),  # threading the mail sent
    Index("ix_mail_inbox_received_at", "received_at"),  # pruning
    sqlite_autoincrement=True,
)
