"""Validation and enrichment: a parsed :class:`~intake.model.PurchaseOrder` checked against what we
know (customers, addresses, catalogue, contract prices, stock, earlier POs) -> :class:`ValidatedOrder`.

Every required field gets a confidence in 0..1 and every doubt a :class:`IntakeFinding` with a
reason a person can act on and, where one exists, the source pointer into the document. This module
decides nothing: :mod:`intake.decide` turns confidences and findings into auto-create or review.
It must never write an order, and never let a guess look like a fact: fuzzy matches are capped
below the auto-create thresholds (see :data:`FUZZY_CAP`), so only exact evidence or something a
reviewer taught us (:class:`LearnedMappings`) can create an order without a person.

Customer identification, strongest first: ISA06/GS02 sender id = ``edi_id``; GLN; account number;
sender e-mail address, then its domain; buyer name (fuzzy, last resort); when nothing matches,
a proposed new customer (:mod:`intake.onboarding`) rides along for the reviewer. Part numbers:
learned cross-reference for this customer, exact SKU, vendor part number = SKU, then proposals
only: a part number equal to a SKU but for formatting, else the description against the whole
catalogue (:mod:`intake.matching`, ``rapidfuzz``). Ship-to: an address id, else the written
address normalised with ``usaddress`` against the customer's known addresses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, Field
from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core.clock import Clock
from core.db.engine import Database
from core.db.tables_intake import IntakeMappingRow, IntakeReceivedPORow
from core.domain import Address, Customer, Product
from core.errors import NotFound, ValidationFailed
from intake.extract import SpanSource, detect_injection
from intake.matching import address_score, catalogue_index, normalize_address, normalize_known
from intake.model import (
    DOCUMENT_TOKEN_QUALIFIER,
    MAX_DOCUMENT_INT,
    Finding,
    Party,
    POLine,
    ProductId,
    PurchaseOrder,
    Severity,
    Source,
)
from intake.onboarding import NewCustomerProposal, propose_customer
from intake.x12 import EnvelopeIds
from tools.base import ToolEnv

__all__ = [
    "FUZZY_CAP",
    "PRICE_TOLERANCE",
    "UOM_ALIASES",
    "DocumentFacts",
    "IntakeContext",
    "IntakeFinding",
    "LearnedMappings",
    "LineDiff",
    "ReceivedPOs",
    "ValidatedLine",
    "ValidatedOrder",
    "fingerprint",
    "normalize_po_number",
    "normalize_uom",
    "validate",
]

PRICE_TOLERANCE = Decimal("0.02")
"""A stated unit price within 2% of the contract price is accepted (the contract price applies)."""
FUZZY_CAP = 0.8
"""Highest confidence a fuzzy match (part description, buyer name, address) may get: below every
default auto-create threshold, so a guess always reaches a person."""
MAX_LEAD_DAYS = 366
"""A requested delivery further out than this is treated as a typo."""

UOM_ALIASES: dict[str, str] = {
    "EA": "EA", "EACH": "EA", "PC": "EA", "PCS": "EA", "PCE": "EA", "PIECE": "EA", "UN": "EA", "UNIT": "EA",
    "C62": "EA", "H87": "EA", "CS": "CS", "CA": "CS", "CASE": "CS", "CT": "CS", "CTN": "CS", "CARTON": "CS",
    "PL": "PL", "PLT": "PL", "PALLET": "PL", "PX": "PL", "PF": "PL",
}  # fmt: skip
"""Common unit codes (X12 355, UN/ECE rec 20, plain words) -> our UOM codes."""

FindingSeverity = Literal["error", "warning", "info"]


class IntakeFinding(BaseModel):
    """One doubt (or notable fact) about a PO, with the field it concerns and where it came from."""

    code: str
    severity: FindingSeverity = "warning"
    message: str
    field: str | None = None
    """Field path in the validated order: ``customer``, ``ship_to``, ``lines[2].sku``, ``po_date``."""
    blocking: bool = False
    """True: the order must not be created without a person, whatever the confidences say."""
    source: Source | None = None


class LineDiff(BaseModel):
    """One difference between a revision and the PO it revises."""

    change: Literal["added", "removed", "quantity", "price"]
    key: str
    """SKU (or the customer's part number when unresolved)."""
    before: str | None = None
    after: str | None = None


class ValidatedLine(BaseModel):
    index: int
    line_number: str | None = None
    customer_part: str | None = None
    description: str | None = None
    sku: str | None = None
    sku_method: Literal["reviewer", "learned", "exact", "vendor", "fuzzy"] | None = None
    candidates: list[tuple[str, float]] = Field(default_factory=list)
    """Best fuzzy candidates ``(sku, score)`` for a reviewer, best first."""
    ordered_quantity: Decimal | None = None
    unit: str | None = None
    """The unit as the document stated it."""
    uom: str | None = None
    """Our UOM code (``EA``/``CS``/``PL``)."""
    uom_factor: int | None = None
    quantity: int | None = None
    """Quantity in base units (what the order line holds)."""
    stated_price: Decimal | None = None
    """The document's price per its unit."""
    contract_price: Decimal | None = None
    """Our contract price per base unit."""
    unit_price: Decimal | None = None
    """The price per base unit the order will carry (the contract price when the PO agrees)."""
    atp: int | None = None


class ValidatedOrder(BaseModel):
    """A PO checked and enriched, with per-field confidence; JSON-serialisable for checkpoints."""

    document_id: str | None = None
    po_index: int = 0
    channel: str = "api"
    purchase_order: PurchaseOrder
    customer_id: str | None = None
    customer_name: str | None = None
    ship_to_id: str | None = None
    po_number: str | None = None
    requested_delivery: date | None = None
    lines: list[ValidatedLine] = Field(default_factory=list)
    confidence: dict[str, float] = Field(default_factory=dict)
    """Field path -> 0..1: ``customer``, ``ship_to``, ``lines[i].sku|quantity|uom|price``."""
    findings: list[IntakeFinding] = Field(default_factory=list)
    fingerprint: str | None = None
    duplicate_of: str | None = None
    """Document id of the identical PO received before."""
    revision_of: str | None = None
    """Document id of the earlier version this PO changes."""
    revision_order_id: str | None = None
    diff: list[LineDiff] = Field(default_factory=list)
    new_customer: NewCustomerProposal | None = None
    """When no customer matched: the customer the document describes, for a reviewer to create."""

    @property
    def blocking(self) -> list[IntakeFinding]:
        return [f for f in self.findings if f.blocking]

    def line_signature(self) -> list[dict[str, str]]:
        """Normalized lines for duplicate/revision checks, independent of the channel's formatting."""
        out = []
        for ln in self.lines:
            key = ln.sku or (ln.customer_part or ln.description or f"#{ln.index}").upper()
            price = ln.unit_price if ln.unit_price is not None else ln.stated_price
            qty = ln.quantity if ln.quantity is not None else ln.ordered_quantity
            out.append({"key": key, "quantity": str(qty), "unit_price": "" if price is None else f"{price:.2f}"})
        return sorted(out, key=lambda d: (d["key"], d["quantity"], d["unit_price"]))


# --- learned mappings and received POs (the stores validation reads) ------------------------------


def _norm_key(value: str) -> str:
    return re.sub(r"\s+", " ", value.strip().upper())[:128]


class LearnedMappings:
    """What reviewers taught us, per customer: their part number -> our SKU, their unit -> our UOM."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def lookup(self, customer_id: str, kind: Literal["part", "uom"], value: str) -> str | None:
        with self.db.begin() as s:
            row = s.scalars(
                select(IntakeMappingRow).where(
                    IntakeMappingRow.customer_id == customer_id,
                    IntakeMappingRow.kind == kind,
                    IntakeMappingRow.source_value == _norm_key(value),
                )
            ).first()
            return None if row is None else row.target_value

    def remember(self, customer_id: str, kind: Literal["part", "uom"], value: str, target: str, *, by: str) -> None:
        """Store (or replace) one mapping; the latest correction wins."""
        if not value.strip() or not target.strip():
            raise ValidationFailed("a mapping needs a value and a target")
        key = _norm_key(value)
        for _attempt in range(2):
            try:
                with self.db.begin() as s:
                    row = s.scalars(
                        select(IntakeMappingRow).where(
                            IntakeMappingRow.customer_id == customer_id,
                            IntakeMappingRow.kind == kind,
                            IntakeMappingRow.source_value == key,
                        )
                    ).first()
                    if row is None:
                        s.add(IntakeMappingRow(customer_id=customer_id, kind=kind, source_value=key,
                                               target_value=target.strip(), created_by=by,
                                               created_at=self.clock.now(), times_used=0))  # fmt: skip
                    else:
                        row.target_value, row.created_by, row.created_at = target.strip(), by, self.clock.now()
                return
            except IntegrityError:  # pragma: no cover - two reviewers taught the same thing at once
                continue

    def all(self, customer_id: str) -> dict[tuple[str, str], str]:
        with self.db.begin() as s:
            rows = s.scalars(select(IntakeMappingRow).where(IntakeMappingRow.customer_id == customer_id))
            return {(r.kind, r.source_value): r.target_value for r in rows}


class ReceivedPOs:
    """Fingerprints of POs taken in, for duplicate and revision detection across channels."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def previous(self, fp: str, *, exclude_document: str | None) -> IntakeReceivedPORow | None:
        """The latest non-duplicate PO with this fingerprint from another document."""
        with self.db.begin() as s:
            q = select(IntakeReceivedPORow).where(
                IntakeReceivedPORow.fingerprint == fp, IntakeReceivedPORow.kind != "duplicate"
            )
            if exclude_document is not None:
                q = q.where(IntakeReceivedPORow.document_id != exclude_document)
            q = q.order_by(IntakeReceivedPORow.received_at.desc(), IntakeReceivedPORow.id.desc())
            row = s.scalars(q).first()
            if row is not None:
                s.expunge(row)
            return row

    def record(self, v: ValidatedOrder, *, kind: str, order_id: str | None = None) -> None:
        """Remember ``v`` (one row per document and PO index, updated on a second call); POs without a
        fingerprint (no customer or no PO number) are not remembered."""
        if v.fingerprint is None or v.document_id is None or v.customer_id is None:
            return
        # One statement (insert, or on conflict update) rather than select-then-insert: workers taking
        # in the same document at once must neither fail on the unique index nor drop an order id.
        row = IntakeReceivedPORow
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = insert(row).values(
            fingerprint=v.fingerprint, customer_id=v.customer_id, po_number=(v.po_number or "")[:128],
            document_id=v.document_id, po_index=v.po_index, kind=kind, lines=v.line_signature(), order_id=order_id,
            received_at=self.clock.now(),
        )  # fmt: skip
        stmt = stmt.on_conflict_do_update(
            index_elements=[row.document_id, row.po_index],
            set_={"lines": stmt.excluded.lines, "kind": stmt.excluded.kind,
                  "order_id": func.coalesce(stmt.excluded.order_id, row.order_id)},
        )  # fmt: skip
        with self.db.begin() as s:
            s.execute(stmt)

    def set_order(self, document_id: str, po_index: int, order_id: str) -> None:
        with self.db.begin() as s:
            row = s.scalars(
                select(IntakeReceivedPORow).where(
                    IntakeReceivedPORow.document_id == document_id, IntakeReceivedPORow.po_index == po_index
                )
            ).first()
            if row is not None:
                row.order_id = order_id


# --- context ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeContext:
    """What the document's envelope says about its sender, plus the stores validation reads."""

    channel: str = "api"
    document_id: str | None = None
    po_index: int = 0
    sender: str | None = None
    """E-mail address of whoever sent the order (the original sender of a forwarded chain)."""
    isa_sender_id: str | None = None
    gs_sender_id: str | None = None
    parser_findings: Sequence[Finding] = ()
    mappings: LearnedMappings | None = None
    received: ReceivedPOs | None = None
    price_tolerance: Decimal = PRICE_TOLERANCE
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Values a reviewer set: ``customer``, ``ship_to`` (address id), ``lines[i].sku``, ``lines[i].uom``."""


class DocumentFacts(BaseModel):
    """The JSON-serialisable part of :class:`IntakeContext` (what the envelope said), kept with review
    items and checkpoints so that a PO can be validated again later."""

    channel: str = "api"
    document_id: str | None = None
    po_index: int = 0
    sender: str | None = None
    isa_sender_id: str | None = None
    """ISA06 (X12) or the UNB sender (EDIFACT)."""
    gs_sender_id: str | None = None
    envelope: EnvelopeIds | None = None
    parser_findings: list[Finding] = Field(default_factory=list)

    def context(
        self,
        *,
        mappings: LearnedMappings | None = None,
        received: ReceivedPOs | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> IntakeContext:
        return IntakeContext(channel=self.channel, document_id=self.document_id, po_index=self.po_index,
                             sender=self.sender, isa_sender_id=self.isa_sender_id, gs_sender_id=self.gs_sender_id,
                             parser_findings=tuple(self.parser_findings), mappings=mappings, received=received,
                             overrides=dict(overrides or {}))  # fmt: skip


# --- helpers --------------------------------------------------------------------------------------


def normalize_po_number(po_number: str) -> str:
    """``po-4711 / A`` -> ``PO4711A``: what is left when formatting differences are dropped."""
    return re.sub(r"[^A-Z0-9]", "", po_number.upper())


def fingerprint(customer_id: str, po_number: str) -> str:
    return hashlib.sha256(f"{customer_id}|{normalize_po_number(po_number)}".encode()).hexdigest()


def normalize_uom(raw: str | None) -> str | None:
    if raw is None:
        return None
    return UOM_ALIASES.get(raw.strip().upper().rstrip("."))


def _ratio(a: str, b: str) -> float:
    return float(fuzz.ratio(a, b)) / 100


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _money(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class _Builder:
    def __init__(self, po: PurchaseOrder, ctx: IntakeContext) -> None:
        self.po = po
        self.ctx = ctx
        self.v = ValidatedOrder(document_id=ctx.document_id, po_index=ctx.po_index, channel=ctx.channel,
                                purchase_order=po, po_number=po.po_number)  # fmt: skip

    def find(self, code: str, message: str, *, fld: str | None = None, severity: FindingSeverity = "warning",
             blocking: bool = False, source_key: str | None = None, source: Source | None = None) -> None:  # fmt: skip
        src = source if source is not None else (self.po.source_of(source_key) if source_key else None)
        self.v.findings.append(IntakeFinding(code=code, severity=severity, message=message, field=fld,
                                             blocking=blocking, source=src))  # fmt: skip

    def conf(self, fld: str, value: float) -> None:
        self.v.confidence[fld] = round(max(0.0, min(1.0, value)), 3)


# --- steps ----------------------------------------------------------------------------------------


# Where a document states the buyer's account with us: a buyer or bill-to party's id, a party id
# qualified as an account (91 assigned by the seller, 11/12 account numbers), or an account-type
# reference (X12 REF 11/12, EDIFACT RFF IT). A ship-to code, a PO number or a seller's id that
# happens to equal some customer's account number must not vote for that customer.
_ACCOUNT_ROLES = frozenset({"BY", "OB", "BT", "IV"})
_ACCOUNT_QUALIFIERS = frozenset({"91", "11", "12", "IT"})


def _states_account(party: Party | None, value: str, po: PurchaseOrder) -> bool:
    if party is None:
        return any(r.value.strip() == value and r.qualifier in _ACCOUNT_QUALIFIERS for r in po.references)
    if party.role in ("SE", "VN", "SU", "SF"):
        return False
    return party.role in _ACCOUNT_ROLES or party.id_qualifier in _ACCOUNT_QUALIFIERS


def _identify_customer(b: _Builder, customers: list[Customer]) -> Customer | None:
    """The customer by what identifies it (EDI ids, GLN, account number, sender address); ids that
    point at different customers are a blocking conflict; a fuzzy name match is the last resort."""
    forced = b.ctx.overrides.get("customer")
    if forced:
        chosen = next((c for c in customers if c.id == forced), None)
        if chosen is None:
            raise ValidationFailed(f"no customer {forced!r}", field="customer")
        b.conf("customer", 1.0)
        b.find("set_by_reviewer", f"customer set to {chosen.id} by a reviewer", fld="customer", severity="info")
        return chosen
    votes = _id_votes(b, customers) + _sender_votes(b.ctx.sender, customers)
    if votes:
        winners = {c.id for c, _, _ in votes}
        best = max(votes, key=lambda t: t[1])
        if len(winners) > 1:
            b.find("customer_conflict", "the document points at different customers: "
                   + "; ".join(f"{c.id} ({why})" for c, _, why in votes), fld="customer", blocking=True)  # fmt: skip
            b.conf("customer", 0.4)
        else:
            b.conf("customer", best[1])
        b.find("customer_identified", f"customer {best[0].id} ({best[0].name}) by {best[2]}", fld="customer",
               severity="info")  # fmt: skip
        return best[0]
    return _customer_by_name(b, customers)


_Vote = tuple[Customer, float, str]


def _id_votes(b: _Builder, customers: list[Customer]) -> list[_Vote]:
    """A vote per identifier the document carries: the envelope's sender ids, and party ids and
    references as a GLN, an account number or a buyer's EDI id (never a seller's)."""
    po, ctx = b.po, b.ctx
    votes: list[_Vote] = []
    by_edi = {c.edi_id.upper(): c for c in customers if c.edi_id}
    for label, sid in (("ISA06 sender id", ctx.isa_sender_id), ("GS02 sender id", ctx.gs_sender_id)):
        if sid and sid.strip().upper() in by_edi:
            votes.append((by_edi[sid.strip().upper()], 1.0, f"{label} {sid.strip()} is its EDI id"))
    ids = [(p.id.strip(), p) for p in po.parties if p.id] + [(r.value.strip(), None) for r in po.references]
    by_gln = {c.gln: c for c in customers if c.gln}
    by_account = {c.account_number.upper(): c for c in customers}
    for value, party in ids:
        if value in by_gln and (party is None or party.role not in ("SE", "VN", "SU", "SF")):
            votes.append((by_gln[value], 1.0, f"GLN {value}"))
        elif value.upper() in by_account and _states_account(party, value, po):
            votes.append((by_account[value.upper()], 0.95, f"account number {value}"))
        elif value.upper() in by_edi and party is not None and party.role in ("BY", "OB", "BT", "IV"):
            votes.append((by_edi[value.upper()], 0.95, f"buyer id {value} is its EDI id"))
    return votes


def _sender_votes(sender: str | None, customers: list[Customer]) -> list[_Vote]:
    """The sender's exact address, else its domain when exactly one customer has that domain."""
    if not (sender and "@" in sender):
        return []
    addr = sender.strip().lower()
    domain = addr.rsplit("@", 1)[1]
    exact = [c for c in customers if c.email.lower() == addr]
    if exact:
        return [(exact[0], 1.0, f"sender {addr} is its address")]
    dom = [c for c in customers if c.email_domain.lower() == domain]
    return [(dom[0], 0.95, f"sender domain {domain}")] if len(dom) == 1 else []


def _customer_by_name(b: _Builder, customers: list[Customer]) -> Customer | None:
    """Last resort: the buyer's (or bill-to, ship-to) name, fuzzy, at capped confidence (a person
    confirms it); nothing close enough is a blocking finding."""
    po = b.po
    names = [p.name for p in (po.buyer, po.bill_to, po.ship_to) if p is not None and p.name]
    best_c, best_s = None, 0.0
    for name in names:
        for c in customers:
            s = _ratio(_words(name), _words(c.name))
            if s > best_s:
                best_c, best_s = c, s
    if best_c is not None and best_s >= 0.75:
        b.conf("customer", min(FUZZY_CAP, best_s * 0.85))
        b.find("customer_fuzzy", f"customer guessed as {best_c.id} ({best_c.name}) from the name {names[0]!r} "
               f"(similarity {best_s:.2f}); please confirm", fld="customer")  # fmt: skip
        return best_c
    b.conf("customer", 0.0)
    b.find("customer_unknown", "no sender id, GLN, account number, sender address or name matches a customer",
           fld="customer", blocking=True)  # fmt: skip
    return None


def _address_score(party: Party, a: Address) -> float:
    """How likely the written ship-to is the known address ``a`` (see :func:`intake.matching.address_score`)."""
    doc = normalize_address(party.address_lines, party.city, party.state, party.postal_code)
    return address_score(doc, normalize_known(a))


def _ship_to(b: _Builder, env: ToolEnv, customer: Customer) -> None:
    addresses = env.adapters.oms.addresses(customer.id)
    forced = b.ctx.overrides.get("ship_to")
    if forced:
        if not any(a.id == forced for a in addresses):
            raise ValidationFailed(f"address {forced!r} is not one of {customer.id}'s addresses", field="ship_to")
        b.v.ship_to_id = forced
        b.conf("ship_to", 1.0)
        b.find("set_by_reviewer", f"ship-to set to {forced} by a reviewer", fld="ship_to", severity="info")
        return
    party = b.po.ship_to
    if party is None or not (party.address_lines or party.city or party.postal_code or party.id):
        if len(addresses) == 1:
            b.v.ship_to_id = addresses[0].id
            b.conf("ship_to", 0.9)
            b.find("ship_to_default", f"no ship-to on the PO; the customer's only address {addresses[0].id} applies",
                   fld="ship_to", severity="info")  # fmt: skip
        else:
            b.conf("ship_to", 0.0)
            b.find("ship_to_missing", f"no ship-to on the PO and the customer has {len(addresses)} addresses",
                   fld="ship_to")  # fmt: skip
        return
    k = b.po.parties.index(party)
    if party.id and any(a.id == party.id.strip() for a in addresses):
        b.v.ship_to_id = party.id.strip()
        b.conf("ship_to", 1.0)
        return
    scored = sorted(((_address_score(party, a), a) for a in addresses), key=lambda t: -t[0])
    src = f"parties[{k}].address_lines[0]"
    if not scored or scored[0][0] < 0.75:
        b.conf("ship_to", 0.0)
        fields = (" ".join(party.address_lines), party.city, party.state, party.postal_code)
        described = ", ".join(x for x in fields if x)
        b.find("unknown_ship_to", f"ship-to {described!r} matches none of the customer's {len(addresses)} known "
               "addresses", fld="ship_to", source_key=src)  # fmt: skip
        return
    score, addr = scored[0]
    second = scored[1][0] if len(scored) > 1 else 0.0
    b.v.ship_to_id = addr.id
    if score >= 0.98 and second < 0.9:
        b.conf("ship_to", 1.0)
    elif score >= 0.9 and second < 0.8:
        b.conf("ship_to", 0.9)
        b.find("ship_to_normalized", f"ship-to matched address {addr.id} ({addr.street}, {addr.city}) "
               f"with small differences (score {score:.2f})", fld="ship_to", severity="info",
               source_key=src)  # fmt: skip
    else:
        b.conf("ship_to", min(FUZZY_CAP, score))
        b.find("ship_to_fuzzy", f"ship-to probably address {addr.id} ({addr.street}, {addr.city}), "
               f"score {score:.2f}; please confirm", fld="ship_to", source_key=src)  # fmt: skip


def _catalogue(env: ToolEnv, ids: Iterable[str]) -> dict[str, Product]:
    out: dict[str, Product] = {}
    for value in dict.fromkeys(i.strip() for i in ids if i and i.strip()):
        try:
            out[value.upper()] = env.adapters.oms.get_product(value)
        except NotFound:
            try:
                out[value.upper()] = env.adapters.oms.get_product(value.upper())
            except NotFound:
                continue
    return out


def _fuzzy_candidates(env: ToolEnv, text: str) -> list[tuple[str, float]]:
    """Best catalogue matches for a free-text description, over the whole catalogue (best first)."""
    return catalogue_index(env.adapters.oms).by_text(text)


def _part_candidates(env: ToolEnv, values: Iterable[str]) -> list[tuple[str, float]]:
    """SKUs equal to one of the line's part numbers but for formatting (case, separators, zeros)."""
    index = catalogue_index(env.adapters.oms)
    found: dict[str, float] = {}
    for v in values:
        for sku, score in index.by_part(v):
            found.setdefault(sku, score)
    return sorted(found.items(), key=lambda t: (-t[1], t[0]))


def _map_lines(b: _Builder, env: ToolEnv, customer: Customer | None) -> None:
    po, ctx = b.po, b.ctx
    learned = ctx.mappings.all(customer.id) if (ctx.mappings is not None and customer is not None) else {}
    all_ids = [pid.value for ln in po.lines for pid in ln.product_ids]
    known = _catalogue(env, all_ids)

    for i, ln in enumerate(po.lines):
        vl = ValidatedLine(index=i, line_number=ln.line_number, description=ln.description,
                           ordered_quantity=ln.quantity, unit=ln.unit, stated_price=ln.unit_price)  # fmt: skip
        part = ln.buyer_part_number or ln.vendor_part_number or (ln.product_ids[0].value if ln.product_ids else None)
        vl.customer_part = part
        _resolve_part(b, env, ln, vl, learned, known)
        _units_and_price(b, env, customer, vl, learned)
        b.v.lines.append(vl)


def _resolve_part(
    b: _Builder, env: ToolEnv, ln: POLine, vl: ValidatedLine, learned: dict[tuple[str, str], str],
    known: dict[str, Product],
) -> None:  # fmt: skip
    """The line's SKU: 0. a reviewer's word, 1. learned cross-reference, 2. exact SKU (any id), 3. the
    document's whole token around a model's part number, 4. fuzzy (part formatting, description)."""
    p = f"lines[{vl.index}]"
    stated = [pid for pid in ln.product_ids if pid.qualifier != DOCUMENT_TOKEN_QUALIFIER]
    forced = b.ctx.overrides.get(f"{p}.sku")
    if forced:
        vl.sku, vl.sku_method = env.adapters.oms.get_product(forced).sku, "reviewer"
        b.conf(f"{p}.sku", 1.0)
        return
    for pid in stated:
        sku = learned.get(("part", _norm_key(pid.value)))
        if sku:
            vl.sku, vl.sku_method = sku, "learned"
            b.conf(f"{p}.sku", 0.97)
            b.find("sku_learned", f"part {pid.value} -> {sku} (taught by a reviewer)", fld=f"{p}.sku",
                   severity="info", source_key=f"{p}.product_ids[0]")  # fmt: skip
            return
    for pid in stated:
        prod = known.get(pid.value.strip().upper())
        if prod is not None:
            vl.sku = prod.sku
            vl.sku_method = "vendor" if pid.qualifier in ("VN", "VP", "SA", "MF", "VA") else "exact"
            b.conf(f"{p}.sku", 1.0)
            return
    if not _by_document_token(b, ln, vl, learned, known):
        _by_similarity(b, env, ln, vl, stated)


def _by_document_token(
    b: _Builder, ln: POLine, vl: ValidatedLine, learned: dict[tuple[str, str], str], known: dict[str, Product]
) -> bool:
    """A model's part number that resolves to nothing, written in the document inside a longer token
    that resolves exactly (a learned cross-reference or a SKU): the token is what the buyer wrote
    ("SKU-00001" where a small model read "00001"), so it is used, at the confidence of that exact
    match, with a finding. Only tokens the extractor found around the model's value count."""
    p = f"lines[{vl.index}]"
    for k, pid in enumerate(ln.product_ids):
        if pid.qualifier != DOCUMENT_TOKEN_QUALIFIER:
            continue
        taught, prod = learned.get(("part", _norm_key(pid.value))), known.get(pid.value.strip().upper())
        if taught:
            vl.sku, vl.sku_method, how = taught, "learned", f"{taught} (taught by a reviewer)"
            b.conf(f"{p}.sku", 0.97)
        elif prod is not None:
            vl.sku, vl.sku_method, how = prod.sku, "exact", f"our {prod.sku}"
            b.conf(f"{p}.sku", 1.0)
        else:
            continue
        b.find("sku_from_document", f"line {vl.index + 1}: part {vl.customer_part} was read from {pid.value!r} in "
               f"the document, which is {how}", fld=f"{p}.sku", severity="info",
               source_key=f"{p}.product_ids[{k}]")  # fmt: skip
        vl.customer_part = pid.value
        return True
    return False


def _by_similarity(b: _Builder, env: ToolEnv, ln: POLine, vl: ValidatedLine, stated: list[ProductId]) -> None:
    """No exact evidence: a SKU written like the part number, else the description, capped below
    auto-create (:data:`FUZZY_CAP`); nothing close is an unknown part."""
    i, part = vl.index, vl.customer_part
    p, id_src = f"lines[{i}]", f"lines[{i}].product_ids[0]"
    text = " ".join(x for x in (ln.description, *ln.descriptions) if x) or (part or "")
    by_part = _part_candidates(env, [pid.value for pid in stated])
    by_text = _fuzzy_candidates(env, text) if text.strip() else []
    cands = (by_part + [c for c in by_text if c[0] not in dict(by_part)])[:3]
    cands.sort(key=lambda t: -t[1])
    vl.candidates = cands
    if cands and cands[0][1] >= 0.6:
        vl.sku, vl.sku_method = cands[0][0], "fuzzy"
        b.conf(f"{p}.sku", min(FUZZY_CAP, cands[0][1] * 0.85))
        looks = "is written like our" if cands[0] in by_part else "is not ours; the description looks like"
        close = [sku for sku, sc in cands[1:] if sc >= cands[0][1] - 0.02]
        tie = f"; as close: {', '.join(close)}" if close else ""
        b.find("sku_fuzzy", f"line {i + 1}: part {part or '(none)'} {looks} {cands[0][0]} (similarity "
               f"{cands[0][1]:.2f}{tie}); please confirm", fld=f"{p}.sku",
               source_key=id_src if part else f"{p}.description")  # fmt: skip
    else:
        b.conf(f"{p}.sku", 0.0)
        hint = f"; closest {cands[0][0]} ({cands[0][1]:.2f})" if cands else ""
        b.find("unknown_part", f"line {i + 1}: part {part or '(none)'} matches no product{hint}",
               fld=f"{p}.sku", source_key=id_src if part else None)  # fmt: skip


def _units_and_price(
    b: _Builder, env: ToolEnv, customer: Customer | None, vl: ValidatedLine, learned: dict[tuple[str, str], str]
) -> None:
    """Unit, quantity in base units and price of one line, each with its confidence."""
    p = f"lines[{vl.index}]"
    uom, uom_conf = _stated_unit(b, vl, learned)
    factor: int | None = None
    if vl.sku is not None:
        uom, uom_conf, factor = _product_unit(b, env, customer, vl, uom, uom_conf)
    vl.uom, vl.uom_factor = uom, factor
    b.conf(f"{p}.uom", uom_conf if vl.sku is not None else min(uom_conf, 0.5))
    _base_quantity(b, vl, uom, factor)
    _price(b, env, vl, uom, factor)


def _stated_unit(b: _Builder, vl: ValidatedLine, learned: dict[tuple[str, str], str]) -> tuple[str | None, float]:
    """The unit a reviewer set, else the one the document states (a learned mapping first); with no
    unit stated it is decided later (base unit, unless the price says cases)."""
    p = f"lines[{vl.index}]"
    forced = b.ctx.overrides.get(f"{p}.uom")
    if forced:
        return normalize_uom(forced) or forced.strip().upper(), 1.0
    if vl.unit:
        uom = learned.get(("uom", _norm_key(vl.unit))) or normalize_uom(vl.unit)
        if uom is None:
            b.find("unknown_uom", f"line {vl.index + 1}: unit {vl.unit!r} is not one we know", fld=f"{p}.uom",
                   source_key=f"{p}.unit")  # fmt: skip
        return uom, 1.0 if uom else 0.0
    return None, 0.9


def _product_unit(
    b: _Builder, env: ToolEnv, customer: Customer | None, vl: ValidatedLine, uom: str | None, uom_conf: float
) -> tuple[str | None, float, int | None]:
    """With the product known: its contract price, the unit when none was stated, and the unit's
    factor to base units (a unit the product is not sold by has confidence 0)."""
    assert vl.sku is not None
    p = f"lines[{vl.index}]"
    oms = env.adapters.oms
    try:
        contract = oms.prices(customer.id, [vl.sku])[vl.sku] if customer is not None else None
    except NotFound:
        contract = None
    vl.contract_price = contract
    if uom is None and vl.unit is None:
        uom = oms.get_product(vl.sku).base_uom
        if vl.stated_price is not None and contract is not None:
            uom, uom_conf = _unit_by_price(b, env, vl.sku, vl.stated_price, contract) or (uom, uom_conf)
        if uom_conf < 1.0:
            b.find("uom_assumed", f"line {vl.index + 1}: no unit stated; {uom} assumed", fld=f"{p}.uom",
                   severity="info")  # fmt: skip
    factor: int | None = None
    if uom is not None:
        try:
            factor = oms.uom_factor(vl.sku, uom)
        except NotFound:
            uom_conf = 0.0
            b.find("uom_not_sold", f"line {vl.index + 1}: {vl.sku} is not sold by the {uom}", fld=f"{p}.uom",
                   source_key=f"{p}.unit")  # fmt: skip
    return uom, uom_conf, factor


def _unit_by_price(b: _Builder, env: ToolEnv, sku: str, stated: Decimal, contract: Decimal) -> tuple[str, float] | None:
    """No unit stated: the price tells whether they mean eaches or cases (the first unit whose
    contract price the stated price matches)."""
    for code in ("EA", "CS", "PL"):
        try:
            f = env.adapters.oms.uom_factor(sku, code)
        except NotFound:
            continue
        if abs(stated - contract * f) <= contract * f * b.ctx.price_tolerance:
            return code, 1.0 if code == "EA" else 0.9
    return None


def _base_quantity(b: _Builder, vl: ValidatedLine, uom: str | None, factor: int | None) -> None:
    """The quantity in base units: positive, whole and within what the database holds."""
    p = f"lines[{vl.index}]"
    q = vl.ordered_quantity
    if q is None or q <= 0:
        b.conf(f"{p}.quantity", 0.0)
        b.find("bad_quantity", f"line {vl.index + 1}: quantity {q if q is not None else '(missing)'} is not a "
               "positive number", fld=f"{p}.quantity", source_key=f"{p}.quantity")  # fmt: skip
        return
    base = q * (factor or 1)
    if base > MAX_DOCUMENT_INT:
        b.conf(f"{p}.quantity", 0.0)
        b.find("bad_quantity", f"line {vl.index + 1}: quantity {q} is out of range ({base} base units)",
               fld=f"{p}.quantity", source_key=f"{p}.quantity")  # fmt: skip
    elif base != base.to_integral_value():
        b.conf(f"{p}.quantity", 0.0)
        b.find("fractional_quantity", f"line {vl.index + 1}: {q} {uom or ''} is {base} base units, not a whole "
               "number", fld=f"{p}.quantity", source_key=f"{p}.quantity")  # fmt: skip
    else:
        vl.quantity = int(base)
        b.conf(f"{p}.quantity", 1.0 if factor is not None else 0.5)


def _price(b: _Builder, env: ToolEnv, vl: ValidatedLine, uom: str | None, factor: int | None) -> None:
    """The contract price applies when none is stated or the stated one is within tolerance; a
    stated price outside it is a mismatch for a person."""
    p = f"lines[{vl.index}]"
    contract = vl.contract_price
    if vl.sku is None or contract is None:
        b.conf(f"{p}.price", 0.0)
        return
    if vl.stated_price is None:
        vl.unit_price = contract
        b.conf(f"{p}.price", 0.95)
        b.find("price_missing", f"line {vl.index + 1}: no price stated; contract price {contract} applies",
               fld=f"{p}.price", severity="info")  # fmt: skip
        return
    per_base = vl.stated_price / Decimal(factor or 1)
    ok = per_base == 0 if contract == 0 else abs(per_base - contract) <= contract * b.ctx.price_tolerance
    if ok:
        vl.unit_price = contract
        b.conf(f"{p}.price", 1.0)
        if _money(per_base) != contract:
            b.find("price_rounded", f"line {vl.index + 1}: stated {_money(per_base)} per {uom or 'unit'} is within "
                   f"tolerance of the contract price {contract}; the contract price applies", fld=f"{p}.price",
                   severity="info", source_key=f"{p}.unit_price")  # fmt: skip
    else:
        vl.unit_price = None
        b.conf(f"{p}.price", 0.0)
        base_uom = env.adapters.oms.get_product(vl.sku).base_uom
        per = f" ({_money(per_base)} per {base_uom})" if (factor or 1) != 1 else ""
        b.find("price_mismatch", f"line {vl.index + 1}: {vl.sku} at {vl.stated_price} per {vl.unit or uom}{per} "
               f"but the contract price is {contract} per {base_uom}", fld=f"{p}.price",
               source_key=f"{p}.unit_price")  # fmt: skip


def _atp(b: _Builder, env: ToolEnv) -> None:
    skus = sorted({ln.sku for ln in b.v.lines if ln.sku})
    if not skus:
        return
    atp = env.adapters.wms.atp(skus)
    need: dict[str, int] = {}
    for ln in b.v.lines:
        if ln.sku and ln.quantity:
            need[ln.sku] = need.get(ln.sku, 0) + ln.quantity
    for ln in b.v.lines:
        if ln.sku is None:
            continue
        ln.atp = sum(atp.get(ln.sku, {}).values())
        if ln.sku in need and ln.atp < need[ln.sku]:
            b.find("short_stock", f"line {ln.index + 1}: {need[ln.sku]} of {ln.sku} ordered, {ln.atp} available "
                   "across all nodes (the rest would be backordered)", fld=f"lines[{ln.index}].quantity")  # fmt: skip


def _dates(b: _Builder, today: date) -> None:
    po = b.po
    b.v.requested_delivery = po.requested_delivery_date
    if po.po_date is not None and po.po_date > today + timedelta(days=1):
        b.find("po_date_future", f"PO date {po.po_date} is in the future (today is {today})", fld="po_date",
               blocking=True, source_key="po_date")  # fmt: skip
    rd = po.requested_delivery_date
    if rd is None:
        return
    if po.po_date is not None and rd < po.po_date:
        b.find("delivery_before_po_date", f"requested delivery {rd} is before the PO date {po.po_date}",
               fld="requested_delivery", blocking=True)  # fmt: skip
    elif rd < today:
        b.find("delivery_in_past", f"requested delivery {rd} has passed (today is {today})", fld="requested_delivery",
               blocking=True)  # fmt: skip
    elif rd > (po.po_date or today) + timedelta(days=MAX_LEAD_DAYS):
        b.find("delivery_far_out", f"requested delivery {rd} is more than a year out", fld="requested_delivery",
               blocking=True)  # fmt: skip


def _free_text(po: PurchaseOrder) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, p in enumerate(po.parties):
        out += [(f"parties[{k}].name", t) for t in (p.name, *p.additional_names) if t]
        out += [(f"parties[{k}].address_lines[{j}]", t) for j, t in enumerate(p.address_lines)]
    out += [(f"references[{k}].value", r.description or "") for k, r in enumerate(po.references) if r.description]
    out += [(f"contacts[{k}].name", c.name) for k, c in enumerate(po.contacts) if c.name]
    for i, ln in enumerate(po.lines):
        texts = dict.fromkeys(x for x in (ln.description, *ln.descriptions) if x)
        out += [(f"lines[{i}].description", t) for t in texts]
        out += [(f"lines[{i}].allowances_charges", a.description) for a in ln.allowances_charges if a.description]
    return out


def _span_source(src: Source | None) -> SpanSource:
    def make(start: int, end: int) -> Source:
        return src or Source(kind="manual", span=(start, end))

    return make


# What the guard says for each kind of content finding, strongest first: it names what was found.
# Text that is merely not about the order is not an attack and is not called one.
_GUARD_MESSAGES = (
    ("injection_suspected", "the document contains instructions aimed at the system; they were ignored and a "
                            "person must review the order"),
    ("hidden_content", "the document carries text its reader cannot see; it was ignored and a person must review "
                       "the order"),
    ("unexplained_text", "the document carries text a person should read before the order is created"),
)  # fmt: skip


def _injection(b: _Builder) -> None:
    seen: set[str] = set()
    for f in b.ctx.parser_findings:
        if f.code in ("injection_suspected", "hidden_content", "unexplained_text"):
            seen.add(f.code)
            b.find(f.code, f.message, blocking=True, source=f.source)
    for key, text in _free_text(b.po):
        src = b.po.source_of(key)
        hits = detect_injection(text, _span_source(src))
        for h in hits:
            seen.add("injection_suspected")
            b.find("injection_suspected", f"{key}: {h.message}", fld=key, blocking=True, source=h.source)
    message = next((m for code, m in _GUARD_MESSAGES if code in seen), None)
    if message is not None:
        b.find("injection_guard", message, severity="error", blocking=True)


def _parser_findings(b: _Builder) -> None:
    for f in b.ctx.parser_findings:
        if f.code in ("injection_suspected", "hidden_content", "unexplained_text"):
            continue
        if f.severity is Severity.ERROR:
            b.find(f.code, f.message, severity="error", blocking=True, source=f.source)
    po = b.po
    if po.declared_line_count is not None and po.declared_line_count != len(po.lines):
        b.find("line_count_mismatch", f"the PO declares {po.declared_line_count} lines but has {len(po.lines)}",
               blocking=True)  # fmt: skip
    if not po.lines:
        b.find("no_lines", "the PO has no line items", blocking=True)
    if po.purpose_code in ("01", "1", "03", "3"):
        b.find("cancellation", f"purpose code {po.purpose_code}: the sender cancels or deletes this PO",
               blocking=True, source_key="purpose_code")  # fmt: skip


def _line_diff(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[LineDiff]:
    """Lines added, removed, and changed in quantity or price, by line key."""
    diff: list[LineDiff] = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            diff.append(LineDiff(change="added", key=key, after=f"{new['quantity']} @ {new['unit_price'] or '-'}"))
        elif new is None and old is not None:
            diff.append(LineDiff(change="removed", key=key, before=f"{old['quantity']} @ {old['unit_price'] or '-'}"))
        elif old is not None and new is not None:
            if old["quantity"] != new["quantity"]:
                diff.append(LineDiff(change="quantity", key=key, before=old["quantity"], after=new["quantity"]))
            if old["unit_price"] != new["unit_price"]:
                diff.append(LineDiff(change="price", key=key, before=old["unit_price"], after=new["unit_price"]))
    return diff


def _duplicates(b: _Builder, customer: Customer | None) -> None:
    v = b.v
    if customer is None or not v.po_number or not normalize_po_number(v.po_number):
        if not v.po_number:
            b.find("po_number_missing", "the PO has no PO number; duplicates cannot be detected", fld="po_number",
                   blocking=True)  # fmt: skip
        return
    v.fingerprint = fingerprint(customer.id, v.po_number)
    if b.ctx.received is None:
        return
    prev = b.ctx.received.previous(v.fingerprint, exclude_document=v.document_id)
    if prev is None:
        return
    before = {d["key"]: d for d in prev.lines}
    after = {d["key"]: d for d in v.line_signature()}
    if before == after:
        v.duplicate_of = prev.document_id
        b.find("duplicate", f"PO {v.po_number} was already received (document {prev.document_id}) with the same "
               "lines", severity="info")  # fmt: skip
        return
    diff = _line_diff(before, after)
    v.revision_of, v.revision_order_id, v.diff = prev.document_id, prev.order_id, diff
    b.find("revision", f"PO {v.po_number} revises document {prev.document_id}: "
           + "; ".join(f"{d.change} {d.key}" for d in diff), blocking=True)  # fmt: skip


def _propose_customer(b: _Builder, env: ToolEnv) -> None:
    """No customer matched: describe the one the document comes from, for a reviewer to create."""
    ctx = b.ctx
    proposal = propose_customer(b.po, sender=ctx.sender, sender_ids=(ctx.isa_sender_id, ctx.gs_sender_id),
                                customers=env.adapters.oms.list_customers(), lines=b.v.lines)  # fmt: skip
    b.v.new_customer = proposal
    what = [f"{len(proposal.parts)} part cross-reference(s)"]
    if proposal.ship_to is not None:
        what.insert(0, f"ship-to {proposal.ship_to.street}, {proposal.ship_to.city}")
    missing = f"; still needed: {', '.join(proposal.missing)}" if proposal.missing else ""
    similar = "; similar existing: " + ", ".join(f"{cid} {nm!r} ({s:.2f})" for cid, nm, s in proposal.similar) \
        if proposal.similar else ""  # fmt: skip
    b.find("new_customer_proposed", f"new buyer: customer {proposal.customer_id} ({proposal.name or 'no name'}) can "
           f"be created with {' and '.join(what)}{missing}{similar}", fld="customer")  # fmt: skip


def validate(po: PurchaseOrder, env: ToolEnv, *, context: IntakeContext) -> ValidatedOrder:
    """Check and enrich one PO; never raises on bad content (doubts become findings)."""
    b = _Builder(po, context)
    customer = _identify_customer(b, env.adapters.oms.list_customers())
    if customer is not None:
        b.v.customer_id, b.v.customer_name = customer.id, customer.name
        _ship_to(b, env, customer)
    else:
        b.conf("ship_to", 0.0)
    _map_lines(b, env, customer)
    if customer is None and not context.overrides.get("customer"):
        _propose_customer(b, env)
    _atp(b, env)
    _dates(b, env.clock.today())
    _injection(b)
    _parser_findings(b)
    _duplicates(b, customer)
    return b.v
