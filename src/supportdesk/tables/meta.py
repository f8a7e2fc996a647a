from sqlalchemy import BigInteger, Column, String, Table, Text

from supportdesk.tables.base import metadata

# Exact row counts kept by triggers (revisions 0003 and 0013), so the `total` of an unfiltered
# list, or of one filtered by ticket status only, is a few rows read instead of a count over
# the table: `users`, `tickets`, `ticket_messages`, and `tickets.status:<status>` per status.
row_counts = Table(
    "row_counts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# PostgreSQL's triggers append their changes to the counts here instead of updating
# `row_counts` (which would hold a row locked until each writer's commit); a count is its
# `row_counts` row plus its deltas, and the counts job folds the deltas in (see
# `supportdesk.db.counts`). SQLite's triggers update `row_counts` in place: this stays empty.
row_count_deltas = Table(
    "row_count_deltas",
    metadata,
    Column("name", String(64), nullable=False),
    Column("delta", BigInteger, nullable=False),
)

# Small facts about the data itself, such as the status and priority orders that the stored
# sort ranks were computed with.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
