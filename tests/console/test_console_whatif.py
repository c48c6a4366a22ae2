"""The console's what-if page (issue 18, item 2, in the console): an operator pastes a scenario and
sees KPIs before and after while the live twin stays exactly as it was; staging it on the live twin
needs the approver role and goes through the gateway; a bad file or a missing CSRF token changes
nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from services.scenarios import live_fingerprint
from tests.console.conftest import Console


def _scenario(console: Console) -> str:
    node = console.api.net.other_dc(console.api.net.busiest_dc())
    carrier = console.api.actx.adapters.carriers.list_carriers()[0].id
    return (
        f"name: {node} closes\nevents:\n  - node_status: {{node: {node}, status: closed}}\n"
        f"  - carrier_outage: {{carrier: {carrier}, states: [TX]}}\n"
    )


def _post(c: TestClient, text: str, action: str, *, csrf: bool = True) -> Any:
    data = {"scenario": text, "action": action}
    if csrf:
        data["csrf_token"] = c.cookies["oo_csrf"]
    return c.post("/console/whatif", data=data)


def test_an_operator_plays_a_closure_and_the_live_twin_is_unchanged(console: Console) -> None:
    db = console.api.actx.db
    c = console.client("operator")
    page = c.get("/console/whatif")
    assert page.status_code == 200
    assert "Play on a copy" in page.text
    assert "Stage on the live twin" not in page.text  # operators may not stage
    before = live_fingerprint(db)
    r = _post(c, _scenario(console), "whatif")
    assert r.status_code == 200, r.text
    assert 'data-testid="kpis"' in r.text
    assert "On-time rate" in r.text
    assert "closed" in r.text  # the closed node's status after the scenario
    assert live_fingerprint(db) == before


def test_staging_needs_the_approver_role_and_goes_through_the_gateway(console: Console) -> None:
    db = console.api.actx.db
    op, viewer, approver = (console.client(who) for who in ("operator", "viewer", "approver"))
    before = live_fingerprint(db)  # after signing in: a session is a row too
    refused = _post(op, _scenario(console), "apply")
    assert refused.status_code == 403
    assert "no approver role" in refused.text
    assert _post(viewer, _scenario(console), "whatif").status_code == 403
    assert live_fingerprint(db) == before
    r = _post(approver, _scenario(console), "apply")
    assert r.status_code == 200, r.text
    assert 'data-testid="applied"' in r.text
    assert "<code>set_node_status</code>" in r.text
    assert "<code>set_carrier_status</code>" in r.text
    run_id = r.text.split("Staged as run ")[1].split("<")[0]
    assert console.api.actx.guard.audit.verify().ok
    assert any(rec.run_id == run_id for rec in console.api.actx.guard.audit.list(run_id=run_id))
    assert live_fingerprint(db) != before  # audited and proposed, through the gateway


def test_a_bad_file_or_a_missing_csrf_token_changes_nothing(console: Console) -> None:
    db = console.api.actx.db
    c = console.client("admin")
    before = live_fingerprint(db)
    bad = _post(c, "name: x\nevents:\n  - node_status: {node: NOPE, status: closed}\n", "apply")
    assert bad.status_code == 422
    assert "NOPE" in bad.text
    assert _post(c, "events: [", "whatif").status_code == 422
    assert _post(c, _scenario(console), "apply", csrf=False).status_code == 403
    assert live_fingerprint(db) == before
