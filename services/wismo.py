"""Where is my order: an order id or a customer's PO number answered with status, node, carrier,
tracking, ETA against the promise, and every run that touched it.

The ETA of an order that has shipped is its shipment's; of one that has not, the twin's own
prediction for its node and carrier service (:class:`~tools.twin.TwinView`, the arithmetic every
preview uses), so the answer agrees with what a reroute's preview would say. The runs come from
the audit trail (:mod:`services.history`), the tamper-evident record, not a second log.

Order risk (issue 18, item 5) is the order's score against its customer's earlier orders
(:mod:`services.order_risk`), with the reasons; ``risk_hold`` says whether it is over the hold threshold.

What this module must never do: write anything.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field
from sqlalchemy import select

from core.clock import Clock
from core.db import Database
from core.db.tables import OrderRow
from core.errors import NotFound
from guardrails.audit import AuditTrail
from services.history import OrderChange, order_history
from services.order_risk import score_orders
from tools.adapters.protocols import Adapters
from tools.twin import TwinView

MAX_MATCHES = 20
"""A PO number several customers used: answer for at most this many orders."""


class Tracking(BaseModel):
    shipment_id: str
    tracking_number: str
    carrier_service_id: str
    status: str
    ship_date: date
    last_event: str | None = None


class Whereabouts(BaseModel):
    order_id: str
    po_number: str | None
    customer_id: str
    status: str
    node_id: str | None
    carrier_service_id: str | None
    promised_date: date
    eta: date | None = Field(description="Shipment ETA once shipped, else the twin's prediction; null: cannot ship.")
    eta_source: str
    on_time: bool | None = Field(description="ETA on or before the promise; null when there is no ETA.")
    why_no_eta: str | None = None
    tracking: list[Tracking] = Field(default_factory=list)
    runs: list[OrderChange] = Field(default_factory=list, description="Changes runs made to it, oldest first.")
    risk: float | None = Field(default=None, description="Order risk score in [0, 1] (null: not scored).")
    risk_reasons: list[str] = Field(default_factory=list, description="Why the score is what it is.")
    risk_hold: bool | None = Field(default=None, description="Score at or above the hold threshold.")


def find_orders(db: Database, ref: str) -> list[str]:
    """Order ids matching ``ref``: the order id itself, else orders whose PO number (external ref) it is."""
    ref = ref.strip()
    with db.sessions() as session:
        if session.scalar(select(OrderRow.id).where(OrderRow.id == ref)) is not None:
            return [ref]
        rows = session.scalars(
            select(OrderRow.id).where(OrderRow.external_ref == ref).order_by(OrderRow.id).limit(MAX_MATCHES)
        )
        return list(rows)


def where_is(ref: str, *, db: Database, adapters: Adapters, clock: Clock, audit: AuditTrail) -> list[Whereabouts]:
    """Every order ``ref`` names (an order id, or a PO number); NotFound when none."""
    ids = find_orders(db, ref)
    if not ids:
        raise NotFound("order or PO number", ref)
    orders = adapters.oms.get_orders(ids)
    view = TwinView.load(adapters, clock)
    view.prepare(orders)
    shipments = {s.order_id: s for s in adapters.carriers.shipments(ids)}
    risks = score_orders(db, ids)
    out: list[Whereabouts] = []
    for o in orders:
        tracking: list[Tracking] = []
        eta: date | None = None
        why: str | None = None
        shipment = shipments.get(o.id)
        if shipment is not None:
            events = adapters.carriers.tracking(shipment.id)
            last = events[-1] if events else None
            tracking.append(
                Tracking(
                    shipment_id=shipment.id,
                    tracking_number=shipment.tracking_number,
                    carrier_service_id=shipment.carrier_service_id,
                    status=shipment.status.value,
                    ship_date=shipment.ship_date,
                    last_event=f"{last.at:%Y-%m-%d %H:%M} {last.status.value} {last.location}".strip()
                    if last
                    else None,
                )
            )
            eta, source = shipment.eta, "shipment"
        elif o.node_id is not None and o.status.value not in ("cancelled", "delivered"):
            f = view.booked(o, o.node_id)
            eta, source = f.eta, "twin"
            why = None if f.available else (f.reason or "cannot ship as booked")
        else:
            source = "none"
            why = "no node yet" if o.node_id is None else f"order is {o.status.value}"
        out.append(
            Whereabouts(
                order_id=o.id,
                po_number=o.external_ref,
                customer_id=o.customer_id,
                status=o.status.value,
                node_id=o.node_id,
                carrier_service_id=o.carrier_service_id,
                promised_date=o.promised_date,
                eta=eta,
                eta_source=source,
                on_time=None if eta is None else eta <= o.promised_date,
                why_no_eta=why,
                tracking=tracking,
                runs=order_history(audit, o.id).changes,
                risk=risks[o.id].score if o.id in risks else None,
                risk_reasons=[f"{r.value}: {why}" for r, why in risks[o.id].reasons] if o.id in risks else [],
                risk_hold=risks[o.id].hold if o.id in risks else None,
            )
        )
    return out
