"""The console decides an incident the way the API and CLI do: one card on the run page with every
pending step, approved (or rejected with a reason) in one go (issue 15, problem 9)."""

from __future__ import annotations

from core.outbox import Outbox
from guardrails.approvals import ApprovalStatus
from tests.console.conftest import RUN_ID, Console


def test_the_run_page_shows_one_card_and_one_decision_approves_every_step(console: Console) -> None:
    c = console.client("approver")
    page = c.get(f"/console/runs/{RUN_ID}")
    assert page.status_code == 200
    assert "one decision" in page.text
    assert page.text.count("this step alone") == len(console.approval_ids())
    token = c.cookies["oo_csrf"]
    r = c.post(f"/console/runs/{RUN_ID}/approval", data={"action": "approve", "csrf_token": token})
    assert r.status_code == 200
    assert f"approved {len(console.approval_ids())} step(s)" in r.text
    for aid in console.approval_ids():
        assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.APPROVED
    assert any(j.payload.get("run_id") == RUN_ID for j in Outbox(console.api.actx.db).list())


def test_a_viewer_and_the_requester_cannot_decide_the_incident(console: Console) -> None:
    for who in ("viewer", "requester"):
        c = console.client(who)
        r = c.post(f"/console/runs/{RUN_ID}/approval", data={"action": "approve", "csrf_token": c.cookies["oo_csrf"]})
        assert r.status_code == 200
        assert "may not" in r.text
    for aid in console.approval_ids():
        assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.PENDING


def test_rejecting_the_incident_needs_a_reason(console: Console) -> None:
    c = console.client("approver")
    token = c.cookies["oo_csrf"]
    r = c.post(f"/console/runs/{RUN_ID}/approval", data={"action": "reject", "csrf_token": token})
    assert "needs a reason" in r.text
    assert all(console.api.actx.guard.approvals.get(a).status == ApprovalStatus.PENDING for a in console.approval_ids())
    r = c.post(f"/console/runs/{RUN_ID}/approval", data={"action": "reject", "reason": "not now", "csrf_token": token})
    assert "rejected" in r.text
    assert all(
        console.api.actx.guard.approvals.get(a).status == ApprovalStatus.REJECTED for a in console.approval_ids()
    )
