"""Full-text search structures that live outside the Core metadata, because each database has
its own: SQLite FTS5 tables kept in step by triggers, PostgreSQL GIN indexes on `tsvector`
expressions. `supportdesk.db.fulltext` builds the matching queries; the migrations create these.

The texts indexed: ticket subjects and message bodies. Both use a plain word tokenizer that
folds case but neither stems nor strips accents (FTS5 `unicode61 remove_diacritics 0`,
PostgreSQL's `simple` configuration), so both databases find the same tickets for the same
words.
"""

# SQLite: one external-content FTS5 table per indexed column; the rowid is the row's id.
SQLITE_FTS = {
    # fts table: (content table, column)
    "tickets_fts": ("tickets", "subject"),
    "ticket_messages_fts": ("ticket_messages", "message"),
    # trigram tokens: substring search for `filter[subject]`
    "tickets_subject_fts": ("tickets", "subject"),
}

# PostgreSQL: GIN index name -> (table, column); the indexed expression is
# to_tsvector('simple', column), and queries must use that exact expression.
POSTGRES_GIN = {
    "ix_tickets_subject_search": ("tickets", "subject"),
    "ix_ticket_messages_message_search": ("ticket_messages", "message"),
    # pg_trgm: substring search (ILIKE) for `filter[subject]`
    "ix_tickets_subject_trgm": ("tickets", "subject"),
}

TS_CONFIG = "simple"


def is_search_structure(name: str, kind: str) -> bool:
    """FTS5 tables with their shadow tables (`*_fts_data`, `*_fts_idx`, ...), and the GIN
    indexes."""
    if kind == "table":
        return any(name == fts or name.startswith(f"{fts}_") for fts in SQLITE_FTS)
    return kind == "index" and name in POSTGRES_GIN
