"""Where is my order over HTTP (issue 18, item 7): a viewer asks by order id or PO number and gets
what the CLI gives (one home: services.wismo); unknown references and missing keys are problems."""

from __future__ import annotations

from core.domain import OrderStatus
from tests.api.conftest import Api
from tools.adapters.protocols import OrderFilter


def test_a_viewer_asks_by_order_id_and_by_po_number(api: Api) -> None:
    oms = api.actx.adapters.oms
    order = next(o for o in oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=500) if o.external_ref)
    r = api.client.get("/v1/orders/where", params={"q": order.id}, headers=api.as_("viewer"))
    assert r.status_code == 200, r.text
    (found,) = r.json()["orders"]
    assert (found["order_id"], found["status"], found["node_id"]) == (order.id, "allocated", order.node_id)
    assert found["carrier_service_id"] == order.carrier_service_id
    assert found["promised_date"] == order.promised_date.isoformat()
    assert found["eta_source"] == "twin"
    assert found["on_time"] is (found["eta"] is not None and found["eta"] <= found["promised_date"])
    assert "risk" in found
    assert isinstance(found["runs"], list)
    by_po = api.client.get("/v1/orders/where", params={"q": order.external_ref}, headers=api.as_("viewer")).json()
    assert order.id in [w["order_id"] for w in by_po["orders"]]
    assert all(w["po_number"] == order.external_ref for w in by_po["orders"])


def test_unknown_reference_is_a_404_problem_and_a_key_is_required(api: Api) -> None:
    r = api.client.get("/v1/orders/where", params={"q": "PO-NOBODY-USED"}, headers=api.as_("viewer"))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "not_found"
    assert api.client.get("/v1/orders/where", params={"q": "ORD-1"}).status_code == 401
    bad = api.client.get("/v1/orders/where", params={"q": "a\x01b"}, headers=api.as_("viewer"))
    assert bad.status_code == 422
    # the order route still answers for a real id (the where route is matched first only for "where")
    one = oms_first(api)
    assert api.client.get(f"/v1/orders/{one}", headers=api.as_("viewer")).status_code == 200


def oms_first(api: Api) -> str:
    return api.actx.adapters.oms.list_orders(OrderFilter(), limit=1)[0].id
