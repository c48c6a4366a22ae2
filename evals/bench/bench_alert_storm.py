"""The alert inbox's storm lookup on a long storm: the index of migration 0018 against the one before.

Every ingest asks for the run its storm's last ``started`` alert opened
(:meth:`api.routes.alerts.AlertInbox._seen`, the statement the inbox sends). On a fresh database
of each backend this writes one storm of ``--storm`` alerts (one ``started``, the rest
``coalesced``, as a node that keeps alerting produces) among ``--others`` small storms, then times
``--lookups`` lookups for the long storm on:

* ``0018``: (storm_key, outcome, received_at), the index the schema has now: one seek;
* ``pre-0018``: (storm_key, received_at), the index it replaced: the storm's alerts walked newest
  first until the opening one.

Prints per variant the plan (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN``), and the median
over ``--repeats`` of the microseconds per lookup, wall and CPU (this process; PostgreSQL's server
CPU is not in it). It only creates and drops its own databases. Not a test: run it by hand.

    python -m evals.bench.bench_alert_storm [--storm 20000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text

from api.routes.alerts import AlertInbox
from core.db import Database
from core.db.tables_jobs import AlertRow
from evals.bench.bench_network import fresh_database

STORM = "node:DC-LONG"
FINGERPRINT = "node_congestion|node=DC-LONG"
VARIANTS = {
    "0018": ("ix_alerts_storm_outcome", "storm_key, outcome, received_at"),
    "pre-0018": ("ix_alerts_storm", "storm_key, received_at"),
}


def _fill(db: Database, storm: int, others: int, t0: datetime) -> None:
    """One long storm (opened once, then coalesced) and ``others`` storms of 20 alerts each."""

    def row(storm_key: str, outcome: str, i: int) -> dict[str, Any]:
        return {
            "id": f"alr_{uuid.uuid4().hex[:20]}",
            "external_id": f"a{i}",
            "source": "generic",
            "fingerprint": f"fp|{storm_key}|{i % 7}",
            "storm_key": storm_key,
            "outcome": outcome,
            "run_id": f"run_{storm_key}",
            "webhook_id": None,
            "alert": {},
            "received_at": t0 + timedelta(seconds=i),
        }

    rows = [row(STORM, "started" if i == 0 else "coalesced", i) for i in range(storm)]
    rows += [row(f"node:DC-{k}", "started" if i == 0 else "coalesced", i) for k in range(others) for i in range(20)]
    with db.begin() as s:
        for start in range(0, len(rows), 5000):
            s.execute(insert(AlertRow), rows[start : start + 5000])
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "ANALYZE alerts"))


def _use(db: Database, variant: str) -> None:
    """Leave exactly the variant's storm index on ``alerts``."""
    with db.engine.begin() as conn:
        for name, _ in VARIANTS.values():
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        name, cols = VARIANTS[variant]
        conn.execute(text(f"CREATE INDEX {name} ON alerts ({cols})"))
        conn.execute(text("ANALYZE" if db.is_sqlite else "ANALYZE alerts"))


def _lookup_sql(db: Database, inbox: AlertInbox, now: datetime) -> tuple[str, Any]:
    seen: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        with db.sessions() as s:
            inbox._seen(s, FINGERPRINT, STORM, now)
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    return seen[-1]


def _plan(db: Database, statement: str, params: Any) -> list[str]:
    with db.engine.connect() as conn:
        if db.is_sqlite:
            return [str(r[3]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]
        return [str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, params)]


def _time(db: Database, inbox: AlertInbox, now: datetime, lookups: int) -> tuple[float, float]:
    """Microseconds per lookup: wall, CPU."""
    with db.sessions() as s:
        inbox._seen(s, FINGERPRINT, STORM, now)  # warm
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(lookups):
            inbox._seen(s, FINGERPRINT, STORM, now)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall / lookups * 1e6, cpu / lookups * 1e6


def bench(backend: str, pg: str, storm: int, others: int, lookups: int, repeats: int) -> None:
    with fresh_database(backend, pg) as db:
        t0 = datetime(2026, 12, 7, tzinfo=UTC)
        t0 = t0.replace(tzinfo=None) if db.is_sqlite else t0
        _fill(db, storm, others, t0)
        inbox = AlertInbox(db, dedup_window_s=1.0)
        now = t0 + timedelta(seconds=storm + 3600)
        for variant in VARIANTS:
            _use(db, variant)
            statement, params = _lookup_sql(db, inbox, now)
            print(f"{backend} {variant}: plan")
            for line in _plan(db, statement, params):
                print("    " + line)
            runs = [_time(db, inbox, now, lookups) for _ in range(repeats)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(
                f"{backend} {variant}: storm of {storm} alerts, {lookups} lookups x {repeats}: "
                f"median {wall:,.1f} us/lookup wall, {cpu:,.1f} us CPU"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storm", type=int, default=20_000, help="alerts in the long storm")
    p.add_argument("--others", type=int, default=200, help="other storms (20 alerts each)")
    p.add_argument("--lookups", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--pg", default=None, help="also on PostgreSQL (admin URL; creates and drops its database)")
    a = p.parse_args()
    bench("sqlite", "", a.storm, a.others, a.lookups, a.repeats)
    if a.pg:
        bench("postgres", a.pg, a.storm, a.others, a.lookups, a.repeats)


if __name__ == "__main__":
    main()
