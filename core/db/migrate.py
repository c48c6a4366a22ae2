"""Schema migrations (Alembic) and the startup check that the database fits this code.

The check refuses a database whose schema revision this code does not know: that database was
migrated by a newer OrderOps, and writing to it with older code could corrupt it silently.

Every command checks the schema and few migrate, so the check does not import Alembic (a third of
a second of start-up): it reads the ``revision``/``down_revision`` lines of the migration scripts
(:func:`known_revisions`) and the ``alembic_version`` row with plain SQL. Alembic is imported by
:func:`migrate` and :func:`alembic_config` only; a test holds the static reading equal to
Alembic's own (:func:`alembic_head`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from core.db.engine import Database
from core.errors import ConfigurationError, SchemaTooNew

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"

_REVISION = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:['"]([^'"]+)['"]|None)\s*$""", re.M)


def alembic_config(db: Database | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        # Alembic's config is a ConfigParser: a literal % (percent-encoded URLs) must be doubled.
        cfg.set_main_option("sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


@cache
def known_revisions() -> dict[str, str | None]:
    """Each migration script's revision and the one it revises, read from the scripts' text.

    A script whose two lines are not a plain string (or ``None``) fails loudly here rather than
    being skipped: a revision missing from this map would make its database look too new."""
    graph: dict[str, str | None] = {}
    for script in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = {m.group(1): m.group(2) for m in _REVISION.finditer(script.read_text(encoding="utf-8"))}
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            raise ConfigurationError(f"migration {script.name} has no plain revision/down_revision lines")
        graph[str(found["revision"])] = found["down_revision"]
    return graph


def _head() -> str:
    graph = known_revisions()
    heads = set(graph) - {down for down in graph.values() if down is not None}
    if len(heads) != 1:  # pragma: no cover - the project ships one linear history
        raise ConfigurationError(f"the schema migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


SCHEMA_HEAD = _head()


def alembic_head() -> str | None:
    """The head as Alembic computes it (imports Alembic; for tests and tooling)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    """The ``alembic_version`` row, or None where the table is missing or empty (what Alembic's
    ``MigrationContext.get_current_revision`` answers; more than one row is refused as it does)."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = [str(r[0]) for r in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    if len(rows) > 1:
        raise ConfigurationError(f"database {db.url} has {len(rows)} schema heads: {rows}", url=db.url)
    return rows[0] if rows else None


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
    if rev not in known_revisions():
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
    from alembic import command

    rev = current_revision(db)
    if rev is not None and rev not in known_revisions():
        check_schema(db)  # raises SchemaTooNew with the full message
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
