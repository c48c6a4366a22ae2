"""Where run checkpoints live: LangGraph's own savers, chosen by the database backend.

SQLite databases get a :class:`SqliteSaver` in a file next to the database (a separate file, so
checkpoint writes never queue behind the twin's write lock); PostgreSQL gets a
:class:`PostgresSaver` on its own psycopg connection (autocommit, as the saver requires) to the
same database. Either way a run parked for approval survives the process and can be resumed by
another one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.base import BaseCheckpointSaver

from core.db.engine import Database
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import DictRow


def sqlite_checkpoint_path(db: Database) -> Path:
    """``<dir>/<name>.checkpoints.sqlite`` beside the SQLite database file."""
    database = db.engine.url.database
    if not database or database == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot hold durable run checkpoints")
    path = Path(database)
    return path.with_name(f"{path.stem}.checkpoints.sqlite")


def postgres_dsn(db: Database) -> str:
    """The database's URL as libpq understands it (no SQLAlchemy ``+driver`` suffix)."""
    url = db.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def open_checkpointer(db: Database) -> Iterator[BaseCheckpointSaver[str]]:
    """A checkpointer for ``db``'s backend, set up and ready; closed on exit.

    Each backend's saver (and psycopg) is imported when that backend is opened: a SQLite
    installation never loads the PostgreSQL driver (a quarter of a second of CLI start-up)."""
    if db.is_postgres:
        with _postgres_checkpointer(db) as saver:
            yield saver
        return
    if not db.is_sqlite:
        raise ConfigurationError(f"no checkpointer for database dialect {db.engine.dialect.name!r}")
    with _sqlite_checkpointer(db) as saver_s:
        yield saver_s


@contextmanager
def _postgres_checkpointer(db: Database) -> Iterator[BaseCheckpointSaver[str]]:
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import dict_row

    conn: Connection[DictRow] = Connection.connect(
        postgres_dsn(db), autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    try:
        saver = PostgresSaver(conn)
        # Two workers starting on a fresh database would both create the checkpoint tables and one
        # would fail on the catalog's unique index: take turns (a session-level advisory lock).
        # Polled, not waited for: setup builds indexes CONCURRENTLY, which waits for every open
        # statement, so a blocking pg_advisory_lock call would deadlock with it.
        lock = "SELECT pg_try_advisory_lock(hashtext('orderops.checkpoint_setup')) AS got"
        while not (conn.execute(lock).fetchone() or {}).get("got"):
            time.sleep(0.05)
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext('orderops.checkpoint_setup'))")
        yield saver
    finally:
        conn.close()


@contextmanager
def _sqlite_checkpointer(db: Database) -> Iterator[BaseCheckpointSaver[str]]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = sqlite_checkpoint_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    sconn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        sconn.execute("PRAGMA journal_mode=WAL")
        sconn.execute("PRAGMA busy_timeout=30000")
        saver = SqliteSaver(sconn)
        saver.setup()
        yield saver
    finally:
        sconn.close()
