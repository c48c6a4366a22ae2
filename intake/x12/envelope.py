"""X12 envelopes (ISA/GS/ST..SE/GE/IEA): structure, control-number and count checks.

Every mismatch becomes a :class:`~intake.model.Finding` on the level it concerns (interchange,
group or transaction) so that the 997 generator can tell accepted from rejected sets. The
transaction-set contents are handed to a mapper (the 850 mapper for purchase orders).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from intake.model import Finding, PurchaseOrder, Severity, Source
from intake.x12.tokenizer import MAX_SEGMENTS, Delimiters, InterchangeTokens, Segment, decode, tokenize

# Transaction-set syntax error codes (X12 element 718, used in AK5) for envelope problems.
TS_TRAILER_MISSING = "2"
TS_CONTROL_MISMATCH = "3"
TS_COUNT_MISMATCH = "4"
TS_SEGMENTS_IN_ERROR = "5"
TS_CONTROL_MISSING = "7"
TS_DUPLICATE_CONTROL = "23"
# Functional-group error codes (element 716, used in AK9).
FG_TRAILER_MISSING = "3"
FG_CONTROL_MISMATCH = "4"
FG_COUNT_MISMATCH = "5"


class EnvelopeIds(BaseModel):
    """What a reply (997, 855) needs to address the sender of one transaction set."""

    model_config = ConfigDict(frozen=True)

    isa_sender_qualifier: str
    isa_sender_id: str
    isa_receiver_qualifier: str
    isa_receiver_id: str
    isa_control_number: str
    gs_functional_id: str
    gs_sender_id: str
    gs_receiver_id: str
    gs_control_number: str
    gs_version: str
    st_set_id: str
    st_control_number: str


class X12Transaction(BaseModel):
    set_id: str
    control_number: str
    envelope: EnvelopeIds
    purchase_order: PurchaseOrder | None = None
    findings: list[Finding] = Field(default_factory=list)
    syntax_errors: list[str] = Field(default_factory=list)
    """AK5 error codes (element 718) for envelope problems; empty when the set's envelope is sound."""
    segment_count: int = 0

    @property
    def ack_code(self) -> str:
        """``A`` accepted, ``E`` accepted with errors noted, ``R`` rejected (AK5-01)."""
        if self.syntax_errors:
            return "R"
        if any(f.severity is Severity.ERROR for f in self.findings):
            return "E"
        return "A"


class X12Group(BaseModel):
    functional_id: str
    sender_id: str
    receiver_id: str
    control_number: str
    version: str
    date: str = ""
    time: str = ""
    transactions: list[X12Transaction] = Field(default_factory=list)
    declared_count: int | None = None
    """GE01; None when GE is missing."""
    errors: list[str] = Field(default_factory=list)
    """AK9 error codes (element 716)."""
    findings: list[Finding] = Field(default_factory=list)


class X12Interchange(BaseModel):
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str
    time: str
    repetition_or_standards: str
    version: str
    control_number: str
    ack_requested: str
    usage_indicator: str
    element_separator: str
    component_separator: str
    segment_terminator: str
    repetition_separator: str | None = None
    segment_suffix: str = ""
    groups: list[X12Group] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    @property
    def delimiters(self) -> Delimiters:
        return Delimiters(
            element=self.element_separator,
            component=self.component_separator,
            segment=self.segment_terminator,
            repetition=self.repetition_separator,
            segment_suffix=self.segment_suffix,
        )


class X12Document(BaseModel):
    """Everything read from one X12 file."""

    document: str | None = None
    interchanges: list[X12Interchange] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    """Findings that belong to no interchange (garbage, empty file)."""

    @property
    def transactions(self) -> list[X12Transaction]:
        return [t for ic in self.interchanges for g in ic.groups for t in g.transactions]

    @property
    def purchase_orders(self) -> list[PurchaseOrder]:
        return [t.purchase_order for t in self.transactions if t.purchase_order is not None]

    def all_findings(self) -> list[Finding]:
        out = list(self.findings)
        for ic in self.interchanges:
            out.extend(ic.findings)
            for g in ic.groups:
                out.extend(g.findings)
                for t in g.transactions:
                    out.extend(t.findings)
        return out


# A mapper turns the segments between ST and SE (inclusive) into a purchase order plus findings.
TransactionMapper = Callable[[list[Segment], Delimiters, str | None], tuple[PurchaseOrder | None, list[Finding]]]


def _f(
    severity: Severity, code: str, message: str, document: str | None, seg: Segment | None, path: str | None = None
) -> Finding:
    src = Source(kind="edi", document=document, path=path, span=(seg.start, seg.end) if seg else None)
    return Finding(severity=severity, code=code, message=message, source=src)


def _int(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


def parse_document(
    data: bytes | str,
    *,
    mappers: dict[str, TransactionMapper],
    document: str | None = None,
    max_segments: int = MAX_SEGMENTS,
) -> X12Document:
    """Tokenize and build the envelope tree; transaction sets whose ST01 has a mapper are mapped."""
    text = decode(data)
    tokens, findings = tokenize(text, document=document, max_segments=max_segments)
    doc = X12Document(document=document, findings=findings)
    if any(f.code == "too_many_segments" for f in findings):
        return doc  # a truncated document is quarantined; mapping the part read is wasted work
    for ic_tokens in tokens:
        doc.interchanges.append(_build_interchange(ic_tokens, mappers, document))
    return doc


def _build_interchange(
    tok: InterchangeTokens, mappers: dict[str, TransactionMapper], document: str | None
) -> X12Interchange:
    segs = tok.segments
    isa = segs[0]
    d = tok.delimiters
    ic = X12Interchange(
        sender_qualifier=isa.get(5),
        sender_id=isa.get(6),
        receiver_qualifier=isa.get(7),
        receiver_id=isa.get(8),
        date=isa.get(9),
        time=isa.get(10),
        repetition_or_standards=isa.get(11),
        version=isa.get(12),
        control_number=isa.get(13),
        ack_requested=isa.get(14),
        usage_indicator=isa.get(15),
        element_separator=d.element,
        component_separator=d.component,
        segment_terminator=d.segment,
        repetition_separator=d.repetition,
        segment_suffix=d.segment_suffix,
        findings=list(tok.findings),
    )
    group: X12Group | None = None
    st_open: Segment | None = None
    body: list[Segment] = []
    iea: Segment | None = None
    seen_st: set[tuple[str, str]] = set()

    def close_transaction(se: Segment | None) -> None:
        nonlocal st_open, body
        assert st_open is not None
        st = st_open
        grp = group
        assert grp is not None
        env = EnvelopeIds(
            isa_sender_qualifier=ic.sender_qualifier,
            isa_sender_id=ic.sender_id,
            isa_receiver_qualifier=ic.receiver_qualifier,
            isa_receiver_id=ic.receiver_id,
            isa_control_number=ic.control_number,
            gs_functional_id=grp.functional_id,
            gs_sender_id=grp.sender_id,
            gs_receiver_id=grp.receiver_id,
            gs_control_number=grp.control_number,
            gs_version=grp.version,
            st_set_id=st.get(1),
            st_control_number=st.get(2),
        )
        tx = X12Transaction(set_id=st.get(1), control_number=st.get(2), envelope=env, segment_count=len(body))
        if not tx.control_number:
            tx.syntax_errors.append(TS_CONTROL_MISSING)
            tx.findings.append(
                _f(Severity.ERROR, "st_control_missing", "ST02 control number is missing", document, st, "ST[1].02")
            )
        key = (grp.control_number, tx.control_number)
        if tx.control_number and key in seen_st:
            tx.findings.append(
                _f(
                    Severity.WARNING,
                    "st_duplicate_control",
                    f"ST02 {tx.control_number} repeats within the group",
                    document,
                    st,
                    "ST[1].02",
                )
            )
        seen_st.add(key)
        if se is None:
            tx.syntax_errors.append(TS_TRAILER_MISSING)
            tx.findings.append(_f(Severity.ERROR, "se_missing", "transaction set has no SE trailer", document, st))
        else:
            declared = _int(se.get(1))
            if declared != len(body):
                tx.syntax_errors.append(TS_COUNT_MISMATCH)
                tx.findings.append(
                    _f(
                        Severity.ERROR,
                        "se_count_mismatch",
                        f"SE01 says {se.get(1) or 'nothing'} segments, the set has {len(body)}",
                        document,
                        se,
                        "SE[1].01",
                    )
                )
            if se.get(2) != tx.control_number:
                tx.syntax_errors.append(TS_CONTROL_MISMATCH)
                tx.findings.append(
                    _f(
                        Severity.ERROR,
                        "se_control_mismatch",
                        f"SE02 {se.get(2)!r} does not match ST02 {tx.control_number!r}",
                        document,
                        se,
                        "SE[1].02",
                    )
                )
        mapper = mappers.get(tx.set_id)
        if mapper is not None:
            try:
                po, mfindings = mapper(body, d, document)
            except Exception as exc:  # a mapper bug must not lose the whole file
                po, mfindings = None, [_f(Severity.ERROR, "mapping_failed", f"mapping failed: {exc!r}", document, st)]
            tx.purchase_order = po
            tx.findings.extend(mfindings)
        else:
            tx.findings.append(
                _f(Severity.INFO, "unsupported_set", f"transaction set {tx.set_id!r} is not mapped", document, st)
            )
        grp.transactions.append(tx)
        st_open, body = None, []

    def close_group(ge: Segment | None) -> None:
        nonlocal group
        assert group is not None
        if ge is None:
            group.errors.append(FG_TRAILER_MISSING)
            group.findings.append(
                _f(Severity.ERROR, "ge_missing", f"group {group.control_number} has no GE trailer", document, None)
            )
        else:
            group.declared_count = _int(ge.get(1))
            if group.declared_count != len(group.transactions):
                group.errors.append(FG_COUNT_MISMATCH)
                group.findings.append(
                    _f(
                        Severity.ERROR,
                        "ge_count_mismatch",
                        f"GE01 says {ge.get(1) or 'nothing'} transaction sets, the group has {len(group.transactions)}",
                        document,
                        ge,
                    )
                )
            if ge.get(2) != group.control_number:
                group.errors.append(FG_CONTROL_MISMATCH)
                group.findings.append(
                    _f(
                        Severity.ERROR,
                        "ge_control_mismatch",
                        f"GE02 {ge.get(2)!r} does not match GS06 {group.control_number!r}",
                        document,
                        ge,
                    )
                )
        group = None

    for seg in segs[1:]:
        tag = seg.tag
        if st_open is not None and tag not in ("ST", "GE", "GS", "IEA"):
            body.append(seg)
            if tag == "SE":
                close_transaction(seg)
            continue
        if tag == "GS":
            if st_open is not None:
                close_transaction(None)
            if group is not None:
                close_group(None)
            group = X12Group(
                functional_id=seg.get(1),
                sender_id=seg.get(2),
                receiver_id=seg.get(3),
                date=seg.get(4),
                time=seg.get(5),
                control_number=seg.get(6),
                version=seg.get(8),
            )
            ic.groups.append(group)
        elif tag == "ST":
            if st_open is not None:
                close_transaction(None)
            if group is None:
                group = _orphan_group(ic)
            st_open, body = seg, [seg]
        elif tag == "GE":
            if st_open is not None:
                close_transaction(None)
            if group is None:
                ic.findings.append(_f(Severity.ERROR, "ge_without_gs", "GE without a GS", document, seg))
            else:
                close_group(seg)
        elif tag == "IEA":
            if st_open is not None:
                close_transaction(None)
            if group is not None:
                close_group(None)
            iea = seg
        else:
            ic.findings.append(
                _f(
                    Severity.WARNING,
                    "segment_outside_set",
                    f"{tag} segment outside any transaction set ignored",
                    document,
                    seg,
                )
            )
    if st_open is not None:
        close_transaction(None)
    if group is not None:
        close_group(None)
    if iea is None:
        ic.findings.append(_f(Severity.ERROR, "iea_missing", "interchange has no IEA trailer", document, None))
    else:
        if _int(iea.get(1)) != len(ic.groups):
            ic.findings.append(
                _f(
                    Severity.ERROR,
                    "iea_count_mismatch",
                    f"IEA01 says {iea.get(1) or 'nothing'} groups, the interchange has {len(ic.groups)}",
                    document,
                    iea,
                )
            )
        if iea.get(2) != ic.control_number:
            ic.findings.append(
                _f(
                    Severity.ERROR,
                    "iea_control_mismatch",
                    f"IEA02 {iea.get(2)!r} does not match ISA13 {ic.control_number!r}",
                    document,
                    iea,
                )
            )
    return ic


def _orphan_group(ic: X12Interchange) -> X12Group:
    """A transaction set outside any GS gets a placeholder group so nothing is lost."""
    grp = X12Group(functional_id="", sender_id="", receiver_id="", control_number="", version="")
    grp.errors.append(FG_TRAILER_MISSING)
    ic.groups.append(grp)
    ic.findings.append(
        Finding(severity=Severity.ERROR, code="st_without_gs", message="transaction set outside a functional group")
    )
    return grp
