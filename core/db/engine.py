"""Engine and session factory for SQLite (default) and PostgreSQL.

SQLite gets the pragmas a multi-reader service needs (WAL, foreign keys, a busy timeout) on every
connection; without foreign_keys=ON SQLite silently ignores the FK constraints the schema declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings, normalize_database_url


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
        """A session in a transaction: committed on success, rolled back on any exception."""
        with self.sessions.begin() as session:
            yield session

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
