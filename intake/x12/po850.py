"""Map one X12 850 transaction set (ST..SE segments) to a :class:`~intake.model.PurchaseOrder`.

Only the segments the intake pipeline uses are mapped (BEG, CUR, REF, PER, DTM, TD5, N1-N4, PO1,
PID, PO4, SAC, CTT, AMT), each by its own small handler (``_Mapper._HANDLERS``). The other 850
segments partners add (FOB, ITD, SDQ, ...) are passed over quietly; a segment that is no 850
segment at all is an ``unknown_segment`` finding, and one out of its place (a PID before any PO1, a
second BEG) a ``misplaced_segment`` finding, both with their position - nothing is dropped silently.
Every value records a source pointer ``TAG[occurrence].EE`` (occurrence is 1-based within the
transaction set). Problems become findings; this module never raises on bad content.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar

from intake.model import (
    MAX_DOCUMENT_INT,
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

_PARTY_CONTEXT = frozenset({"N2", "N3", "N4", "PER", "REF", "DTM"})
"""Segments that stay inside the N1 loop before them."""
_LINE_ONLY = frozenset({"PID", "PO4"})
"""Segments of the PO1 loop; before the first PO1 they have no line to go to."""

_TAGS_850 = (
    "ST SE BEG CUR REF PER TAX FOB CTP PAM CSH TC2 SAC ITD DIS INC DTM LDT LIN SI PID MEA PWK PKG TD1 TD5 TD3 "
    "TD4 MAN PCT CTB TXI AMT N9 MSG MTX NTE N1 N2 N3 N4 NX2 LM LQ SPI RDR ADV CB1 SPS G61 G62 G53 ADV "
    "PO1 CN1 PO3 PO4 IT8 SDQ IT3 QTY SCH SLN FA1 FA2 CTT ACK LX PAD USD N10 QTY ID4 IN2 G22 G18 PRS "
    "MAN SE"
)
SEGMENTS_850 = frozenset(_TAGS_850.split())
"""Segment ids of the 850 in versions 3040..8010 (header, detail and summary loops): others are unknown."""

_Handler = Callable[["_Mapper", Segment, int], None]


class _Mapper:
    """One 850 to a purchase order: one small handler per segment id (``_HANDLERS``)."""

    _HANDLERS: ClassVar[dict[str, _Handler]]

    def __init__(self, document: str | None) -> None:
        self.document = document
        self.po = PurchaseOrder(document_type="x12-850")
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}
        self.line: POLine | None = None
        self.party: Party | None = None
        self.party_in_detail = False
        self.beg_seen = False
        self.summary = False

    # --- provenance & findings ---
    def src(self, seg: Segment, occ: int, i: int | None) -> Source:
        if i is None:
            return Source(kind="edi", document=self.document, path=f"{seg.tag}[{occ}]", span=(seg.start, seg.end))
        return Source(kind="edi", document=self.document, path=f"{seg.tag}[{occ}].{i:02d}", span=seg.element_span(i))

    def note(self, severity: Severity, code: str, message: str, path: str) -> None:
        source = Source(kind="edi", document=self.document, path=path)
        self.findings.append(Finding(severity=severity, code=code, message=message, source=source))

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
        self, code: str, message: str, seg: Segment, occ: int, i: int | None, severity: Severity = Severity.WARNING
    ) -> None:
        self.findings.append(Finding(severity=severity, code=code, message=message, source=self.src(seg, occ, i)))

    # --- the walk ---
    def run(self, segments: list[Segment], d: Delimiters) -> PurchaseOrder:
        for seg in segments:
            tag = seg.tag
            occ = self.counts[tag] = self.counts.get(tag, 0) + 1
            if tag not in _PARTY_CONTEXT:
                self.party = None
            self.check_place(seg, occ)
            handler = self._HANDLERS.get(tag)
            if handler is not None:
                handler(self, seg, occ)
            elif tag not in SEGMENTS_850:
                self.warn("unknown_segment", f"segment {tag} is not part of an 850; ignored", seg, occ, None)
        self.finish()
        return self.po

    def check_place(self, seg: Segment, occ: int) -> None:
        """Segments out of the 850's order are findings (what they carry is read where it can be)."""
        tag = seg.tag
        problem = ""
        if tag in _LINE_ONLY and self.line is None:
            problem = f"{tag} before the first PO1 has no line; ignored"
        elif tag == "PO1" and self.summary:
            problem = "PO1 after CTT (the summary)"
        if problem:
            self.warn("misplaced_segment", problem, seg, occ, None)

    def finish(self) -> None:
        po = self.po
        if not self.beg_seen:
            self.note(Severity.ERROR, "beg_missing", "850 has no BEG segment", "BEG")
        elif not po.po_number:
            self.note(Severity.ERROR, "po_number_missing", "BEG03 purchase order number is empty", "BEG[1].03")
        if not po.lines:
            self.note(Severity.WARNING, "no_lines", "850 has no PO1 line items", "PO1")
        if po.declared_line_count is not None and po.declared_line_count != len(po.lines):
            self.findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="ctt_line_count_mismatch",
                    message=f"CTT01 declares {po.declared_line_count} lines, the order has {len(po.lines)}",
                    source=po.sources.get("declared_line_count"),
                )
            )

    # --- header ---
    def beg(self, seg: Segment, occ: int) -> None:
        if self.beg_seen:
            return  # the envelope starts a new set at a second BEG; this keeps a direct caller's first
        self.beg_seen = True
        po = self.po
        po.purpose_code = self.put("purpose_code", seg, occ, 1)
        po.order_type = self.put("order_type", seg, occ, 2)
        po.po_number = self.put("po_number", seg, occ, 3)
        raw = seg.get(5)
        if not raw:
            return
        po.po_date = parse_edi_date(raw)
        if po.po_date is None:
            self.warn("bad_date", f"BEG05 {raw!r} is not a date", seg, occ, 5)
        else:
            po.sources["po_date"] = self.src(seg, occ, 5)

    def cur(self, seg: Segment, occ: int) -> None:
        if self.line is None:
            self.po.currency = self.put("currency", seg, occ, 2)

    def ref(self, seg: Segment, occ: int) -> None:
        po = self.po
        qual, value = seg.get(1), seg.get(2) or seg.get(3)
        if self.line is None and qual and value:
            self.put(f"references[{len(po.references)}].value", seg, occ, 2 if seg.get(2) else 3)
            po.references.append(Reference(qualifier=qual, value=value, description=seg.get(3) or None))

    def per(self, seg: Segment, occ: int) -> None:
        if self.line is not None:
            return
        k = len(self.po.contacts)
        comms = [
            Communication(qualifier=seg.get(j), value=seg.get(j + 1))
            for j in (3, 5, 7)
            if seg.get(j) and seg.get(j + 1)
        ]
        contact = Contact(
            function=self.put(f"contacts[{k}].function", seg, occ, 1),
            name=self.put(f"contacts[{k}].name", seg, occ, 2),
            communications=comms,
            party_role=self.party.role if self.party is not None else None,
        )
        self.po.contacts.append(contact)

    def dtm(self, seg: Segment, occ: int) -> None:
        qual, po, line = seg.get(1), self.po, self.line
        if line is None:
            ref = self.date_ref(f"dates[{len(po.dates)}].value", qual, seg, occ, 2)
            if ref is not None:
                po.dates.append(ref)
            return
        ref = self.date_ref(f"lines[{len(po.lines) - 1}].dates[{len(line.dates)}].value", qual, seg, occ, 2)
        if ref is not None:
            line.dates.append(ref)

    def td5(self, seg: Segment, occ: int) -> None:
        if self.line is not None:
            return
        k = len(self.po.carriers)
        self.po.carriers.append(
            Carrier(
                routing_sequence=seg.get(1) or None,
                id_qualifier=seg.get(2) or None,
                id=self.put(f"carriers[{k}].id", seg, occ, 3),
                transport_method=seg.get(4) or None,
                routing=self.put(f"carriers[{k}].routing", seg, occ, 5),
                service_level=seg.get(12) or None,
            )
        )

    # --- parties ---
    def n1(self, seg: Segment, occ: int) -> None:
        if self.line is not None:
            self.party_in_detail = True  # line-level ship-to (SDQ style); not part of the header parties
            return
        self.party_in_detail = False
        k = len(self.po.parties)
        self.party = Party(
            role=self.put(f"parties[{k}].role", seg, occ, 1) or "",
            name=self.put(f"parties[{k}].name", seg, occ, 2),
            id_qualifier=seg.get(3) or None,
            id=self.put(f"parties[{k}].id", seg, occ, 4),
        )
        self.po.parties.append(self.party)

    def header_party(self) -> Party | None:
        """The header party an N2/N3/N4 belongs to (None inside a line-level N1 loop)."""
        return None if self.party_in_detail else self.party

    def n2(self, seg: Segment, occ: int) -> None:
        party = self.header_party()
        if party is not None:
            party.additional_names.extend(v for v in (seg.get(1), seg.get(2)) if v)

    def n3(self, seg: Segment, occ: int) -> None:
        party = self.header_party()
        if party is None:
            return
        k = len(self.po.parties) - 1
        for j in (1, 2):
            v = self.put(f"parties[{k}].address_lines[{len(party.address_lines)}]", seg, occ, j)
            if v:
                party.address_lines.append(v)

    def n4(self, seg: Segment, occ: int) -> None:
        party = self.header_party()
        if party is None:
            return
        k = len(self.po.parties) - 1
        party.city = self.put(f"parties[{k}].city", seg, occ, 1)
        party.state = self.put(f"parties[{k}].state", seg, occ, 2)
        party.postal_code = self.put(f"parties[{k}].postal_code", seg, occ, 3)
        party.country = self.put(f"parties[{k}].country", seg, occ, 4)

    # --- detail ---
    def po1(self, seg: Segment, occ: int) -> None:
        self.line = self._po1(seg, occ)
        self.po.lines.append(self.line)

    def pid(self, seg: Segment, occ: int) -> None:
        line, desc = self.line, seg.get(5)
        if line is None or not desc:
            return
        if line.description is None:
            line.description = self.put(f"lines[{len(self.po.lines) - 1}].description", seg, occ, 5)
        line.descriptions.append(desc)

    def po4(self, seg: Segment, occ: int) -> None:
        if self.line is None:
            return
        k = len(self.po.lines) - 1
        self.line.pack = PackInfo(
            pack=self.num(f"lines[{k}].pack.pack", seg, occ, 1),
            size=self.num(f"lines[{k}].pack.size", seg, occ, 2),
            size_unit=seg.get(3) or None,
            packaging_code=seg.get(4) or None,
        )

    def sac(self, seg: Segment, occ: int) -> None:
        line, po = self.line, self.po
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

    # --- summary ---
    def ctt(self, seg: Segment, occ: int) -> None:
        self.summary = True
        po, raw = self.po, seg.get(1)
        if raw.isascii() and raw.isdigit() and int(raw) > MAX_DOCUMENT_INT:
            self.warn("bad_number", f"CTT01 {raw[:20]!r} is out of range for a line count", seg, occ, 1)
        elif raw.isascii() and raw.isdigit():
            po.declared_line_count = int(raw)
            po.sources["declared_line_count"] = self.src(seg, occ, 1)
        elif raw:
            self.warn("bad_number", f"CTT01 {raw!r} is not a count", seg, occ, 1)
        po.hash_total = self.num("hash_total", seg, occ, 2)

    def amt(self, seg: Segment, occ: int) -> None:
        po = self.po
        amount = self.num(f"amounts[{len(po.amounts)}].value", seg, occ, 2)
        if amount is not None and seg.get(1):
            po.amounts.append(Amount(qualifier=seg.get(1), value=amount))

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


_Mapper._HANDLERS = {
    "BEG": _Mapper.beg,
    "CUR": _Mapper.cur,
    "REF": _Mapper.ref,
    "PER": _Mapper.per,
    "DTM": _Mapper.dtm,
    "TD5": _Mapper.td5,
    "N1": _Mapper.n1,
    "N2": _Mapper.n2,
    "N3": _Mapper.n3,
    "N4": _Mapper.n4,
    "PO1": _Mapper.po1,
    "PID": _Mapper.pid,
    "PO4": _Mapper.po4,
    "SAC": _Mapper.sac,
    "CTT": _Mapper.ctt,
    "AMT": _Mapper.amt,
}


def map_850(
    segments: list[Segment], delimiters: Delimiters, document: str | None
) -> tuple[PurchaseOrder, list[Finding]]:
    """Map the segments of one 850 (ST through SE) to a purchase order plus findings."""
    m = _Mapper(document)
    po = m.run(segments, delimiters)
    return po, m.findings
