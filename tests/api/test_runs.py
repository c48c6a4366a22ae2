"""Runs over HTTP: start from a goal (202 + job), read, list, trace; decisions enqueue a continue job."""

from __future__ import annotations

from sqlalchemy import select

from api.worker_dbos import DbosWorker
from core.db.tables_jobs import JobRow
from core.outbox import CONTINUE_RUN, START_RUN, Outbox
from tests.api.conftest import Api
from tests.graphs.support import congest


def start(api: Api, goal: str, who: str = "operator") -> str:
    r = api.client.post("/v1/runs", json={"goal": goal}, headers=api.as_(who))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    return str(r.json()["run_id"])


def test_only_operators_start_runs_and_bad_goals_are_422(api: Api) -> None:
    assert api.client.post("/v1/runs", json={"goal": "x"}, headers=api.as_("viewer")).status_code == 403
    assert api.client.post("/v1/runs", json={"goal": "x"}).status_code == 401
    for body in ({"goal": "   "}, {"goal": ""}, {}, {"goal": "x", "extra": 1}):
        assert api.client.post("/v1/runs", json=body, headers=api.as_("operator")).status_code == 422
    assert Outbox(api.net.db).counts() == {}


def test_a_queued_run_reads_as_queued_and_unknown_runs_are_404(api: Api) -> None:
    run_id = start(api, "DC-1 is congested")
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.as_("viewer")).json()
    assert run["status"] == "queued"
    assert run["kind"] == "goal"
    assert run["goal"] == "DC-1 is congested"
    assert [j["kind"] for j in run["jobs"]] == [START_RUN]
    assert api.client.get("/v1/runs/run_nope", headers=api.as_("viewer")).status_code == 404
    assert api.client.get("/v1/runs/run_nope/trace", headers=api.as_("admin")).status_code == 404
    assert api.client.get(f"/v1/runs/{run_id}/trace", headers=api.as_("viewer")).status_code == 403


def test_goal_run_parks_then_rejection_via_api_finishes_it(api: Api) -> None:
    node, _ = congest(api.net)
    run_id = start(api, f"{node} is congested, move orders away")
    with DbosWorker(api.actx, planner="playbook", worker_id="w") as worker:
        assert worker.run_once() is not None
        run = api.client.get(f"/v1/runs/{run_id}", headers=api.as_("viewer")).json()
        assert run["status"] == "awaiting_approval"
        listed = api.client.get("/v1/runs", headers=api.as_("viewer")).json()["runs"]
        assert [r["id"] for r in listed] == [run_id]
        for a in run["approvals"]:
            # otto asked for the run: as its requester he may not decide (and lacks the role anyway)
            assert (
                api.client.post(
                    f"/v1/approvals/{a['id']}", json={"decision": "approve"}, headers=api.as_("operator")
                ).status_code
                == 403
            )
            body = {"decision": "reject", "reason": "not today"}
            assert (
                api.client.post(f"/v1/approvals/{a['id']}", json=body, headers=api.as_("approver")).status_code == 200
            )
            # a retried request is refused (already decided) and adds no second continue job
            assert (
                api.client.post(f"/v1/approvals/{a['id']}", json=body, headers=api.as_("approver")).status_code == 409
            )
        continues = Outbox(api.net.db).list(kind=CONTINUE_RUN)
        assert len(continues) == len(run["approvals"])
        assert {j.payload["run_id"] for j in continues} == {run_id}
        while worker.run_once() is not None:
            pass
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.as_("viewer")).json()
    assert run["status"] == "rejected"
    assert run["report"]["status"] == "rejected"
    trace = api.client.get(f"/v1/runs/{run_id}/trace", headers=api.as_("operator")).json()["records"]
    assert "rejected" in {r["event_type"] for r in trace}
    assert "executed" not in {r["event_type"] for r in trace if r["tool"] == "reroute_orders"}


def test_a_decision_on_an_approval_without_a_run_enqueues_nothing(api: Api) -> None:
    out = api.propose_bulk_reroute()
    req = api.actx.guard.approvals.get(out.approval_id)
    r = api.client.post(f"/v1/approvals/{req.id}", json={"decision": "approve"}, headers=api.as_("approver"))
    assert r.status_code == 200
    with api.net.db.sessions() as s:
        jobs = list(s.scalars(select(JobRow)))
    # the conftest proposal names a ledger run id ("run-1"): a continue job for it fails harmlessly
    assert all(j.kind == CONTINUE_RUN and j.payload["run_id"] == req.run_id for j in jobs)
    with DbosWorker(api.actx, planner="playbook", worker_id="w") as worker:
        for _ in jobs:
            job = worker.run_once()
            assert job is not None
            assert job.status == "failed"
            assert "NotFound" in (job.last_error or "")
