"""Slack endpoints: verified requests only, retries dropped, commands, and approval cards end to end."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.slack import post_approval_cards
from api.slack.ops import APPROVE_ACTION, APPROVE_RUN_ACTION, REASON_BLOCK, REASON_INPUT, REJECT_ACTION, REJECT_MODAL
from api.worker_dbos import DbosWorker
from core.db.tables_jobs import JobRow
from core.db.tables_slack import SlackSeenRow
from core.outbox import CONTINUE_RUN, START_RUN, Outbox
from guardrails.approvals import ApprovalStatus
from tests.graphs.support import congest
from tests.slack.conftest import SlackApi, signature


def _count(slack: SlackApi, table: Any) -> int:
    with slack.api.net.db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def _event(text: str, *, event_id: str = "Ev1", user: str = "UOPS") -> str:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "channel": "C1", "ts": "1.0001"},
        }
    )


def _responses(slack: SlackApi) -> list[str]:
    return [str(args.get("text")) for m, args in slack.fake.calls if m.startswith("response/")]


def test_slack_routes_are_mounted_only_when_configured(slack: SlackApi) -> None:
    bare = TestClient(create_app(_bare_actx(slack), keys=slack.api.keys))
    assert bare.post("/slack/events", content=b"{}").status_code == 404
    body = json.dumps({"type": "url_verification", "challenge": "abc", "token": "t"})
    r = slack.post("/slack/events", body)
    assert r.status_code == 200
    assert r.json()["challenge"] == "abc"
    assert "/slack/events" not in json.dumps(slack.client.get("/openapi.json").json())


def _bare_actx(slack: SlackApi) -> Any:
    from dataclasses import replace

    from core.settings import Settings

    s = slack.api.actx.settings
    return replace(slack.api.actx, settings=Settings(home=s.home, database_url=s.database_url))


@pytest.mark.parametrize("tamper", ["forged", "tampered", "unsigned", "stale"])
def test_unverified_requests_are_401_and_write_nothing(slack: SlackApi, tamper: str) -> None:
    body = _event("status ORD-1")
    headers = signature(body)
    if tamper == "forged":
        headers = signature(body, secret="not-the-secret")
    elif tamper == "tampered":
        body = body.replace("status", "approvals")
    elif tamper == "unsigned":
        headers = {}
    else:
        headers = signature(body, ts=int(time.time()) - 600)
    r = slack.post("/slack/events", body, headers=headers, sign=False)
    assert r.status_code == 401
    assert _count(slack, SlackSeenRow) == 0
    assert _count(slack, JobRow) == 0
    assert slack.fake.calls == []


def test_a_retried_event_is_handled_once(slack: SlackApi) -> None:
    order = slack.api.net.movable(slack.api.net.busiest_dc())[0]
    body = _event(f"status {order.id}")
    assert slack.post("/slack/events", body).status_code == 200
    assert slack.post("/slack/events", body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"})
    posted = slack.fake.of("chat.postMessage")
    assert len(posted) == 1
    assert order.id in posted[0]["text"]
    assert posted[0]["thread_ts"] == "1.0001"
    assert _count(slack, SlackSeenRow) == 1


def test_slash_status_and_approvals(slack: SlackApi) -> None:
    order = slack.api.net.movable(slack.api.net.busiest_dc())[0]
    r = slack.command("UVIEW", f"status {order.id}")
    assert r.status_code == 200
    assert f"*{order.id}* is *{order.status.value}*" in _responses(slack)[-1]
    slack.command("UVIEW", "status ORD-999999999")
    assert "No order ORD-999999999" in _responses(slack)[-1]
    slack.command("UVIEW", "approvals")
    assert _responses(slack)[-1] == "No approvals pending."
    slack.command("UNKNOWN", "approvals")
    assert "not allowed" in _responses(slack)[-1]


def test_slash_reroute_by_an_operator_starts_a_run_and_a_viewer_is_refused(slack: SlackApi) -> None:
    node = slack.api.net.busiest_dc()
    slack.command("UVIEW", f"reroute from {node}")
    assert "not allowed" in _responses(slack)[-1]
    assert _count(slack, JobRow) == 0
    slack.command("UOPS", "make everything better")
    assert _responses(slack)[-1].startswith("Not started")
    assert _count(slack, JobRow) == 0
    slack.command("UOPS", "reroute orders away from the congested DC")  # vague: answered with candidates
    assert _responses(slack)[-1].startswith("Not started")
    assert "could mean" in _responses(slack)[-1]
    assert _count(slack, JobRow) == 0
    slack.command("UOPS", f"reroute from {node}")
    jobs = Outbox(slack.api.net.db).list(kind=START_RUN)
    assert len(jobs) == 1
    assert jobs[0].payload["requested_by"] == "slack:UOPS"
    assert jobs[0].payload["run_id"] in _responses(slack)[-1]


def _park_alert_run(slack: SlackApi) -> tuple[str, DbosWorker]:
    node, _ = congest(slack.api.net)
    body = {"id": "c1", "kind": "node_congestion", "labels": {"node": node}}
    r = slack.client.post("/v1/alerts", json=body, headers=slack.api.as_("operator"))
    assert r.status_code == 202, r.text
    run_id = str(r.json()["run_id"])
    worker = DbosWorker(slack.api.actx, planner="playbook", worker_id="t")
    job = worker.run_once()
    assert job is not None
    assert job.status == "done", job
    return run_id, worker


def _click(action: str, user: str, card: dict[str, Any], ts: str) -> dict[str, Any]:
    actions = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    button = next(e for e in actions if e["action_id"] == action)
    return {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "trigger_id": f"trig-{user}-{ts}",
        "channel": {"id": card["channel"]},
        "container": {"type": "message", "channel_id": card["channel"], "message_ts": ts},
        "message": {"ts": ts},
        "actions": [{"action_id": action, "block_id": "b", "value": button["value"], "type": "button"}],
    }


def test_alert_run_parks_card_is_posted_and_a_slack_approval_completes_it(slack: SlackApi) -> None:
    run_id, worker = _park_alert_run(slack)
    actx = slack.api.actx
    pending = actx.guard.approvals.list_pending(run_id=run_id)
    assert len(pending) > 1
    # one card for the incident (every step on it), posted by the worker when the run parked;
    # posting again adds none
    assert post_approval_cards(actx, run_id) == []
    cards = [m for m in slack.fake.of("chat.postMessage") if "blocks" in m]
    assert len(cards) == 1
    (card,) = cards
    assert card["channel"] == "CAPPROVALS"
    text = json.dumps(card["blocks"])
    assert "Cost delta" in text
    assert "Late orders" in text
    assert f"/console/runs/{run_id}" in text
    assert text.count("reroute_orders") >= len(pending)
    ts = "1700000000.000001"

    slack.interact(_click(APPROVE_RUN_ACTION, "UVIEW", card, ts))  # a viewer: refused, nothing changes
    assert "not allowed" in slack.fake.of("chat.postEphemeral")[-1]["text"]
    assert all(actx.guard.approvals.get(r.id).status == ApprovalStatus.PENDING for r in pending)
    assert Outbox(actx.db).list(kind=CONTINUE_RUN) == []
    assert slack.fake.of("chat.update") == []

    r = slack.interact(_click(APPROVE_RUN_ACTION, "UAPP", card, ts))
    assert r.status_code == 200
    for req in pending:
        assert actx.guard.approvals.get(req.id).status == ApprovalStatus.APPROVED
    assert len(Outbox(actx.db).list(kind=CONTINUE_RUN)) == 1  # one decision, one continuation
    (update,) = slack.fake.of("chat.update")
    assert update["ts"] == ts
    assert "<@UAPP>" in update["text"]
    assert "approved" in update["text"]
    assert not any(b["type"] == "actions" for b in update["blocks"])

    with worker:
        while (job := worker.run_once()) is not None:
            assert job.status == "done", job
    run = slack.client.get(f"/v1/runs/{run_id}", headers=slack.api.as_("viewer")).json()
    assert run["status"] == "completed", run
    trace = slack.client.get(f"/v1/runs/{run_id}/trace", headers=slack.api.as_("operator")).json()["records"]
    assert {r["approver"] for r in trace if r["event_type"] == "approved"} == {"slack:UAPP"}
    # every step is in the trace: each parked call was proposed, waited, was approved and ran once
    kinds = [r["event_type"] for r in trace]
    for kind in ("proposed", "awaiting_approval", "approved"):
        assert kinds.count(kind) == len(pending), kind
    executed_writes = [r for r in trace if r["event_type"] == "executed" and r["approver"] == "slack:UAPP"]
    assert len(executed_writes) == len(pending)


def test_reject_opens_a_modal_and_its_reason_rejects(slack: SlackApi) -> None:
    run_id, worker = _park_alert_run(slack)
    worker.close()
    actx = slack.api.actx
    post_approval_cards(actx, run_id)
    card = next(m for m in slack.fake.of("chat.postMessage") if "blocks" in m)
    approval_id = actx.guard.approvals.list_pending(run_id=run_id)[0].id
    slack.interact(_click(REJECT_ACTION, "UAPP", card, "1700000000.000001"))
    (opened,) = slack.fake.of("views.open")
    view = opened["view"]
    submit = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": "UAPP"},
        "api_app_id": "A1",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": REJECT_MODAL,
            "private_metadata": view["private_metadata"],
            "state": {"values": {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "too costly"}}}},
        },
    }
    r = slack.interact(submit)
    assert r.status_code == 200
    req = actx.guard.approvals.get(approval_id)
    assert req.status == ApprovalStatus.REJECTED
    assert req.decisions[0].reason == "too costly"
    assert "too costly" in slack.fake.of("chat.update")[-1]["text"]
    assert len(Outbox(actx.db).list(kind=CONTINUE_RUN)) == 1


def test_an_approver_cannot_approve_the_run_they_started(slack: SlackApi) -> None:
    node, _ = congest(slack.api.net)
    body = _event(f"reroute orders away from {node}", user="UBOTH")
    slack.post("/slack/events", body)
    (job,) = Outbox(slack.api.net.db).list(kind=START_RUN)
    run_id = str(job.payload["run_id"])
    assert run_id in slack.fake.of("chat.postMessage")[-1]["text"]
    with DbosWorker(slack.api.actx, planner="playbook", worker_id="t") as worker:
        assert worker.run_once() is not None
    assert post_approval_cards(slack.api.actx, run_id) == []  # the worker already posted them
    card = [m for m in slack.fake.of("chat.postMessage") if "blocks" in m][-1]
    assert card["channel"] == "C1"
    assert card["thread_ts"] == "1.0001"
    actions = {e["action_id"] for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]}
    approve = APPROVE_RUN_ACTION if APPROVE_RUN_ACTION in actions else APPROVE_ACTION
    slack.interact(_click(approve, "UBOTH", card, "1700000000.000002"))
    refusal = slack.fake.of("chat.postEphemeral")[-1]["text"]
    assert refusal.startswith("Not done")
    assert "not allowed" not in refusal
    assert all(r.status == ApprovalStatus.PENDING for r in slack.api.actx.guard.approvals.list_pending(run_id=run_id))
    assert slack.api.actx.guard.approvals.list_pending(run_id=run_id)
