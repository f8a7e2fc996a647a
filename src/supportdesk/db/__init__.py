"""The database interface (`Database`, `Conn`) and the factory that picks a backend by URL.

Repositories build SQLAlchemy Core statements and hand them to a `Conn`; the backend compiles
each statement object once for its dialect and runs the SQL with its own driver.
"""

from supportdesk.db.base import (
    Conn,
    Database,
    DatabaseConfigError,
    IntegrityViolation,
    Precondition,
    Row,
)
from supportdesk.db.url import DatabaseUrl, open_database

__all__ = [
    "Conn",
    "Database",
    "DatabaseConfigError",
    "DatabaseUrl",
    "IntegrityViolation",
    "Precondition",
    "Row",
    "open_database",
]
