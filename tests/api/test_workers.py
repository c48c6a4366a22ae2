"""Workers: the in-process pool on SQLite, and two `orderops worker` processes sharing PostgreSQL,
one of them killed mid-way — every run still happens, none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from api.worker import Worker, WorkerPool
from core.db import Database, make_database, migrate
from core.db.tables import RunRow
from core.db.tables_jobs import JobRow
from core.jobs import START_RUN, JobQueue, start_dedup_key
from guardrails.approvals import ApprovalStatus
from tests.api.conftest import Api
from tests.conftest import REPO, drop_postgres, fresh_postgres_url
from tests.tools.conftest import build_net

GOAL = "expedite late orders"  # parks for approval after reading, planning and proposing


def enqueue_runs(db: Database, n: int) -> list[str]:
    queue = JobQueue(db)
    ids = [f"run_w{i:03d}" for i in range(n)]
    for run_id in ids:
        queue.enqueue(
            START_RUN,
            {"run_id": run_id, "goal": GOAL, "requested_by": "otto"},
            dedup_key=start_dedup_key(run_id),
            serial_key=run_id,
        )
    return ids


def assert_each_run_once(db: Database, ids: list[str]) -> None:
    with db.sessions() as s:
        runs = {r.id: r.status for r in s.scalars(select(RunRow))}
        jobs = list(s.scalars(select(JobRow)))
    assert runs == dict.fromkeys(ids, "awaiting_approval")
    assert Counter(j.status for j in jobs) == {"done": len(ids)}


def assert_no_duplicate_proposals(api_db: Database, approvals: object, ids: list[str]) -> None:
    from guardrails.approvals import ApprovalStore

    assert isinstance(approvals, ApprovalStore)
    for run_id in ids:
        pending = approvals.list_pending(run_id=run_id)
        assert pending, run_id
        keys = [(r.tool, r.args_hash) for r in pending]
        assert len(keys) == len(set(keys)), f"{run_id} asked twice for the same call"
        assert all(r.status == ApprovalStatus.PENDING for r in pending)


def test_in_process_pool_runs_queued_runs_and_stops(api: Api) -> None:
    ids = enqueue_runs(api.net.db, 4)
    pool = WorkerPool(api.actx, 2, poll_s=0.05, planner="playbook")
    pool.start()
    try:
        deadline = time.monotonic() + 60
        while JobQueue(api.net.db).counts().get("done", 0) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pool.stop()
    assert all(not w.current for w in pool.workers)
    assert_each_run_once(api.net.db, ids)
    assert_no_duplicate_proposals(api.net.db, api.actx.guard.approvals, ids)


def test_a_stopping_worker_releases_a_claimed_job_it_has_not_started(api: Api) -> None:
    (run_id,) = enqueue_runs(api.net.db, 1)
    with Worker(api.actx, planner="playbook", worker_id="w") as worker:
        worker.stop()
        job = worker.run_once()
    assert job is not None
    assert job.status == "queued"
    assert job.attempts == 0
    with Worker(api.actx, planner="playbook", worker_id="w2") as other:
        again = other.run_once()
    assert again is not None
    assert again.id == job.id
    assert again.status == "done"
    assert again.attempts == 1
    assert run_id == again.payload["run_id"]


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = fresh_postgres_url()
    try:
        yield url
    finally:
        drop_postgres(url)


def spawn(url: str, home: Path, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, ORDEROPS_HOME=str(home), ORDEROPS_CLOCK="network", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "api.cli_worker", "--lease-s", "3", "--poll-s", "0.05", "--planner", "playbook"]
    return subprocess.Popen(
        [*cmd, "--worker-id", name], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.postgres
def test_two_worker_processes_share_the_queue_and_survive_a_kill(pg_url: str, tmp_path: Path) -> None:
    db = make_database(url=pg_url)
    try:
        migrate(db)
        net = build_net(db)
        ids = enqueue_runs(db, 20)
        a = spawn(pg_url, tmp_path / "home", "A")
        b = spawn(pg_url, tmp_path / "home", "B")
        killed_job: str | None = None
        try:
            deadline = time.monotonic() + 120  # generous: interpreter start-up is slow on a loaded machine
            # Kill A the moment it holds a job, after both have been at work a little.
            while killed_job is None and time.monotonic() < deadline:
                with db.sessions() as s:
                    held = s.scalars(select(JobRow).where(JobRow.status == "running", JobRow.locked_by == "A")).first()
                    done = len(list(s.scalars(select(JobRow.id).where(JobRow.status == "done"))))
                if held is not None and done >= 2:
                    a.send_signal(signal.SIGKILL)
                    killed_job = held.id
                time.sleep(0.005)
            assert killed_job is not None, "worker A never held a job"
            a.wait(10)
            while JobQueue(db).counts().get("done", 0) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.1)
            b.send_signal(signal.SIGTERM)  # graceful: finishes the job in hand, then exits 0
            assert b.wait(20) == 0, b.stderr.read().decode() if b.stderr else ""
        finally:
            for p in (a, b):
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
        assert_each_run_once(db, ids)
        with db.sessions() as s:
            jobs = {j.id: j for j in s.scalars(select(JobRow))}
        assert jobs[killed_job].attempts >= 2  # A's claim, then B's after A's lease ran out
        assert jobs[killed_job].locked_by is None
        # On a loaded machine another lease may lapse too (then a job is re-run, harmlessly: the
        # checks below and above are what "none twice" means), but never more than a few.
        assert len(ids) + 1 <= sum(j.attempts for j in jobs.values()) <= len(ids) + 4
        assert_no_duplicate_proposals(db, net.gateway.guard.approvals, ids)
        # the trail still verifies: the kill left no half-written audit row
        assert net.gateway.guard.audit.verify().ok
    finally:
        db.dispose()
