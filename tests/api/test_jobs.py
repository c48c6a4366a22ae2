"""The job outbox (:mod:`core.outbox`) and its relay to DBOS on both backends: idempotent enqueue,
rows handed by racing relays exactly once, and a row that never moves back once finished."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.db import Database
from core.db.tables import Base
from core.db.tables_jobs import JobRow
from core.errors import ValidationFailed
from core.outbox import START_RUN, Outbox, start_dedup_key
from services import queue

pytestmark = pytest.mark.usefixtures("queue_clients")


def test_migration_matches_the_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = {"jobs", "alerts", "webhook_deliveries"}
    assert [d for d in diff if any(t in repr(d) for t in mine)] == []


def test_enqueue_is_idempotent_by_dedup_key(db: Database) -> None:
    rows = Outbox(db)
    first = rows.enqueue(START_RUN, {"run_id": "run_1"}, dedup_key=start_dedup_key("run_1"), serial_key="run_1")
    again = rows.enqueue(START_RUN, {"run_id": "run_1", "goal": "other"}, dedup_key=start_dedup_key("run_1"))
    other = rows.enqueue(START_RUN, {"run_id": "run_2"}, dedup_key=start_dedup_key("run_2"))
    assert first.id == again.id
    assert again.payload == {"run_id": "run_1"}
    assert other.id != first.id
    assert rows.counts() == {"queued": 2}
    with pytest.raises(ValidationFailed):
        rows.enqueue("", {})


def test_racing_relays_hand_each_row_to_dbos_exactly_once(db: Database) -> None:
    """No claims: four relays look at the same 30 rows at once; each row still becomes one
    workflow, and each row is handed (``attempts`` 1) and still waits for its workflow."""
    rows = Outbox(db)
    ids = [f"run_race{i:02d}" for i in range(30)]
    for run_id in ids:
        rows.enqueue(START_RUN, {"run_id": run_id, "goal": "g"}, dedup_key=start_dedup_key(run_id), serial_key=run_id)
    errors: list[BaseException] = []

    def relay() -> None:
        try:
            queue.relay(db)
        except BaseException as exc:  # surfaced below: a thread's assertion does not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=relay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert queue.counts(db) == {"ENQUEUED": len(ids)}
    assert {queue.status_of(db, queue.start_id(r)) for r in ids} == {"ENQUEUED"}
    assert {(j.status, j.attempts) for j in rows.list(limit=100)} == {("queued", 1)}


def test_a_finished_row_is_never_settled_again(db: Database) -> None:
    rows = Outbox(db)
    job = rows.enqueue(START_RUN, {"run_id": "run_f"}, dedup_key=start_dedup_key("run_f"))
    assert rows.finish(job.id, "done")
    assert not rows.finish(job.id, "failed", "late")
    assert not rows.look_again(job.id, 1.0)
    done = rows.get(job.id)
    assert (done.status, done.last_error, done.attempts) == ("done", None, 1)
    assert rows.due() == []


def test_a_row_the_retired_polling_queue_left_running_is_relayed_not_lost(db: Database) -> None:
    rows = Outbox(db)
    job = rows.enqueue(START_RUN, {"run_id": "run_old", "goal": "g"}, dedup_key=start_dedup_key("run_old"))
    with db.begin() as s:
        row = s.get(JobRow, job.id)
        assert row is not None
        row.status = "running"
    assert [j.id for j in rows.due()] == [job.id]
    assert queue.relay(db) == 1
    assert (rows.get(job.id).status, rows.get(job.id).attempts) == ("queued", 1)
    assert queue.status_of(db, queue.start_id("run_old")) == "ENQUEUED"
