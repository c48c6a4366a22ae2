"""The review API: a new buyer's item is listed with the customer it proposes, and
``POST /v1/review/{id}/customer`` creates it (an approver in one step; an operator parks it)."""

from __future__ import annotations

from api.bootstrap import make_document_store
from intake.pipeline import IntakeDeps, process_document
from tests.api.conftest import Api


def _new_buyer_item(api: Api, po_number: str) -> str:
    """A CSV PO from a sender nobody knows; returns its review item id."""
    oms = api.net.adapters.oms
    name = oms.get_product("SKU-00002").name.replace(",", "")
    csv = "\n".join([f"PO Number,{po_number}", "Order Date,2026-11-23",
                     'Ship To,"Harbor Fresh Market\n88 Bay Road\nBoston, MA 02110"', "",
                     "Line,Part Number,Description,Qty,UOM,Unit Price", f"1,HF-1,{name},4,EA,"]) + "\n"  # fmt: skip
    deps = IntakeDeps(db=api.actx.db, clock=api.actx.clock, documents=make_document_store(api.actx),
                      gateway=api.actx.gateway)  # fmt: skip
    doc = deps.documents.receive(csv.encode(), channel="email", filename="po.csv", sender="orders@harborfresh.example")
    (out,) = process_document(doc.id, deps).outcomes
    assert out.review_item_id is not None
    return out.review_item_id


def test_new_customer_over_http(api: Api) -> None:
    item_id = _new_buyer_item(api, "HF-100")
    listed = api.client.get("/v1/review", params={"status": "open"}, headers=api.as_("viewer"))
    assert listed.status_code == 200, listed.text
    (summary,) = listed.json()["items"]
    assert (summary["id"], summary["kind"]) == (item_id, "new_customer")
    proposed = summary["new_customer_id"]
    assert proposed
    shown = api.client.get(f"/v1/review/{item_id}", headers=api.as_("viewer")).json()
    assert shown["validated"]["new_customer"]["email_domain"] == "harborfresh.example"

    url = f"/v1/review/{item_id}/customer"
    assert api.client.post(url, json={}, headers=api.as_("viewer")).status_code == 403
    bad = api.client.post(url, json={"edits": {"colour": "red"}}, headers=api.as_("approver"))
    assert bad.status_code == 422
    parked = api.client.post(url, json={"edits": {"name": "Harbor Fresh"}}, headers=api.as_("operator"))
    assert parked.status_code == 200, parked.text
    assert parked.json()["status"] == "awaiting_approval"
    done = api.client.post(url, json={}, headers=api.as_("approver"))
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["customer_id"]) == ("approved", proposed)
    assert api.net.adapters.oms.get_customer(proposed).name == "Harbor Fresh"
    assert api.net.adapters.oms.get_order(body["order_id"]).customer_id == proposed
    assert api.client.get("/v1/review/nope", headers=api.as_("viewer")).status_code == 404
