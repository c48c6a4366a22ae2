"""The demo's intake step: three purchase orders from customers of the seeded network arrive — a
clean X12 850, a PDF, and an e-mail naming a part number nobody knows — and the intake graph
creates the clean ones through the tool gateway and queues the doubtful one for a person, with
its findings and where in the document each came from; the X12 one gets a drafted 997 and 855.

The documents are generated from the network's own customers, addresses and contract prices
(:mod:`intake.samples`), so the step is the same on every seeded network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.panel import Panel

from api.cli_intake import document_report, intake_session, render_document
from core.domain import CustomerTier
from core.settings import Settings
from intake.samples import Catalog, CatalogCustomer, GoldLine, GoldOrder, load_catalog, render
from tools.adapters.protocols import Adapters

__all__ = ["SampleDoc", "intake_scenario", "sample_documents"]

UNKNOWN_PART = "XQ-40417"


@dataclass(frozen=True)
class SampleDoc:
    label: str
    data: bytes
    filename: str
    channel: str
    sender: str | None = None


def _eligible_skus(adapters: Adapters, customer: CatalogCustomer, catalog: Catalog) -> list[str]:
    """SKUs with a contract price, cheap and plain (no hazmat, no cold chain), so policy lets the
    agent create the order on its own."""
    out = []
    for sku in catalog.skus:
        price = customer.prices.get(sku)
        if price is None or price > 150:
            continue
        p = adapters.oms.get_product(sku)
        if p.hazmat or p.cold_chain:
            continue
        out.append(sku)
    return out


def sample_documents(adapters: Adapters, catalog: Catalog) -> list[SampleDoc]:
    """The clean X12 850, the PDF and the problematic e-mail, for standard-tier customers."""
    standard = {c.id for c in adapters.oms.list_customers() if c.tier is CustomerTier.STANDARD}
    customers = [c for c in catalog.customers if c.id in standard and c.addresses]
    edi = next((c for c in customers if c.edi_id), customers[0])
    others = [c for c in customers if c.id != edi.id] or [edi]
    pdf_cust, mail_cust = others[0], others[1 % len(others)]
    day = catalog.business_date

    def order(doc_id: str, fmt: str, cust: CatalogCustomer, po: str, picks: list[tuple[str, int]]) -> GoldOrder:
        lines = [
            GoldLine(sku=s, quantity=q, unit_price=cust.prices[s], expected_price=cust.prices[s]) for s, q in picks
        ]
        return GoldOrder(doc_id=doc_id, format=fmt, customer_id=cust.id, sender=cust.email, po_number=po,
                         po_date=day, ship_to_address_id=cust.addresses[0].id, lines=lines)  # fmt: skip

    rng = random.Random(20261123)
    docs: list[SampleDoc] = []
    skus = _eligible_skus(adapters, edi, catalog)
    g = order("demo-850", "x12", edi, "PO-850123", [(skus[0], 12), (skus[1], 5)])
    data, name, _media = render(g, catalog, rng, 850)
    docs.append(SampleDoc("clean X12 850", data, name, "edi"))
    skus = _eligible_skus(adapters, pdf_cust, catalog)
    g = order("demo-pdf", "pdf", pdf_cust, "PO-551204", [(skus[2], 10), (skus[3], 4), (skus[4], 2)])
    data, name, _media = render(g, catalog, rng, 851)
    docs.append(SampleDoc("PDF purchase order", data, name, "email", pdf_cust.email))
    skus = _eligible_skus(adapters, mail_cust, catalog)
    g = order("demo-mail", "email", mail_cust, "PO-661305", [(skus[5], 6)])
    g.lines.append(GoldLine(sku=UNKNOWN_PART, quantity=3, unit_price=Decimal("9.99"), expected_price=None))
    data, name, _media = render(g, catalog, rng, 852)
    docs.append(SampleDoc("e-mail with an unknown part number", data, name, "email", mail_cust.email))
    return docs


def intake_scenario(settings: Settings, console: Console | None) -> dict[str, Any]:
    """Ingest the three sample documents through the intake graph; return a summary."""
    out = console or Console(file=open("/dev/null", "w"))  # noqa: SIM115 - quiet under --json
    summary: dict[str, Any] = {"documents": [], "created_orders": [], "review_items": []}
    with intake_session(settings) as sess:
        catalog = load_catalog(sess.actx.db, business_date=sess.actx.twin_clock.today())
        for sample in sample_documents(sess.actx.adapters, catalog):
            doc = sess.deps.documents.receive(sample.data, channel=sample.channel, filename=sample.filename,
                                              sender=sample.sender)  # fmt: skip
            result = sess.graph.run(doc.id)
            state = sess.graph.state(doc.id)
            report = document_report(doc, result, state.get("parsed"), state.get("validated"))
            out.print(f"[bold cyan]{sample.label}[/]")
            render_document(report, out)
            for ack in report["acks"]:
                if ack["kind"] in ("x12-997", "x12-855"):
                    out.print(Panel(ack["body"].replace("~", "~\n").strip(), title=f"drafted {ack['kind']}",
                                    expand=False))  # fmt: skip
            orders = []
            for o in report["orders"]:
                d = o.get("decision") or {}
                if d.get("order_id"):
                    summary["created_orders"].append(d["order_id"])
                if d.get("review_item_id"):
                    summary["review_items"].append(d["review_item_id"])
                orders.append({
                    "po_number": o.get("po_number"), "customer_id": o.get("customer_id"), "status": d.get("status"),
                    "order_id": d.get("order_id"), "review_item_id": d.get("review_item_id"),
                    "lines": [{k: ln[k] for k in ("product_ids", "quantity", "unit", "unit_price", "sku")}
                              for ln in o["lines"]],
                    "findings": [{k: f[k] for k in ("code", "message", "field", "source")} for f in o["findings"]
                                 if f["severity"] != "info"],
                })  # fmt: skip
            summary["documents"].append({"label": sample.label, "document_id": doc.id, "file": sample.filename,
                                         "format": report["format"], "status": report["status"], "orders": orders,
                                         "acks": [a["kind"] for a in report["acks"]]})  # fmt: skip
    return summary
