"""Score order intake on purchase orders this code base did not write: the ``intake-external``
eval suite, and a quick parsing-level check for developers.

The suite (``orderops eval run --suite intake-external``) has one case per external document
(:mod:`evals.datasets.external_po`: the independent ERP-style corpus, bots' X12 850 and EDIFACT
ORDERS samples with bots' own translations as gold, node-x12's mapped 850, real invoices as
negative cases, and the small samples under ``evals/datasets/external/``). Each case receives its
document on a fresh copy of a network seeded with the corpus's buyer master data
(:class:`MasterData`), runs :func:`intake.pipeline.process_document` on it, and records:

* field counts (true / false positives, false negatives) of what the pipeline's parse read, per
  field: ``po_number``, ``po_date``, ``ship_to`` (the postal code, or the party code where the
  expected output gives only that), and per line ``part`` (any code the gold gives for the item),
  ``quantity``, ``unit`` (compared as one code per unit: ``Each`` = ``EA``, ``case of 12`` = ``CS``)
  and ``unit_price`` (to 4 decimals). Gold lines pair with read lines by a shared code, else by
  position; read lines left over are false positives. A field the expected output does not state
  is not scored (partial gold is partial, not wrong);
* exact orders: every scored field of a gold order right, no line missing and none invented;
* the pipeline's decision per PO, the orders it created and, the safety number, orders created
  with anything wrong (customer, ship-to, PO number, or any line's SKU, quantity or price against
  the gold mapped through the master data). It must be 0. A created order whose gold the master
  data cannot make right counts as wrong: an order nobody can vouch for is a wrong order;
* for an invoice: that no order came of it and, once intake classifies documents
  (``intake/doctype.py``), that it was answered "not an order".

A case passes when every gold order is read exactly and nothing wrong was created (negatives: no
order, and the "not an order" answer where classification exists). The suite's numbers per format
and per source are added up in :func:`evals.metrics.external_metrics`.

The developer check ``python -m evals.external_po [DIR]`` prints the older one-row-per-document
parsing table for a po-erp-styles-shaped folder (kept as it was, so numbers taken with it during
this round stay comparable); ``python -m evals.external_po --suite [DIR]`` parses every external
source (or one po-erp-styles-shaped folder, such as a held-out copy) and prints field F1 and exact
orders per format and per source, without the pipeline.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from core.clock import Clock, FixedClock
from core.db import Database, make_database
from core.db.tables import (
    AddressRow,
    CustomerRow,
    InventoryRow,
    NodeRow,
    PriceListItemRow,
    PriceListRow,
    ProductRow,
    ProductUomRow,
)
from core.netgen import NetworkSpec
from evals.datasets.external_po import ExternalDoc, GoldOrder, canonical_unit, external_docs, load_po_erp_styles
from evals.metrics import CaseResult, external_metrics
from intake.documents import DocumentStore, ParseOutcome, parse_bytes
from intake.model import Finding, Party, POLine, PurchaseOrder
from intake.pipeline import IntakeDeps, IntakeResult, process_document
from intake.validate import LearnedMappings

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "po-erp-styles"


# --- the quick developer table (unchanged scoring) ----------------------------------------------------


def _norm_id(s: object) -> str:
    return "".join(ch for ch in str(s or "").upper() if ch.isalnum())


def _dec(v: object) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(str(v))
    except ArithmeticError:
        return None


@dataclass
class ExternalScore:
    """The comparison of one document with its gold."""

    name: str
    fmt: str
    po_number: bool
    po_date: bool
    postal_code: bool
    line_count: tuple[int, int]
    """(gold lines, lines read)."""
    line_fields: tuple[int, int]
    """(line fields right, line fields in gold): part, quantity, unit price per gold line."""
    errors: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """PO number, date, ship-to ZIP, line count and every line field right."""
        g, r = self.line_count
        ok, total = self.line_fields
        return self.po_number and self.po_date and self.postal_code and g == r and ok == total


def _parts(po_line: object) -> set[str]:
    ids = getattr(po_line, "product_ids", [])
    return {_norm_id(p.value) for p in ids}


def score_one(name: str, gold: dict[str, object], data: bytes) -> ExternalScore:
    """Parse ``data`` (file ``name``) and compare its first purchase order with ``gold``."""
    _fmt, orders, findings = parse_bytes(data, filename=name, document=name)
    errors = [f"{f.code}: {f.message}" for f in findings if f.severity.value == "error"]
    po: PurchaseOrder | None = orders[0] if orders else None
    gold_lines = list(gold.get("lines") or [])  # type: ignore[call-overload]
    ship: dict[str, object] = gold.get("ship_to") or {}  # type: ignore[assignment]
    if po is None:
        return ExternalScore(name, str(gold.get("format")), False, False, False, (len(gold_lines), 0),
                             (0, 3 * len(gold_lines)), errors)  # fmt: skip
    st = po.ship_to
    zip_ok = bool(st and st.postal_code and str(st.postal_code).startswith(str(ship.get("postal_code"))))
    right = 0
    for i, gl in enumerate(gold_lines):
        line = po.lines[i] if i < len(po.lines) else None
        if line is None:
            continue
        parts = _parts(line)
        wanted = {_norm_id(gl.get(k)) for k in ("buyer_part_number", "vendor_part_number") if gl.get(k)}
        right += bool(parts & wanted)
        right += line.quantity is not None and _dec(gl.get("quantity")) == line.quantity
        gp = _dec(gl.get("unit_price"))
        right += line.unit_price is not None and gp is not None and abs(line.unit_price - gp) < Decimal("0.00005")
    return ExternalScore(
        name=name,
        fmt=str(gold.get("format")),
        po_number=_norm_id(po.po_number) == _norm_id(gold.get("po_number")),
        po_date=str(po.po_date) == str(gold.get("po_date")),
        postal_code=zip_ok,
        line_count=(len(gold_lines), len(po.lines)),
        line_fields=(right, 3 * len(gold_lines)),
        errors=errors,
    )


def score_dir(root: Path = DEFAULT_DIR) -> list[ExternalScore]:
    """Score every document ``gold.json`` names under ``root/docs``."""
    gold: dict[str, dict[str, object]] = json.loads((root / "gold.json").read_text())
    return [score_one(name, g, (root / "docs" / name).read_bytes()) for name, g in sorted(gold.items())]


def format_rows(scores: Iterable[ExternalScore]) -> str:
    """One row per document, then totals."""
    rows = ["document                              po  date zip lines    fields  exact"]
    scores = list(scores)
    for s in scores:
        g, r = s.line_count
        ok, tot = s.line_fields
        rows.append(f"{s.name:<37} {'Y' if s.po_number else '-':>2} {'Y' if s.po_date else '-':>5} "
                    f"{'Y' if s.postal_code else '-':>3} {r:>2}/{g:<3} {ok:>4}/{tot:<4} {'Y' if s.exact else '-':>5}"
                    + (f"  [{s.errors[0][:60]}]" if s.errors else ""))  # fmt: skip
    n = len(scores)
    ok_f = sum(s.line_fields[0] for s in scores)
    tot_f = sum(s.line_fields[1] for s in scores)
    counts = sum(s.line_count[0] == s.line_count[1] for s in scores)
    rows.append(
        f"totals: po {sum(s.po_number for s in scores)}/{n}, date {sum(s.po_date for s in scores)}/{n}, "
        f"zip {sum(s.postal_code for s in scores)}/{n}, line count {counts}/{n}, "
        f"line fields {ok_f}/{tot_f}, exact {sum(s.exact for s in scores)}/{n}"
    )
    return "\n".join(rows)


# =====================================================================================================
# The ``intake-external`` eval suite: every external source, per format and per source, through the
# parsers and through the whole pipeline.
# =====================================================================================================

FIELDS = ("po_number", "po_date", "ship_to", "part", "quantity", "unit", "unit_price")
LINE_FIELDS = ("part", "quantity", "unit", "unit_price")
EXTERNAL_SPEC = NetworkSpec(seed=29, nodes=3, skus=12, customers=2, orders=0)
"""The network the external master data is added to (nodes, carriers; its own few customers and
SKUs are never what an external document names)."""
PLACEHOLDER_PRICE = Decimal("1.00")
"""List price of an item whose price no expected output states (the price an order gets when the
PO states none either)."""


def _key(value: object) -> str:
    return re.sub(r"\s+", "", str(value or "")).upper()


def _line_ids(line: POLine) -> set[str]:
    return {_key(p.value) for p in line.product_ids if p.value and p.value.strip()}


_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\b")


def _postal(party: Party | None) -> str | None:
    """The ship-to's postal code: the field, else the last ZIP in its address lines."""
    if party is None:
        return None
    if party.postal_code and party.postal_code.strip():
        return party.postal_code.strip()
    for text in reversed([*party.address_lines, party.city or ""]):
        found = _ZIP.findall(text)
        if found:
            return str(found[-1])
    return None


class FieldCount(BaseModel):
    """True positives, false positives and false negatives of one field."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, gold: object, got: object, right: bool) -> bool:
        """Count one comparison; a field the gold does not state is not scored (partial gold)."""
        if gold is None:
            return True
        if right:
            self.tp += 1
            return True
        self.fn += 1
        self.fp += got is not None
        return False


class OrderScore(BaseModel):
    """One gold order against the purchase order read for it (None: none was)."""

    fields: dict[str, FieldCount]
    exact: bool
    gold_lines: int
    read_lines: int
    diffs: list[str] = Field(default_factory=list)
    """``field: expected ..., found ...`` for what is wrong (the report's diff)."""
    line_pairs: list[tuple[int, int]] = Field(default_factory=list)
    """(gold line, read line) pairs, for the created-order check."""


def _price_ok(gold: Decimal, got: Decimal | None) -> bool:
    return got is not None and abs(got - gold) < Decimal("0.00005")


def _pair_lines(gold: GoldOrder, po: PurchaseOrder) -> list[tuple[int, int | None]]:
    """Gold line -> read line: by a shared item code (nearest position first), then by position."""
    used: set[int] = set()
    pairs: dict[int, int | None] = {}
    read_ids = [_line_ids(ln) for ln in po.lines]
    for gi, gl in enumerate(gold.lines):
        want = {_key(p) for p in gl.part_ids}
        cands = [ri for ri, ids in enumerate(read_ids) if ri not in used and ids & want] if want else []
        if cands:
            best = min(cands, key=lambda ri: abs(ri - gi))
            used.add(best)
            pairs[gi] = best
    for gi in range(len(gold.lines)):
        if gi not in pairs:
            pairs[gi] = gi if gi < len(po.lines) and gi not in used else None
            if pairs[gi] is not None:
                used.add(gi)
    return [(gi, pairs[gi]) for gi in range(len(gold.lines))]


@dataclass
class _Scorer:
    """Counts per field and the diff lines of one order; :meth:`check` records one comparison."""

    fields: dict[str, FieldCount] = field(default_factory=lambda: {f: FieldCount() for f in FIELDS})
    diffs: list[str] = field(default_factory=list)

    def check(self, name: str, want: object, got: object, right: bool, where: str = "") -> bool:
        ok = self.fields[name].add(want, got, right)
        if not ok:
            self.diffs.append(f"{where}{name}: expected {want}, found {got}")
        return ok

    def header(self, gold: GoldOrder, po: PurchaseOrder | None) -> bool:
        """PO number, date, and the ship-to by ZIP (else by its party id)."""
        ok = self.check("po_number", gold.po_number, po.po_number if po else None,
                        po is not None and _key(po.po_number) == _key(gold.po_number))  # fmt: skip
        ok &= self.check(
            "po_date", gold.po_date, po.po_date if po else None, po is not None and po.po_date == gold.po_date
        )
        st = gold.ship_to
        party = po.ship_to if po else None
        if st is not None and st.postal_code:
            got_zip = _postal(party)
            ok &= self.check(
                "ship_to", st.postal_code, got_zip, bool(got_zip) and _key(got_zip).startswith(_key(st.postal_code))
            )
        elif st is not None and st.party_id:
            got_id = party.id if party else None
            ok &= self.check("ship_to", st.party_id, got_id, _key(got_id) == _key(st.party_id) and got_id is not None)
        return ok

    def missing_line(self, gl: Any, where: str) -> None:
        for name in LINE_FIELDS:
            want = gl.part_ids or None if name == "part" else getattr(gl, name)
            self.fields[name].add(want, None, False)
        self.diffs.append(f"{where}missing")

    def line(self, gl: Any, rl: Any, where: str) -> bool:
        """Part (any of the gold ids), quantity, unit and price of a paired line."""
        ids = _line_ids(rl)
        ok = self.check("part", "/".join(gl.part_ids) or None, "/".join(sorted(ids)) or None,
                        bool(ids & {_key(p) for p in gl.part_ids}), where)  # fmt: skip
        qty_ok = rl.quantity is not None and gl.quantity is not None and rl.quantity == gl.quantity
        ok &= self.check("quantity", gl.quantity, rl.quantity, qty_ok, where)
        unit = canonical_unit(rl.unit)
        ok &= self.check("unit", gl.unit, unit, unit == gl.unit, where)
        ok &= self.check("unit_price", gl.unit_price, rl.unit_price,
                         gl.unit_price is not None and _price_ok(gl.unit_price, rl.unit_price), where)  # fmt: skip
        return ok

    def extra_lines(self, gold: GoldOrder, lines: Sequence[Any], extra: list[int]) -> None:
        """Lines read that the order does not have: a false positive in every field the gold scores."""
        scored: set[str] = set()
        for gl in gold.lines:
            scored |= {"part"} if gl.part_ids else set()
            scored |= {name for name in ("quantity", "unit", "unit_price") if getattr(gl, name) is not None}
        for ri in extra:
            rl = lines[ri]
            values = {
                "part": _line_ids(rl) or None,
                "quantity": rl.quantity,
                "unit": rl.unit,
                "unit_price": rl.unit_price,
            }
            for name in scored:
                self.fields[name].fp += values[name] is not None
        if extra:
            self.diffs.append(f"lines: expected {len(gold.lines)}, found {len(lines)} ({len(extra)} not in the order)")


def score_order(gold: GoldOrder, po: PurchaseOrder | None) -> OrderScore:
    """Field counts and exactness of ``po`` against ``gold`` (see the module docstring for the rules)."""
    sc = _Scorer()
    ok = sc.header(gold, po)
    lines = po.lines if po else []
    pairs = _pair_lines(gold, po) if po else [(gi, None) for gi in range(len(gold.lines))]
    matched: list[tuple[int, int]] = []
    for gi, ri in pairs:
        gl = gold.lines[gi]
        where = f"line {gi + 1}{' (' + gl.part_ids[0] + ')' if gl.part_ids else ''} "
        if ri is None:
            sc.missing_line(gl, where)
            ok = False
            continue
        matched.append((gi, ri))
        ok &= sc.line(gl, lines[ri], where)
    extra = [ri for ri in range(len(lines)) if ri not in {r for _, r in matched}]
    sc.extra_lines(gold, lines, extra)
    ok = ok and not extra
    return OrderScore(fields=sc.fields, exact=ok and po is not None, gold_lines=len(gold.lines),
                      read_lines=len(lines), diffs=sc.diffs, line_pairs=matched)  # fmt: skip


def pair_orders(golds: Sequence[GoldOrder], read: Sequence[PurchaseOrder]) -> list[int | None]:
    """For each gold order, the index of the purchase order read for it: same PO number first, then
    the remaining ones in document order."""
    used: set[int] = set()
    out: list[int | None] = [None] * len(golds)
    for gi, g in enumerate(golds):
        for ri, po in enumerate(read):
            if ri not in used and g.po_number is not None and _key(po.po_number) == _key(g.po_number):
                out[gi] = ri
                used.add(ri)
                break
    rest = iter(ri for ri in range(len(read)) if ri not in used)
    for gi in range(len(golds)):
        if out[gi] is None:
            out[gi] = next(rest, None)
    return out


class DocScore(BaseModel):
    """A document's parsing score: its gold orders against the purchase orders read from it."""

    case_id: str
    source: str
    format: str
    negative: bool
    orders: int
    read_orders: int
    exact_orders: int
    extra_orders: int = 0
    """Purchase orders read beyond the gold's (an invented order)."""
    fields: dict[str, FieldCount]
    diffs: list[str] = Field(default_factory=list)
    pairs: list[int | None] = Field(default_factory=list)
    order_scores: list[OrderScore] = Field(default_factory=list)


def score_doc(doc: ExternalDoc, read: Sequence[PurchaseOrder]) -> DocScore:
    """Score what was read from ``doc`` (an invoice is scored by the suite's pipeline checks, not here)."""
    fields = {f: FieldCount() for f in FIELDS}
    pairs = pair_orders(doc.orders, read)
    scores = []
    diffs: list[str] = []
    for k, (gold, ri) in enumerate(zip(doc.orders, pairs, strict=True)):
        s = score_order(gold, read[ri] if ri is not None else None)
        scores.append(s)
        for name, c in s.fields.items():
            fields[name].tp += c.tp
            fields[name].fp += c.fp
            fields[name].fn += c.fn
        prefix = f"order {k + 1} " if len(doc.orders) > 1 else ""
        if ri is None:
            diffs.append(f"{prefix}not read: expected PO {gold.po_number}, found no purchase order for it")
        else:
            diffs += [prefix + d for d in s.diffs]
    extra = max(0, len(read) - len(doc.orders)) if not doc.negative else 0
    if extra:
        diffs.append(f"orders: expected {len(doc.orders)}, found {len(read)}")
    return DocScore(
        case_id=doc.case_id, source=doc.source, format=doc.format, negative=doc.negative, orders=len(doc.orders),
        read_orders=len(read), exact_orders=sum(s.exact for s in scores), extra_orders=extra, fields=fields,
        diffs=diffs, pairs=pairs, order_scores=scores,
    )  # fmt: skip


# --- master data --------------------------------------------------------------------------------------


class MasterData(BaseModel):
    """What an installation would hold about these buyers before their first PO arrives, taken from
    the corpus's gold (never from a document, never from what intake read):

    * one customer per buyer: the gold's buyer name, or for EDI the sender id the expected output
      names (as its EDI id, and its GLN when it is one); no e-mail or account number the documents
      use (the gold has none), so mail and PDF buyers are known by name only;
    * its ship-to addresses as the gold states them; where the expected output gives only a party
      code (an EDIFACT GLN, a store number) the address id is that code and the street and city
      read ``(on file)``;
    * its items: our SKU is the vendor part number where the buyer prints one, else a new
      ``XS-nnnnn``, with a cross-reference (the learned part mappings) from every code the buyer
      uses; the unit the buyer orders in is the item's base unit; the gold's price is the contract
      price (:data:`PLACEHOLDER_PRICE` where no expected output states one); stock at one node.

    This is what makes an auto-created order possible at all for buyers outside the generated
    network; whether intake then creates one, and whether it is right, is what the suite measures."""

    customers: list[dict[str, str | None]] = Field(default_factory=list)
    addresses: list[dict[str, str]] = Field(default_factory=list)
    products: list[dict[str, str]] = Field(default_factory=list)
    prices: list[tuple[str, str, str]] = Field(default_factory=list)
    """(customer id, sku, price)."""
    xrefs: list[tuple[str, str, str]] = Field(default_factory=list)
    """(customer id, the buyer's code, sku)."""
    expect: dict[str, list[dict[str, Any] | None]] = Field(default_factory=dict)
    """case id -> per gold order: customer, ship-to address and per gold line (sku, quantity, price)
    an order created for it must carry (None: no correct order can be created from the master data)."""

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def _buyer_key(gold: GoldOrder) -> str | None:
    if gold.buyer_id:
        return f"id:{gold.buyer_id.strip().upper()}"
    if gold.buyer_name:
        return f"name:{re.sub(r'[^a-z0-9]', '', gold.buyer_name.lower())}"
    return None


@dataclass
class _MasterBuilder:
    """Customers, ship-tos and items made up as the gold orders name them, each once (keyed by
    what identifies it in the documents)."""

    md: MasterData = field(default_factory=MasterData)
    customers: dict[str, str] = field(default_factory=dict)
    addresses: dict[tuple[str, str], str] = field(default_factory=dict)
    skus: dict[tuple[str, str], str] = field(default_factory=dict)
    prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    products: dict[str, dict[str, str]] = field(default_factory=dict)

    def expected(self, gold: GoldOrder) -> dict[str, Any] | None:
        """The order intake should create for ``gold`` (None: its buyer cannot be told)."""
        key = _buyer_key(gold)
        if key is None:
            return None
        cid = self.customer(key, gold)
        ship_id = self.ship_to(cid, gold)
        lines = self.lines(cid, gold)
        return {"customer_id": cid, "ship_to_id": ship_id, "po_number": gold.po_number,
                "lines": sorted(lines) if lines is not None else None}  # fmt: skip

    def customer(self, key: str, gold: GoldOrder) -> str:
        if key not in self.customers:
            cid = f"XC-{len(self.customers) + 1:03d}"
            self.customers[key] = cid
            edi = gold.buyer_id.strip() if gold.buyer_id else None
            self.md.customers.append({
                "id": cid, "name": gold.buyer_name or f"EDI partner {edi}", "account_number": f"XA{cid[3:]}",
                "email": f"purchasing@{cid.lower()}.invalid", "email_domain": f"{cid.lower()}.invalid",
                "edi_id": edi, "gln": edi if edi and edi.isdigit() and len(edi) == 13 else None,
                "price_list_id": f"XPL-{cid}",
            })  # fmt: skip
        return self.customers[key]

    def ship_to(self, cid: str, gold: GoldOrder) -> str | None:
        """The ship-to's address id (its party id where that fits and is free)."""
        st = gold.ship_to
        if st is None or not (st.postal_code or st.party_id or st.street):
            return None
        akey = (cid, _key(st.party_id or "") + "|" + _key(st.street or "") + "|" + _key(st.postal_code or ""))
        if akey not in self.addresses:
            taken = {a["id"] for a in self.md.addresses}
            aid = st.party_id.strip() if st.party_id and len(st.party_id.strip()) <= 32 else ""
            if not aid or aid in taken:
                aid = f"XADR-{len(self.md.addresses) + 1:04d}"
            self.addresses[akey] = aid
            self.md.addresses.append({
                "id": aid, "customer_id": cid, "label": "ship-to", "name": st.name or gold.buyer_name or "",
                "street": st.street or "(on file)", "city": st.city or "(on file)",
                "state": (st.state or "ZZ")[:2], "postal_code": (st.postal_code or "")[:10],
            })  # fmt: skip
        return self.addresses[akey]

    def lines(self, cid: str, gold: GoldOrder) -> list[tuple[str, str, str]] | None:
        """(SKU, quantity, price) per line; None when a line has no part or a fractional quantity
        (no exact order to expect)."""
        lines: list[tuple[str, str, str]] | None = []
        for gl in gold.lines:
            if not gl.part_ids or gl.quantity is None or lines is None:
                lines = None
                continue
            sku = self.sku(cid, gl)
            qty = gl.quantity
            if qty != qty.to_integral_value():
                lines = None
                continue
            lines.append((sku, str(int(qty)), str(self.prices[(cid, sku)])))
        return lines

    def sku(self, cid: str, gl: Any) -> str:
        """The item for the customer's part number: the vendor part where it fits, else a new SKU;
        the customer's other part numbers become cross-references."""
        pkey = (cid, _key(gl.part_ids[0]))
        if pkey not in self.skus:
            vendor = (gl.vendor_part or "").strip()
            sku = vendor if vendor and len(vendor) <= 32 and vendor not in self.products else ""
            sku = sku or f"XS-{len(self.products) + 1:05d}"
            self.skus[pkey] = sku
            price = gl.unit_price if gl.unit_price is not None else PLACEHOLDER_PRICE
            self.products[sku] = {"sku": sku, "name": (gl.description or gl.part_ids[0])[:200],
                                  "uom": gl.unit or "EA", "list_price": str(price)}  # fmt: skip
            self.prices[(cid, sku)] = price
            for code in gl.part_ids:
                if _key(code) != _key(sku):
                    self.md.xrefs.append((cid, code, sku))
        return self.skus[pkey]


def build_master_data(docs: Sequence[ExternalDoc]) -> MasterData:
    """The master data for ``docs`` (see :class:`MasterData`); deterministic."""
    b = _MasterBuilder()
    for doc in docs:
        b.md.expect[doc.case_id] = [b.expected(gold) for gold in doc.orders]
    b.md.products = list(b.products.values())
    b.md.prices = [(c, s, str(p)) for (c, s), p in b.prices.items()]
    return b.md


def seed_master_data(db: Database, md: MasterData, clock: Clock) -> None:
    """Write ``md`` into a migrated network database (customers, addresses, items, prices, stock,
    cross-references)."""
    with db.begin() as s:
        node = s.scalars(select(NodeRow.id).order_by(NodeRow.id)).first()
        for c in md.customers:
            s.add(PriceListRow(id=c["price_list_id"], name=f"{c['name']} contract"[:128], currency="USD"))
        s.flush()
        for c in md.customers:
            s.add(CustomerRow(id=c["id"], name=c["name"], account_number=c["account_number"], tier="standard",
                              email=c["email"], email_domain=c["email_domain"], edi_id=c["edi_id"], gln=c["gln"],
                              price_list_id=c["price_list_id"]))  # fmt: skip
        for p in md.products:
            s.add(
                ProductRow(
                    sku=p["sku"], name=p["name"], description=p["name"], weight_kg=1.0, length_cm=10.0,
                    width_cm=10.0, height_cm=10.0, base_uom=p["uom"], list_price=Decimal(p["list_price"]),
                )
            )  # fmt: skip
        s.flush()
        for a in md.addresses:
            s.add(AddressRow(**a, country="US", lat=0.0, lon=0.0))
        for p in md.products:
            s.add(ProductUomRow(sku=p["sku"], uom=p["uom"], qty_in_base=1))
            if node is not None:
                s.add(InventoryRow(node_id=node, sku=p["sku"], on_hand=1_000_000, reserved=0))
        for cid, sku, price in md.prices:
            plid = next(c["price_list_id"] for c in md.customers if c["id"] == cid)
            s.add(PriceListItemRow(price_list_id=plid, sku=sku, unit_price=Decimal(price)))
    mappings = LearnedMappings(db, clock)
    for cid, code, sku in md.xrefs:
        mappings.remember(str(cid), "part", code, sku, by="eval-master-data")


# --- the suite's documents, template and cases -------------------------------------------------------


@dataclass(frozen=True)
class ExternalSuite:
    """The suite's documents (by case id) and their master data, loaded once per process."""

    docs: dict[str, ExternalDoc]
    master: MasterData


_SUITE: dict[str, ExternalSuite] = {}


def external_suite(corpora: Path | None = None) -> ExternalSuite:
    """Every external case and the master data for them (cached per process)."""
    key = str(corpora or "")
    if key not in _SUITE:
        docs = external_docs(corpora)
        _SUITE[key] = ExternalSuite(docs={d.case_id: d for d in docs}, master=build_master_data(docs))
    return _SUITE[key]


def prepare_external_template(workdir: Path, suite: ExternalSuite | None = None) -> Path:
    """A migrated SQLite file: :data:`EXTERNAL_SPEC`'s network plus the external master data;
    made once per run (before the workers fork) and copied per case."""
    from evals.env import prepare_template

    importlib.import_module("intake.llm_extract")  # what the parse sandbox imports: seconds, once, before the fork
    suite = suite or external_suite()
    path = workdir / "templates" / f"external-{suite.master.digest()}.sqlite"
    if path.exists():
        return path
    base = prepare_template(workdir, EXTERNAL_SPEC)
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex}.tmp")
    shutil.copyfile(base, tmp)
    db = make_database(url=f"sqlite:///{tmp}")
    try:
        seed_master_data(db, suite.master, FixedClock(datetime.combine(EXTERNAL_SPEC.business_date, dtime(9, 0),
                                                                       tzinfo=UTC)))  # fmt: skip
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    finally:
        db.dispose()
    os.replace(tmp, path)
    return path


class _KeptParse(DocumentStore):
    """The pipeline's document store, keeping what its parse read so the suite scores exactly that."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: dict[str, ParseOutcome] = {}

    def parse(self, document_id: str) -> ParseOutcome:
        out = super().parse(document_id)
        self.kept[document_id] = out
        return out


def classification_available() -> bool:
    """Whether intake classifies documents (``intake/doctype.py``); then an invoice must be answered
    "not an order", not merely left without an order."""
    return importlib.util.find_spec("intake.doctype") is not None


def _not_an_order(result: IntakeResult, findings: Sequence[Finding]) -> bool:
    codes = {f.code for f in [*result.findings, *findings]}
    return str(result.status) == "not_an_order" or "not_an_order" in codes


def _created_wrong(order_id: str, expect: dict[str, Any] | None, oms: Any) -> str | None:
    """Why the created order is wrong (None: it is what the gold and the master data say)."""
    if expect is None or expect.get("lines") is None:
        return f"order {order_id} created for a PO whose gold no master data can make right"
    order = oms.get_order(order_id)
    got = sorted(
        (ln.sku, str(ln.quantity), str(Decimal(ln.unit_price).quantize(Decimal("0.0001")))) for ln in order.lines
    )
    want = sorted((s, q, str(Decimal(p).quantize(Decimal("0.0001")))) for s, q, p in expect["lines"])
    wrong = [
        name for name, a, b in (
            ("customer", order.customer_id, expect["customer_id"]), ("ship_to", order.ship_to_id, expect["ship_to_id"]),
            ("po_number", order.external_ref, expect["po_number"]), ("lines", got, want),
        ) if a != b
    ]  # fmt: skip
    return f"order {order_id} created with wrong {', '.join(wrong)}" if wrong else None


def external_case(case_id: str, workdir: Path, trial: int = 0) -> CaseResult:
    """One external document through the whole pipeline on its own copy of the seeded network,
    received on its PO date (the day the buyer sent it); scores what the pipeline's parse read and
    what it decided, and checks every order it created against the gold."""
    from evals.env import CaseEnv

    suite = external_suite()
    doc = suite.docs[case_id]
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", case_id) + f"-t{trial}"
    case_dir = workdir / "cases" / tag
    case_dir.mkdir(parents=True, exist_ok=True)
    target = case_dir / "net.sqlite"
    shutil.copyfile(prepare_external_template(workdir, suite), target)
    received = next((o.po_date for o in doc.orders if o.po_date is not None), None) or EXTERNAL_SPEC.business_date
    db = make_database(url=f"sqlite:///{target}")
    try:
        env = CaseEnv.build(db, replace(EXTERNAL_SPEC, business_date=received), None)
        store = _KeptParse(db, env.clock, case_dir / "docs")
        deps = IntakeDeps(db=db, clock=env.clock, documents=store, gateway=env.gateway)
        stored = store.receive(doc.read(), channel="eval", filename=doc.filename)
        started = time.perf_counter()
        result = process_document(stored.id, deps)
        pipeline_s = time.perf_counter() - started
        parsed = store.kept.get(stored.id)
        read = list(parsed.purchase_orders) if parsed else []
        findings = list(parsed.findings) if parsed else []
        score = score_doc(doc, read)
        expects = suite.master.expect.get(case_id, [])
        po_to_gold = {ri: gi for gi, ri in enumerate(score.pairs) if ri is not None}
        decisions: dict[str, int] = {}
        created = parked = 0
        wrong: list[str] = []
        for out in result.outcomes:
            name = out.decision if out.status != "awaiting_approval" else "auto_create (parked)"
            decisions[name] = decisions.get(name, 0) + 1
            parked += out.status == "awaiting_approval"
            if out.status == "created" and out.order_id:
                created += 1
                gi = po_to_gold.get(out.po_index)
                why = _created_wrong(out.order_id, expects[gi] if gi is not None and gi < len(expects) else None,
                                     env.adapters.oms)  # fmt: skip
                if doc.negative:
                    why = f"order {out.order_id} created from a document that is not a purchase order"
                if why:
                    wrong.append(why)
        if result.status != "processed":
            decisions[str(result.status)] = decisions.get(str(result.status), 0) + 1
    finally:
        db.dispose()
        shutil.rmtree(case_dir, ignore_errors=True)
    answered = _not_an_order(result, findings)
    failures = [f"expected no auto-created order with a wrong field, found: {w}" for w in wrong]
    if doc.negative:
        if created:
            failures.append(f"expected no order from a non-order ({doc.note or 'not a purchase order'}), "
                            f"found {created} created")  # fmt: skip
        if classification_available() and not answered:
            failures.append("expected the answer 'not an order', found " + (
                f"{len(read)} purchase order(s) read (PO number {read[0].po_number!r})" if read
                else f"status {result.status}"))  # fmt: skip
    else:
        failures += score.diffs[:8] + ([f"... {len(score.diffs) - 8} more"] if len(score.diffs) > 8 else [])
        if answered:
            failures.append("expected a purchase order, found the answer 'not an order'")
    metrics: dict[str, Any] = {
        "source": doc.source,
        "format": doc.format,
        "negative": doc.negative,
        "orders": score.orders,
        "read_orders": score.read_orders,
        "exact_orders": score.exact_orders,
        "extra_orders": score.extra_orders,
        "fields": {k: v.model_dump() for k, v in score.fields.items()},
        "status": str(result.status),
        "decisions": decisions,
        "auto_created": created,
        "auto_created_wrong": len(wrong),
        "parked": parked,
        "not_an_order": answered,
        "pipeline_s": round(pipeline_s, 4),
    }
    return CaseResult(suite="intake-external", case_id=case_id, category=doc.format, trial=trial,
                      passed=not failures, metrics=metrics, failures=failures)  # fmt: skip


# --- command line -------------------------------------------------------------------------------------


def parse_only_results(docs: Iterable[ExternalDoc]) -> list[CaseResult]:
    """Parse every document (no pipeline, no database) and score it: the suite's parsing numbers in
    seconds, for a developer fixing an extraction class."""
    out = []
    for doc in docs:
        _fmt, orders, _findings = parse_bytes(doc.read(), filename=doc.filename, document=doc.filename)
        s = score_doc(doc, [] if doc.negative else orders)
        out.append(CaseResult(suite="intake-external", case_id=doc.case_id, category=doc.format,
                              passed=s.exact_orders == s.orders and not s.extra_orders,
                              metrics={"source": doc.source, "format": doc.format, "negative": doc.negative,
                                       "orders": s.orders, "read_orders": len(orders), "exact_orders": s.exact_orders,
                                       "extra_orders": s.extra_orders,
                                       "fields": {k: v.model_dump() for k, v in s.fields.items()}}))  # fmt: skip
    return out


def format_groups(metrics: dict[str, Any]) -> str:
    """Per format and per source: documents, exact orders, macro F1 and F1 per field."""
    head = f"{'':<24}{'docs':>5}{'exact':>9}{'macro':>7}" + "".join(f"{f[:8]:>9}" for f in FIELDS)
    rows = []
    for group in ("by_format", "by_source"):
        rows += ["", f"{group.removeprefix('by_')}:", head]
        for name, g in (metrics.get(group) or {}).items():
            f1 = g.get("f1") or {}
            exact = f"{g.get('exact_orders', 0)}/{g.get('orders', 0)}"
            macro = g.get("macro_f1")
            rows.append(f"{name:<24}{g.get('documents', 0):>5}{exact:>9}{'-' if macro is None else f'{macro:.3f}':>7}"
                        + "".join(f"{'-' if f1.get(f) is None else f'{f1[f]:.3f}':>9}" for f in FIELDS))  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a developer's command
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--suite":
        root = Path(args[1]) if len(args) > 1 else None
        docs = (
            load_po_erp_styles(root, source=root.name)
            if root and (root / "gold.json").exists()
            else external_docs(root)
        )
        m = {**external_metrics(parse_only_results(docs)), "mode": "parsers only (no pipeline, no decisions)"}
        print(json.dumps({k: v for k, v in m.items() if not isinstance(v, dict)}))
        print(format_groups(m))
        return
    print(format_rows(score_dir(Path(args[0]) if args else DEFAULT_DIR)))


if __name__ == "__main__":  # pragma: no cover
    main()
