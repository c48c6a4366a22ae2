"""The worker's schedule on both backends: each task runs once per interval (an injected clock moves
time), racing workers run a due task exactly once, and a failing task stops no other."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import Database
from core.db.tables import Base
from core.errors import ValidationFailed
from services.schedule import ScheduledTask, run_due

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _tasks(counts: dict[str, int]) -> list[ScheduledTask]:
    def bump(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    return [
        ScheduledTask("watch", timedelta(minutes=5), lambda: bump("watch")),
        ScheduledTask("approvals_tick", timedelta(minutes=1), lambda: bump("approvals_tick")),
    ]


def test_each_task_runs_once_per_interval(db: Database) -> None:
    counts: dict[str, int] = {}
    tasks = _tasks(counts)
    assert run_due(db, tasks, T0) == ["watch", "approvals_tick"]
    assert run_due(db, tasks, T0) == []
    assert run_due(db, tasks, T0 + timedelta(seconds=59)) == []
    assert run_due(db, tasks, T0 + timedelta(minutes=1)) == ["approvals_tick"]
    assert run_due(db, tasks, T0 + timedelta(minutes=4, seconds=59)) == ["approvals_tick"]
    # An interval counts from the last run: the tick that ran at 4:59 is not due again at 5:00.
    assert run_due(db, tasks, T0 + timedelta(minutes=5)) == ["watch"]
    assert run_due(db, tasks, T0 + timedelta(minutes=5, seconds=59)) == ["approvals_tick"]
    assert counts == {"watch": 2, "approvals_tick": 4}


def test_racing_workers_run_a_due_task_exactly_once(db: Database) -> None:
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def bump() -> None:
        with lock:
            counts["watch"] = counts.get("watch", 0) + 1

    task = [ScheduledTask("watch", timedelta(minutes=5), bump)]
    for step in range(3):  # the first claim inserts the row; later ones move it
        now = T0 + timedelta(minutes=5 * step)
        start = threading.Barrier(4)
        ran: list[list[str]] = []

        def worker(i: int, now: datetime = now, start: threading.Barrier = start, ran: list[list[str]] = ran) -> None:
            start.wait()
            ran.append(run_due(db, task, now, by=f"w{i}"))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(len(r) for r in ran) == [0, 0, 0, 1]
    assert counts == {"watch": 3}


def test_a_failing_task_stops_no_other_and_runs_again_next_interval(db: Database) -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("smtp down")

    minute = timedelta(minutes=1)
    tasks = [ScheduledTask("tick", minute, broken), ScheduledTask("watch", minute, lambda: calls.append("watch"))]
    assert run_due(db, tasks, T0) == ["tick", "watch"]
    assert run_due(db, tasks, T0 + timedelta(seconds=30)) == []
    assert run_due(db, tasks, T0 + timedelta(minutes=1)) == ["tick", "watch"]
    assert calls == ["broken", "watch", "broken", "watch"]


def test_a_task_needs_a_name_and_a_positive_interval() -> None:
    with pytest.raises(ValidationFailed):
        ScheduledTask("", timedelta(minutes=1), lambda: None)
    with pytest.raises(ValidationFailed):
        ScheduledTask("watch", timedelta(0), lambda: None)


def test_the_migration_matches_the_table(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "schedule_runs" in repr(d)] == []
