"""EDIFACT ORDERS (D96A and later) to the canonical :class:`~intake.model.PurchaseOrder`.

We use our own tokenizer rather than pydifact: it is small, keeps character offsets for source
pointers, and turns every oddity into a finding instead of an exception. It honours the UNA service
string advice (or the defaults ``:+.? '`` without it, and the level-B control characters when the
UNB is written with them) and the release character; a UNA in front of a later interchange
switches the service characters from there on.

Bytes are decoded as each interchange's UNB syntax identifier says (UNOC ISO 8859-1, UNOE ISO
8859-5 Cyrillic, UNOW UTF-8, ...; see :data:`SYNTAX_CHARSETS`), never by guessing: a document is
read in the character set its envelope names, and where the bytes cannot be that set (UTF-8 under
UNOC, 8-bit letters under UNOA) the reading chosen is named in a finding.

The envelope is checked as ISO 9735 asks: trailer counts and references (UNT, UNE, UNZ), unique
interchange, group and message references (0020, 0048, 0062), known syntax identifiers. Inside an
ORDERS message a segment that is not part of ORDERS, or one out of its place (a PIA before any LIN,
a LIN after UNS), is a finding with its position - never dropped silently. A damaged envelope loses
as little as possible: a message whose UNH is unreadable is read from its BGM, messages without an
interchange header are kept (``unb_missing``), and a missing terminator before a line break is
mended at the line break.

Source pointers use the same shape as X12: ``TAG[occurrence].EE`` or ``TAG[occurrence].EE.CC``
(element and component positions, 1-based, two digits), e.g. ``LIN[3].03.01`` for the item
number in C212 of the third LIN, ``QTY[2].01.02`` for the quantity.

Never raises on bad input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar, TypeVar

from pydantic import BaseModel, Field

from intake.model import (
    MAX_DOCUMENT_INT,
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
from intake.x12.tokenizer import MAX_SEGMENTS

__all__ = [
    "SYNTAX_CHARSETS",
    "Charset",
    "EdifactDocument",
    "EdifactInterchange",
    "EdifactMessage",
    "EdifactSegment",
    "ServiceChars",
    "decode_edifact",
    "looks_like_edifact",
    "parse_edifact",
    "tokenize_edifact",
]


@dataclass(frozen=True, slots=True)
class ServiceChars:
    component: str = ":"
    element: str = "+"
    decimal: str = "."
    release: str = "?"
    """Empty when the interchange has no release character (a space in the UNA, or level B)."""
    segment: str = "'"


LEVEL_B_CHARS = ServiceChars(component="\x1f", element="\x1d", decimal=".", release="", segment="\x1c")
"""ISO 9735's defaults for every repertoire but UNOA when no UNA is sent (IS1, IS3, IS4)."""


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
    group_reference: str = ""
    """UNG 0048 of the functional group the message sits in; empty outside groups."""
    purchase_order: PurchaseOrder | None = None
    findings: list[Finding] = Field(default_factory=list)


class EdifactInterchange(BaseModel):
    syntax: str = ""
    charset: str = ""
    """The character set the interchange was read in (``ISO 8859-5``, ``UTF-8``); empty for text input."""
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


def _finding(
    sev: Severity, code: str, msg: str, document: str | None, span: tuple[int, int] | None, path: str | None = None
) -> Finding:
    return Finding(
        severity=sev, code=code, message=msg, source=Source(kind="edi", document=document, path=path, span=span)
    )


# --- character sets -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charset:
    """What a UNB syntax identifier (data element 0001) says about the bytes."""

    codec: str
    name: str
    repertoire: frozenset[str] | None = None
    """The characters the level allows (UNOA, UNOB); None where the whole code table is allowed."""


_LEVEL_A = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-()/='+:?!\"%&*;<>\r\n")
_LEVEL_B = _LEVEL_A | frozenset("abcdefghijklmnopqrstuvwxyz\x1c\x1d\x1e\x1f")

SYNTAX_CHARSETS: dict[str, Charset] = {
    "UNOA": Charset("ascii", "ISO 646 level A", _LEVEL_A),
    "UNOB": Charset("ascii", "ISO 646 level B", _LEVEL_B),
    "UNOC": Charset("iso8859-1", "ISO 8859-1"),
    "UNOD": Charset("iso8859-2", "ISO 8859-2"),
    "UNOE": Charset("iso8859-5", "ISO 8859-5"),
    "UNOF": Charset("iso8859-7", "ISO 8859-7"),
    "UNOG": Charset("iso8859-3", "ISO 8859-3"),
    "UNOH": Charset("iso8859-4", "ISO 8859-4"),
    "UNOI": Charset("iso8859-6", "ISO 8859-6"),
    "UNOJ": Charset("iso8859-8", "ISO 8859-8"),
    "UNOK": Charset("iso8859-9", "ISO 8859-9"),
    "UNOL": Charset("iso8859-15", "ISO 8859-15"),
    "UNOW": Charset("utf-8", "UTF-8"),
    "UNOX": Charset("iso2022_jp_2", "ISO 2022"),
    "UNOY": Charset("utf-8", "ISO 10646 (UTF-8)"),
    # IATA's own syntax (airline messages such as PAORES) uses the level-A repertoire.
    "IATA": Charset("ascii", "IATA level A", _LEVEL_A),
    "IATB": Charset("ascii", "IATA level B", _LEVEL_B),
}
"""UNB 0001 values and the character set each names (ISO 9735 service code list 0001)."""

_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


@dataclass(slots=True)
class _Decoded:
    text: str
    charsets: list[tuple[int, str]]
    """``(offset in text, character set)`` from each interchange on."""
    findings: list[Finding] = field(default_factory=list)


def _looks_utf8(raw: bytes) -> bool:
    """Valid UTF-8 with at least one multi-byte character: text in an 8-bit set almost never is."""
    if not _UTF8_MULTIBYTE.search(raw):
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Reading:
    """One interchange's bytes as text, the set they were read in, and what differs from the UNB."""

    text: str
    charset: str
    problem: tuple[Severity, str, str] | None = None
    """``(severity, code, message)`` where the bytes are not what the UNB declares."""


def _decode_declared(raw: bytes, ident: str, cs: Charset) -> _Reading:
    if raw.isascii() and not (cs.codec.startswith("iso2022") and b"\x1b" in raw):  # ISO 2022's escapes are 7-bit
        return _Reading(raw.decode("ascii"), cs.name)
    declared = f"{ident} ({cs.name})"
    if (cs.codec == "ascii" or cs.codec.startswith("iso8859")) and _looks_utf8(raw):
        why = f"UNB declares {declared} but the bytes are UTF-8; read as UTF-8"
        return _Reading(raw.decode("utf-8"), "UTF-8", (Severity.WARNING, "charset_mismatch", why))
    if cs.codec == "ascii":
        why = f"8-bit bytes under {declared}, which has none; read as ISO 8859-1: check the names"
        return _Reading(raw.decode("latin-1"), "ISO 8859-1", (Severity.WARNING, "charset_violation", why))
    try:
        return _Reading(raw.decode(cs.codec), cs.name)
    except UnicodeDecodeError as exc:
        why = f"the byte {exc.start} bytes into the interchange is not {declared}; undecodable bytes became U+FFFD"
        return _Reading(raw.decode(cs.codec, errors="replace"), cs.name, (Severity.ERROR, "charset_mismatch", why))


def _decode_unknown(raw: bytes, ident: str) -> _Reading:
    """Bytes under an identifier we do not know (the envelope reports the identifier itself)."""
    if raw.isascii():
        return _Reading(raw.decode("ascii"), "ASCII")
    what = f"unknown syntax identifier {ident!r}" if ident else "no syntax identifier (UNB missing or unreadable)"
    name = "UTF-8" if _looks_utf8(raw) else "ISO 8859-1"
    why = f"{what}; 8-bit text read as {name}: names may be wrong"
    return _Reading(
        raw.decode("utf-8" if name == "UTF-8" else "latin-1"), name, (Severity.ERROR, "charset_unknown", why)
    )


def _syntax_id(head: str, sc: ServiceChars) -> str:
    """The 0001 value at the start of a UNB's first element (``UNOC`` of ``UNOC:3``)."""
    ident = head[:8]
    for sep in (sc.component, sc.element, sc.segment):
        if sep:
            ident = ident.split(sep, 1)[0]
    return ident.strip()


def _unb_starts(latin: str, sc: ServiceChars, limit: int) -> list[int]:
    """Offsets of the UNB segments (at a segment start, not released), at most ``limit``."""
    pattern = re.compile(rf"(?:\A|(?<={re.escape(sc.segment)}))[ \t\r\n]*(UNB{re.escape(sc.element)})")
    out: list[int] = []
    for m in pattern.finditer(latin):
        at = m.start(1)
        if m.start() > 0 and sc.release and _released(latin, m.start() - 1, sc.release, 0):
            continue
        out.append(at)
        if len(out) >= limit:
            break
    return out


def _decode_chunk(raw: bytes, ident: str) -> _Reading:
    cs = SYNTAX_CHARSETS.get(ident)
    if cs is None:
        return _decode_unknown(raw, ident)
    return _decode_declared(raw, ident, cs)


def decode_edifact(data: bytes | str, *, document: str | None = None) -> tuple[str, list[Finding]]:
    """The text of an EDIFACT file, each interchange decoded in the character set its UNB names.

    Character offsets in findings and sources are offsets in this text. Never raises.
    """
    decoded = _decode(data, document)
    return decoded.text, decoded.findings


def _decode(data: bytes | str, document: str | None, max_segments: int = MAX_SEGMENTS) -> _Decoded:
    if isinstance(data, str):
        text = data[1:] if data.startswith("\ufeff") else data
        return _Decoded(text, [])
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _Decoded(data.decode("utf-16", errors="replace"), [(0, "UTF-16")])
    raw = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    latin = raw.decode("latin-1")  # one char per byte: offsets below are byte offsets
    sc = _service_chars_for_scan(latin)
    starts = _unb_starts(latin, sc, max_segments)
    bounds = [0, *starts[1:], len(raw)] if starts else [0, len(raw)]
    idents = [_syntax_id(latin[s + 4 : s + 12], sc) for s in starts] or [""]
    parts: list[str] = []
    names: list[tuple[int, str]] = []
    findings: list[Finding] = []
    reported: set[tuple[str, str]] = set()
    offset = 0
    for k in range(len(bounds) - 1):
        reading = _decode_chunk(raw[bounds[k] : bounds[k + 1]], idents[k])
        problem, span = reading.problem, (offset, offset + len(reading.text))
        if problem is not None and (problem[1], idents[k]) not in reported:  # once per code and identifier
            reported.add((problem[1], idents[k]))
            findings.append(_finding(problem[0], problem[1], problem[2], document, span))
        parts.append(reading.text)
        names.append((offset, reading.charset))
        offset += len(reading.text)
    return _Decoded("".join(parts), names, findings)


def _service_chars_for_scan(latin: str) -> ServiceChars:
    pos = _skip_ws(latin, 0)
    if latin.startswith("UNA", pos) and len(latin) >= pos + 9:
        sc, problem = _una(latin[pos + 3 : pos + 9])
        return sc if problem is None else ServiceChars()
    return _default_chars(latin, pos)


# --- tokenizer ------------------------------------------------------------------------------------


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _una(advice: str) -> tuple[ServiceChars, str | None]:
    """Service characters from the six characters after ``UNA``; a problem text when unusable."""
    release = advice[3] if advice[3] != " " else ""
    sc = ServiceChars(component=advice[0], element=advice[1], decimal=advice[2], release=release, segment=advice[5])
    seps = (sc.component, sc.element, sc.segment)
    if len(set(seps)) < 3 or any(c.isalnum() or c == " " for c in seps) or sc.release in seps:
        return ServiceChars(), f"UNA service characters {advice!r} are unusable"
    if sc.decimal not in ".,":
        sc = ServiceChars(sc.component, sc.element, ".", sc.release, sc.segment)
    return sc, None


def _default_chars(text: str, pos: int) -> ServiceChars:
    """Without a UNA: level-B control characters when the UNB is written with them, else ``:+.? '``."""
    if text.startswith("UNB\x1d", pos) or text.startswith("UNH\x1d", pos):
        return LEVEL_B_CHARS
    return ServiceChars()


def _fits(text: str, pos: int, sc: ServiceChars) -> bool:
    """True when the segment at ``pos`` reads with ``sc``: ``TAG`` + element separator, and after its
    terminator the next segment starts the same way (or the text ends)."""
    head = text[pos : pos + 4]
    if len(head) < 4 or not head[:3].isalpha():
        return True
    if head[3] != sc.element:
        return False
    j = text.find(sc.segment, pos, pos + 4000)
    if j < 0:
        return False
    k = _skip_ws(text, j + 1)
    nxt = text[k : k + 4]
    return len(nxt) < 4 or (nxt[:3].isalpha() and nxt[3] == sc.element) or nxt.startswith("UNA")


def _infer_chars(text: str, pos: int) -> ServiceChars | None:
    """Service characters read off the segments themselves when the UNA contradicts them."""
    head = text[pos : pos + 4]
    if len(head) < 4 or not head[:3].isupper() or head[3].isalnum():
        return None
    element = head[3]
    m = re.search(rf"([^\sA-Za-z0-9])[ \t\r\n]*UN[HTZ]{re.escape(element)}", text[pos : pos + 4000])
    if m is None or m.group(1) == element:
        return None
    ident = text[pos + 4 : pos + 9]
    component = ident[4] if len(ident) == 5 and ident[:4].isalpha() and not ident[4].isalnum() else ":"
    if component in (element, m.group(1)):
        component = ":"
    return ServiceChars(component=component, element=element, segment=m.group(1))


def _nad_shifted(seg: EdifactSegment) -> bool:
    """True for a NAD written one element short (``NAD+DP++name+street+city+ST+zip+US``): a country
    code in 3251 (postcode), nothing in 3207 (country) and digits in 3229 (country sub-entity).

    D.96A/D.01B NAD is 3035, C082, C058 (free-form name and address), C080 (party name), C059
    (street), 3164 city, 3229 sub-entity, 3251 postcode, 3207 country. The parser keeps that reading
    (guessing a realignment could put the wrong street on an order); the finding says why the
    address then matches nothing.
    """
    postcode, country, sub_entity = seg.get(8), seg.get(9), seg.get(7)
    return (
        not country
        and len(postcode) in (2, 3)
        and postcode.isalpha()
        and postcode.isupper()
        and any(c.isdigit() for c in sub_entity)
    )


@dataclass(slots=True)
class _Scanner:
    """One pass over the text: segments, with each oddity a finding, bounded by ``max_segments``."""

    text: str
    document: str | None
    max_segments: int
    sc: ServiceChars = field(default_factory=ServiceChars)
    pos: int = 0
    seen: int = 0
    segments: list[EdifactSegment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    initial: ServiceChars = field(default_factory=ServiceChars)
    after_una: bool = False
    changes: list[tuple[int, ServiceChars]] = field(default_factory=list)
    """``(offset, service characters)`` at each UNA read, so each interchange keeps its decimal mark."""

    def warn(self, sev: Severity, code: str, msg: str, span: tuple[int, int]) -> None:
        self.findings.append(_finding(sev, code, msg, self.document, span))

    def read_una(self) -> bool:
        """Read a UNA at ``pos``; False when the document ends inside it."""
        text, pos = self.text, self.pos
        if pos + 9 > len(text):
            self.warn(Severity.ERROR, "una_truncated", "UNA service string advice is truncated", (pos, len(text)))
            self.pos = len(text)
            return False
        sc, problem = _una(text[pos + 3 : pos + 9])
        after = _skip_ws(text, pos + 9)
        if problem is None and not _fits(text, after, sc):
            problem = f"UNA service characters {text[pos + 3 : pos + 9]!r} do not match the segments that follow"
        if problem is not None:
            inferred = _infer_chars(text, after)
            note = "; read with the separators the segments use" if inferred else ""
            self.warn(Severity.ERROR, "una_invalid", problem + note, (pos, pos + 9))
            sc = inferred or _default_chars(text, after)
        self.sc = sc
        self.changes.append((pos, sc))
        if not self.segments:
            self.initial = sc
        self.pos = pos + 9
        return True

    def first_chars(self) -> ServiceChars:
        """Service characters before any UNA: the defaults, or (named in a finding) those the
        segments plainly use when a sender changed them without sending a UNA."""
        sc = _default_chars(self.text, self.pos)
        if self.text.startswith("UNA", self.pos) or _fits(self.text, self.pos, sc):
            return sc
        inferred = _infer_chars(self.text, self.pos)
        if inferred is None:
            return sc
        msg = f"no UNA, yet the segments use {inferred.element!r} and {inferred.segment!r}; read with those"
        self.warn(Severity.WARNING, "service_characters_inferred", msg, (self.pos, self.pos + 4))
        return inferred

    def interchange_defaults(self, start: int) -> None:
        """A UNB without its own UNA is read with the defaults (ISO 9735), unless it plainly still
        uses the separators of the UNA before it."""
        sc = _default_chars(self.text, start)
        if sc != self.sc and _fits(self.text, start, sc):
            self.sc = sc
            self.changes.append((start, sc))

    def segment_end(self, start: int) -> int:
        """Offset of the terminator of the segment starting at ``start`` (or the text length)."""
        text, term, rel = self.text, self.sc.segment, self.sc.release
        j = text.find(term, start)
        while j > 0 and rel and _released(text, j, rel, start):
            j = text.find(term, j + 1)
        return j

    def add(self, raw: str, start: int, end: int) -> None:
        elements = _split_elements(raw, self.sc)
        tag = elements[0][0].strip() if elements and elements[0] else ""
        if len(tag) == 3 and tag.isalnum() and tag.isupper():
            elements[0] = [tag]
            self.segments.append(EdifactSegment(tag, elements, start, end))
        else:
            self.warn(Severity.WARNING, "bad_segment", f"unreadable segment {raw[:20]!r} skipped", (start, end))

    def add_lines(self, start: int, end: int) -> None:
        """One raw segment; split where a line break hides a missing terminator (``...'`` lost before ``UNH+``)."""
        raw = self.text[start:end]
        if "\n" not in raw and "\r" not in raw:
            self.add(raw, start, end)
            return
        pieces = _line_pieces(raw, start, self.sc.element)
        for k, (p_start, p_raw) in enumerate(pieces):
            p_end = pieces[k + 1][0] if k + 1 < len(pieces) else end
            if k:
                self.warn(
                    Severity.WARNING,
                    "missing_terminator",
                    "segment terminator missing before a line break; split at the line break",
                    (p_start, p_end),
                )
            self.add(p_raw, p_start, p_end)

    def run(self) -> None:
        text, n = self.text, len(self.text)
        self.pos = _skip_ws(text, 0)
        self.sc = self.first_chars()
        self.changes.append((0, self.sc))
        self.initial = self.sc
        while self.pos < n:
            if self.seen >= self.max_segments:
                self.warn(
                    Severity.ERROR,
                    "too_many_segments",
                    f"more than {self.max_segments} segments; the rest was not read",
                    (self.pos, n),
                )
                return
            self.seen += 1
            start = _skip_ws(text, self.pos)
            if text.startswith("UNA", start):
                self.pos = start
                if not self.read_una():
                    return
                self.after_una = True
                continue
            if text.startswith("UNB", start) and not self.after_una:
                self.interchange_defaults(start)
            self.after_una = False
            if not self.step(start):
                return

    def step(self, start: int) -> bool:
        """Read the segment at ``start``; False at the end of the text."""
        j = self.segment_end(start)
        end = len(self.text) if j < 0 else j
        if start < end:
            self.add_lines(start, end)
        if j < 0:
            if start < end:
                self.warn(Severity.WARNING, "missing_terminator", "last segment has no terminator", (start, end))
            return False
        self.pos = j + 1
        return True


_LINE_RE = re.compile(r"\r\n|\r|\n")


def _line_pieces(raw: str, start: int, element: str) -> list[tuple[int, str]]:
    """Lines of a raw segment joined back together, except where a line starts a known segment."""
    pieces: list[tuple[int, list[str]]] = []
    offset = 0
    for m in [*_LINE_RE.finditer(raw), None]:
        line_end = m.start() if m is not None else len(raw)
        line = raw[offset:line_end]
        stripped = line.lstrip(" \t")
        if pieces and stripped[:3] in _KNOWN_TAGS and stripped[3:4] == element:
            pieces.append((start + offset + len(line) - len(stripped), [stripped]))
        elif pieces:
            pieces[-1][1].append(line)
        elif stripped:
            pieces.append((start + offset + len(line) - len(stripped), [stripped]))
        if m is None:
            break
        offset = m.end()
    return [(s, "".join(parts)) for s, parts in pieces] or [(start, raw.replace("\r", "").replace("\n", ""))]


def _split_released(s: str, sep: str, release: str) -> list[str]:
    """Split on ``sep`` unless released; release characters are removed from the parts."""
    if not release or release not in s:
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
    if not sc.release or sc.release not in raw:
        return [e.split(sc.component) for e in raw.split(sc.element)]
    # Split on unreleased element separators first (keeping release characters for the component split).
    return [_split_released(element, sc.component, sc.release) for element in _split_keep_release(raw, sc)]


def _split_keep_release(s: str, sc: ServiceChars) -> list[str]:
    """Split on unreleased element separators but keep release characters (the component split needs them)."""
    sep, release = sc.element, sc.release
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


def _released(text: str, j: int, rel: str, floor: int) -> bool:
    """True when the char at ``j`` is preceded by an odd number of release characters."""
    k = j - 1
    count = 0
    while k >= floor and text[k] == rel:
        count += 1
        k -= 1
    return count % 2 == 1


def _scan(text: str, document: str | None, max_segments: int) -> _Scanner:
    scanner = _Scanner(text, document, max_segments)
    scanner.run()
    if not scanner.segments and not scanner.findings:
        scanner.warn(Severity.ERROR, "empty_document", "document holds no EDIFACT segments", (0, len(text)))
    return scanner


def tokenize_edifact(
    text: str, *, document: str | None = None, max_segments: int = MAX_SEGMENTS
) -> tuple[ServiceChars, list[EdifactSegment], list[Finding]]:
    """Segments of the text, one at a time; past ``max_segments`` (good and bad) it stops with a
    ``too_many_segments`` ERROR rather than build millions of segments and findings.

    The service characters returned are the first interchange's (a later UNA may change them)."""
    scanner = _scan(text, document, max_segments)
    return scanner.initial, scanner.segments, scanner.findings


# --- message mapping ------------------------------------------------------------------------------

_DOC_DATE = ("137", "4", "3")
_DATE_FORMATS = ("", "102", "203", "204", "101")
_PARTY_CONTEXT = frozenset({"RFF", "CTA", "COM", "LOC", "FII", "DTM"})
"""Segments that stay inside the NAD group before them (a DTM there is the party's, not the order's)."""
_AC_CONTEXT = frozenset({"MOA", "PCD", "ALC"})
"""Segments that stay inside the ALC group before them."""

_ORDERS_TAGS = (
    "UNH UNT BGM DTM PAI ALI IMD FTX GIR RFF NAD LOC FII CTA COM TAX MOA CUX PAT PCD TDT TOD PAC MEA PCI GIN "
    "EQD HAN SCC QTY APR RNG ALC RTE RCS LIN PIA PRI QVR DOC GIS UNS CNT STG DGS CCI CAV MKS EFI CED AJT INP "
    "TSR GEI QUA ERC FTX SEQ IRQ PGI PRC"
)
ORDERS_SEGMENTS = frozenset(_ORDERS_TAGS.split())
"""Segment tags of the ORDERS message over the directories in use (D93A..D21A, EANCOM): others are unknown."""

_SERVICE_TAGS = frozenset({"UNA", "UNB", "UNG", "UNH", "UNT", "UNE", "UNZ", "UNS"})
_KNOWN_TAGS = ORDERS_SEGMENTS | _SERVICE_TAGS
_LINE_ONLY = frozenset({"PIA", "PRI"})
"""Segments that belong to a LIN group; before the first LIN they have no line to go to."""
_DETAIL = frozenset({"LIN", "PIA", "IMD", "QTY", "PRI"})
"""Segments of the detail section; after UNS they are out of place."""

_T = TypeVar("_T")
_Handler = Callable[["_OrdersMapper", EdifactSegment, int], None]


class _OrdersMapper:
    """One ORDERS message to a purchase order: one small handler per segment tag (``_HANDLERS``)."""

    _HANDLERS: ClassVar[dict[str, _Handler]]

    def __init__(self, document: str | None, decimal: str) -> None:
        self.document = document
        self.decimal = decimal
        self.po = PurchaseOrder(document_type="edifact-orders")
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}
        self.line: POLine | None = None
        self.party: Party | None = None
        self.summary = False
        self.last_ac: AllowanceCharge | None = None
        self.ac_prefix = ""

    # --- provenance & findings ---
    def src(self, seg: EdifactSegment, occ: int, i: int | None = None, j: int | None = None) -> Source:
        path = f"{seg.tag}[{occ}]" + (f".{i:02d}" if i is not None else "") + (f".{j:02d}" if j is not None else "")
        return Source(kind="edi", document=self.document, path=path, span=(seg.start, seg.end))

    def note(self, sev: Severity, code: str, message: str, source: Source | None) -> None:
        self.findings.append(Finding(severity=sev, code=code, message=message, source=source))

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
            self.note(Severity.WARNING, "bad_number", f"{seg.tag} {raw!r} is not a number", self.src(seg, occ, i, j))
            return None
        self.po.sources[field] = self.src(seg, occ, i, j)
        return value

    @property
    def k(self) -> int:
        """Index of the current line."""
        return len(self.po.lines) - 1

    # --- the walk ---
    def run(self, segments: list[EdifactSegment]) -> PurchaseOrder:
        for seg in segments:
            tag = seg.tag
            occ = self.counts[tag] = self.counts.get(tag, 0) + 1
            if tag not in _PARTY_CONTEXT:
                self.party = None
            self.check_place(seg, occ)
            handler = self._HANDLERS.get(tag)
            if handler is not None:
                handler(self, seg, occ)
            elif tag not in ORDERS_SEGMENTS:
                self.note(
                    Severity.WARNING,
                    "unknown_segment",
                    f"segment {tag} is not part of an ORDERS message; ignored",
                    self.src(seg, occ),
                )
            if tag not in _AC_CONTEXT:
                self.last_ac = None
        self.finish()
        return self.po

    def check_place(self, seg: EdifactSegment, occ: int) -> None:
        """Segments out of the ORDERS order are findings: what they carry is read where it can be, or ignored."""
        tag = seg.tag
        problem = ""
        if tag == "BGM" and occ == 1 and set(self.counts) - {"UNH", "BGM"}:
            problem = "BGM is not the first segment of the message"
        elif self.summary and tag in _DETAIL:
            problem = f"{tag} after UNS (the summary section)"
        elif tag in _LINE_ONLY and self.line is None:
            problem = f"{tag} before the first LIN has no line; ignored"
        elif tag == "UNS" and self.summary:
            problem = "second UNS"
        elif tag == "CNT" and not self.summary:
            problem = "CNT before UNS (it belongs to the summary section)"
        if problem:
            self.note(Severity.WARNING, "misplaced_segment", problem, self.src(seg, occ))

    def finish(self) -> None:
        po = self.po
        if not po.po_number:
            self.note(
                Severity.ERROR,
                "po_number_missing",
                "BGM document number is missing",
                Source(kind="edi", document=self.document, path="BGM[1].02.01"),
            )
        if po.declared_line_count is not None and po.declared_line_count != len(po.lines):
            self.note(
                Severity.WARNING,
                "cnt_line_count_mismatch",
                f"CNT declares {po.declared_line_count} lines, the order has {len(po.lines)}",
                po.sources.get("declared_line_count"),
            )

    # --- header ---
    def bgm(self, seg: EdifactSegment, occ: int) -> None:
        po = self.po  # one BGM per message: the envelope starts a new message at a second one
        po.order_type = self.put("order_type", seg, occ, 1)
        po.po_number = self.put("po_number", seg, occ, 2)
        po.purpose_code = self.put("purpose_code", seg, occ, 3)

    def dtm(self, seg: EdifactSegment, occ: int) -> None:
        qual, raw, fmt = seg.get(1, 1), seg.get(1, 2), seg.get(1, 3)
        if not raw:
            return
        dval = parse_edi_date(raw) if fmt in _DATE_FORMATS else None
        if dval is None and fmt in _DATE_FORMATS:
            self.note(Severity.WARNING, "bad_date", f"DTM {raw!r} is not a date", self.src(seg, occ, 1, 2))
        ref = DateRef(qualifier=qual, value=dval, raw=raw)
        po, line = self.po, self.line
        if line is not None and not self.summary:
            po.sources[f"lines[{self.k}].dates[{len(line.dates)}].value"] = self.src(seg, occ, 1, 2)
            line.dates.append(ref)
        elif self.party is None:
            po.sources[f"dates[{len(po.dates)}].value"] = self.src(seg, occ, 1, 2)
            po.dates.append(ref)
            if qual in _DOC_DATE and po.po_date is None and dval is not None:
                po.po_date = dval
                po.sources["po_date"] = self.src(seg, occ, 1, 2)

    def cux(self, seg: EdifactSegment, occ: int) -> None:
        if self.po.currency is None:
            self.po.currency = self.put("currency", seg, occ, 1, 2)

    def rff(self, seg: EdifactSegment, occ: int) -> None:
        qual, value = seg.get(1, 1), seg.get(1, 2)
        if self.line is None and qual and value:
            self.put(f"references[{len(self.po.references)}].value", seg, occ, 1, 2)
            self.po.references.append(Reference(qualifier=qual, value=value))

    def nad(self, seg: EdifactSegment, occ: int) -> None:
        if self.line is not None:
            return  # a line-level party (SG35): not one of the order's parties
        p = f"parties[{len(self.po.parties)}]."
        party = Party(
            role=self.put(p + "role", seg, occ, 1) or "",
            id=self.put(p + "id", seg, occ, 2, 1),
            id_qualifier=seg.get(2, 3) or seg.get(2, 2) or None,
            name=self.put(p + "name", seg, occ, 4, 1) or self.put(p + "name", seg, occ, 3, 1),
            additional_names=[c.strip() for c in (seg.elements[4][1:] if len(seg.elements) > 4 else []) if c.strip()],
            city=self.put(p + "city", seg, occ, 6),
            state=self.put(p + "state", seg, occ, 7),
            postal_code=self.put(p + "postal_code", seg, occ, 8),
            country=self.put(p + "country", seg, occ, 9),
        )
        for jj in range(1, 5):
            v = self.put(f"{p}address_lines[{len(party.address_lines)}]", seg, occ, 5, jj)
            if v:
                party.address_lines.append(v)
        self.po.parties.append(party)
        self.party = party
        if _nad_shifted(seg):
            self.note(
                Severity.WARNING,
                "nad_elements_shifted",
                f"NAD {party.role}: the postcode element (3251) holds {seg.get(8)!r} and the country (3207) is "
                "empty: the address looks written one element early (name in C058, street in C080); read where "
                "the standard puts each element: check the address",
                self.src(seg, occ),
            )

    def cta(self, seg: EdifactSegment, occ: int) -> None:
        po = self.po
        po.contacts.append(
            Contact(
                function=seg.get(1) or None,
                name=self.put(f"contacts[{len(po.contacts)}].name", seg, occ, 2, 2),
                party_role=self.party.role if self.party is not None else None,
            )
        )

    def com(self, seg: EdifactSegment, occ: int) -> None:
        if self.po.contacts and seg.get(1, 1):
            self.po.contacts[-1].communications.append(Communication(qualifier=seg.get(1, 2), value=seg.get(1, 1)))

    def tdt(self, seg: EdifactSegment, occ: int) -> None:
        po = self.po
        po.carriers.append(
            Carrier(
                routing_sequence=seg.get(1) or None,
                transport_method=seg.get(3, 1) or None,
                id=self.put(f"carriers[{len(po.carriers)}].id", seg, occ, 5, 1),
                routing=seg.get(5, 4) or None,
            )
        )

    # --- detail ---
    def lin(self, seg: EdifactSegment, occ: int) -> None:
        p = f"lines[{len(self.po.lines)}]."
        line = POLine(line_number=self.put(p + "line_number", seg, occ, 1))
        item, qual = seg.get(3, 1), seg.get(3, 2)
        if item:
            self.po.sources[p + "product_ids[0]"] = self.src(seg, occ, 3, 1)
            line.product_ids.append(ProductId(qualifier=qual or "", value=item))
        self.po.lines.append(line)
        self.line = line

    def pia(self, seg: EdifactSegment, occ: int) -> None:
        line = self.line
        if line is None:
            return
        for i in range(2, min(len(seg.elements), 7)):
            item, qual = seg.get(i, 1), seg.get(i, 2)
            if item:
                self.po.sources[f"lines[{self.k}].product_ids[{len(line.product_ids)}]"] = self.src(seg, occ, i, 1)
                line.product_ids.append(ProductId(qualifier=qual or "", value=item))

    def imd(self, seg: EdifactSegment, occ: int) -> None:
        line = self.line
        desc = " ".join(v for v in (seg.get(3, 4), seg.get(3, 5)) if v)
        if line is None or not desc:
            return
        if line.description is None:
            line.description = desc
            self.po.sources[f"lines[{self.k}].description"] = self.src(seg, occ, 3, 4)
        line.descriptions.append(desc)

    def qty(self, seg: EdifactSegment, occ: int) -> None:
        line = self.line
        if line is None or self.summary or not (line.quantity is None or seg.get(1, 1) == "21"):
            return
        dec = self.num(f"lines[{self.k}].quantity", seg, occ, 1, 2)
        if dec is not None:
            line.quantity = dec
            line.unit = seg.get(1, 3) or line.unit

    def pri(self, seg: EdifactSegment, occ: int) -> None:
        line = self.line
        if line is None or self.summary or not (line.unit_price is None or seg.get(1, 1) == "AAA"):
            return
        dec = self.num(f"lines[{self.k}].unit_price", seg, occ, 1, 2)
        if dec is not None:
            line.unit_price = dec
            line.price_basis = seg.get(1, 1) or None

    def moa(self, seg: EdifactSegment, occ: int) -> None:
        qual, line, po = seg.get(1, 1), self.line, self.po
        if self.last_ac is not None and qual in ("8", "23", "204", "131"):
            self.last_ac.amount = self.num(f"{self.ac_prefix}.amount", seg, occ, 1, 2)
        elif line is not None and not self.summary and qual == "203":
            line.amount = self.num(f"lines[{self.k}].amount", seg, occ, 1, 2)
        elif line is None or self.summary:
            dec = self.num(f"amounts[{len(po.amounts)}].value", seg, occ, 1, 2)
            if dec is not None and qual:
                po.amounts.append(Amount(qualifier=qual, value=dec))

    def alc(self, seg: EdifactSegment, occ: int) -> None:
        po, line = self.po, self.line
        self.last_ac = AllowanceCharge(indicator=seg.get(1) or "", code=seg.get(5, 1) or seg.get(2, 1) or None)
        acs = po.allowances_charges if line is None or self.summary else line.allowances_charges
        self.ac_prefix = (
            "" if acs is po.allowances_charges else f"lines[{self.k}]."
        ) + f"allowances_charges[{len(acs)}]"
        acs.append(self.last_ac)

    # --- summary ---
    def uns(self, seg: EdifactSegment, occ: int) -> None:
        self.summary = True

    def cnt(self, seg: EdifactSegment, occ: int) -> None:
        if seg.get(1, 1) != "2":
            return
        count = parse_decimal(seg.get(1, 2))
        if count is not None and count == count.to_integral_value() and 0 <= count <= MAX_DOCUMENT_INT:
            self.po.declared_line_count = int(count)
            self.po.sources["declared_line_count"] = self.src(seg, occ, 1, 2)


_OrdersMapper._HANDLERS = {
    "BGM": _OrdersMapper.bgm,
    "DTM": _OrdersMapper.dtm,
    "CUX": _OrdersMapper.cux,
    "RFF": _OrdersMapper.rff,
    "NAD": _OrdersMapper.nad,
    "CTA": _OrdersMapper.cta,
    "COM": _OrdersMapper.com,
    "TDT": _OrdersMapper.tdt,
    "LIN": _OrdersMapper.lin,
    "PIA": _OrdersMapper.pia,
    "IMD": _OrdersMapper.imd,
    "QTY": _OrdersMapper.qty,
    "PRI": _OrdersMapper.pri,
    "MOA": _OrdersMapper.moa,
    "ALC": _OrdersMapper.alc,
    "UNS": _OrdersMapper.uns,
    "CNT": _OrdersMapper.cnt,
}


# --- envelope -------------------------------------------------------------------------------------

_MESSAGE_ENDS = frozenset({"UNH", "UNZ", "UNB", "UNE", "UNG"})
"""Service segments that end an open message (a missing UNT is then a finding)."""


@dataclass(slots=True)
class _OpenMessage:
    unh: EdifactSegment | None
    """None for a message read from its BGM because its UNH was missing or unreadable."""
    segments: list[EdifactSegment]
    group_reference: str = ""
    findings: list[Finding] = field(default_factory=list)
    has_bgm: bool = False


@dataclass(slots=True)
class _OpenGroup:
    ung: EdifactSegment
    reference: str
    messages: int = 0


class _Envelope:
    """Walks the segments once, building interchanges (UNB..UNZ), groups (UNG..UNE) and messages
    (UNH..UNT); every service segment has its handler in ``_HANDLERS`` and every check is small."""

    _HANDLERS: ClassVar[dict[str, Callable[[_Envelope, EdifactSegment], None]]]

    def __init__(self, text: str, scanner: _Scanner, decoded: _Decoded, document: str | None) -> None:
        self.text = text
        self.document = document
        self.changes = scanner.changes
        self.charsets = decoded.charsets
        self.doc = EdifactDocument(document=document, findings=[*decoded.findings, *scanner.findings])
        self.ic: EdifactInterchange | None = None
        self.unb: EdifactSegment | None = None
        self.ic_start = 0
        self.last_end = 0
        self.ic_messages = 0
        self.ic_groups = 0
        self.msg: _OpenMessage | None = None
        self.group: _OpenGroup | None = None
        self.message_refs: set[str] = set()
        self.group_refs: set[str] = set()
        self.interchange_refs: set[tuple[str, str, str]] = set()

    def f(self, sev: Severity, code: str, msg: str, seg: EdifactSegment | None, path: str | None = None) -> Finding:
        return _finding(sev, code, msg, self.document, (seg.start, seg.end) if seg else None, path)

    def here(self) -> list[Finding]:
        """Where a finding about the envelope goes: the open interchange, else the document."""
        return self.ic.findings if self.ic is not None else self.doc.findings

    # --- the walk ---
    def feed(self, seg: EdifactSegment) -> None:
        self.last_end = seg.end
        msg = self.msg
        # A second BGM means the UNT and UNH between two messages were lost: a new message starts.
        if msg is not None and seg.tag not in _MESSAGE_ENDS and not (seg.tag == "BGM" and msg.has_bgm):
            msg.segments.append(seg)
            msg.has_bgm = msg.has_bgm or seg.tag == "BGM"
            if seg.tag == "UNT":
                self.close_message(seg)
            return
        handler = self._HANDLERS.get(seg.tag)
        if handler is not None:
            handler(self, seg)
        else:
            self.here().append(
                self.f(
                    Severity.WARNING, "segment_outside_message", f"{seg.tag} segment outside any message ignored", seg
                )
            )

    def finish(self) -> EdifactDocument:
        self.end_message()
        if self.ic is not None:
            self.close_interchange(None)
        doc = self.doc
        if not doc.interchanges and not any(x.severity is Severity.ERROR for x in doc.findings):
            doc.findings.append(
                _finding(
                    Severity.ERROR, "no_interchange", "no UNB interchange found", self.document, (0, len(self.text))
                )
            )
        return doc

    # --- interchanges ---
    def on_unb(self, seg: EdifactSegment) -> None:
        self.end_message()
        if self.ic is not None:
            self.close_interchange(None)
        self.open_interchange(seg)

    def open_interchange(self, seg: EdifactSegment | None) -> EdifactInterchange:
        ic = self.ic = EdifactInterchange(charset=_at(self.charsets, seg.start if seg else 0, ""))
        self.unb, self.ic_messages, self.ic_groups = seg, 0, 0
        self.message_refs, self.group_refs = set(), set()
        self.ic_start = seg.start if seg is not None else self.last_end
        self.doc.interchanges.append(ic)
        if seg is None:
            ic.findings.append(
                self.f(
                    Severity.ERROR,
                    "unb_missing",
                    "message outside an interchange (no UNB, or an unreadable one); its messages are read",
                    None,
                )
            )
            return ic
        ic.syntax = ":".join(v for v in (seg.get(1, 1), seg.get(1, 2)) if v)
        ic.sender, ic.sender_qualifier = seg.get(2, 1), seg.get(2, 2)
        ic.recipient, ic.recipient_qualifier = seg.get(3, 1), seg.get(3, 2)
        ic.control_reference = seg.get(5)
        ic.findings.extend(self.check_unb(seg, ic))
        return ic

    def check_unb(self, seg: EdifactSegment, ic: EdifactInterchange) -> list[Finding]:
        out: list[Finding] = []
        ident = seg.get(1, 1)
        if ident not in SYNTAX_CHARSETS:
            what = f"unknown syntax identifier {ident!r}" if ident else "no syntax identifier"
            out.append(self.f(Severity.WARNING, "unknown_syntax_identifier", f"UNB has {what}", seg, "UNB.01.01"))
        missing = [name for i, name in ((2, "sender"), (3, "recipient"), (5, "control reference")) if not seg.get(i)]
        if missing:
            out.append(self.f(Severity.ERROR, "unb_incomplete", "UNB has no " + ", no ".join(missing), seg))
        key = (ic.sender, ic.recipient, ic.control_reference)
        if ic.control_reference and key in self.interchange_refs:
            out.append(
                self.f(
                    Severity.ERROR,
                    "duplicate_interchange_reference",
                    f"interchange reference {ic.control_reference!r} from {ic.sender!r} repeats in this file",
                    seg,
                    "UNB.05",
                )
            )
        self.interchange_refs.add(key)
        return out

    def on_unz(self, seg: EdifactSegment) -> None:
        self.end_message()
        if self.ic is None:
            self.doc.findings.append(self.f(Severity.ERROR, "unz_without_unb", "UNZ without UNB", seg))
        else:
            self.close_interchange(seg)

    def close_interchange(self, unz: EdifactSegment | None) -> None:
        ic = self.ic
        assert ic is not None
        if self.group is not None:
            self.close_group(None)
        if unz is None:
            if self.unb is not None:
                ic.findings.append(self.f(Severity.ERROR, "unz_missing", "interchange has no UNZ trailer", self.unb))
        else:
            ic.findings.extend(self.check_unz(unz, ic))
        ic.findings.extend(self.repertoire(ic))
        self.ic = None

    def check_unz(self, unz: EdifactSegment, ic: EdifactInterchange) -> list[Finding]:
        out: list[Finding] = []
        expected = self.ic_groups if self.ic_groups else self.ic_messages
        if _count(unz.get(1)) != expected:
            out.append(
                self.f(
                    Severity.ERROR,
                    "unz_count_mismatch",
                    f"UNZ says {unz.get(1) or 'nothing'}, the interchange has {expected}",
                    unz,
                    "UNZ.01",
                )
            )
        if unz.get(2) != ic.control_reference:
            out.append(
                self.f(
                    Severity.ERROR,
                    "unz_reference_mismatch",
                    f"UNZ reference {unz.get(2)!r} does not match UNB {ic.control_reference!r}",
                    unz,
                    "UNZ.02",
                )
            )
        return out

    def repertoire(self, ic: EdifactInterchange) -> list[Finding]:
        """Characters outside UNOA/UNOB, once per interchange, with the first offender's position."""
        ident = ic.syntax.split(":", 1)[0]
        cs = SYNTAX_CHARSETS.get(ident)
        if cs is None or cs.repertoire is None:
            return []
        sc = _at(self.changes, self.ic_start, ServiceChars())
        outside = _outside(cs.repertoire | {sc.component, sc.element, sc.decimal, sc.release, sc.segment} - {""})
        bad = outside.findall(self.text, self.ic_start, self.last_end)
        if not bad:
            return []
        m = outside.search(self.text, self.ic_start, self.last_end)
        at = m.start() if m is not None else self.ic_start
        return [
            _finding(
                Severity.WARNING,
                "charset_violation",
                f"{len(bad)} character(s) outside {cs.name} ({ident}), the first {self.text[at]!r} at offset {at}",
                self.document,
                (at, at + 1),
            )
        ]

    # --- groups ---
    def on_ung(self, seg: EdifactSegment) -> None:
        self.end_message()
        if self.ic is None:
            self.open_interchange(None)
        if self.group is not None:
            self.close_group(None)
        ref = seg.get(5)
        self.ic_groups += 1
        self.group = _OpenGroup(seg, ref)
        if ref and ref in self.group_refs:
            self.here().append(
                self.f(
                    Severity.ERROR,
                    "duplicate_group_reference",
                    f"group reference {ref!r} repeats in the interchange",
                    seg,
                    "UNG.05",
                )
            )
        self.group_refs.add(ref)

    def on_une(self, seg: EdifactSegment) -> None:
        self.end_message()
        if self.group is None:
            self.here().append(self.f(Severity.WARNING, "une_without_ung", "UNE without UNG", seg))
        else:
            self.close_group(seg)

    def close_group(self, une: EdifactSegment | None) -> None:
        grp = self.group
        assert grp is not None
        self.group = None
        if une is None:
            self.here().append(
                self.f(Severity.ERROR, "une_missing", f"group {grp.reference!r} has no UNE trailer", grp.ung)
            )
            return
        if _count(une.get(1)) != grp.messages:
            self.here().append(
                self.f(
                    Severity.ERROR,
                    "une_count_mismatch",
                    f"UNE says {une.get(1) or 'nothing'} messages, the group has {grp.messages}",
                    une,
                    "UNE.01",
                )
            )
        if une.get(2) != grp.reference:
            self.here().append(
                self.f(
                    Severity.ERROR,
                    "une_reference_mismatch",
                    f"UNE reference {une.get(2)!r} does not match UNG {grp.reference!r}",
                    une,
                    "UNE.02",
                )
            )

    # --- messages ---
    def on_unh(self, seg: EdifactSegment) -> None:
        self.open_message(seg, [seg])

    def on_bgm(self, seg: EdifactSegment) -> None:
        """A BGM outside any message, or a second one inside a message: its UNH was lost (unreadable,
        swallowed by the segment before it, or gone with the UNT before it), so the message is read
        from here rather than dropped or merged into the one before."""
        self.open_message(None, [seg])
        assert self.msg is not None
        self.msg.has_bgm = True
        self.msg.findings.append(
            self.f(
                Severity.ERROR,
                "unh_missing",
                "message without a readable UNH header; read from its BGM as an ORDERS message",
                seg,
            )
        )

    def open_message(self, unh: EdifactSegment | None, segments: list[EdifactSegment]) -> None:
        self.end_message()
        if self.ic is None:
            self.open_interchange(None)
        self.ic_messages += 1
        msg = self.msg = _OpenMessage(unh, segments)
        if self.group is not None:
            self.group.messages += 1
            msg.group_reference = self.group.reference
        ref = unh.get(1) if unh is not None else ""
        if ref and ref in self.message_refs:
            msg.findings.append(
                self.f(
                    Severity.ERROR,
                    "duplicate_message_reference",
                    f"message reference {ref!r} repeats in the interchange",
                    unh,
                    "UNH.01",
                )
            )
        self.message_refs.add(ref)

    def end_message(self) -> None:
        if self.msg is not None:
            self.close_message(None)

    def close_message(self, unt: EdifactSegment | None) -> None:
        open_msg, ic = self.msg, self.ic
        assert open_msg is not None
        assert ic is not None
        self.msg = None
        unh = open_msg.unh
        if unh is not None:
            version = ":".join(v for v in (unh.get(2, 2), unh.get(2, 3), unh.get(2, 4)) if v)
            m = EdifactMessage(
                reference=unh.get(1), message_type=unh.get(2, 1), version=version, association_code=unh.get(2, 5)
            )
        else:
            m = EdifactMessage(reference=unt.get(2) if unt is not None else "", message_type="ORDERS", version="")
        m.group_reference = open_msg.group_reference
        m.findings.extend(open_msg.findings)
        m.findings.extend(self.check_unt(unt, m, open_msg))
        self.map_message(m, open_msg)
        ic.messages.append(m)

    def check_unt(self, unt: EdifactSegment | None, m: EdifactMessage, msg: _OpenMessage) -> list[Finding]:
        if unt is None:
            where = msg.unh or msg.segments[0]
            return [self.f(Severity.ERROR, "unt_missing", f"message {m.reference!r} has no UNT trailer", where)]
        out: list[Finding] = []
        declared = unt.get(1)
        counted = len(msg.segments) + (1 if msg.unh is None else 0)  # a lost UNH still counts
        if _count(declared) != counted:
            out.append(
                self.f(
                    Severity.ERROR,
                    "unt_count_mismatch",
                    f"UNT says {declared or 'nothing'} segments, the message has {counted}",
                    unt,
                    "UNT.01",
                )
            )
        if unt.get(2) != m.reference:
            out.append(
                self.f(
                    Severity.ERROR,
                    "unt_reference_mismatch",
                    f"UNT reference {unt.get(2)!r} does not match UNH {m.reference!r}",
                    unt,
                    "UNT.02",
                )
            )
        return out

    def map_message(self, m: EdifactMessage, msg: _OpenMessage) -> None:
        first = msg.segments[0]
        if m.message_type != "ORDERS":
            m.findings.append(
                self.f(Severity.INFO, "unsupported_message", f"message type {m.message_type!r} is not mapped", first)
            )
            return
        mapper = _OrdersMapper(self.document, _at(self.changes, first.start, ServiceChars()).decimal)
        try:
            m.purchase_order = mapper.run(msg.segments)
            m.findings.extend(mapper.findings)
        except Exception as exc:  # a mapper bug must not lose the whole file
            m.findings.append(self.f(Severity.ERROR, "mapping_failed", f"mapping failed: {exc!r}", first))


_Envelope._HANDLERS = {
    "UNB": _Envelope.on_unb,
    "UNZ": _Envelope.on_unz,
    "UNG": _Envelope.on_ung,
    "UNE": _Envelope.on_une,
    "UNH": _Envelope.on_unh,
    "BGM": _Envelope.on_bgm,
}


def _count(raw: str) -> int | None:
    """A count element as a number; None unless it is ASCII digits (``"²".isdigit()`` is true)."""
    return int(raw) if raw.isascii() and raw.isdigit() else None


@functools.lru_cache(maxsize=32)
def _outside(allowed: frozenset[str]) -> re.Pattern[str]:
    """A pattern matching one character not in ``allowed``."""
    return re.compile("[^" + "".join(re.escape(c) for c in sorted(allowed)) + "]")


def _at(changes: list[tuple[int, _T]], offset: int, default: _T) -> _T:
    """The value in force at ``offset`` in an ``(offset, value)`` list sorted by offset."""
    value = default
    for start, v in changes:
        if start > offset:
            break
        value = v
    return value


_MESSAGE_HEADER = re.compile(r"UNH[+\x1d][A-Za-z0-9-]{1,14}[+\x1d][A-Z]{6}[:\x1f][A-Z0-9]{1,3}[:\x1f][A-Z0-9]{1,3}")
"""A UNH with its S009 message identifier (``UNH+1+ORDERS:D:96A``): a shape prose does not take."""


def looks_like_edifact(head: str) -> bool:
    """True when the start of a document holds an EDIFACT message header, even if what comes
    before it (UNA, UNB) is damaged, so that such a file is read as EDIFACT (and its damage
    named) instead of as free text."""
    return _MESSAGE_HEADER.search(head[:4096]) is not None


def parse_edifact(
    data: bytes | str, *, document: str | None = None, max_segments: int = MAX_SEGMENTS
) -> EdifactDocument:
    """Read an EDIFACT interchange file; ORDERS messages become purchase orders. Never raises."""
    decoded = _decode(data, document, max_segments)
    scanner = _scan(decoded.text, document, max_segments)
    env = _Envelope(decoded.text, scanner, decoded, document)
    if any(f.code == "too_many_segments" for f in scanner.findings):
        return env.doc  # a truncated document is quarantined; mapping the part read is wasted work
    for seg in scanner.segments:
        env.feed(seg)
    return env.finish()
