"""Database layer: tables, engine and session factory, migrations.

Only this package and the embedded adapters open sessions; nothing above ``tools/adapters`` touches
SQL directly.
"""

from core.db.engine import Database, make_database
from core.db.migrate import SCHEMA_HEAD, check_schema, migrate

__all__ = ["SCHEMA_HEAD", "Database", "check_schema", "make_database", "migrate"]
