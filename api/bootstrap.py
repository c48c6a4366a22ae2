"""The composition root: turn :class:`~core.settings.Settings` into the live dependencies.

Every entry point (CLI, API server, worker, tests) builds one :class:`AppContext` and passes it on;
nothing below this layer reads settings or the environment on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from tools.adapters.embedded import embedded_adapters

from core.clock import Clock, FixedClock, SystemClock
from core.db import Database, check_schema, make_database
from core.db.tables import MetaRow
from core.settings import Settings
from tools.adapters.protocols import Adapters


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    db: Database
    clock: Clock
    adapters: Adapters

    def close(self) -> None:
        self.db.dispose()


def network_meta(db: Database) -> dict[str, str]:
    with db.sessions() as session:
        return {row.key: row.value for row in session.scalars(select(MetaRow))}


def make_clock(settings: Settings, db: Database) -> Clock:
    """The twin's clock: the seeded network's business date (so a demo network behaves the same
    whenever it is run) unless settings ask for the wall clock."""
    if settings.clock == "system":
        return SystemClock()
    day = network_meta(db).get("business_date")
    if day is None:
        return SystemClock()
    return FixedClock(datetime.combine(date.fromisoformat(day), time(9, 0), tzinfo=UTC))


def open_context(settings: Settings, *, check: bool = True) -> AppContext:
    """Connect to the configured database and build the adapters. With ``check`` the schema must be
    exactly this code's (raises ConfigurationError / SchemaTooNew otherwise)."""
    db = make_database(settings)
    if check:
        try:
            check_schema(db)
        except Exception:
            db.dispose()
            raise
    clock = make_clock(settings, db) if check else SystemClock()
    return AppContext(settings=settings, db=db, clock=clock, adapters=embedded_adapters(db, clock))
