"""X12 tokenizer: bytes in, interchanges of segments out, with delimiters read from each ISA header.

Real 850s do not follow the textbook 106-character ISA: fields come unpadded or padded with
non-ASCII spaces, files start with a UTF-8 BOM or whitespace, terminators are ``~``, ``|``, a
newline, CR or 0x15, lines are wrapped inside segments, and one file holds several interchanges
(possibly with different delimiters). So the ISA is read by counting element separators, never by
fixed offsets, and delimiters are re-read at every ISA.

A damaged header does not cost the orders behind it: when an ISA is unreadable, names a terminator
the file never uses, or is missing, the interchange is read from its first GS (delimiters taken
from the GS, the ISA's fields kept only where they still split cleanly) with an ``isa_unreadable``
finding that names the fault. :func:`looks_like_x12` lets the format sniffer know such a file.

This module never raises on bad input; everything odd becomes a :class:`~intake.model.Finding`.
Offsets (``start``/``end``/spans) are character offsets in the decoded text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from intake.model import Finding, Severity, Source

MAX_SEGMENTS = 20_000
"""Segments one document may hold (a 5,000-line PO is some 15,000); past it the tokenizer stops
with a ``too_many_segments`` ERROR instead of building millions of segments and findings."""

_TAG_RE = re.compile(r"[A-Z][A-Z0-9]{1,2}\Z")
_LINE_BREAK_RE = re.compile(r"(\r\n|\r|\n)")
# Segments we know; a line break followed by one of these plus the element separator starts a
# new segment even when the sender forgot the terminator (seen in the wild, EDI.Net issue 135).
KNOWN_TAGS = frozenset(
    [
        "ISA",
        "IEA",
        "GS",
        "GE",
        "ST",
        "SE",
        "BEG",
        "CUR",
        "REF",
        "PER",
        "FOB",
        "CSH",
        "ITD",
        "DTM",
        "PKG",
        "TD1",
        "TD3",
        "TD4",
        "TD5",
        "N9",
        "MSG",
        "N1",
        "N2",
        "N3",
        "N4",
        "PO1",
        "PO3",
        "CTP",
        "PID",
        "PO4",
        "SAC",
        "SDQ",
        "SCH",
        "SLN",
        "AMT",
        "CTT",
        "TXI",
        "MEA",
        "MAN",
        "PWK",
        "LIN",
        "QTY",
        "ACK",
        "BAK",
        "DTM",
        "N5",
        "FOB",
    ]
)


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ">"
    """Empty when the ISA carried none (ISA16 missing)."""
    segment: str = "~"
    repetition: str | None = None
    segment_suffix: str = ""
    """Whitespace the sender wrote after each terminator (e.g. ``"\\r\\n"``), reused when replying."""


@dataclass(slots=True)
class Segment:
    tag: str
    elements: list[str]
    """``elements[0]`` is the tag, so ``elements[4]`` is X12 element 04."""
    start: int
    end: int
    contiguous: bool = True
    """True when the raw text is exactly the elements joined by the separator (element spans are exact)."""

    def get(self, i: int) -> str:
        """Element ``i`` (1-based, as in X12), stripped; ``""`` when absent."""
        return self.elements[i].strip() if i < len(self.elements) else ""

    def element_span(self, i: int) -> tuple[int, int]:
        if not self.contiguous or i >= len(self.elements):
            return (self.start, self.end)
        pos = self.start
        for e in self.elements[:i]:
            pos += len(e) + 1
        return (pos, pos + len(self.elements[i]))


@dataclass(slots=True)
class InterchangeTokens:
    delimiters: Delimiters
    segments: list[Segment]
    start: int
    end: int
    findings: list[Finding] = field(default_factory=list)


def decode(data: bytes | str) -> str:
    """Decode EDI bytes: UTF-8 (BOM tolerated), falling back to Latin-1 which never fails."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return text[1:] if text.startswith("\ufeff") else text


def _finding(
    severity: Severity, code: str, message: str, document: str | None, span: tuple[int, int] | None
) -> Finding:
    return Finding(
        severity=severity, code=code, message=message, source=Source(kind="edi", document=document, span=span)
    )


def _isa_end(text: str, isa_at: int, sep: str, document: str | None) -> tuple[int, list[Finding]]:
    """Offset of the 16th element separator of the ISA (before ISA16), or -1 with the findings why."""
    n = len(text)
    pos = isa_at + 3
    limit = min(n, isa_at + 400)
    for _ in range(15):
        pos = text.find(sep, pos + 1, limit)
        if pos < 0:
            msg = "ISA header has fewer than 16 elements"
            return -1, [_finding(Severity.ERROR, "isa_truncated", msg, document, (isa_at, limit))]
    if pos + 2 >= n:
        msg = "ISA header ends before its terminator"
        return -1, [_finding(Severity.ERROR, "isa_truncated", msg, document, (isa_at, n))]
    return pos, []


def _isa16_missing(text: str, after: int, candidate: str) -> bool:
    """True when the character taken for ISA16 is really the terminator: the GS after it ends with it."""
    n = len(text)
    q = after
    while q < n and text[q] in " \t\r\n":
        q += 1
    eol = text.find("\n", q)
    line = text[q : eol if eol >= 0 else n].rstrip("\r")
    return line.startswith("GS") and line.endswith(candidate)


def _suffix_end(text: str, after: int, term: str) -> int:
    """End of the whitespace the sender writes after each terminator (``\\r\\n`` after ``~``)."""
    end = after
    if term not in "\r\n":
        while end < len(text) and text[end] in "\r\n":
            end += 1
    return end


def _repetition(isa_elements: list[str], sep: str, component: str, term: str) -> str | None:
    rep = isa_elements[11] if len(isa_elements) > 11 else ""
    return rep if len(rep) == 1 and not rep.isalnum() and rep not in (sep, component, term) else None


def read_delimiters(
    text: str, isa_at: int, document: str | None = None
) -> tuple[Delimiters | None, int, list[Finding]]:
    """Read the delimiters of the ISA starting at ``isa_at``.

    Returns the delimiters (None when unusable), the offset just past the ISA terminator (and any
    suffix whitespace) and findings.
    """
    n = len(text)
    if isa_at + 4 > n:
        return None, n, [_finding(Severity.ERROR, "isa_truncated", "ISA header is truncated", document, (isa_at, n))]
    sep = text[isa_at + 3]
    if sep.isalnum() or sep in " \r\n":
        msg = f"unusable element separator {sep!r}"
        return None, isa_at + 3, [_finding(Severity.ERROR, "isa_bad_separator", msg, document, (isa_at, isa_at + 4))]
    # Count separators instead of trusting fixed offsets (unpadded or oddly padded ISAs).
    pos, findings = _isa_end(text, isa_at, sep, document)
    if pos < 0:
        return None, min(n, isa_at + 400), findings
    component, term, after = text[pos + 1], text[pos + 2], pos + 3
    if term in "\r\n" and not component.isalnum() and component != " " and _isa16_missing(text, after, component):
        msg = "ISA16 component separator is missing; using the character found there as segment terminator"
        findings.append(_finding(Severity.WARNING, "isa16_missing", msg, document, (isa_at, pos + 2)))
        term, component, after = component, "", pos + 2
    if term.isalnum() or term == sep or term == " ":
        msg = f"unusable segment terminator {term!r}"
        findings.append(_finding(Severity.ERROR, "isa_bad_terminator", msg, document, (isa_at, pos + 3)))
        return None, pos + 3, findings
    delims = Delimiters(
        element=sep,
        component=component if component not in (sep, term) else "",
        segment=term,
        repetition=_repetition(text[isa_at:pos].split(sep), sep, component, term),
        segment_suffix=text[after : _suffix_end(text, after, term)],
    )
    return delims, after, findings


_GS_RE = re.compile(r"(?:(?<=[^A-Za-z0-9])|\A)GS([^A-Za-z0-9\s])")


def _gs_delimiters(text: str, gs_at: int, sep: str) -> Delimiters | None:
    """Delimiters read off a GS (eight elements, then the terminator) when the ISA cannot give them."""
    pos = gs_at + 2
    for _ in range(7):
        pos = text.find(sep, pos + 1, gs_at + 300)
        if pos < 0:
            return None
    end = pos + 1
    while end < len(text) and text[end].isalnum():
        end += 1
    term = text[end : end + 1]
    if not term or term.isalnum() or term in (sep, " "):
        return None
    return Delimiters(
        element=sep, component="", segment=term, segment_suffix=text[end + 1 : _suffix_end(text, end + 1, term)]
    )


def _delimiters_fit(text: str, after: int, d: Delimiters) -> bool:
    """True when the segment after the ISA (a GS, TA1, ST or IEA) ends with the ISA's terminator
    within a few hundred characters: a damaged ISA16 can name a terminator the file never uses."""
    q = after
    while q < len(text) and text[q] in " \t\r\n":
        q += 1
    if q >= len(text) or not text.startswith(("GS", "TA1", "ST", "IEA"), q):
        return True  # not a header problem: what follows is reported as it is read
    j = text.find(d.segment, q, q + 400) if d.segment not in "\r\n" else q
    return j >= 0


def _salvaged_isa(text: str, start: int, gs_at: int, sep: str) -> Segment | None:
    """The ISA's elements when they split cleanly on the GS's separator into exactly sixteen
    (ISA16 may carry the damage); never a guess from shifted fields."""
    elements = text[start:gs_at].rstrip(" \t\r\n").split(sep)
    if len(elements) != 17 or elements[0].strip() != "ISA":
        return None
    elements[0], elements[16] = "ISA", elements[16][:1]
    return Segment("ISA", elements, start, gs_at, contiguous=False)


def _recover_from_gs(
    text: str, start: int, stop: int, document: str | None, seen: list[int], max_segments: int, fault: str
) -> InterchangeTokens | None:
    """The groups of an interchange whose ISA is missing or unreadable, read from its first GS, so a
    damaged header costs the header and not the orders. ``fault`` says what was wrong with the ISA."""
    m = next(
        (g for g in _GS_RE.finditer(text, start, stop) if g.start() == 0 or text[g.start() - 1] != g.group(1)), None
    )
    d = _gs_delimiters(text, m.start(), m.group(1)) if m is not None else None
    if m is None or d is None:
        return None
    ic = _scan_interchange(text, m.start(), d, document, seen, max_segments)
    if not ic.segments or ic.segments[0].tag != "GS":
        return None
    isa = _salvaged_isa(text, start, m.start(), m.group(1))
    if isa is not None:
        ic.segments.insert(0, isa)
    what = "its header fields were read as far as they split cleanly" if isa else "interchange sender unknown"
    msg = f"{fault}; its groups were read from the GS at offset {m.start()} ({what})"
    ic.findings.insert(0, _finding(Severity.ERROR, "isa_unreadable", msg, document, (start, m.start())))
    return ic


_GROUP_AND_SET = re.compile(r"(?:\A|[^A-Za-z0-9])GS([^A-Za-z0-9\s])[A-Z]{2}\1.{0,300}?ST\1\d{3}\1\w{1,9}", re.S)
"""A GS (``GS*PO*``) followed by an ST (``ST*850*0001``) with the same element separator."""


def looks_like_x12(head: str) -> bool:
    """True when the start of a document holds an X12 functional group and transaction set, even
    without a readable ISA, so that such a file is read as X12 (and its damage named)."""
    return _GROUP_AND_SET.search(head[:4096]) is not None


def tokenize(
    text: str, *, document: str | None = None, max_segments: int = MAX_SEGMENTS
) -> tuple[list[InterchangeTokens], list[Finding]]:
    """Split decoded text into interchanges of segments; stops at ``max_segments``. Never raises."""
    interchanges: list[InterchangeTokens] = []
    findings: list[Finding] = []
    n = len(text)
    pos = 0
    seen = [0]  # segments read so far, good and bad, across interchanges
    while pos < n:
        if seen[0] >= max_segments:
            msg = f"more than {max_segments} segments; the rest was not read"
            findings.append(_finding(Severity.ERROR, "too_many_segments", msg, document, (pos, n)))
            break
        isa_at = text.find("ISA", pos)
        if isa_at < 0:
            _no_more_isa(text, pos, interchanges, findings, document, seen, max_segments)
            break
        if text[pos:isa_at].strip():
            findings.append(
                _finding(Severity.WARNING, "leading_junk", "text before ISA ignored", document, (pos, isa_at))
            )
        delims, after, dfindings = read_delimiters(text, isa_at, document)
        if delims is not None and not _delimiters_fit(text, after, delims):
            msg = f"the segments after the ISA do not end with its terminator {delims.segment!r}"
            dfindings.append(_finding(Severity.ERROR, "isa_bad_terminator", msg, document, (isa_at, after)))
            delims = None
        findings.extend(dfindings)
        ic: InterchangeTokens | None
        if delims is None:
            fault = "ISA header unreadable: " + "; ".join(f.message for f in dfindings)
            nxt = text.find("ISA", isa_at + 3)
            ic = _recover_from_gs(text, isa_at, nxt if nxt >= 0 else n, document, seen, max_segments, fault)
        else:
            ic = _scan_interchange(text, isa_at, delims, document, seen, max_segments)
        if ic is not None:
            interchanges.append(ic)
        pos = max(ic.end if ic is not None else 0, isa_at + 3)
    if not text.strip():
        findings.append(_finding(Severity.ERROR, "empty_document", "document is empty", document, (0, n)))
    return interchanges, findings


def _no_more_isa(
    text: str,
    pos: int,
    interchanges: list[InterchangeTokens],
    findings: list[Finding],
    document: str | None,
    seen: list[int],
    max_segments: int,
) -> None:
    """After the last ISA: groups without an ISA are recovered, anything else is junk."""
    n = len(text)
    if not text[pos:].strip():
        return
    ic = _recover_from_gs(text, pos, n, document, seen, max_segments, "no ISA header before this group")
    if ic is not None:
        interchanges.append(ic)
        if text[ic.end :].strip():
            msg = "text after the last interchange ignored"
            findings.append(_finding(Severity.WARNING, "trailing_junk", msg, document, (ic.end, n)))
        return
    code = "no_isa" if not interchanges else "trailing_junk"
    msg = "no ISA header found" if not interchanges else "text after the last interchange ignored"
    findings.append(_finding(Severity.ERROR if not interchanges else Severity.WARNING, code, msg, document, (pos, n)))


def _next_segment_end(text: str, pos: int, d: Delimiters) -> int:
    if d.segment in "\r\n":
        return min(j for j in (text.find("\n", pos), text.find("\r", pos), len(text)) if j >= 0)
    j = text.find(d.segment, pos)
    return len(text) if j < 0 else j


@dataclass(slots=True)
class _Cut:
    """One interchange being cut into segments."""

    text: str
    start: int
    d: Delimiters
    document: str | None
    segments: list[Segment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def tokens(self, end: int) -> InterchangeTokens:
        return InterchangeTokens(self.d, self.segments, self.start, end, self.findings)

    def add(self, pieces: list[tuple[int, int, bool, str]], raw_start: int) -> bool:
        """Add the segments of one raw piece of text; True once the IEA is read."""
        for p_start, p_end, contiguous, raw in pieces:
            if len(pieces) > 1 and p_start != raw_start:
                msg = "segment terminator missing before a line break; split at the line break"
                self.findings.append(
                    _finding(Severity.WARNING, "missing_terminator", msg, self.document, (p_start, p_end))
                )
            elements = raw.split(self.d.element)
            tag = elements[0].strip()
            if not _TAG_RE.match(tag):
                msg = f"unreadable segment {raw[:20]!r} skipped"
                self.findings.append(_finding(Severity.WARNING, "bad_segment", msg, self.document, (p_start, p_end)))
                continue
            elements[0] = tag
            self.segments.append(Segment(tag, elements, p_start, p_end, contiguous))
            if tag == "IEA":
                return True
        return False

    def end_after(self, j: int) -> int:
        """End of the interchange whose IEA ends at ``j``: past its terminator and line breaks."""
        n = len(self.text)
        end = j + (0 if j >= n else 1)
        while self.d.segment not in "\r\n" and end < n and self.text[end] in "\r\n":
            end += 1
        return end


def _scan_interchange(
    text: str, start: int, d: Delimiters, document: str | None, seen: list[int], max_segments: int
) -> InterchangeTokens:
    """Segments from the ISA at ``start`` up to and including IEA (or up to the next ISA / end);
    stops where ``seen[0]`` (counted up here) reaches ``max_segments``."""
    cut = _Cut(text, start, d, document)
    n = len(text)
    line_term = d.segment in "\r\n"
    pos = start
    while pos < n:
        if seen[0] >= max_segments:
            return cut.tokens(pos)
        j = _next_segment_end(text, pos, d)
        # skip whitespace before the segment (CR/LF after terminators, indentation)
        raw_start = pos
        while raw_start < j and text[raw_start] in " \t\r\n":
            raw_start += 1
        if raw_start < j:
            if cut.segments and text.startswith("ISA", raw_start):
                return cut.tokens(raw_start)  # next interchange without IEA: the caller re-reads its delimiters
            pieces = _split_lines(text, raw_start, j, d.element, line_term)
            seen[0] += len(pieces)
            if cut.add(pieces, raw_start):
                return cut.tokens(cut.end_after(j))
        pos = j + 1
    return cut.tokens(n)


def _split_lines(text: str, start: int, end: int, sep: str, line_term: bool) -> list[tuple[int, int, bool, str]]:
    """One raw segment, or several when line breaks hide a missing terminator.

    Line breaks inside a segment are dropped (wrapped lines), unless the next line starts with a
    known segment tag and the element separator: then the terminator was forgotten.
    """
    raw = text[start:end]
    if line_term or ("\n" not in raw and "\r" not in raw):
        return [(start, end, True, raw.rstrip(" \t") if sep not in " \t" else raw)]
    out: list[tuple[int, int, bool, str]] = []
    cur_start = start
    cur_parts: list[str] = []
    offset = start
    for line in _LINE_BREAK_RE.split(raw):
        if not line or line in ("\r\n", "\r", "\n"):
            offset += len(line)
            continue
        stripped = line.lstrip(" \t")
        tag = stripped.split(sep, 1)[0]
        if cur_parts and sep in stripped and tag in KNOWN_TAGS:
            out.append((cur_start, offset, len(cur_parts) == 1, "".join(cur_parts)))
            cur_parts = []
            cur_start = offset + (len(line) - len(stripped))
        cur_parts.append(stripped if not cur_parts else line)
        offset += len(line)
    if cur_parts:
        out.append((cur_start, end, len(cur_parts) == 1, "".join(cur_parts)))
    return [p for p in out if p[3].strip()]
