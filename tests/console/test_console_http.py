"""The console over HTTP (no browser): sign-in, sessions, CSRF, and role checks through the gateway."""

from __future__ import annotations

import base64
import json
import re
import time
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from api.auth import ApiKeyStore
from api.console.intake import render_pdf_page
from api.console.session import SESSION_COOKIE, SessionSigner, SessionStore
from api.console.views import OrderRow, SubsetFilter
from core.errors import ValidationFailed
from guardrails.approvals import ApprovalStatus
from intake.pdfwriter import PdfWriter
from tests.console.conftest import RUN_ID, Console, Review, store_eval_runs

HX = {"HX-Request": "true"}


def result_text(html: str) -> str:
    found = re.findall(r'data-testid="result">([^<]*)<', html)
    return found[0] if found else ""


def test_pages_need_a_session(console: Console) -> None:
    c = TestClient(console.api.app)
    for path in ("/console", "/console/approvals", "/console/runs", "/console/network", "/console/audit"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/console/login")
    r = c.post(f"/console/approvals/{console.approval_ids()[0]}/decide", headers=HX, follow_redirects=False)
    assert r.status_code == 401
    assert r.headers["HX-Redirect"].startswith("/console/login")


def test_login_sets_a_strict_httponly_signed_session(console: Console) -> None:
    c = TestClient(console.api.app)
    c.get("/console/login")
    bad = c.post("/console/login", data={"api_key": "oo_nope_nope", "csrf_token": c.cookies["oo_csrf"]})
    assert bad.status_code == 401
    assert "oo_nope_nope" not in bad.text
    no_csrf = c.post("/console/login", data={"api_key": console.api.key["viewer"]}, follow_redirects=False)
    assert no_csrf.status_code == 400
    r = c.post(
        "/console/login",
        data={
            "api_key": console.api.key["viewer"],
            "csrf_token": c.cookies["oo_csrf"],
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/approvals"
    cookie = r.headers["set-cookie"]
    assert "oo_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert console.api.key["viewer"] not in cookie
    assert c.get("/console/network").status_code == 200


def test_tampered_expired_and_revoked_sessions_are_refused(console: Console, tmp_path: object) -> None:
    keys: ApiKeyStore = console.api.keys
    store = SessionStore(console.api.actx.db)
    signer = SessionSigner(b"s" * 32, store, ttl_s=60)
    principal = keys.authenticate(console.api.key["approver"])
    assert principal is not None
    value = signer.sign(principal)
    assert signer.principal(value, keys) == principal
    body, mac = value.rsplit(".", 1)
    assert signer.principal(body + "." + "0" * len(mac), keys) is None
    assert SessionSigner(b"t" * 32, store).principal(value, keys) is None
    assert signer.principal(value, keys, now=time.time() + 120) is None
    c = console.client("approver")
    assert c.get("/console/approvals").status_code == 200
    assert principal.key_id is not None
    keys.revoke(principal.key_id)
    assert c.get("/console/approvals", follow_redirects=False).status_code == 303


def test_post_without_matching_csrf_token_changes_nothing(console: Console) -> None:
    c = console.client("approver")
    aid = console.approval_ids()[0]
    r = c.post(f"/console/approvals/{aid}/decide", data={"action": "approve", "csrf_token": "forged"}, headers=HX)
    assert "CSRF" in result_text(r.text)
    assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.PENDING


def test_viewer_sees_but_cannot_decide(console: Console) -> None:
    c = console.client("viewer")
    page = c.get("/console/approvals")
    assert page.status_code == 200
    assert 'data-testid="approve-all"' not in page.text
    assert "cannot" in page.text
    aid = console.approval_ids()[0]
    token = c.cookies["oo_csrf"]
    r = c.post(f"/console/approvals/{aid}/decide", data={"action": "approve", "csrf_token": token}, headers=HX)
    assert "no approver role" in result_text(r.text)
    assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.PENDING
    assert c.get("/console/audit").status_code == 403


def test_requester_cannot_approve_their_own_request(console: Console) -> None:
    c = console.client("requester")
    aid = console.approval_ids()[0]
    r = c.post(
        f"/console/approvals/{aid}/decide", data={"action": "approve", "csrf_token": c.cookies["oo_csrf"]}, headers=HX
    )
    assert "may not approve" in result_text(r.text)
    assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.PENDING


def test_reject_needs_a_reason_and_queues_the_run_to_continue(console: Console) -> None:
    c = console.client("approver")
    aid = console.approval_ids()[0]
    token = c.cookies["oo_csrf"]
    r = c.post(f"/console/approvals/{aid}/decide", data={"action": "reject", "csrf_token": token}, headers=HX)
    assert "needs a reason" in result_text(r.text)
    r = c.post(
        f"/console/approvals/{aid}/decide",
        data={"action": "reject", "reason": "too costly", "csrf_token": token},
        headers=HX,
    )
    assert result_text(r.text).startswith("rejected; the run continues")
    req = console.api.actx.guard.approvals.get(aid)
    assert req.status == ApprovalStatus.REJECTED
    assert req.decisions[0].reason == "too costly"
    from core.outbox import Outbox

    assert any(j.payload.get("run_id") == RUN_ID for j in Outbox(console.api.actx.db).list())


def test_subset_filter_approves_exactly_the_matching_orders(console: Console) -> None:
    c = console.client("approver")
    aid = console.approval_ids()[0]
    token = c.cookies["oo_csrf"]
    form = {"action": "approve_subset", "sla": "on_time", "min_value": "0", "csrf_token": token}
    match = c.post(f"/console/approvals/{aid}/match", data=form, headers=HX)
    n = int(re.findall(r"(\d+) of \d+ orders match", match.text)[0])
    req = console.api.actx.guard.approvals.get(aid)
    assert 0 < n <= len(req.items)
    r = c.post(f"/console/approvals/{aid}/decide", data={**form, "args_hash": req.args_hash}, headers=HX)
    assert result_text(r.text).startswith(f"approved {n} of {len(req.items)} orders")
    done = console.api.actx.guard.approvals.get(aid)
    assert done.status == ApprovalStatus.APPROVED
    assert done.approved_items is not None
    assert len(done.approved_items) == n
    late = {i["id"] for i in done.preview["items"] if i["late_after"]}  # type: ignore[index,union-attr]
    assert not late & set(done.approved_items)


def test_stale_card_is_refused(console: Console) -> None:
    c = console.client("approver")
    aid = console.approval_ids()[0]
    r = c.post(
        f"/console/approvals/{aid}/decide",
        data={"action": "approve", "args_hash": "0" * 64, "csrf_token": c.cookies["oo_csrf"]},
        headers=HX,
    )
    assert "reload" in result_text(r.text)
    assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.PENDING


def test_edit_opens_a_new_request_the_editor_may_not_approve(console: Console) -> None:
    c = console.client("approver")
    aid = console.approval_ids()[0]
    req = console.api.actx.guard.approvals.get(aid)
    assert isinstance(req.arguments, dict)
    other = next(
        n.id
        for n in console.api.actx.adapters.wms.list_nodes()
        if n.id.startswith("DC-") and n.id != req.arguments["to_node_id"] and n.status.value == "open"
    )
    token = c.cookies["oo_csrf"]
    r = c.post(
        f"/console/approvals/{aid}/edit",
        data={"arg_to_node_id": other, "args_hash": req.args_hash, "csrf_token": token},
        headers=HX,
    )
    assert result_text(r.text).startswith("arguments edited"), result_text(r.text)
    assert console.api.actx.guard.approvals.get(aid).status == ApprovalStatus.SUPERSEDED
    new_id = re.findall(r'id="approval-([0-9a-f-]+)"', r.text)[0]
    assert new_id != aid
    edited = console.api.actx.guard.approvals.get(new_id)
    assert isinstance(edited.arguments, dict)
    assert edited.arguments["to_node_id"] == other
    r2 = c.post(f"/console/approvals/{new_id}/decide", data={"action": "approve", "csrf_token": token}, headers=HX)
    assert "may not approve" in result_text(r2.text)


def test_logout_ends_the_session(console: Console) -> None:
    c = console.client("approver")
    r = c.post("/console/logout", data={"csrf_token": c.cookies["oo_csrf"]}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/console/approvals", follow_redirects=False).status_code == 303


def test_a_logged_out_cookie_is_refused_when_replayed(console: Console) -> None:
    """Signing out ends the session on the server: a copy of the cookie taken before (another tab,
    a stolen cookie) is refused, though its signature and its 8 hours are still good."""
    c = console.client("approver")
    kept = c.cookies[SESSION_COOKIE]
    other = console.client("approver")  # a second sign-in of the same key: its own session
    assert c.get("/console/approvals", follow_redirects=False).status_code == 200
    r = c.post("/console/logout", data={"csrf_token": c.cookies["oo_csrf"]}, follow_redirects=False)
    assert r.status_code == 303
    replay = TestClient(console.api.app, cookies={SESSION_COOKIE: kept})
    refused = replay.get("/console/approvals", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/console/login")
    assert other.get("/console/approvals", follow_redirects=False).status_code == 200


def test_session_records_end_once_and_need_a_record(console: Console) -> None:
    keys: ApiKeyStore = console.api.keys
    store = SessionStore(console.api.actx.db)
    signer = SessionSigner(b"s" * 32, store)
    principal = keys.authenticate(console.api.key["viewer"])
    assert principal is not None
    value = signer.sign(principal)
    assert signer.principal(value, keys) == principal
    assert signer.end(value) is True
    assert signer.end(value) is False  # already ended
    assert signer.principal(value, keys) is None
    # Validly signed cookies naming no session record (a made-up id; the format issued before
    # server-side sessions, with none) are refused.
    for claims in (
        {"kid": principal.key_id, "sub": principal.id, "iat": int(time.time()), "sid": "no-such-session"},
        {"kid": principal.key_id, "sub": principal.id, "iat": int(time.time())},
    ):
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        assert signer.principal(f"{body}.{signer._mac(body)}", keys) is None
    assert signer.end("garbage") is False


def test_run_audit_and_network_pages_render(console: Console) -> None:
    c = console.client("admin")
    runs = c.get("/console/runs", params={"status": "awaiting_approval"})
    assert RUN_ID in runs.text
    assert RUN_ID not in c.get("/console/runs", params={"status": "completed"}).text
    timeline = c.get(f"/console/runs/{RUN_ID}")
    assert timeline.status_code == 200
    assert "awaiting_approval" in timeline.text
    assert "reroute_orders" in timeline.text
    assert c.get("/console/runs/nope").status_code == 404
    audit = c.get("/console/audit", params={"run_id": RUN_ID, "verify": 1})
    assert "Chain intact" in audit.text
    network = c.get("/console/network")
    assert "<svg" in network.text
    assert "congested" in network.text
    assert RUN_ID in network.text


def test_subset_filter_rules() -> None:
    row = OrderRow(
        id="o1", ok=True, reason="", from_node="DC-1", to_node="DC-2", cost_before="1", cost_after="2",
        cost_delta=Decimal(1), eta_before=None, eta_after=None, promised=None, late_before=True,
        late_after=False, tier="gold", value=Decimal(500),
    )  # fmt: skip
    assert SubsetFilter(node="DC-1", tier="gold", min_value=Decimal(100), sla="on_time").matches(row)
    assert not SubsetFilter(max_value=Decimal(100)).matches(row)
    assert not SubsetFilter(sla="late").matches(row)
    assert SubsetFilter.from_form({"min_value": [""], "sla": [""]}).empty
    with pytest.raises(ValidationFailed):
        SubsetFilter.from_form({"min_value": ["abc"]})
    with pytest.raises(ValidationFailed):
        SubsetFilter.from_form({"min_value": ["10"], "max_value": ["5"]})


def test_intake_review_needs_a_reviewer_role_and_renders_pdf_pages(console: Console, review: Review) -> None:
    c = console.client("viewer")
    page = c.get(f"/console/intake/{review.item_id}")
    assert page.status_code == 200
    assert 'data-testid="approve-item"' not in page.text
    r = c.post(f"/console/intake/{review.item_id}", data={"action": "approve", "csrf_token": c.cookies["oo_csrf"]})
    assert "needs the operator or approver role" in result_text(r.text)
    c2 = console.client("approver")
    token = c2.cookies["oo_csrf"]
    bad = c2.post(f"/console/intake/{review.item_id}", data={"action": "correct", "c_lines[0].quantity": "-3",
                                                              "csrf_token": token})  # fmt: skip
    assert result_text(bad.text)
    assert "approved" not in result_text(bad.text)
    rej = c2.post(f"/console/intake/{review.item_id}", data={"action": "reject", "reason": "wrong buyer",
                                                              "csrf_token": token})  # fmt: skip
    assert result_text(rej.text).startswith("rejected")

    writer = PdfWriter()
    writer.page().text(50, 60, "PURCHASE ORDER PO-9")
    png = render_pdf_page(writer.to_bytes(), 1)
    assert png.startswith(b"\x89PNG")


def test_eval_runs_reports_and_comparison(console: Console) -> None:
    a, b = store_eval_runs(console.api)
    c = console.client("viewer")
    page = c.get("/console/evals")
    assert a in page.text
    assert b in page.text
    assert "success_rate" in page.text
    report = c.get(f"/console/evals/{b}/report.html")
    assert report.status_code == 200
    assert "expected 10 rerouted, found 4" in report.text
    assert "<script" not in report.text
    compare = c.get("/console/evals/compare", params={"a": a, "b": b})
    assert "regressed" in compare.text
    assert "outage-1" in compare.text
    assert c.get("/console/evals/compare", params={"a": a, "b": "nope"}).status_code == 404


def test_audit_page_takes_any_after_seq(console: Console) -> None:
    """Past the column's range (or SQLite's 64 bits) is past the end of the trail: an empty page, not a 500."""
    c = console.client("admin")
    for after in (2**31, 2**64, -5):
        r = c.get("/console/audit", params={"after_seq": after})
        assert r.status_code == 200, (after, r.text[:200])


def test_a_session_ends_when_its_key_expires(console: Console) -> None:
    from datetime import timedelta

    from api.auth import create_key

    keys: ApiKeyStore = console.api.keys
    short = create_key(keys, "erin", ["approver"], expires_in=timedelta(seconds=1))
    who = keys.authenticate(short)
    assert who is not None
    signer = SessionSigner(b"s" * 32, SessionStore(console.api.actx.db), ttl_s=3600)
    value = signer.sign(who)
    assert signer.principal(value, keys) == who
    time.sleep(1.1)  # past the key's expiry (not a timing assertion: the key must have run out)
    assert signer.principal(value, keys) is None
