"""The start-a-run use case (:mod:`services.runs`): what a start job carries, and reading it back.

Start jobs outlive the code that queued them (a queue drained by a newer worker), so the payload's
shape is a contract: the goal or the alert, never a null for the other, and who the run acts for.
"""

from __future__ import annotations

import pytest

from agents.plan import Alert, ExceptionKind
from core.db import Database
from core.errors import ValidationFailed
from core.outbox import START_RUN, Outbox
from services.runs import DEFAULT_REQUESTER, StartRun, queue_run, queued_requester, start_job


def test_a_goal_and_an_alert_round_trip_through_the_queue(sqlite_db: Database) -> None:
    alert = Alert(id="a-1", kind=ExceptionKind.NODE_CONGESTION, labels={"node": "DC-X"}, summary="backlog")
    for cmd in (StartRun(goal="expedite late orders", requested_by="otto"), StartRun(alert=alert, requested_by="hook")):
        job = queue_run(sqlite_db, cmd)
        assert job.kind == START_RUN
        assert job.serial_key == cmd.run_id
        assert set(job.payload) == {"run_id", cmd.kind, "requested_by"}
        assert StartRun.of_job(job) == cmd
        assert start_job(sqlite_db, cmd.run_id) == job
        assert queued_requester(sqlite_db, cmd.run_id) == cmd.requested_by


def test_queueing_a_run_twice_queues_one_job(sqlite_db: Database) -> None:
    cmd = StartRun(goal="expedite late orders", requested_by="otto")
    assert queue_run(sqlite_db, cmd).id == queue_run(sqlite_db, cmd).id
    assert len(Outbox(sqlite_db).list(kind=START_RUN)) == 1


def test_a_start_job_without_a_requester_acts_for_the_default_and_one_without_a_run_is_refused(
    sqlite_db: Database,
) -> None:
    queue = Outbox(sqlite_db)
    old = queue.enqueue(START_RUN, {"run_id": "run_old", "goal": "expedite late orders"})
    assert StartRun.of_job(old).requested_by == DEFAULT_REQUESTER
    assert queued_requester(sqlite_db, "run_nobody") is None
    broken = queue.enqueue(START_RUN, {"goal": "expedite late orders"})
    with pytest.raises(ValidationFailed):
        StartRun.of_job(broken)
