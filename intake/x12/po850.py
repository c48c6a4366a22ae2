"""Map one X12 850 transaction set (ST..SE segments) to a :class:`~intake.model.PurchaseOrder`.

Only the segments the intake pipeline uses are mapped (BEG, CUR, REF, PER, DTM, TD5, N1-N4, PO1,
PID, PO4, SAC, CTT, AMT); others are skipped silently because partners add many optional ones.
Every value records a source pointer ``TAG[occurrence].EE`` (occurrence is 1-based within the
transaction set). Problems become findings; this module never raises on bad content.
"""

from __future__ import annotations

from decimal import Decimal

from intake.model import (
    AllowanceCharge,
    Amount,
    Carrier,
    Communication,
    Contact,
    DateRef,
    Finding,
    PackInfo,
    Party,
    POLine,
    ProductId,
    PurchaseOrder,
    Reference,
    Severity,
    Source,
    parse_decimal,
    parse_edi_date,
)
from intake.x12.tokenizer import Delimiters, Segment


class _Mapper:
    def __init__(self, document: str | None) -> None:
        self.document = document
        self.po = PurchaseOrder(document_type="x12-850")
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}

    # --- provenance & findings ---
    def src(self, seg: Segment, occ: int, i: int) -> Source:
        return Source(kind="edi", document=self.document, path=f"{seg.tag}[{occ}].{i:02d}", span=seg.element_span(i))

    def put(self, field: str, seg: Segment, occ: int, i: int) -> str | None:
        """Element ``i`` of ``seg`` (None when empty), recording its source under ``field``."""
        value = seg.get(i)
        if not value:
            return None
        self.po.sources[field] = self.src(seg, occ, i)
        return value

    def num(self, field: str, seg: Segment, occ: int, i: int, *, implied_decimals: int = 0) -> Decimal | None:
        raw = seg.get(i)
        if not raw:
            return None
        value = parse_decimal(raw)
        if value is None:
            self.warn("bad_number", f"{seg.tag}{i:02d} {raw!r} is not a number", seg, occ, i)
            return None
        if implied_decimals:
            value = value.scaleb(-implied_decimals)
        self.po.sources[field] = self.src(seg, occ, i)
        return value

    def date_ref(self, field: str, qualifier: str, seg: Segment, occ: int, i: int) -> DateRef | None:
        raw = seg.get(i)
        if not raw:
            return None
        value = parse_edi_date(raw)
        if value is None:
            self.warn("bad_date", f"{seg.tag}{i:02d} {raw!r} is not a date", seg, occ, i)
        self.po.sources[field] = self.src(seg, occ, i)
        return DateRef(qualifier=qualifier, value=value, raw=raw)

    def warn(
        self, code: str, message: str, seg: Segment, occ: int, i: int, severity: Severity = Severity.WARNING
    ) -> None:
        self.findings.append(Finding(severity=severity, code=code, message=message, source=self.src(seg, occ, i)))

    # --- mapping ---
    def run(self, segments: list[Segment], d: Delimiters) -> PurchaseOrder:
        po = self.po
        line: POLine | None = None
        party: Party | None = None
        party_in_detail = False
        beg_seen = False
        for seg in segments:
            tag = seg.tag
            occ = self.counts[tag] = self.counts.get(tag, 0) + 1
            if tag not in ("N2", "N3", "N4", "PER", "REF", "DTM"):
                party = None
            if tag == "BEG":
                beg_seen = True
                po.purpose_code = self.put("purpose_code", seg, occ, 1)
                po.order_type = self.put("order_type", seg, occ, 2)
                po.po_number = self.put("po_number", seg, occ, 3)
                raw = seg.get(5)
                if raw:
                    po.po_date = parse_edi_date(raw)
                    if po.po_date is None:
                        self.warn("bad_date", f"BEG05 {raw!r} is not a date", seg, occ, 5)
                    else:
                        po.sources["po_date"] = self.src(seg, occ, 5)
            elif tag == "CUR" and line is None:
                po.currency = self.put("currency", seg, occ, 2)
            elif tag == "REF" and line is None:
                k = len(po.references)
                qual, value = seg.get(1), seg.get(2) or seg.get(3)
                if qual and value:
                    self.put(f"references[{k}].value", seg, occ, 2 if seg.get(2) else 3)
                    po.references.append(Reference(qualifier=qual, value=value, description=seg.get(3) or None))
            elif tag == "PER" and line is None:
                k = len(po.contacts)
                comms = [
                    Communication(qualifier=seg.get(j), value=seg.get(j + 1))
                    for j in (3, 5, 7)
                    if seg.get(j) and seg.get(j + 1)
                ]
                contact = Contact(
                    function=self.put(f"contacts[{k}].function", seg, occ, 1),
                    name=self.put(f"contacts[{k}].name", seg, occ, 2),
                    communications=comms,
                    party_role=party.role if party is not None else None,
                )
                po.contacts.append(contact)
            elif tag == "DTM":
                qual = seg.get(1)
                if line is None:
                    ref = self.date_ref(f"dates[{len(po.dates)}].value", qual, seg, occ, 2)
                    if ref is not None:
                        po.dates.append(ref)
                else:
                    k = len(po.lines) - 1
                    ref = self.date_ref(f"lines[{k}].dates[{len(line.dates)}].value", qual, seg, occ, 2)
                    if ref is not None:
                        line.dates.append(ref)
            elif tag == "TD5" and line is None:
                k = len(po.carriers)
                po.carriers.append(
                    Carrier(
                        routing_sequence=seg.get(1) or None,
                        id_qualifier=seg.get(2) or None,
                        id=self.put(f"carriers[{k}].id", seg, occ, 3),
                        transport_method=seg.get(4) or None,
                        routing=self.put(f"carriers[{k}].routing", seg, occ, 5),
                        service_level=seg.get(12) or None,
                    )
                )
            elif tag == "N1":
                if line is not None:
                    party_in_detail = True  # line-level ship-to (SDQ style); not part of the header parties
                    continue
                party_in_detail = False
                k = len(po.parties)
                party = Party(
                    role=self.put(f"parties[{k}].role", seg, occ, 1) or "",
                    name=self.put(f"parties[{k}].name", seg, occ, 2),
                    id_qualifier=seg.get(3) or None,
                    id=self.put(f"parties[{k}].id", seg, occ, 4),
                )
                po.parties.append(party)
            elif tag in ("N2", "N3", "N4") and party is not None and not party_in_detail:
                k = len(po.parties) - 1
                if tag == "N2":
                    party.additional_names.extend(v for v in (seg.get(1), seg.get(2)) if v)
                elif tag == "N3":
                    for j in (1, 2):
                        v = self.put(f"parties[{k}].address_lines[{len(party.address_lines)}]", seg, occ, j)
                        if v:
                            party.address_lines.append(v)
                else:
                    party.city = self.put(f"parties[{k}].city", seg, occ, 1)
                    party.state = self.put(f"parties[{k}].state", seg, occ, 2)
                    party.postal_code = self.put(f"parties[{k}].postal_code", seg, occ, 3)
                    party.country = self.put(f"parties[{k}].country", seg, occ, 4)
            elif tag == "PO1":
                line = self._po1(seg, occ)
                po.lines.append(line)
            elif tag == "PID" and line is not None:
                desc = seg.get(5)
                if desc:
                    k = len(po.lines) - 1
                    if line.description is None:
                        line.description = self.put(f"lines[{k}].description", seg, occ, 5)
                    line.descriptions.append(desc)
            elif tag == "PO4" and line is not None:
                k = len(po.lines) - 1
                line.pack = PackInfo(
                    pack=self.num(f"lines[{k}].pack.pack", seg, occ, 1),
                    size=self.num(f"lines[{k}].pack.size", seg, occ, 2),
                    size_unit=seg.get(3) or None,
                    packaging_code=seg.get(4) or None,
                )
            elif tag == "SAC":
                target = po.allowances_charges if line is None else line.allowances_charges
                prefix = "" if line is None else f"lines[{len(po.lines) - 1}]."
                k = len(target)
                # SAC05 is type N2: an amount in cents without a decimal point.
                target.append(
                    AllowanceCharge(
                        indicator=seg.get(1),
                        code=seg.get(2) or None,
                        amount=self.num(f"{prefix}allowances_charges[{k}].amount", seg, occ, 5, implied_decimals=2),
                        percent=self.num(f"{prefix}allowances_charges[{k}].percent", seg, occ, 7),
                        description=seg.get(15) or None,
                    )
                )
            elif tag == "CTT":
                raw = seg.get(1)
                if raw.isdigit():
                    po.declared_line_count = int(raw)
                    po.sources["declared_line_count"] = self.src(seg, occ, 1)
                elif raw:
                    self.warn("bad_number", f"CTT01 {raw!r} is not a count", seg, occ, 1)
                po.hash_total = self.num("hash_total", seg, occ, 2)
            elif tag == "AMT":
                k = len(po.amounts)
                amount = self.num(f"amounts[{k}].value", seg, occ, 2)
                if amount is not None and seg.get(1):
                    po.amounts.append(Amount(qualifier=seg.get(1), value=amount))
        if not beg_seen:
            self.findings.append(
                Finding(
                    severity=Severity.ERROR,
                    code="beg_missing",
                    message="850 has no BEG segment",
                    source=Source(kind="edi", document=self.document, path="BEG"),
                )
            )
        elif not po.po_number:
            self.findings.append(
                Finding(
                    severity=Severity.ERROR,
                    code="po_number_missing",
                    message="BEG03 purchase order number is empty",
                    source=Source(kind="edi", document=self.document, path="BEG[1].03"),
                )
            )
        if not po.lines:
            self.findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="no_lines",
                    message="850 has no PO1 line items",
                    source=Source(kind="edi", document=self.document, path="PO1"),
                )
            )
        if po.declared_line_count is not None and po.declared_line_count != len(po.lines):
            self.findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="ctt_line_count_mismatch",
                    message=f"CTT01 declares {po.declared_line_count} lines, the order has {len(po.lines)}",
                    source=po.sources.get("declared_line_count"),
                )
            )
        return po

    def _po1(self, seg: Segment, occ: int) -> POLine:
        k = len(self.po.lines)
        p = f"lines[{k}]."
        line = POLine(
            line_number=self.put(p + "line_number", seg, occ, 1),
            quantity=self.num(p + "quantity", seg, occ, 2),
            unit=self.put(p + "unit", seg, occ, 3),
            unit_price=self.num(p + "unit_price", seg, occ, 4),
            price_basis=self.put(p + "price_basis", seg, occ, 5),
        )
        if line.quantity is None:
            self.warn("line_quantity_missing", f"PO1 line {k + 1} has no quantity", seg, occ, 2)
        for j in range(6, len(seg.elements) - 1, 2):
            qual, value = seg.get(j), seg.get(j + 1)
            if qual and value:
                self.po.sources[f"{p}product_ids[{len(line.product_ids)}]"] = self.src(seg, occ, j + 1)
                line.product_ids.append(ProductId(qualifier=qual, value=value))
            elif value:
                self.warn("product_id_qualifier_missing", f"PO1{j + 1:02d} {value!r} has no qualifier", seg, occ, j)
        return line


def map_850(
    segments: list[Segment], delimiters: Delimiters, document: str | None
) -> tuple[PurchaseOrder, list[Finding]]:
    """Map the segments of one 850 (ST through SE) to a purchase order plus findings."""
    m = _Mapper(document)
    po = m.run(segments, delimiters)
    return po, m.findings
