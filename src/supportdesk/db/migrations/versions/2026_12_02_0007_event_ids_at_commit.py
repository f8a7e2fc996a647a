"""event ids drawn at commit: the feed's order is commit order without a lock held by writers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The ids: PostgreSQL only (SQLite runs one writer at a time, so its ids are already drawn in
commit order). An event is inserted with a provisional negative id (its own sequence) and gets its
feed id at commit: a deferred constraint trigger takes a transaction-scoped advisory lock and
renumbers the transaction's events from `events_id_seq`. The lock is held from there to the
end of the commit only, inside the server: ids are drawn and become visible in one order, so a
reader that sees id N never misses a smaller id committing later (SPEC 9), and no transaction
holds up another's events while it runs (the lock taken at the INSERT, before, was held across
every round trip to the commit, and by a long transaction for all of its length).
Provisional ids are never visible to another transaction; a delivery queued in the same
transaction (a webhook test) follows its event's renumbering through ON UPDATE CASCADE.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An arbitrary constant naming the advisory lock that orders the renumbering.
LOCK_KEY = 0x5D_E7E7
FUNCTION = (
    "CREATE FUNCTION events_sequence() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"PERFORM pg_advisory_xact_lock({LOCK_KEY}); "
    "UPDATE events SET id = nextval('events_id_seq') WHERE id = NEW.id; "
    "RETURN NULL; END $$"
)
TRIGGER = (
    "CREATE CONSTRAINT TRIGGER events_sequence_ai AFTER INSERT ON events "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION events_sequence()"
)
FK = "fk_webhook_deliveries_event_id_events"


def _deliveries_fk(on_update: str | None) -> None:
    """Both databases, so the schema matches the tables' definition (SQLite copies the table)."""
    with op.batch_alter_table(
        "webhook_deliveries", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.create_foreign_key(
            FK, "events", ["event_id"], ["id"], ondelete="CASCADE", onupdate=on_update
        )


def upgrade() -> None:
    _deliveries_fk("CASCADE")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE SEQUENCE events_provisional_id_seq OWNED BY events.id")
    op.execute(
        "ALTER TABLE events ALTER COLUMN id SET DEFAULT -nextval('events_provisional_id_seq')"
    )
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    _deliveries_fk(None)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER events_sequence_ai ON events")
    op.execute("DROP FUNCTION events_sequence()")
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq')")
    op.execute("DROP SEQUENCE events_provisional_id_seq")
