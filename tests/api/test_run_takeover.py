"""A run whose holder died is taken over (issue 15, problem 4): the continue job of a run another
process holds is given back and tried again, not marked done with the approved changes unexecuted;
once the holder's claim lapses, the next try carries the run to the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.worker import Worker
from core.clock import FixedClock
from core.jobs import CONTINUE_RUN, JobQueue
from graphs.runs import RunStore
from tests.api.conftest import Api
from tests.api.test_runs import start
from tests.graphs.support import congest


def test_a_continue_job_waits_for_a_dead_holders_claim_then_finishes_the_run(api: Api) -> None:
    congest(api.net)
    node = api.net.busiest_dc()
    qclock = FixedClock(datetime.now(UTC) + timedelta(hours=1))  # ahead of every job: all are due; moved by hand
    queue = JobQueue(api.net.db, qclock)
    run_id = start(api, f"{node} is congested")
    with Worker(api.actx, planner="playbook", worker_id="w", queue=queue) as worker:
        assert worker.run_once() is not None
        r = api.client.post(f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_("approver"))
        assert r.status_code == 200, r.text
        # Another process claimed the run and died holding it.
        store = RunStore(api.net.db, api.net.clock)
        store.update(run_id=run_id, status="awaiting_approval")
        assert store.claim(run_id=run_id)
        job = worker.run_once()
        assert job is not None
        assert job.kind == CONTINUE_RUN
        assert (job.status, job.attempts) == ("queued", 0), "given back, the attempt not counted"
        assert store.get(run_id=run_id).status == "running"
        api.net.clock.advance(timedelta(seconds=31))  # the dead holder's claim lapses ...
        qclock.advance(timedelta(seconds=3))  # ... and the job's retry delay passes
        while (job := worker.run_once()) is not None:
            assert job.status in ("done", "queued"), job
    assert store.get(run_id=run_id).status in ("completed", "partially_completed")
