from sqlalchemy import BigInteger, Column, String, Table, Text

from supportdesk.tables.base import metadata

# Exact row counts kept by triggers (see the 0003 revision), so an unfiltered list's `total`
# is one row read instead of a count over the whole table.
row_counts = Table(
    "row_counts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Small facts about the data itself, such as the status and priority orders that the stored
# sort ranks were computed with.
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
