"""X12 tokenizer: bytes in, interchanges of segments out, with delimiters read from each ISA header.

Real 850s do not follow the textbook 106-character ISA: fields come unpadded or padded with
non-ASCII spaces, files start with a UTF-8 BOM or whitespace, terminators are ``~``, ``|``, a
newline, CR or 0x15, lines are wrapped inside segments, and one file holds several interchanges
(possibly with different delimiters). So the ISA is read by counting element separators, never by
fixed offsets, and delimiters are re-read at every ISA.

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


def read_delimiters(
    text: str, isa_at: int, document: str | None = None
) -> tuple[Delimiters | None, int, list[Finding]]:
    """Read the delimiters of the ISA starting at ``isa_at``.

    Returns the delimiters (None when unusable), the offset just past the ISA terminator (and any
    suffix whitespace) and findings.
    """
    findings: list[Finding] = []
    n = len(text)
    if isa_at + 4 > n:
        findings.append(_finding(Severity.ERROR, "isa_truncated", "ISA header is truncated", document, (isa_at, n)))
        return None, n, findings
    sep = text[isa_at + 3]
    if sep.isalnum() or sep in " \r\n":
        findings.append(
            _finding(
                Severity.ERROR,
                "isa_bad_separator",
                f"unusable element separator {sep!r}",
                document,
                (isa_at, isa_at + 4),
            )
        )
        return None, isa_at + 3, findings
    # Count separators instead of trusting fixed offsets (unpadded or oddly padded ISAs).
    pos = isa_at + 3
    limit = min(n, isa_at + 400)
    for _ in range(15):
        pos = text.find(sep, pos + 1, limit)
        if pos < 0:
            findings.append(
                _finding(
                    Severity.ERROR, "isa_truncated", "ISA header has fewer than 16 elements", document, (isa_at, limit)
                )
            )
            return None, limit, findings
    if pos + 2 >= n:
        findings.append(
            _finding(Severity.ERROR, "isa_truncated", "ISA header ends before its terminator", document, (isa_at, n))
        )
        return None, n, findings
    component = text[pos + 1]
    term = text[pos + 2]
    after = pos + 3
    if term in "\r\n" and not component.isalnum() and component != " ":
        # ISA16 missing: the char we took for it is really the terminator if the next segment ends with it.
        q = after
        while q < n and text[q] in " \t\r\n":
            q += 1
        eol = text.find("\n", q)
        line = text[q : eol if eol >= 0 else n].rstrip("\r")
        if line.startswith("GS") and line.endswith(component):
            findings.append(
                _finding(
                    Severity.WARNING,
                    "isa16_missing",
                    "ISA16 component separator is missing; using the character found there as segment terminator",
                    document,
                    (isa_at, pos + 2),
                )
            )
            term, component, after = component, "", pos + 2
    if term.isalnum() or term == sep or term == " ":
        findings.append(
            _finding(
                Severity.ERROR,
                "isa_bad_terminator",
                f"unusable segment terminator {term!r}",
                document,
                (isa_at, pos + 3),
            )
        )
        return None, pos + 3, findings
    suffix_end = after
    if term not in "\r\n":
        while suffix_end < n and text[suffix_end] in "\r\n":
            suffix_end += 1
    isa_elements = text[isa_at:pos].split(sep)
    rep = isa_elements[11] if len(isa_elements) > 11 else ""
    repetition = rep if len(rep) == 1 and not rep.isalnum() and rep not in (sep, component, term) else None
    delims = Delimiters(
        element=sep,
        component=component if component not in (sep, term) else "",
        segment=term,
        repetition=repetition,
        segment_suffix=text[after:suffix_end],
    )
    return delims, after, findings


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
            findings.append(
                _finding(Severity.ERROR, "too_many_segments",
                         f"more than {max_segments} segments; the rest was not read", document, (pos, n))
            )  # fmt: skip
            break
        isa_at = text.find("ISA", pos)
        if isa_at < 0:
            if text[pos:].strip():
                code = "no_isa" if not interchanges else "trailing_junk"
                msg = "no ISA header found" if not interchanges else "text after the last interchange ignored"
                findings.append(
                    _finding(Severity.ERROR if not interchanges else Severity.WARNING, code, msg, document, (pos, n))
                )
            break
        if text[pos:isa_at].strip():
            findings.append(
                _finding(Severity.WARNING, "leading_junk", "text before ISA ignored", document, (pos, isa_at))
            )
        delims, _, dfindings = read_delimiters(text, isa_at, document)
        findings.extend(dfindings)
        if delims is None:
            pos = isa_at + 3
            continue
        ic = _scan_interchange(text, isa_at, delims, document, seen, max_segments)
        interchanges.append(ic)
        pos = max(ic.end, isa_at + 3)
    if not text.strip():
        findings.append(_finding(Severity.ERROR, "empty_document", "document is empty", document, (0, n)))
    return interchanges, findings


def _scan_interchange(
    text: str, start: int, d: Delimiters, document: str | None, seen: list[int], max_segments: int
) -> InterchangeTokens:
    """Segments from the ISA at ``start`` up to and including IEA (or up to the next ISA / end);
    stops where ``seen[0]`` (counted up here) reaches ``max_segments``."""
    segments: list[Segment] = []
    findings: list[Finding] = []
    n = len(text)
    term = d.segment
    sep = d.element
    line_term = term in "\r\n"
    pos = start
    while pos < n:
        if seen[0] >= max_segments:
            return InterchangeTokens(d, segments, start, pos, findings)
        if line_term:
            j1 = text.find("\n", pos)
            j2 = text.find("\r", pos)
            j = min(j for j in (j1, j2, n) if j >= 0)
        else:
            j = text.find(term, pos)
            if j < 0:
                j = n
        raw_start = pos
        # skip whitespace before the segment (CR/LF after terminators, indentation)
        while raw_start < j and text[raw_start] in " \t\r\n":
            raw_start += 1
        if raw_start < j:
            if segments and text.startswith("ISA", raw_start):
                # next interchange without IEA: the caller re-reads its delimiters
                return InterchangeTokens(d, segments, start, raw_start, findings)
            pieces = _split_lines(text, raw_start, j, sep, line_term)
            seen[0] += len(pieces)
            for p_start, p_end, contiguous, raw in pieces:
                if len(pieces) > 1 and p_start != raw_start:
                    findings.append(
                        _finding(
                            Severity.WARNING,
                            "missing_terminator",
                            "segment terminator missing before a line break; split at the line break",
                            document,
                            (p_start, p_end),
                        )
                    )
                elements = raw.split(sep)
                tag = elements[0].strip()
                if not _TAG_RE.match(tag):
                    findings.append(
                        _finding(
                            Severity.WARNING,
                            "bad_segment",
                            f"unreadable segment {raw[:20]!r} skipped",
                            document,
                            (p_start, p_end),
                        )
                    )
                    continue
                elements[0] = tag
                segments.append(Segment(tag, elements, p_start, p_end, contiguous))
                if tag == "IEA":
                    end = j + (0 if j >= n else 1)
                    while not line_term and end < n and text[end] in "\r\n":
                        end += 1
                    return InterchangeTokens(d, segments, start, end, findings)
        pos = j + 1
    return InterchangeTokens(d, segments, start, n, findings)


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
