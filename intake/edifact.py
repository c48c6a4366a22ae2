"""EDIFACT ORDERS (D96A and later) to the canonical :class:`~intake.model.PurchaseOrder`.

We use our own tokenizer rather than pydifact: it is small, keeps character offsets for source
pointers, and turns every oddity into a finding instead of an exception. It honours the UNA service
string advice (or the defaults ``:+.? '`` without it) and the release character.

Source pointers use the same shape as X12: ``TAG[occurrence].EE`` or ``TAG[occurrence].EE.CC``
(element and component positions, 1-based, two digits), e.g. ``LIN[3].03.01`` for the item
number in C212 of the third LIN, ``QTY[2].01.02`` for the quantity.

Never raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from intake.model import (
    AllowanceCharge,
    Amount,
    Carrier,
    Communication,
    Contact,
    DateRef,
    Finding,
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
from intake.x12.tokenizer import MAX_SEGMENTS, decode

__all__ = [
    "EdifactDocument",
    "EdifactInterchange",
    "EdifactMessage",
    "EdifactSegment",
    "ServiceChars",
    "parse_edifact",
    "tokenize_edifact",
]


@dataclass(frozen=True, slots=True)
class ServiceChars:
    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    segment: str = "'"


@dataclass(slots=True)
class EdifactSegment:
    tag: str
    elements: list[list[str]]
    """``elements[0] == [tag]``; ``elements[i][j]`` is component ``j + 1`` of element ``i``."""
    start: int
    end: int

    def get(self, i: int, j: int = 1) -> str:
        if i < len(self.elements):
            comps = self.elements[i]
            if j - 1 < len(comps):
                return comps[j - 1].strip()
        return ""


class EdifactMessage(BaseModel):
    reference: str
    message_type: str
    version: str
    """``D:96A:UN`` style (type version, release, agency)."""
    association_code: str = ""
    purchase_order: PurchaseOrder | None = None
    findings: list[Finding] = Field(default_factory=list)


class EdifactInterchange(BaseModel):
    syntax: str = ""
    sender: str = ""
    sender_qualifier: str = ""
    recipient: str = ""
    recipient_qualifier: str = ""
    control_reference: str = ""
    messages: list[EdifactMessage] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)


class EdifactDocument(BaseModel):
    document: str | None = None
    interchanges: list[EdifactInterchange] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    @property
    def messages(self) -> list[EdifactMessage]:
        return [m for ic in self.interchanges for m in ic.messages]

    @property
    def purchase_orders(self) -> list[PurchaseOrder]:
        return [m.purchase_order for m in self.messages if m.purchase_order is not None]

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for ic in self.interchanges:
            out.extend(ic.findings)
            for m in ic.messages:
                out.extend(m.findings)
        return out


# --- tokenizer ------------------------------------------------------------------------------------


def _finding(
    sev: Severity, code: str, msg: str, document: str | None, span: tuple[int, int] | None, path: str | None = None
) -> Finding:
    return Finding(
        severity=sev, code=code, message=msg, source=Source(kind="edi", document=document, path=path, span=span)
    )


def _split_released(s: str, sep: str, release: str) -> list[str]:
    """Split on ``sep`` unless released; release characters are removed from the parts."""
    if release not in s:
        return s.split(sep)
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == release and i + 1 < n:
            cur.append(s[i + 1])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        elif c != release:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _split_elements(raw: str, sc: ServiceChars) -> list[list[str]]:
    if sc.release not in raw:
        return [e.split(sc.component) for e in raw.split(sc.element)]
    # Mark released separators so the second split does not see them, then unescape.
    out: list[list[str]] = []
    for element in _split_keep_release(raw, sc.element, sc.release):
        out.append(_split_released(element, sc.component, sc.release))
    return out


def _split_keep_release(s: str, sep: str, release: str) -> list[str]:
    """Split on unreleased ``sep`` but keep release characters (the component split needs them)."""
    parts: list[str] = []
    start = 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == release:
            i += 2
            continue
        if c == sep:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


def tokenize_edifact(
    text: str, *, document: str | None = None, max_segments: int = MAX_SEGMENTS
) -> tuple[ServiceChars, list[EdifactSegment], list[Finding]]:
    """Segments of the text, one at a time; past ``max_segments`` (good and bad) it stops with a
    ``too_many_segments`` ERROR rather than build millions of segments and findings."""
    findings: list[Finding] = []
    seen = 0
    pos = 0
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    sc = ServiceChars()
    if text.startswith("UNA", pos):
        if pos + 9 <= n:
            una = text[pos + 3 : pos + 9]
            sc = ServiceChars(component=una[0], element=una[1], decimal=una[2], release=una[3], segment=una[5])
            if len({sc.component, sc.element, sc.segment}) < 3 or any(
                c.isalnum() for c in (sc.component, sc.element, sc.segment)
            ):
                findings.append(
                    _finding(
                        Severity.ERROR,
                        "una_invalid",
                        f"UNA service characters {una!r} are unusable",
                        document,
                        (pos, pos + 9),
                    )
                )
                sc = ServiceChars()
            if sc.decimal not in ".,":
                sc = ServiceChars(sc.component, sc.element, ".", sc.release, sc.segment)
            pos += 9
        else:
            findings.append(
                _finding(Severity.ERROR, "una_truncated", "UNA service string advice is truncated", document, (pos, n))
            )
            pos = n
    segments: list[EdifactSegment] = []
    term, rel = sc.segment, sc.release
    while pos < n:
        if seen >= max_segments:
            findings.append(
                _finding(Severity.ERROR, "too_many_segments",
                         f"more than {max_segments} segments; the rest was not read", document, (pos, n))
            )  # fmt: skip
            break
        seen += 1
        j = text.find(term, pos)
        while j > 0 and rel != " " and _released(text, j, rel, pos):
            j = text.find(term, j + 1)
        end = n if j < 0 else j
        start = pos
        while start < end and text[start] in " \t\r\n":
            start += 1
        raw = text[start:end]
        if "\n" in raw or "\r" in raw:
            raw = raw.replace("\r", "").replace("\n", "")
        if raw:
            elements = _split_elements(raw, sc)
            tag = elements[0][0].strip() if elements and elements[0] else ""
            if len(tag) == 3 and tag.isalnum() and tag.isupper():
                elements[0] = [tag]
                segments.append(EdifactSegment(tag, elements, start, end))
            else:
                findings.append(
                    _finding(
                        Severity.WARNING,
                        "bad_segment",
                        f"unreadable segment {raw[:20]!r} skipped",
                        document,
                        (start, end),
                    )
                )
        if j < 0:
            if raw:
                findings.append(
                    _finding(
                        Severity.WARNING, "missing_terminator", "last segment has no terminator", document, (start, end)
                    )
                )
            break
        pos = j + 1
    if not segments and not findings:
        findings.append(
            _finding(Severity.ERROR, "empty_document", "document holds no EDIFACT segments", document, (0, n))
        )
    return sc, segments, findings


def _released(text: str, j: int, rel: str, floor: int) -> bool:
    """True when the char at ``j`` is preceded by an odd number of release characters."""
    k = j - 1
    count = 0
    while k >= floor and text[k] == rel:
        count += 1
        k -= 1
    return count % 2 == 1


# --- message mapping ------------------------------------------------------------------------------

_DOC_DATE = ("137", "4", "3")


class _OrdersMapper:
    def __init__(self, document: str | None, decimal: str) -> None:
        self.document = document
        self.decimal = decimal
        self.po = PurchaseOrder(document_type="edifact-orders")
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}

    def src(self, seg: EdifactSegment, occ: int, i: int, j: int | None = None) -> Source:
        path = f"{seg.tag}[{occ}].{i:02d}" + (f".{j:02d}" if j is not None else "")
        return Source(kind="edi", document=self.document, path=path, span=(seg.start, seg.end))

    def put(self, field: str, seg: EdifactSegment, occ: int, i: int, j: int = 1) -> str | None:
        value = seg.get(i, j)
        if not value:
            return None
        self.po.sources[field] = self.src(seg, occ, i, j)
        return value

    def num(self, field: str, seg: EdifactSegment, occ: int, i: int, j: int) -> Decimal | None:
        raw = seg.get(i, j)
        if not raw:
            return None
        value = parse_decimal(raw, self.decimal)
        if value is None:
            self.findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="bad_number",
                    message=f"{seg.tag} {raw!r} is not a number",
                    source=self.src(seg, occ, i, j),
                )
            )
            return None
        self.po.sources[field] = self.src(seg, occ, i, j)
        return value

    def run(self, segments: list[EdifactSegment]) -> PurchaseOrder:
        po = self.po
        line: POLine | None = None
        party: Party | None = None
        summary = False
        last_ac: AllowanceCharge | None = None
        ac_prefix = ""
        for seg in segments:
            tag = seg.tag
            occ = self.counts[tag] = self.counts.get(tag, 0) + 1
            if tag not in ("RFF", "CTA", "COM", "LOC", "FII", "DTM"):
                party = None
            k = len(po.lines) - 1
            if tag == "BGM":
                po.order_type = self.put("order_type", seg, occ, 1)
                po.po_number = self.put("po_number", seg, occ, 2)
                po.purpose_code = self.put("purpose_code", seg, occ, 3)
            elif tag == "DTM":
                qual, raw, fmt = seg.get(1, 1), seg.get(1, 2), seg.get(1, 3)
                if not raw:
                    continue
                dval = parse_edi_date(raw) if fmt in ("", "102", "203", "204", "101") else None
                if dval is None and fmt in ("", "102", "203", "204", "101"):
                    self.findings.append(
                        Finding(
                            severity=Severity.WARNING,
                            code="bad_date",
                            message=f"DTM {raw!r} is not a date",
                            source=self.src(seg, occ, 1, 2),
                        )
                    )
                ref = DateRef(qualifier=qual, value=dval, raw=raw)
                if line is not None and not summary:
                    self.po.sources[f"lines[{k}].dates[{len(line.dates)}].value"] = self.src(seg, occ, 1, 2)
                    line.dates.append(ref)
                elif party is None:
                    self.po.sources[f"dates[{len(po.dates)}].value"] = self.src(seg, occ, 1, 2)
                    po.dates.append(ref)
                    if qual in _DOC_DATE and po.po_date is None and dval is not None:
                        po.po_date = dval
                        po.sources["po_date"] = self.src(seg, occ, 1, 2)
            elif tag == "CUX" and po.currency is None:
                po.currency = self.put("currency", seg, occ, 1, 2)
            elif tag == "RFF" and line is None:
                qual, value = seg.get(1, 1), seg.get(1, 2)
                if qual and value:
                    self.put(f"references[{len(po.references)}].value", seg, occ, 1, 2)
                    po.references.append(Reference(qualifier=qual, value=value))
            elif tag == "NAD" and line is None:
                n = len(po.parties)
                p = f"parties[{n}]."
                party = Party(
                    role=self.put(p + "role", seg, occ, 1) or "",
                    id=self.put(p + "id", seg, occ, 2, 1),
                    id_qualifier=seg.get(2, 3) or seg.get(2, 2) or None,
                    name=self.put(p + "name", seg, occ, 4, 1) or self.put(p + "name", seg, occ, 3, 1),
                    additional_names=[
                        c.strip() for c in (seg.elements[4][1:] if len(seg.elements) > 4 else []) if c.strip()
                    ],
                    city=self.put(p + "city", seg, occ, 6),
                    state=self.put(p + "state", seg, occ, 7),
                    postal_code=self.put(p + "postal_code", seg, occ, 8),
                    country=self.put(p + "country", seg, occ, 9),
                )
                for jj in range(1, 5):
                    v = self.put(f"{p}address_lines[{len(party.address_lines)}]", seg, occ, 5, jj)
                    if v:
                        party.address_lines.append(v)
                po.parties.append(party)
            elif tag == "CTA":
                po.contacts.append(
                    Contact(
                        function=seg.get(1) or None,
                        name=self.put(f"contacts[{len(po.contacts)}].name", seg, occ, 2, 2),
                        party_role=party.role if party is not None else None,
                    )
                )
            elif tag == "COM" and po.contacts:
                if seg.get(1, 1):
                    po.contacts[-1].communications.append(Communication(qualifier=seg.get(1, 2), value=seg.get(1, 1)))
            elif tag == "TDT":
                po.carriers.append(
                    Carrier(
                        routing_sequence=seg.get(1) or None,
                        transport_method=seg.get(3, 1) or None,
                        id=self.put(f"carriers[{len(po.carriers)}].id", seg, occ, 5, 1),
                        routing=seg.get(5, 4) or None,
                    )
                )
            elif tag == "LIN":
                n = len(po.lines)
                p = f"lines[{n}]."
                line = POLine(line_number=self.put(p + "line_number", seg, occ, 1))
                item, qual = seg.get(3, 1), seg.get(3, 2)
                if item:
                    po.sources[p + "product_ids[0]"] = self.src(seg, occ, 3, 1)
                    line.product_ids.append(ProductId(qualifier=qual or "", value=item))
                po.lines.append(line)
            elif tag == "PIA" and line is not None:
                for i in range(2, min(len(seg.elements), 7)):
                    item, qual = seg.get(i, 1), seg.get(i, 2)
                    if item:
                        po.sources[f"lines[{k}].product_ids[{len(line.product_ids)}]"] = self.src(seg, occ, i, 1)
                        line.product_ids.append(ProductId(qualifier=qual or "", value=item))
            elif tag == "IMD" and line is not None:
                desc = " ".join(v for v in (seg.get(3, 4), seg.get(3, 5)) if v)
                if desc:
                    if line.description is None:
                        line.description = desc
                        po.sources[f"lines[{k}].description"] = self.src(seg, occ, 3, 4)
                    line.descriptions.append(desc)
            elif tag == "QTY" and line is not None and not summary:
                qual = seg.get(1, 1)
                if line.quantity is None or qual == "21":
                    dec = self.num(f"lines[{k}].quantity", seg, occ, 1, 2)
                    if dec is not None:
                        line.quantity = dec
                        line.unit = seg.get(1, 3) or line.unit
            elif tag == "PRI" and line is not None and not summary:
                if line.unit_price is None or seg.get(1, 1) == "AAA":
                    dec = self.num(f"lines[{k}].unit_price", seg, occ, 1, 2)
                    if dec is not None:
                        line.unit_price = dec
                        line.price_basis = seg.get(1, 1) or None
            elif tag == "MOA":
                qual = seg.get(1, 1)
                if last_ac is not None and qual in ("8", "23", "204", "131"):
                    last_ac.amount = self.num(f"{ac_prefix}.amount", seg, occ, 1, 2)
                elif line is not None and not summary and qual == "203":
                    line.amount = self.num(f"lines[{k}].amount", seg, occ, 1, 2)
                elif line is None or summary:
                    dec = self.num(f"amounts[{len(po.amounts)}].value", seg, occ, 1, 2)
                    if dec is not None and qual:
                        po.amounts.append(Amount(qualifier=qual, value=dec))
            elif tag == "ALC":
                last_ac = AllowanceCharge(indicator=seg.get(1) or "", code=seg.get(5, 1) or seg.get(2, 1) or None)
                acs = po.allowances_charges if line is None or summary else line.allowances_charges
                ac_prefix = ("" if acs is po.allowances_charges else f"lines[{k}].") + f"allowances_charges[{len(acs)}]"
                acs.append(last_ac)
                continue
            elif tag == "UNS":
                summary = True
            elif tag == "CNT" and seg.get(1, 1) == "2":
                count = parse_decimal(seg.get(1, 2))
                if count is not None and count == count.to_integral_value():
                    po.declared_line_count = int(count)
                    po.sources["declared_line_count"] = self.src(seg, occ, 1, 2)
            if tag not in ("MOA", "PCD"):
                last_ac = None
        if not po.po_number:
            self.findings.append(
                Finding(
                    severity=Severity.ERROR,
                    code="po_number_missing",
                    message="BGM document number is missing",
                    source=Source(kind="edi", document=self.document, path="BGM[1].02.01"),
                )
            )
        if po.declared_line_count is not None and po.declared_line_count != len(po.lines):
            self.findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="cnt_line_count_mismatch",
                    message=f"CNT declares {po.declared_line_count} lines, the order has {len(po.lines)}",
                    source=po.sources.get("declared_line_count"),
                )
            )
        return po


# --- envelope -------------------------------------------------------------------------------------


def parse_edifact(
    data: bytes | str, *, document: str | None = None, max_segments: int = MAX_SEGMENTS
) -> EdifactDocument:
    """Read an EDIFACT interchange file; ORDERS messages become purchase orders. Never raises."""
    text = decode(data)
    sc, segments, findings = tokenize_edifact(text, document=document, max_segments=max_segments)
    doc = EdifactDocument(document=document, findings=findings)
    if any(f.code == "too_many_segments" for f in findings):
        return doc  # a truncated document is quarantined; mapping the part read is wasted work
    ic: EdifactInterchange | None = None
    unb: EdifactSegment | None = None
    msg_segs: list[EdifactSegment] | None = None
    unh: EdifactSegment | None = None
    ic_msgs = 0
    groups = 0

    def f(sev: Severity, code: str, msg: str, seg: EdifactSegment | None, path: str | None = None) -> Finding:
        return _finding(sev, code, msg, document, (seg.start, seg.end) if seg else None, path)

    def close_message(unt: EdifactSegment | None) -> None:
        nonlocal msg_segs, unh
        assert unh is not None
        assert msg_segs is not None
        assert ic is not None
        m = EdifactMessage(
            reference=unh.get(1),
            message_type=unh.get(2, 1),
            version=":".join(v for v in (unh.get(2, 2), unh.get(2, 3), unh.get(2, 4)) if v),
            association_code=unh.get(2, 5),
        )
        if unt is None:
            m.findings.append(f(Severity.ERROR, "unt_missing", f"message {m.reference!r} has no UNT trailer", unh))
        else:
            declared = unt.get(1)
            if not declared.isdigit() or int(declared) != len(msg_segs):
                m.findings.append(
                    f(
                        Severity.ERROR,
                        "unt_count_mismatch",
                        f"UNT says {declared or 'nothing'} segments, the message has {len(msg_segs)}",
                        unt,
                        "UNT.01",
                    )
                )
            if unt.get(2) != m.reference:
                m.findings.append(
                    f(
                        Severity.ERROR,
                        "unt_reference_mismatch",
                        f"UNT reference {unt.get(2)!r} does not match UNH {m.reference!r}",
                        unt,
                        "UNT.02",
                    )
                )
        if m.message_type == "ORDERS":
            mapper = _OrdersMapper(document, sc.decimal)
            try:
                m.purchase_order = mapper.run(msg_segs)
                m.findings.extend(mapper.findings)
            except Exception as exc:  # a mapper bug must not lose the whole file
                m.findings.append(f(Severity.ERROR, "mapping_failed", f"mapping failed: {exc!r}", unh))
        else:
            m.findings.append(
                f(Severity.INFO, "unsupported_message", f"message type {m.message_type!r} is not mapped", unh)
            )
        ic.messages.append(m)
        msg_segs, unh = None, None

    def open_interchange(seg: EdifactSegment | None) -> EdifactInterchange:
        nonlocal ic, unb, ic_msgs, groups
        ic = EdifactInterchange()
        if seg is not None:
            ic.syntax = ":".join(v for v in (seg.get(1, 1), seg.get(1, 2)) if v)
            ic.sender, ic.sender_qualifier = seg.get(2, 1), seg.get(2, 2)
            ic.recipient, ic.recipient_qualifier = seg.get(3, 1), seg.get(3, 2)
            ic.control_reference = seg.get(5)
        else:
            ic.findings.append(f(Severity.ERROR, "unb_missing", "message outside an interchange (no UNB)", None))
        doc.interchanges.append(ic)
        unb, ic_msgs, groups = seg, 0, 0
        return ic

    def close_interchange(unz: EdifactSegment | None) -> None:
        nonlocal ic
        assert ic is not None
        if unz is None:
            if unb is not None:
                ic.findings.append(f(Severity.ERROR, "unz_missing", "interchange has no UNZ trailer", unb))
        else:
            expected = groups if groups else ic_msgs
            if not unz.get(1).isdigit() or int(unz.get(1)) != expected:
                ic.findings.append(
                    f(
                        Severity.ERROR,
                        "unz_count_mismatch",
                        f"UNZ says {unz.get(1) or 'nothing'}, the interchange has {expected}",
                        unz,
                        "UNZ.01",
                    )
                )
            if unz.get(2) != ic.control_reference:
                ic.findings.append(
                    f(
                        Severity.ERROR,
                        "unz_reference_mismatch",
                        f"UNZ reference {unz.get(2)!r} does not match UNB {ic.control_reference!r}",
                        unz,
                        "UNZ.02",
                    )
                )
        ic = None

    for seg in segments:
        tag = seg.tag
        if msg_segs is not None and tag not in ("UNH", "UNZ", "UNB", "UNE", "UNG"):
            msg_segs.append(seg)
            if tag == "UNT":
                close_message(seg)
            continue
        if tag == "UNB":
            if msg_segs is not None:
                close_message(None)
            if ic is not None:
                close_interchange(None)
            open_interchange(seg)
        elif tag == "UNH":
            if msg_segs is not None:
                close_message(None)
            if ic is None:
                open_interchange(None)
            unh, msg_segs = seg, [seg]
            ic_msgs += 1
        elif tag == "UNG":
            groups += 1
        elif tag == "UNZ":
            if msg_segs is not None:
                close_message(None)
            if ic is None:
                doc.findings.append(f(Severity.ERROR, "unz_without_unb", "UNZ without UNB", seg))
            else:
                close_interchange(seg)
        elif tag == "UNE":
            if msg_segs is not None:
                close_message(None)
        else:
            target = ic.findings if ic is not None else doc.findings
            target.append(
                f(Severity.WARNING, "segment_outside_message", f"{tag} segment outside any message ignored", seg)
            )
    if msg_segs is not None:
        close_message(None)
    if ic is not None:
        close_interchange(None)
    if not doc.interchanges and not any(x.severity is Severity.ERROR for x in doc.findings):
        doc.findings.append(
            _finding(Severity.ERROR, "no_interchange", "no UNB interchange found", document, (0, len(text)))
        )
    return doc
