"""Engine and session factory for SQLite (default) and PostgreSQL.

SQLite gets the pragmas a multi-reader service needs (WAL, foreign keys, a busy timeout) on every
connection; without foreign_keys=ON SQLite silently ignores the FK constraints the schema declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings, normalize_database_url

_JOINED: ContextVar[tuple[Engine, Session] | None] = ContextVar("orderops_one_transaction", default=None)
"""The engine and session of the :meth:`Database.one_transaction` block the current code runs in."""


@dataclass(frozen=True)
class Database:
    """An engine and its session factory. One per process; passed in, never global."""

    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any exception.

        Inside :meth:`one_transaction` it is that transaction's session under a savepoint (rolled
        back alone on an exception), and nothing is committed until the outer block ends."""
        joined = self._joined()
        if joined is not None:
            with joined.begin_nested():
                yield joined
            return
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to read with; inside :meth:`one_transaction` that transaction's, so a read
        sees the writes made before it in the block."""
        joined = self._joined()
        if joined is not None:
            yield joined.connection()
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A transaction that serializes with every other writer on SQLite (``BEGIN IMMEDIATE``, so
        a check-then-insert is one atomic step); a plain transaction on PostgreSQL (callers add row
        or advisory locks there). For check-then-insert sequences such as the alert inbox's dedup.
        Inside :meth:`one_transaction` it joins that block, which already holds the write lock (a
        second ``BEGIN IMMEDIATE`` on its own connection would wait on it until the busy timeout)."""
        if self._joined() is not None:
            with self.begin() as session:
                yield session
            return
        with self._outer_transaction() as session:
            yield session

    @contextmanager
    def one_transaction(self) -> Iterator[Session]:
        """Run a block as one transaction: every :meth:`begin` and :meth:`connect` of this database
        in it (same thread) joins it, so all its writes commit together or, on an exception or a
        killed process, none does. What the tool gateway runs a write and records its idempotency
        key in: a crash can no longer leave an effect without its key, or a key without its effect.
        On SQLite it starts with ``BEGIN IMMEDIATE`` (the write lock is held from the start, so two
        such blocks queue instead of failing to upgrade a read lock)."""
        if self._joined() is not None:
            with self.begin() as session:
                yield session
            return
        with self._outer_transaction() as session:
            token = _JOINED.set((self.engine, session))
            try:
                yield session
            finally:
                _JOINED.reset(token)

    @contextmanager
    def _outer_transaction(self) -> Iterator[Session]:
        if not self.is_sqlite:
            with self.sessions.begin() as session:
                yield session
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            with Session(bind=conn, expire_on_commit=False) as session:
                try:
                    yield session
                    session.flush()
                    conn.commit()
                except BaseException:
                    conn.rollback()
                    raise

    def in_one_transaction(self) -> bool:
        """Whether a write here now would join an enclosing :meth:`one_transaction` block (this
        thread, this database): it then commits, or rolls back, with that block's writes."""
        return self._joined() is not None

    def _joined(self) -> Session | None:
        """The session of the :meth:`one_transaction` block this code runs in, if it is on this
        database (the same engine, or another engine on the same file or server)."""
        joined = _JOINED.get()
        if joined is None:
            return None
        engine, session = joined
        if engine is self.engine:
            return session
        same = engine.url == self.engine.url and engine.url.database not in (None, "", ":memory:")
        return session if same and "mode=memory" not in str(engine.url) else None

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_database(settings: Settings | None = None, *, url: str | None = None, echo: bool = False) -> Database:
    """Build the :class:`Database` for ``url`` or, if not given, for ``settings``."""
    if url is None:
        if settings is None:
            raise ValueError("make_database needs settings or a url")
        url = settings.resolved_database_url
        echo = echo or settings.sql_echo
    url = normalize_database_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:" and not url.startswith("sqlite://?"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))
