"""Approvals over HTTP: the queue, one request, decisions through the gateway (never executing)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from core.db import Database
from guardrails.audit import EventType
from tests.api.conftest import Api, build_api


def test_pending_queue_shows_what_an_approver_needs(api: Api) -> None:
    out = api.propose_bulk_reroute()
    r = api.client.get("/v1/approvals", headers=api.as_("viewer"))
    assert r.status_code == 200
    [item] = r.json()["approvals"]
    assert item["id"] == out.approval_id
    assert item["tool"] == "reroute_orders"
    assert item["status"] == "pending"
    assert item["requester_id"] == "olivia"
    assert item["affected"] == len(out.preview.affected)
    assert item["skipped"] == len(out.preview.skipped)
    assert Decimal(item["cost_delta"]) == out.preview.cost_delta
    assert item["summary"] == out.preview.summary
    assert "approver" in item["required_roles"]
    assert item["expires_at"] > item["created_at"]

    detail = api.client.get(f"/v1/approvals/{out.approval_id}", headers=api.as_("viewer")).json()
    stored = api.net.gateway.guard.approvals.get(out.approval_id)
    assert detail["arguments"] == stored.arguments
    assert detail["args_hash"] == stored.args_hash == item["args_hash"]
    assert sorted(detail["items"]) == sorted(out.preview.affected)
    assert detail["decisions"] == []


def test_approve_a_subset_records_it_and_executes_nothing(api: Api) -> None:
    out = api.propose_bulk_reroute()
    before = api.net.snapshot()
    subset = out.preview.affected[:5]
    shown = api.client.get(f"/v1/approvals/{out.approval_id}", headers=api.as_("approver")).json()
    r = api.client.post(
        f"/v1/approvals/{out.approval_id}",
        json={"decision": "approve", "subset": subset, "expected_args_hash": shown["args_hash"]},
        headers=api.as_("approver"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "approved"
    assert body["executed"] is False
    assert sorted(body["approval"]["approved_items"]) == sorted(subset)
    assert api.net.snapshot() == before  # approval alone changes nothing in the systems
    kinds = [e.event_type for e in api.net.gateway.guard.audit.list(call_id=out.call_id)]
    assert kinds[-1] == EventType.APPROVED
    assert api.client.get("/v1/approvals", headers=api.as_("viewer")).json()["approvals"] == []

    again = api.client.post(
        f"/v1/approvals/{out.approval_id}", json={"decision": "reject", "reason": "late"}, headers=api.as_("admin")
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_reject_needs_a_reason(api: Api) -> None:
    out = api.propose_bulk_reroute()
    url = f"/v1/approvals/{out.approval_id}"
    r = api.client.post(url, json={"decision": "reject"}, headers=api.as_("approver"))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    ok = api.client.post(url, json={"decision": "reject", "reason": "wrong DC"}, headers=api.as_("approver"))
    assert ok.status_code == 200
    assert ok.json()["outcome"] == "rejected"


def test_stale_args_hash_is_refused(api: Api) -> None:
    out = api.propose_bulk_reroute()
    r = api.client.post(
        f"/v1/approvals/{out.approval_id}",
        json={"decision": "approve", "expected_args_hash": "0" * 64},
        headers=api.as_("approver"),
    )
    assert r.status_code == 409
    assert api.net.gateway.guard.approvals.get(out.approval_id).status == "pending"


def test_edit_supersedes_with_a_new_pending_request(api: Api) -> None:
    out = api.propose_bulk_reroute()
    old = api.net.gateway.guard.approvals.get(out.approval_id)
    args = dict(old.arguments)  # type: ignore[arg-type]
    args["order_ids"] = args["order_ids"][:30]
    r = api.client.post(
        f"/v1/approvals/{out.approval_id}", json={"decision": "edit", "arguments": args}, headers=api.as_("approver")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "awaiting_approval"
    new_id = body["approval"]["id"]
    assert new_id != out.approval_id
    assert body["approval"]["supersedes_id"] == out.approval_id
    assert body["approval"]["arguments"]["order_ids"] == args["order_ids"]
    assert api.net.gateway.guard.approvals.get(out.approval_id).status == "superseded"
    # the editor may not approve their own edit
    mine = api.client.post(f"/v1/approvals/{new_id}", json={"decision": "approve"}, headers=api.as_("approver"))
    assert mine.status_code == 403
    assert (
        api.client.post(f"/v1/approvals/{new_id}", json={"decision": "approve"}, headers=api.as_("admin")).json()[
            "outcome"
        ]
        == "approved"
    )


def test_malformed_decisions_are_422_and_unknown_ids_404(api: Api) -> None:
    out = api.propose_bulk_reroute()
    url = f"/v1/approvals/{out.approval_id}"
    for body in (
        {"decision": "maybe"},
        {"decision": "approve", "extra": 1},
        {"decision": "edit"},
        {"decision": "approve", "arguments": {"order_ids": []}},
        {"decision": "approve", "subset": ["ORD-NOT-COVERED"]},
    ):
        r = api.client.post(url, json=body, headers=api.as_("approver"))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_failed"
    assert api.net.gateway.guard.approvals.get(out.approval_id).status == "pending"
    missing = api.client.get("/v1/approvals/does-not-exist", headers=api.as_("viewer"))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_decide_through_the_api_on_each_backend(db: Database, tmp_path: Path) -> None:
    api = build_api(db, tmp_path / "home")
    with api.client:
        out = api.propose_bulk_reroute()
        url = f"/v1/approvals/{out.approval_id}"
        assert api.client.post(url, json={"decision": "approve"}, headers=api.as_("requester")).status_code == 403
        r = api.client.post(url, json={"decision": "approve"}, headers=api.as_("approver"))
        assert r.json()["outcome"] == "approved"
        assert api.client.post(url, json={"decision": "approve"}, headers=api.as_("admin")).status_code == 409
        assert api.client.get("/v1/audit/verify", headers=api.as_("admin")).json()["ok"] is True
