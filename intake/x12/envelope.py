"""X12 envelopes (ISA/GS/ST..SE/GE/IEA): structure, control-number and count checks.

Every mismatch becomes a :class:`~intake.model.Finding` on the level it concerns (interchange,
group or transaction) so that the 997 generator can tell accepted from rejected sets. Control
numbers must be unique: a repeated ISA13 in one file or GS06 in one interchange is an ERROR; a
repeated ST02 in one group a WARNING only (the public bots 997s accept such sets, and the pipeline's
duplicate check compares the orders themselves). An interchange whose ISA was unreadable arrives
from the tokenizer as its recovered groups (an ``isa_unreadable`` finding) and is built all the same.
The transaction-set contents are handed to a mapper (the 850 mapper for purchase orders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

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
    return int(raw) if raw.isascii() and raw.isdigit() else None  # "²".isdigit() is true, int("²") fails


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
    seen: set[tuple[str, str]] = set()
    for ic_tokens in tokens:
        ic = _InterchangeBuilder(ic_tokens, mappers, document).build()
        key = (ic.sender_id.strip(), ic.control_number)
        if ic.control_number and key in seen:
            ic.findings.append(
                _f(
                    Severity.ERROR,
                    "isa_duplicate_control",
                    f"ISA13 {ic.control_number} from {key[0]!r} repeats in this file",
                    document,
                    ic_tokens.segments[0],
                    "ISA.13",
                )
            )
        seen.add(key)
        doc.interchanges.append(ic)
    return doc


def _interchange(tok: InterchangeTokens) -> X12Interchange:
    """The interchange header; all empty when the ISA was unreadable and the groups were recovered."""
    isa = tok.segments[0] if tok.segments and tok.segments[0].tag == "ISA" else Segment("ISA", [], 0, 0)
    d = tok.delimiters
    return X12Interchange(
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


class _InterchangeBuilder:
    """Walks one interchange's segments: GS/ST/SE/GE/IEA each have a handler (``_HANDLERS``), and
    every envelope check is a small method."""

    _HANDLERS: ClassVar[dict[str, Callable[[_InterchangeBuilder, Segment], None]]]

    def __init__(self, tok: InterchangeTokens, mappers: dict[str, TransactionMapper], document: str | None) -> None:
        self.tok = tok
        self.mappers = mappers
        self.document = document
        self.ic = _interchange(tok)
        self.group: X12Group | None = None
        self.st_open: Segment | None = None
        self.body: list[Segment] = []
        self.iea: Segment | None = None
        self.seen_st: set[tuple[str, str]] = set()
        self.seen_gs: set[str] = set()
        self.st_lost = False

    def f(self, severity: Severity, code: str, message: str, seg: Segment | None, path: str | None = None) -> Finding:
        return _f(severity, code, message, self.document, seg, path)

    def build(self) -> X12Interchange:
        segs = self.tok.segments
        for seg in segs[1:] if segs and segs[0].tag == "ISA" else segs:
            # A second BEG means the SE and ST between two sets were lost: a new set starts there.
            if self.st_open is not None and seg.tag not in ("ST", "GE", "GS", "IEA") and not self.second_beg(seg):
                self.body.append(seg)
                if seg.tag == "SE":
                    self.close_transaction(seg)
                continue
            handler = self._HANDLERS.get(seg.tag)
            if handler is not None:
                handler(self, seg)
            else:
                self.ic.findings.append(
                    self.f(
                        Severity.WARNING,
                        "segment_outside_set",
                        f"{seg.tag} segment outside any transaction set ignored",
                        seg,
                    )
                )
        self.end_transaction()
        if self.group is not None:
            self.close_group(None)
        self.ic.findings.extend(self.check_iea())
        return self.ic

    def end_transaction(self) -> None:
        if self.st_open is not None:
            self.close_transaction(None)

    # --- handlers ---
    def on_gs(self, seg: Segment) -> None:
        self.end_transaction()
        if self.group is not None:
            self.close_group(None)
        group = X12Group(
            functional_id=seg.get(1),
            sender_id=seg.get(2),
            receiver_id=seg.get(3),
            date=seg.get(4),
            time=seg.get(5),
            control_number=seg.get(6),
            version=seg.get(8),
        )
        if group.control_number and group.control_number in self.seen_gs:
            group.findings.append(
                self.f(
                    Severity.ERROR,
                    "gs_duplicate_control",
                    f"GS06 {group.control_number} repeats within the interchange",
                    seg,
                    "GS.06",
                )
            )
        self.seen_gs.add(group.control_number)
        self.group = group
        self.ic.groups.append(group)

    def on_st(self, seg: Segment) -> None:
        self.end_transaction()
        if self.group is None:
            self.group = _orphan_group(self.ic)
        self.st_open, self.body, self.st_lost = seg, [seg], False

    def second_beg(self, seg: Segment) -> bool:
        return seg.tag == "BEG" and any(s.tag == "BEG" for s in self.body)

    def on_beg(self, seg: Segment) -> None:
        """A BEG outside a set, or a second one inside a set: its ST was lost (unreadable, or gone
        with the SE before it), so the 850 is read from its BEG instead of dropped or merged."""
        self.end_transaction()
        if self.group is None:
            self.group = _orphan_group(self.ic)
        self.st_open = Segment("ST", ["ST", "850", ""], seg.start, seg.start, contiguous=False)
        self.body, self.st_lost = [seg], True

    def on_ge(self, seg: Segment) -> None:
        self.end_transaction()
        if self.group is None:
            self.ic.findings.append(self.f(Severity.ERROR, "ge_without_gs", "GE without a GS", seg))
        else:
            self.close_group(seg)

    def on_iea(self, seg: Segment) -> None:
        self.end_transaction()
        if self.group is not None:
            self.close_group(None)
        self.iea = seg

    # --- transaction sets ---
    def close_transaction(self, se: Segment | None) -> None:
        st, grp, ic = self.st_open, self.group, self.ic
        assert st is not None
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
        counted = len(self.body) + (1 if self.st_lost else 0)  # a lost ST still counts in SE01
        tx = X12Transaction(set_id=st.get(1), control_number=st.get(2), envelope=env, segment_count=counted)
        if self.st_lost:
            msg = "850 without a readable ST header; read from its BEG"
            tx.findings.append(self.f(Severity.ERROR, "st_missing", msg, self.body[0]))
        self.check_st(tx, st, grp)
        if se is None:
            tx.syntax_errors.append(TS_TRAILER_MISSING)
            tx.findings.append(self.f(Severity.ERROR, "se_missing", "transaction set has no SE trailer", st))
        else:
            self.check_se(tx, se)
        self.map_transaction(tx, st)
        grp.transactions.append(tx)
        self.st_open, self.body = None, []

    def check_st(self, tx: X12Transaction, st: Segment, grp: X12Group) -> None:
        if not tx.control_number:
            tx.syntax_errors.append(TS_CONTROL_MISSING)
            tx.findings.append(
                self.f(Severity.ERROR, "st_control_missing", "ST02 control number is missing", st, "ST[1].02")
            )
        key = (grp.control_number, tx.control_number)
        if tx.control_number and key in self.seen_st:
            tx.findings.append(
                self.f(
                    Severity.WARNING,
                    "st_duplicate_control",
                    f"ST02 {tx.control_number} repeats within the group",
                    st,
                    "ST[1].02",
                )
            )
        self.seen_st.add(key)

    def check_se(self, tx: X12Transaction, se: Segment) -> None:
        if _int(se.get(1)) != tx.segment_count:
            tx.syntax_errors.append(TS_COUNT_MISMATCH)
            tx.findings.append(
                self.f(
                    Severity.ERROR,
                    "se_count_mismatch",
                    f"SE01 says {se.get(1) or 'nothing'} segments, the set has {tx.segment_count}",
                    se,
                    "SE[1].01",
                )
            )
        if se.get(2) != tx.control_number:
            tx.syntax_errors.append(TS_CONTROL_MISMATCH)
            tx.findings.append(
                self.f(
                    Severity.ERROR,
                    "se_control_mismatch",
                    f"SE02 {se.get(2)!r} does not match ST02 {tx.control_number!r}",
                    se,
                    "SE[1].02",
                )
            )

    def map_transaction(self, tx: X12Transaction, st: Segment) -> None:
        mapper = self.mappers.get(tx.set_id)
        if mapper is None:
            tx.findings.append(
                self.f(Severity.INFO, "unsupported_set", f"transaction set {tx.set_id!r} is not mapped", st)
            )
            return
        try:
            po, mfindings = mapper(self.body, self.tok.delimiters, self.document)
        except Exception as exc:  # a mapper bug must not lose the whole file
            po, mfindings = None, [self.f(Severity.ERROR, "mapping_failed", f"mapping failed: {exc!r}", st)]
        tx.purchase_order = po
        tx.findings.extend(mfindings)

    # --- groups and the interchange ---
    def close_group(self, ge: Segment | None) -> None:
        group = self.group
        assert group is not None
        self.group = None
        if ge is None:
            group.errors.append(FG_TRAILER_MISSING)
            group.findings.append(
                self.f(Severity.ERROR, "ge_missing", f"group {group.control_number} has no GE trailer", None)
            )
            return
        group.declared_count = _int(ge.get(1))
        if group.declared_count != len(group.transactions):
            group.errors.append(FG_COUNT_MISMATCH)
            group.findings.append(
                self.f(
                    Severity.ERROR,
                    "ge_count_mismatch",
                    f"GE01 says {ge.get(1) or 'nothing'} transaction sets, the group has {len(group.transactions)}",
                    ge,
                )
            )
        if ge.get(2) != group.control_number:
            group.errors.append(FG_CONTROL_MISMATCH)
            group.findings.append(
                self.f(
                    Severity.ERROR,
                    "ge_control_mismatch",
                    f"GE02 {ge.get(2)!r} does not match GS06 {group.control_number!r}",
                    ge,
                )
            )

    def check_iea(self) -> list[Finding]:
        iea, ic = self.iea, self.ic
        if iea is None:
            return [self.f(Severity.ERROR, "iea_missing", "interchange has no IEA trailer", None)]
        out: list[Finding] = []
        if _int(iea.get(1)) != len(ic.groups):
            out.append(
                self.f(
                    Severity.ERROR,
                    "iea_count_mismatch",
                    f"IEA01 says {iea.get(1) or 'nothing'} groups, the interchange has {len(ic.groups)}",
                    iea,
                )
            )
        if iea.get(2) != ic.control_number:
            out.append(
                self.f(
                    Severity.ERROR,
                    "iea_control_mismatch",
                    f"IEA02 {iea.get(2)!r} does not match ISA13 {ic.control_number!r}",
                    iea,
                )
            )
        return out


_InterchangeBuilder._HANDLERS = {
    "GS": _InterchangeBuilder.on_gs,
    "ST": _InterchangeBuilder.on_st,
    "GE": _InterchangeBuilder.on_ge,
    "IEA": _InterchangeBuilder.on_iea,
    "BEG": _InterchangeBuilder.on_beg,
}


def _orphan_group(ic: X12Interchange) -> X12Group:
    """A transaction set outside any GS gets a placeholder group so nothing is lost."""
    grp = X12Group(functional_id="", sender_id="", receiver_id="", control_number="", version="")
    grp.errors.append(FG_TRAILER_MISSING)
    ic.groups.append(grp)
    ic.findings.append(
        Finding(severity=Severity.ERROR, code="st_without_gs", message="transaction set outside a functional group")
    )
    return grp
