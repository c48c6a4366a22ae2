"""Schema migrations (Alembic) and the startup check that the database fits this code.

The check refuses a database whose schema revision this code does not know: that database was
migrated by a newer OrderOps, and writing to it with older code could corrupt it silently.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from core.db.engine import Database
from core.errors import ConfigurationError, SchemaTooNew

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(db: Database | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        # Alembic's config is a ConfigParser: a literal % (percent-encoded URLs) must be doubled.
        cfg.set_main_option("sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _head() -> str:
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the project ships migrations
        raise ConfigurationError("no schema migrations are installed")
    return head


SCHEMA_HEAD = _head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_schema(db: Database) -> None:
    """Raise unless the database is at exactly this code's schema head.

    * unknown revision -> :class:`SchemaTooNew` (written by a newer OrderOps);
    * no revision / older revision -> :class:`ConfigurationError` telling to run ``orderops init``.
    """
    rev = current_revision(db)
    if rev == SCHEMA_HEAD:
        return
    if rev is None:
        raise ConfigurationError(f"database {db.url} has no OrderOps schema; run `orderops init` first", url=db.url)
    known = {s.revision for s in _script().walk_revisions()}
    if rev not in known:
        raise SchemaTooNew(
            f"database {db.url} is at schema revision {rev}, which this OrderOps does not know "
            f"(newest known: {SCHEMA_HEAD}); upgrade OrderOps instead of touching this database",
            revision=rev,
            head=SCHEMA_HEAD,
        )
    raise ConfigurationError(
        f"database {db.url} is at an older schema ({rev}); run `orderops init` to migrate it to {SCHEMA_HEAD}",
        revision=rev,
        head=SCHEMA_HEAD,
    )


def migrate(db: Database, revision: str = "head") -> None:
    """Upgrade the schema to ``revision``. Refuses a database newer than the code."""
    rev = current_revision(db)
    if rev is not None and rev not in {s.revision for s in _script().walk_revisions()}:
        check_schema(db)  # raises SchemaTooNew with the full message
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
