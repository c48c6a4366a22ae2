"""Acknowledgment drafts: 855 per line, ORDRSP that our EDIFACT reader reads back, reply e-mail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from intake.acks import draft_855, draft_ordrsp, draft_reply_email
from intake.edifact import parse_edifact
from intake.model import POLine, ProductId, PurchaseOrder
from intake.validate import IntakeFinding, ValidatedLine, ValidatedOrder
from intake.x12 import parse_x12

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _order() -> ValidatedOrder:
    po = PurchaseOrder(document_type="x12-850", po_number="PO-77", po_date=date(2026, 11, 22), lines=[
        POLine(line_number="1", quantity=Decimal(3), unit="EA", unit_price=Decimal("4.00"),
               product_ids=[ProductId(qualifier="VN", value="SKU-00001")]),
        POLine(line_number="2", quantity=Decimal(2), unit="CS", unit_price=Decimal("60.00"),
               product_ids=[ProductId(qualifier="VN", value="SKU-00002")]),
        POLine(line_number="3", quantity=Decimal(1), unit="EA", product_ids=[ProductId(qualifier="BP", value="X-9")]),
    ])  # fmt: skip
    lines = [
        ValidatedLine(index=0, line_number="1", customer_part="SKU-00001", sku="SKU-00001", ordered_quantity=Decimal(3),
                      unit="EA", uom="EA", uom_factor=1, quantity=3, stated_price=Decimal("4.00"),
                      unit_price=Decimal("4.00")),
        ValidatedLine(index=1, line_number="2", customer_part="SKU-00002", sku="SKU-00002", ordered_quantity=Decimal(2),
                      unit="CS", uom="CS", uom_factor=12, quantity=24, stated_price=Decimal("60.00"),
                      unit_price=Decimal("4.50")),
        ValidatedLine(index=2, line_number="3", customer_part="X-9", ordered_quantity=Decimal(1), unit="EA"),
    ]  # fmt: skip
    return ValidatedOrder(purchase_order=po, customer_id="CUST-0001", customer_name="Acme", po_number="PO-77",
                          requested_delivery=date(2026, 12, 1), lines=lines,
                          findings=[IntakeFinding(code="unknown_part", message="line 3: part X-9 matches no product",
                                                  field="lines[2].sku")])  # fmt: skip


def test_855_acknowledges_each_line_and_reads_back_as_x12() -> None:
    body = draft_855(_order(), "accepted", envelope=None, interchange_control_number=5, group_control_number=5, now=NOW)
    segs = [s for s in body.split("~") if s]
    assert segs[0].startswith("ISA*")
    assert segs[1].startswith("GS*PR*")
    assert "BAK*00*AC*PO-77*20261122" in body  # line 2's price changed (5.00 -> 4.50 per each), line 3 unknown
    acks = [s for s in segs if s.startswith("ACK*")]
    assert acks == ["ACK*IA*3*EA", "ACK*IC*2*CS", "ACK*IR*1*EA"]  # in the customer's units
    assert "PO1*2*2*CS*54**VN*SKU-00002" in body  # our price: 4.50 each = 54 a case
    assert segs[-3] == "SE*10*0001"
    assert segs[-1] == "IEA*1*000000005"
    doc = parse_x12(body)
    assert [t.set_id for t in doc.transactions] == ["855"]
    assert not [f for f in doc.all_findings() if f.severity == "error"]


def test_855_for_a_rejected_po_rejects_every_line() -> None:
    body = draft_855(_order(), "rejected", envelope=None, interchange_control_number=6, group_control_number=6, now=NOW)
    assert "BAK*00*RJ*PO-77" in body
    assert [s for s in body.split("~") if s.startswith("ACK*")] == ["ACK*IR*3*EA", "ACK*IR*2*CS", "ACK*IR*1*EA"]


def test_ordrsp_parses_back_with_our_edifact_reader() -> None:
    text = draft_ordrsp(_order(), "accepted", reference="4711", now=NOW, recipient_id="BUYER1")
    doc = parse_edifact(text)
    (msg,) = doc.messages
    assert msg.message_type == "ORDRSP"
    assert doc.interchanges[0].recipient == "BUYER1"
    assert not [f for f in doc.all_findings() if f.severity == "error"]
    assert "BGM+231+PO-77+4'" in text
    assert "LIN+3+7+X-9:IN'" in text
    # Same segments as an ORDERS message: our ORDERS mapper reads the lines and quantities back.
    (po,) = parse_edifact(text.replace("ORDRSP:D:96A", "ORDERS:D:96A")).purchase_orders
    assert [(ln.product_id("SA", "IN"), ln.quantity) for ln in po.lines] == [
        ("SKU-00001", Decimal(3)), ("SKU-00002", Decimal(24)), ("X-9", Decimal(1))]  # fmt: skip


def test_reply_email_asks_the_findings_while_pending_and_confirms_lines_once_accepted() -> None:
    v = _order()
    subject, body = draft_reply_email(v, "pending", recipient="buyer@acme.example",
                                      questions=[f.message for f in v.findings])  # fmt: skip
    assert "PO-77" in subject
    assert "questions" in subject
    assert "line 3: part X-9 matches no product" in body
    subject, body = draft_reply_email(v, "accepted", recipient="buyer@acme.example", order_id="IN-1")
    assert "confirmed" in subject
    assert "IN-1" in subject
    assert "3 x SKU-00001 at 4.00" in body
    assert "X-9 - not accepted" in body
