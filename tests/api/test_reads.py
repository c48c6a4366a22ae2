"""Network reads, the route decision, and the audit trail over HTTP."""

from __future__ import annotations

from tests.api.conftest import Api


def test_nodes_with_load(api: Api) -> None:
    r = api.client.get("/v1/nodes", headers=api.as_("viewer"))
    assert r.status_code == 200
    nodes = r.json()["nodes"]
    assert {n["node"]["id"] for n in nodes} == {n.id for n in api.net.adapters.wms.list_nodes()}
    assert all(n["load"]["node_id"] == n["node"]["id"] for n in nodes)
    closed = api.client.get("/v1/nodes", params={"status": "closed"}, headers=api.as_("viewer")).json()
    assert closed["nodes"] == []


def test_orders_filter_page_and_detail(api: Api) -> None:
    dc = api.net.busiest_dc()
    r = api.client.get(
        "/v1/orders", params={"node": dc, "status": ["created", "allocated"], "limit": 5}, headers=api.as_("viewer")
    )
    assert r.status_code == 200
    page = r.json()
    assert page["total"] >= len(page["orders"]) > 0
    assert len(page["orders"]) <= 5
    assert all(o["node_id"] == dc and o["status"] in ("created", "allocated") for o in page["orders"])
    nxt = api.client.get(
        "/v1/orders", params={"node": dc, "status": ["created", "allocated"], "limit": 5, "offset": 5},
        headers=api.as_("viewer"),
    ).json()  # fmt: skip
    assert not {o["id"] for o in nxt["orders"]} & {o["id"] for o in page["orders"]}
    one = api.client.get(f"/v1/orders/{page['orders'][0]['id']}", headers=api.as_("viewer")).json()
    assert one["order"]["id"] == page["orders"][0]["id"]
    assert one["order"]["lines"]
    assert isinstance(one["shipments"], list)
    assert api.client.get("/v1/orders/ORD-NOPE", headers=api.as_("viewer")).json()["code"] == "not_found"


def test_decide_route_for_one_order(api: Api) -> None:
    order = api.net.movable(api.net.busiest_dc())[0]
    r = api.client.post("/v1/decide/route", json={"order_id": order.id}, headers=api.as_("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["order_id"] == order.id
    assert body["current_node_id"] == order.node_id
    assert body["reasons"] or body["rejected"]
    missing = api.client.post("/v1/decide/route", json={"order_id": "ORD-NOPE"}, headers=api.as_("viewer"))
    assert missing.status_code == 404
    assert api.client.post("/v1/decide/route", json={"order_id": order.id}).status_code == 401


def test_audit_pages_by_run_and_verifies(api: Api) -> None:
    out = api.propose_bulk_reroute()
    api.client.post(f"/v1/approvals/{out.approval_id}", json={"decision": "approve"}, headers=api.as_("approver"))
    r = api.client.get("/v1/audit", params={"run_id": "run-1", "limit": 2}, headers=api.as_("approver"))
    assert r.status_code == 200
    first = r.json()
    assert [e["event_type"] for e in first["records"]] == ["proposed", "awaiting_approval"]
    rest = api.client.get(
        "/v1/audit", params={"run_id": "run-1", "after_seq": first["next_after_seq"]}, headers=api.as_("admin")
    ).json()
    assert [e["event_type"] for e in rest["records"]] == ["approved"]
    assert rest["records"][0]["approver"] == "amir"
    assert rest["next_after_seq"] is None
    report = api.client.get("/v1/audit/verify", headers=api.as_("approver")).json()
    assert report["ok"] is True
    assert report["rows_checked"] == 3
