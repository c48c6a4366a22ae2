"""Workers in the server's process on SQLite: the in-process DBOS worker runs each queued run once
and stops, and a stopping worker takes nothing new, leaving queued jobs to the next. Worker
processes killed mid-job, on SQLite and on PostgreSQL with two workers, are in test_dbos_engine."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import select

from api.worker_dbos import DbosPool, DbosWorker
from core.db import Database
from core.db.tables import RunRow
from core.db.tables_jobs import JobRow
from core.outbox import START_RUN, Outbox, start_dedup_key
from guardrails.approvals import ApprovalStatus, ApprovalStore
from services import queue
from tests.api.conftest import Api

GOAL = "expedite late orders"  # parks for approval after reading, planning and proposing


pytestmark = pytest.mark.usefixtures("queue_clients")


def enqueue_runs(db: Database, n: int, prefix: str = "run_w") -> list[str]:
    rows = Outbox(db)
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    for run_id in ids:
        payload = {"run_id": run_id, "goal": GOAL, "requested_by": "otto"}
        rows.enqueue(START_RUN, payload, dedup_key=start_dedup_key(run_id), serial_key=run_id)
    return ids


def assert_each_run_once(db: Database, approvals: ApprovalStore, ids: list[str]) -> None:
    with db.sessions() as s:
        runs = {r.id: r.status for r in s.scalars(select(RunRow))}
        jobs = list(s.scalars(select(JobRow).where(JobRow.kind == START_RUN)))
    assert runs == dict.fromkeys(ids, "awaiting_approval")
    assert Counter(j.status for j in jobs) == {"done": len(ids)}
    for run_id in ids:
        pending = approvals.list_pending(run_id=run_id)
        assert pending, run_id
        keys = [(r.tool, r.args_hash) for r in pending]
        assert len(keys) == len(set(keys)), f"{run_id} asked twice for the same call"
        assert all(r.status == ApprovalStatus.PENDING for r in pending)


def test_in_process_pool_runs_queued_runs_once_and_stops(api: Api) -> None:
    db = api.net.db
    ids = enqueue_runs(db, 4)
    pool = DbosPool(api.actx, 2, planner="playbook")
    pool.worker.engine.poll_s = 0.05
    pool.start()
    try:
        deadline = time.monotonic() + 120
        while Outbox(db).counts().get("done", 0) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.stop()
    assert_each_run_once(db, api.actx.guard.approvals, ids)
    assert pool.worker.handlers.runs.outcomes == {"awaiting_approval": len(ids)}
    (late,) = enqueue_runs(db, 1, "run_late")
    time.sleep(0.5)
    assert Outbox(db).get_by_dedup_key(start_dedup_key(late)) is not None
    assert queue.status_of(db, queue.start_id(late)) is None, "a stopped pool hands nothing on"


def test_a_stopping_worker_takes_no_job_and_the_next_worker_runs_it(api: Api) -> None:
    (run_id,) = enqueue_runs(api.net.db, 1)
    with DbosWorker(api.actx, "w", planner="playbook") as worker:
        worker.stop()
        assert worker.run_once() is None
    (job,) = Outbox(api.net.db).list()
    assert (job.status, job.attempts) == ("queued", 0)
    with DbosWorker(api.actx, "w2", planner="playbook") as other:
        again = other.run_once()
        assert other.run_once() is None
    assert again is not None
    assert again.id == job.id
    assert (again.status, again.attempts) == ("done", 1)
    assert run_id == again.payload["run_id"]
    assert queue.status_of(api.net.db, queue.start_id(run_id)) == "SUCCESS"
