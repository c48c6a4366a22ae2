"""One approval per incident (issue 15, problem 9): a run's pending steps on one card, decided once
over HTTP; a worker then carries the run on and executes exactly what was approved."""

from __future__ import annotations

from collections import Counter

from api.worker_dbos import DbosWorker
from guardrails.audit import EventType
from tests.api.conftest import Api
from tests.api.test_runs import start
from tests.graphs.support import congest


def parked_run(api: Api, worker: DbosWorker) -> tuple[str, str]:
    node, _ = congest(api.net)
    run_id = start(api, f"{node} is closed")
    assert worker.run_once() is not None
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.as_("viewer")).json()
    assert run["status"] == "awaiting_approval", run
    return run_id, node


def test_one_card_per_incident_decided_once_executes_each_step_once(api: Api) -> None:
    with DbosWorker(api.actx, planner="playbook", worker_id="w") as worker:
        run_id, _ = parked_run(api, worker)
        card = api.client.get(f"/v1/runs/{run_id}/approval", headers=api.as_("viewer")).json()
        assert len(card["steps"]) >= 2, "a closure parks the status change and its reroutes"
        assert card["orders"] == len({i for s in card["steps"] for i in s["items"]})
        assert card["reasons"]
        assert {s["tool"] for s in card["steps"]} >= {"set_node_status", "reroute_orders"}
        # the requester may not approve, a viewer may not decide at all: nothing is written
        for who in ("operator", "viewer"):
            r = api.client.post(f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_(who))
            assert r.status_code == 403, r.text
        assert len(api.client.get(f"/v1/runs/{run_id}/approval", headers=api.as_("viewer")).json()["steps"]) == len(
            card["steps"]
        )
        r = api.client.post(f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_("approver"))
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["continued"]
        assert {d["status"] for d in out["decided"]} == {"approved"}
        # a second decision finds nothing pending
        again = api.client.post(
            f"/v1/runs/{run_id}/approval", json={"decision": "approve"}, headers=api.as_("approver")
        )
        assert again.status_code == 409
        while worker.run_once() is not None:
            pass
    run = api.client.get(f"/v1/runs/{run_id}", headers=api.as_("viewer")).json()
    assert run["status"] in ("completed", "partially_completed"), run["report"]
    executed = [
        e
        for e in api.net.gateway.guard.audit.list(run_id=run_id, event_type=EventType.EXECUTED)
        if e.tool in ("set_node_status", "reroute_orders") and not (e.result or {}).get("replayed")
    ]
    per_call = Counter(e.call_id for e in executed)
    assert len(per_call) == len(card["steps"])
    assert set(per_call.values()) == {1}


def test_leaving_a_step_out_rejects_it_and_the_rest_runs(api: Api) -> None:
    with DbosWorker(api.actx, planner="playbook", worker_id="w") as worker:
        run_id, _ = parked_run(api, worker)
        card = api.client.get(f"/v1/runs/{run_id}/approval", headers=api.as_("viewer")).json()
        reroutes = [s for s in card["steps"] if s["tool"] == "reroute_orders"]
        left_out = reroutes[-1]["approval_id"]
        narrowed = reroutes[0]
        keep = narrowed["items"][:2]
        body = {"decision": "approve", "leave_out": [left_out], "only": {narrowed["approval_id"]: keep}}
        r = api.client.post(f"/v1/runs/{run_id}/approval", json=body, headers=api.as_("approver"))
        assert r.status_code == 200, r.text
        status = {d["approval_id"]: d["status"] for d in r.json()["decided"]}
        assert status[left_out] == "rejected"
        assert status[narrowed["approval_id"]] == "approved"
        bad = api.client.post(
            f"/v1/runs/{run_id}/approval",
            json={"decision": "approve", "leave_out": ["not-a-step"]},
            headers=api.as_("approver"),
        )
        assert bad.status_code in (409, 422)
        while worker.run_once() is not None:
            pass
    moved = {
        oid
        for e in api.net.gateway.guard.audit.list(run_id=run_id, event_type=EventType.EXECUTED)
        if e.tool == "reroute_orders"
        for oid in (e.result or {}).get("done", [])
    }
    assert set(keep) <= moved
    assert not (set(reroutes[-1]["items"]) & moved) or len(reroutes) == 1
    assert not (set(narrowed["items"]) - set(keep)) & moved
