"""SQLAlchemy 2.0 tables of the fulfillment network (the embedded OMS/WMS/carrier state).

Enum-valued columns are stored as short strings (the StrEnum values of :mod:`core.domain`) so the
same schema works on SQLite and PostgreSQL without native enum types to migrate. Invariants the
database can hold itself (reserved within on hand, positive quantities) are CHECK constraints, so
even a bug above cannot store a negative stock.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db.base import NAMING as NAMING  # re-exported: the base lives in core.db.base
from core.db.base import Base as Base
from core.db.base import Money as Money


class MetaRow(Base):
    """Key/value facts about the network itself (seed, business date, generator version)."""

    __tablename__ = "network_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PriceListRow(Base):
    __tablename__ = "price_lists"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3), default="USD")


class CustomerRow(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    tier: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(200))
    email_domain: Mapped[str] = mapped_column(String(200), index=True)
    edi_id: Mapped[str | None] = mapped_column(String(32), index=True)
    gln: Mapped[str | None] = mapped_column(String(13))
    price_list_id: Mapped[str] = mapped_column(ForeignKey("price_lists.id"))
    addresses: Mapped[list[AddressRow]] = relationship(back_populates="customer", order_by="AddressRow.id")


class AddressRow(Base):
    __tablename__ = "addresses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    postal_code: Mapped[str] = mapped_column(String(10))
    country: Mapped[str] = mapped_column(String(2), default="US")
    lat: Mapped[float]
    lon: Mapped[float]
    customer: Mapped[CustomerRow] = relationship(back_populates="addresses")


class ProductRow(Base):
    __tablename__ = "products"
    sku: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    weight_kg: Mapped[float]
    length_cm: Mapped[float]
    width_cm: Mapped[float]
    height_cm: Mapped[float]
    hazmat: Mapped[bool] = mapped_column(default=False)
    cold_chain: Mapped[bool] = mapped_column(default=False)
    base_uom: Mapped[str] = mapped_column(String(8), default="EA")
    list_price: Mapped[Decimal]


class ProductUomRow(Base):
    """Pack sizes: one ``uom`` of this SKU holds ``qty_in_base`` base units (CS = 12 EA)."""

    __tablename__ = "product_uoms"
    __table_args__ = (CheckConstraint("qty_in_base > 0", name="qty_positive"),)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    uom: Mapped[str] = mapped_column(String(8), primary_key=True)
    qty_in_base: Mapped[int]


class PriceListItemRow(Base):
    __tablename__ = "price_list_items"
    __table_args__ = (CheckConstraint("unit_price >= 0", name="price_nonneg"),)
    price_list_id: Mapped[str] = mapped_column(ForeignKey("price_lists.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    unit_price: Mapped[Decimal]


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        CheckConstraint("daily_capacity > 0", name="capacity_positive"),
        CheckConstraint("backlog >= 0", name="backlog_nonneg"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float]
    lon: Mapped[float]
    daily_capacity: Mapped[int]
    backlog: Mapped[int] = mapped_column(default=0)
    cutoff_hour: Mapped[int] = mapped_column(default=15)
    status: Mapped[str] = mapped_column(String(16), default="open")
    pick_pack_cost: Mapped[Decimal]


class InventoryRow(Base):
    __tablename__ = "inventory"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_nonneg"),
        CheckConstraint("reserved >= 0", name="reserved_nonneg"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        Index("ix_inventory_sku", "sku"),
    )
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)


class CarrierRow(Base):
    __tablename__ = "carriers"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="operational")
    on_time_rate: Mapped[float]
    outage_states: Mapped[list[str]] = mapped_column(JSON, default=list)


class CarrierServiceRow(Base):
    __tablename__ = "carrier_services"
    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    carrier_id: Mapped[str] = mapped_column(ForeignKey("carriers.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    transit_days_by_zone: Mapped[list[int]] = mapped_column(JSON)
    air: Mapped[bool] = mapped_column(default=False)


class RateCardRow(Base):
    """Price of one shipment: ``base + per_kg * weight`` for a service and zone."""

    __tablename__ = "rate_cards"
    carrier_service_id: Mapped[str] = mapped_column(ForeignKey("carrier_services.id"), primary_key=True)
    zone: Mapped[int] = mapped_column(primary_key=True)
    base: Mapped[Decimal]
    per_kg: Mapped[Decimal]


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_node_status", "node_id", "status"),
        Index("ix_orders_status_promised", "status", "promised_date"),
        Index("ix_orders_customer", "customer_id"),
        Index("ix_orders_external_ref", "external_ref"),
        CheckConstraint("total_units > 0", name="units_positive"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    external_ref: Mapped[str | None] = mapped_column(String(64))
    ship_to_id: Mapped[str] = mapped_column(ForeignKey("addresses.id"))
    status: Mapped[str] = mapped_column(String(16))
    held_from: Mapped[str | None] = mapped_column(String(16))
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id"))
    carrier_service_id: Mapped[str | None] = mapped_column(ForeignKey("carrier_services.id"))
    service_level: Mapped[str] = mapped_column(String(16))
    promised_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    total_value: Mapped[Decimal]
    total_units: Mapped[int]
    weight_kg: Mapped[float]
    version: Mapped[int] = mapped_column(default=1)
    lines: Mapped[list[OrderLineRow]] = relationship(order_by="OrderLineRow.line_no", lazy="selectin")


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_order_lines_sku", "sku"),
    )
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]


class ShipmentRow(Base):
    __tablename__ = "shipments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id"))
    carrier_service_id: Mapped[str] = mapped_column(ForeignKey("carrier_services.id"), index=True)
    tracking_number: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    ship_date: Mapped[date] = mapped_column(Date)
    eta: Mapped[date] = mapped_column(Date)


class TrackingEventRow(Base):
    __tablename__ = "tracking_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shipment_id: Mapped[str] = mapped_column(ForeignKey("shipments.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")


# --- guardrails: audit trail, idempotency keys, approvals ----------------------------------------
# Times here are stored as UTC (naive on SQLite); JSON columns are plain JSON, not JSONB, so the
# stored text - and so every hash over it - comes back exactly as written.


class AuditEventRow(Base):
    """One event of the hash-chained audit trail (:mod:`guardrails.audit`). Never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_run", "run_id"),
        Index("ix_audit_events_call", "call_id"),
    )
    trail: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    tool: Mapped[str | None] = mapped_column(String(100))
    arguments: Mapped[Any] = mapped_column(JSON, nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    preview: Mapped[Any] = mapped_column(JSON, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    approver: Mapped[str | None] = mapped_column(String(100))
    policy_version: Mapped[str | None] = mapped_column(String(64))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    model: Mapped[str | None] = mapped_column(String(100))
    prompt_version: Mapped[str | None] = mapped_column(String(100))
    duration_ms: Mapped[int | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """Last seq and hash of each trail: the lock appenders queue on, and what catches truncation."""

    __tablename__ = "audit_heads"
    trail: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class IdempotencyKeyRow(Base):
    """A claimed idempotency key; ``status`` is ``pending`` while the call runs, then ``done``."""

    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tool: Mapped[str] = mapped_column(String(100))
    args_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApprovalRequestRow(Base):
    """A request for a person to approve one exact tool call (:mod:`guardrails.approvals`)."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        CheckConstraint("approvers_required >= 1", name="approvers_positive"),
        Index("ix_approval_requests_status", "status", "expires_at"),
        Index("ix_approval_requests_run", "run_id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[Any] = mapped_column(JSON, nullable=True)
    args_hash: Mapped[str] = mapped_column(String(64))
    preview: Mapped[Any] = mapped_column(JSON, nullable=True)
    preview_hash: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    approvers_required: Mapped[int] = mapped_column(default=1)
    requester_may_approve: Mapped[bool] = mapped_column(default=False)
    requester_id: Mapped[str] = mapped_column(String(100))
    edited_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(default=1)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_items: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    supersedes_id: Mapped[str | None] = mapped_column(String(36))
    superseded_by_id: Mapped[str | None] = mapped_column(String(36))


class ApprovalDecisionRow(Base):
    """One person's decision on a request; one per approver and request."""

    __tablename__ = "approval_decisions"
    __table_args__ = (Index("ix_approval_decisions_request_approver", "request_id", "approver_id", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"))
    approver_id: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    subset: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    edited_args: Mapped[Any] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- agent runs (graphs/runs.py) -------------------------------------------------------------------
# The LangGraph checkpoints hold a run's full state; this table is the index people and `runs list`
# read, so listing runs never has to open and deserialize checkpoints.


class RunRow(Base):
    """One exception run: what started it, where it stands, and its final report once it ends."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status", "status", "updated_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``alert`` or ``goal``."""
    status: Mapped[str] = mapped_column(String(32))
    goal: Mapped[str | None] = mapped_column(Text)
    alert: Mapped[Any] = mapped_column(JSON, nullable=True)
    planner: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    report: Mapped[Any] = mapped_column(JSON, nullable=True)


# --- received documents (intake/documents.py) ---------------------------------------------------------
# Every document is stored as received before any parser reads it; bytes live on disk under the
# settings home, content-addressed by sha256, and this row says what it is and where it stands.


class DocumentRow(Base):
    """One received document (e-mail, EDI file, PDF, sheet): stored first, parsed after."""

    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_sha256_channel", "sha256", "channel", unique=True),
        Index("ix_documents_status", "status", "received_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    """How it came in: ``email``, ``api``, ``folder``, ``edi``."""
    sender: Mapped[str | None] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(998))
    """The channel's own id (e-mail Message-ID), for de-duplication across channels."""
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    times_received: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    """``received`` -> ``parsed`` | ``quarantined`` | ``failed``."""
    reason: Mapped[str | None] = mapped_column(Text)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[Any] = mapped_column(JSON, nullable=True)
    parsed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Tables of areas built in their own modules (one module per area; see each module's docstring),
# imported so that ``Base.metadata`` holds every table once this module is imported.
from core.db import (  # noqa: E402, F401
    tables_console,
    tables_evals,
    tables_inbox,
    tables_intake,
    tables_jobs,
    tables_keys,
    tables_mail,
    tables_notify,
    tables_schedule,
    tables_secrets,
    tables_slack,
    tables_sourcing,
)
