"""The alert inbox's storm lookup runs on an index made for it (migration 0018), on both backends.

Every ingest asks for the run its storm's last ``started`` alert opened. On the old index
(storm_key, received_at) that walked every coalesced and duplicate alert of the storm, newest first,
until the opening one; on (storm_key, outcome, received_at) it is one seek. The plans are read
for the statement the inbox really sends (captured as it runs), not for a copy of it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from agents.plan import Alert, ExceptionKind
from api.routes.alerts import AlertInbox
from core.db import Database

STORM_INDEX = "ix_alerts_storm_outcome"


def _ingest_capturing(db: Database) -> list[tuple[str, Any]]:
    """Ingest two alerts of one storm; the statements that looked the storm up, with parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "storm_key" in statement:
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        inbox = AlertInbox(db)
        for i, sku in enumerate(("SKU-1", "SKU-2")):
            alert = Alert(id=f"a{i}", kind=ExceptionKind.NODE_CONGESTION, labels={"node": "DC-3", "sku": sku})
            inbox.ingest([alert])
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return seen


def _plan(db: Database, statement: str, params: Any) -> list[str]:
    with db.engine.connect() as conn:
        if db.is_sqlite:
            return [str(r[3]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]
        # A handful of rows: without this PostgreSQL rightly prefers reading the whole table.
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return [str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, params)]


def test_the_storm_lookup_seeks_the_storm_and_outcome_index(db: Database) -> None:
    captured = _ingest_capturing(db)
    assert captured, "the inbox sent no storm lookup"
    for statement, params in captured:
        plan = _plan(db, statement, params)
        if db.is_sqlite:
            storm_lines = [ln for ln in plan if "storm_key" in ln]
            assert storm_lines, plan
            assert all(f"USING INDEX {STORM_INDEX} (storm_key=? AND outcome=?)" in ln for ln in storm_lines), plan
        else:
            text = "\n".join(plan)
            assert f"using {STORM_INDEX} on alerts" in text, text
            conds = [ln for ln in plan if "Index Cond" in ln and "storm_key" in ln]
            assert conds, text
            assert all("outcome" in ln for ln in conds), text
