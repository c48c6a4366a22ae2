"""What kind of business document arrived: purchase order, change order, invoice, quote, ASN,
remittance or other - with the words that decided it.

Only purchase orders (and change orders, which revise one) become orders. Everything else that
reaches the order inbox - an invoice, a quotation, a packing slip, a payment advice - is filed and
answered "not an order" with the reason, instead of being read as a PO (an invoice number taken
for a PO number). The classifier is deterministic and scored:

* EDI says what it is: X12 ``ST01`` (850/860/810/856/820/855/843) and EDIFACT ``UNH`` message
  types (ORDERS/ORDCHG/INVOIC/DESADV/REMADV/QUOTES/ORDRSP). An interchange with any order in it
  is an order document; one with only other messages is not.
* Text (PDF text, mail subject and body, spreadsheet cells) scores a *title* - the document kind
  printed as a heading near the top ("INVOICE", "Purchase Order", "Facture", "Packing Slip") - far
  above *labels* ("Invoice No.", "Amount due", "Remit to", "Quotation valid until", "Tracking
  number"), which a PO may also print (a PO cites a quotation, a totals box says "Total Payment
  Due"). A document is called "not an order" only when another kind wins clearly; with no
  evidence either way it is ``other`` and the caller keeps what the parser found, because
  dropping a real PO costs more than asking a person about a stray document.

Never raises; reads at most the first :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum

from intake.classify import DocFormat
from intake.model import Finding, PurchaseOrder, Severity, Source

__all__ = [
    "MAX_TEXT",
    "NOT_AN_ORDER",
    "DocClass",
    "DocType",
    "classify_document",
    "classify_edi",
    "classify_text",
    "screen",
]

NOT_AN_ORDER = "not_an_order"
"""The finding code of a document filed as something other than an order (the document store files it)."""

MAX_TEXT = 200_000
"""Characters of text the classifier looks at (titles and labels sit on the first pages)."""

HEAD_LINES = 25
"""Lines from the top where a title counts as the document's heading."""


class DocType(StrEnum):
    PURCHASE_ORDER = "purchase_order"
    CHANGE_ORDER = "change_order"
    INVOICE = "invoice"
    QUOTE = "quote"
    ASN = "asn"
    REMITTANCE = "remittance"
    OTHER = "other"


ORDER_TYPES = frozenset({DocType.PURCHASE_ORDER, DocType.CHANGE_ORDER})

_LABELS = {
    DocType.PURCHASE_ORDER: "purchase order",
    DocType.CHANGE_ORDER: "change order",
    DocType.INVOICE: "invoice",
    DocType.QUOTE: "quote",
    DocType.ASN: "advance ship notice",
    DocType.REMITTANCE: "remittance / payment advice",
    DocType.OTHER: "other document",
}


@dataclass(frozen=True)
class DocClass:
    """The verdict: the kind, why (the evidence, most telling first), and the per-kind scores."""

    kind: DocType
    reason: str
    evidence: tuple[str, ...] = ()
    scores: dict[str, int] = field(default_factory=dict)

    @property
    def is_order(self) -> bool:
        return self.kind in ORDER_TYPES

    @property
    def not_an_order(self) -> bool:
        """True only for a positive verdict of another kind (``other`` is not a verdict)."""
        return self.kind not in ORDER_TYPES and self.kind != DocType.OTHER

    @property
    def label(self) -> str:
        return _LABELS[self.kind]


# --- EDI ---------------------------------------------------------------------------------------------

_X12_TYPES = {
    "850": DocType.PURCHASE_ORDER, "875": DocType.PURCHASE_ORDER, "860": DocType.CHANGE_ORDER,
    "876": DocType.CHANGE_ORDER, "810": DocType.INVOICE, "880": DocType.INVOICE, "856": DocType.ASN,
    "857": DocType.ASN, "820": DocType.REMITTANCE, "843": DocType.QUOTE, "840": DocType.QUOTE,
    "855": DocType.OTHER, "865": DocType.OTHER, "997": DocType.OTHER, "999": DocType.OTHER,
}  # fmt: skip
_EDIFACT_TYPES = {
    "ORDERS": DocType.PURCHASE_ORDER, "ORDCHG": DocType.CHANGE_ORDER, "INVOIC": DocType.INVOICE,
    "DESADV": DocType.ASN, "REMADV": DocType.REMITTANCE, "PAYMUL": DocType.REMITTANCE, "QUOTES": DocType.QUOTE,
    "REQOTE": DocType.QUOTE, "ORDRSP": DocType.OTHER, "CONTRL": DocType.OTHER, "APERAK": DocType.OTHER,
}  # fmt: skip
_X12_NAMES = {"850": "purchase order", "860": "PO change", "810": "invoice", "856": "ship notice", "820": "remittance",
              "855": "PO acknowledgment", "843": "quote response", "840": "request for quote", "997": "functional ack",
              "875": "grocery PO", "876": "grocery PO change", "880": "grocery invoice", "857": "shipment and billing",
              "865": "PO change acknowledgment", "999": "implementation ack"}  # fmt: skip

_ST_SEPARATOR = re.compile(r"[~'\n\r\x1c-\x1f\x85]")
_ST_SPACES = re.compile(r"\s*")
_ST_HEADER = re.compile(r"ST(.)(\d{3})\1")


def st_headers(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, code)`` of each X12 transaction set header after a segment end, in one pass:
    what ``re.finditer(r"(?:^|[~'\\n\\r\\x1c-\\x1f\\x85])\\s*ST(.)(\\d{3})\\1", text)`` finds.

    That pattern was tried at every segment end and reads the spaces after it up to "ST"; line breaks
    are both, so 20,000 of them were 20,000 reads of the rest of the run (0.32 s, quadratic; an
    X12 file is read up to 200,000 characters). Every segment end inside one run of spaces reaches
    the same place, so the place is worked out once per run."""
    out: list[tuple[int, int, str]] = []
    pos, run_from, run_end = 0, -1, -1

    def header_after(spaces_from: int) -> re.Match[str] | None:
        nonlocal run_from, run_end
        if not run_from <= spaces_from <= run_end:
            run_from = spaces_from
            run_end = _ST_SPACES.match(text, spaces_from).end()  # type: ignore[union-attr]  # \s* always matches
        return _ST_HEADER.match(text, run_end)

    starts = [(0, 0)] if text else []  # "^": the spaces from the very start
    for sep in _ST_SEPARATOR.finditer(text):
        starts.append((sep.start(), sep.start() + 1))
    for start, spaces_from in starts:
        if start < pos:
            continue
        m = header_after(spaces_from)
        if m is not None:
            out.append((start, m.end(), m.group(2)))
            pos = m.end()
    return out


_UNH_RE = re.compile(r"UNH\+[^+']*\+([A-Z]{6})")


def classify_edi(data: bytes, fmt: DocFormat) -> DocClass:
    """From the transaction set / message types the interchange declares."""
    text = data[:MAX_TEXT].decode("latin-1")
    found: list[tuple[str, DocType]] = []
    if fmt == DocFormat.X12:
        for _start, _end, code in st_headers(text):
            name = f"X12 {code} ({_X12_NAMES.get(code, 'transaction set')})"
            found.append((name, _X12_TYPES.get(code, DocType.OTHER)))
    else:
        for m in _UNH_RE.finditer(text):
            found.append((f"EDIFACT {m.group(1)}", _EDIFACT_TYPES.get(m.group(1), DocType.OTHER)))
    if not found:
        return DocClass(DocType.OTHER, "no transaction set or message type found")
    names = list(dict.fromkeys(n for n, _ in found))
    for kind in (DocType.PURCHASE_ORDER, DocType.CHANGE_ORDER):
        if any(k == kind for _, k in found):
            return DocClass(kind, "the interchange holds " + ", ".join(names), tuple(names))
    kinds = [k for _, k in found if k != DocType.OTHER]
    kind = max(set(kinds), key=kinds.count) if kinds else DocType.OTHER
    return DocClass(kind, "the interchange holds " + ", ".join(names) + ", no purchase order", tuple(names))


# --- text --------------------------------------------------------------------------------------------

_W = r"(?<![A-Za-z])"
_E = r"(?![A-Za-z])"

# fmt: off
_TITLES: dict[DocType, list[str]] = {
    DocType.PURCHASE_ORDER: [
        r"purchase\s+order", r"P\.?\s?O\.?", r"order", r"bestellung", r"bestelling", r"inkooporder", r"commande",
        r"bon\s+de\s+commande", r"pedido", r"ordine", r"ordre\s+d'achat", r"orden\s+de\s+compra",
    ],
    DocType.CHANGE_ORDER: [
        r"change\s+order", r"(?:purchase\s+)?order\s+change", r"P\.?O\.?\s+change", r"(?:revised|amended)\s+"
        r"(?:purchase\s+order|P\.?O\.?)", r"purchase\s+order\s+(?:revision|amendment)", r"change\s+notice",
        r"bestell[äa]nderung",
    ],
    DocType.INVOICE: [
        r"(?:tax\s+|vat\s+|commercial\s+|retail\s+|final\s+)?invoices?", r"facture", r"factuur", r"rechnung",
        r"fattura", r"factura", r"credit\s+(?:note|memo)", r"debit\s+note", r"bill",
    ],
    DocType.QUOTE: [r"quotation", r"quote", r"estimate", r"price\s+quote", r"angebot", r"offerte", r"devis",
                    r"cotizaci[oó]n", r"pro[\s-]?forma(?:\s+invoice)?"],
    DocType.ASN: [r"packing\s+(?:slip|list)", r"delivery\s+note",
                  r"(?:advance(?:d)?\s+)?ship(?:ping|ment)?\s+notice", r"despatch\s+advice", r"dispatch\s+note",
                  r"bill\s+of\s+lading", r"lieferschein", r"pakbon"],
    DocType.REMITTANCE: [r"remittance(?:\s+advice)?", r"payment\s+(?:advice|receipt|notification|confirmation)",
                         r"receipt", r"zahlungsavis"],
}
# fmt: on
"""Document kinds as they are printed as a heading (English, German, Dutch, French, Spanish, Italian)."""

_TITLE_NOISE = re.compile(
    r"^(?:copy|kopie|duplicate|original|page\s+\d+(?:\s+of\s+\d+)?|seite\s+\d+|standard|blanket|no\.?|n[°o]|nr\.?|"
    r"number|#|[A-Z0-9][\w/\-.]*\d[\w/\-.]*|:|-|\.|\s)*$",
    re.I,
)
"""What may stand next to a title on its line: copy marks, page numbers, a document number.
Kept for reference and tests: :func:`title_noise` answers whether it matches."""
_NOISE_PART = re.compile(_TITLE_NOISE.pattern[len("^(?:") : -len(")*$")], re.I)
"""One of the things :data:`_TITLE_NOISE` repeats."""


def title_noise(text: str) -> bool:
    """Whether ``_TITLE_NOISE.match(text)`` matches: ``text`` cut into a row of :data:`_NOISE_PART`.

    The pattern repeats a part that a run of letters and digits fills in exponentially many ways
    (a document number is any run with a digit, and so is each piece of it): "page " and 20 digits
    took 0.1 s, each further digit doubled it, and a heading of 80 characters would never finish.
    Here each place the row can reach is worked out once, from left to right (a text is at most
    80 characters where it is used, see :func:`_title_hits`)."""
    n = len(text)
    reach = [False] * (n + 1)
    reach[0] = True
    for i in range(n):
        if reach[i]:
            for j in range(i + 1, n + 1):
                if not reach[j] and _NOISE_PART.fullmatch(text, i, j):
                    reach[j] = True
    return reach[n] or (text.endswith("\n") and reach[n - 1])


# Space runs possessive: what follows each ("re", "[2]", ":") never starts with a space, and a
# subject of "re" and 20,000 spaces had every split of the run tried (0.32 s, quadratic). Same matches.
_REPLY = re.compile(r"^\s*+(?:(?:re|fw|fwd|aw|wg|tr|sv)\s*+(?:\[\d+\])?\s*+:\s*+)+", re.I)

_LABELS_RE: dict[DocType, list[tuple[str, str]]] = {
    DocType.INVOICE: [
        (r"invoice\s*(?:no\.?|number|nr\.?|#|date|period|total|amount)", "'Invoice No./Date' label"),
        (r"(?:amount|balance|total)\s+(?:now\s+)?due", "'Amount due' label"),
        (r"remit(?:tance)?\s+(?:to|address)", "'Remit to' label"),
        (r"(?:due\s+date|date\s+due|payment\s+due\s+(?:date|by))", "'Due date' label"),
        (
            r"f\s?actuur\s?(?:nummer|datum)|facture\s+n[°o]|rechnungs\s?(?:nr|nummer|datum)|date\s+limite\s+de\s+paiement",
            "invoice number/date label",
        ),
        (r"billing\s+period|this\s+invoice|tax\s+invoice|vat\s+invoice", "invoice wording"),
        (r"IBAN|BIC|SWIFT|bank\s+(?:details|account)|payment\s+details", "bank details"),
    ],
    DocType.QUOTE: [
        (
            r"(?:quot(?:e|ation)|offer)\s+(?:is\s+)?valid\s+(?:until|for|through|till)|valid\s+until|expir(?:es|ation)\s+date",
            "'Quotation valid until' label",
        ),
        (r"this\s+(?:quotation|quote|estimate)", "quotation wording"),
    ],
    DocType.ASN: [
        (r"tracking\s*(?:no\.?|number|#)", "'Tracking number' label"),
        (r"(?:qty|quantity)\s+shipped|shipped\s+(?:qty|quantity|via|on)|ship\s+date", "'Shipped' label"),
        (r"sscc|bill\s+of\s+lading|\bBOL\b|carton\s+(?:no|id|count)|number\s+of\s+packages", "shipment label"),
    ],
    DocType.REMITTANCE: [
        (
            r"amount\s+paid|payment\s+(?:amount|received|date|mode|method)|paid\s+(?:through|by|amount)",
            "'Amount paid' label",
        ),
        (r"(?:check|cheque)\s*(?:no\.?|number|#)", "'Check number' label"),
        (r"invoices?\s+paid|remittance\s+(?:advice|date)", "remittance wording"),
    ],
    DocType.PURCHASE_ORDER: [
        (r"(?:purchase\s+order|p\.?\s?o\.?)\s*(?:no\.?|number|nr\.?|#)|order\s+(?:number|no\.?)", "'PO number' label"),
        (r"ship[\s-]*to|deliver\s+to|shipping\s+address", "'Ship to' label"),
        (
            r"need(?:ed)?\s+by|required\s+(?:by|date)|requested\s+(?:delivery|ship)|deliver(?:y)?\s+(?:by|date)",
            "'Need by' label",
        ),
        (r"please\s+(?:supply|ship|send|deliver)|we\s+(?:would\s+like\s+to\s+)?order|our\s+order", "order wording"),
        (r"\bvendor\b|\bsupplier\b|confirm\s+to|ordered\s+by|\bbuyer\b", "'Vendor/Buyer' label"),
    ],
    DocType.CHANGE_ORDER: [
        (
            r"change\s+order\s*(?:no\.?|number|#)|revision\s+(?:reason|number)\s*:?\s*[1-9]|changed?\s+lines?",
            "change wording",
        ),
    ],
}

TITLE_POINTS = 6
NUMBERED_POINTS = 3
SUBJECT_POINTS = 3
LABEL_POINTS = 2
MARGIN = 3
"""A non-order kind must lead the order kinds by this much to be called "not an order"."""


_NOT_TITLE = re.compile(r"\s*(?::|(?:to|address|adres|adresse|an|à|discount|date|total|terms)\b)", re.I)
"""After the kind's word, what makes it a label, not a title: "Invoice to:", "Order Date", "Order Total"."""
_PAGE = re.compile(r"(?:page|seite|p\.)\s*\d+(?:\s*(?:of|/|von)\s*\d+)?", re.I)
_NUMBERED = re.compile(r"\s*+(?:n[°o]\.?|no\.?|nr\.?|#|number|num[eé]ro)?\s*+[:.]?\s*+#?\s*+[A-Z]{0,6}[/\-_]?\d", re.I)
"""A title followed by its document number ("Facture n°562044387 du ...", "Purchase Order #P00118").

The space runs are possessive: nothing after each starts with a space, so handing spaces from one
run to the next never changes whether it matches, and with four runs in a row 80 spaces were
split every way (up to 0.5 s a line; a hostile document repeats such lines). The test holds it
equal to the backtracking pattern."""


def _title_hits(line: str, *, numbered_points: int) -> list[tuple[DocType, str, int]]:
    """Kinds the line names as a heading, with points: the phrase alone (or with copy marks and a
    page number) is a title; the phrase followed by a document number counts less, since a PO also
    prints "Quotation No. 123" and an invoice "PO Number: 456"."""
    hits: list[tuple[DocType, str, int]] = []
    stripped = line.strip().strip("*=_-:.|").strip()
    if not stripped or len(stripped) > 80:
        return []
    for kind, pats in _TITLES.items():
        for pat in pats:
            for m in re.finditer(_W + "(?:" + pat + ")" + _E, stripped, re.I):
                before, after = stripped[: m.start()], stripped[m.end() :]
                if len(before.split()) > 6 or _NOT_TITLE.match(after):
                    continue
                if title_noise(after) and not re.search(r"\d", _PAGE.sub("", after)):
                    hits.append((kind, m.group(0), TITLE_POINTS))
                elif title_noise(after) or _NUMBERED.match(after):
                    hits.append((kind, m.group(0), numbered_points))
                else:
                    continue
                break
            else:
                continue
            break
    return _prefer_longest(hits)


def _prefer_longest(hits: list[tuple[DocType, str, int]]) -> list[tuple[DocType, str, int]]:
    """ "Change Order" is not also a plain "Order"; "Pro forma invoice" is a quote, not an invoice."""
    return [
        (kind, text, pts)
        for kind, text, pts in hits
        if not any(len(t) > len(text) and text.lower() in t.lower() and k != kind for k, t, _ in hits)
    ]


_DOUBLED = re.compile(r"\b(?:(\S)\1){2,}\S*")


def _undouble(m: re.Match[str]) -> str:
    """``PPuurrcchhaassee`` (bold drawn twice) -> ``Purchase``; other words stay as they are."""
    t = m.group(0)
    if len(t) % 2 == 0 and t[0::2] == t[1::2]:
        return t[0::2]
    return t


def classify_text(text: str, *, title: str | None = None) -> DocClass:
    """Score a document's text; ``title`` is a heading given apart from the text (a mail subject)."""
    text = text[:MAX_TEXT]
    scores: dict[DocType, int] = dict.fromkeys(DocType, 0)
    evidence: dict[DocType, list[str]] = {k: [] for k in DocType}
    text = _DOUBLED.sub(_undouble, text)
    head = [(ln, False) for ln in text.splitlines() if ln.strip()][:HEAD_LINES]
    if title:
        # A subject is a weaker heading: "RE: Quote 123" is often the order that accepts the quote.
        head = [(_REPLY.sub("", _DOUBLED.sub(_undouble, title)), True), *head]
    best_title = _best_titles(head)
    for kind, (pts, word) in best_title.items():
        scores[kind] += pts
        evidence[kind].append(f"title {word!r}")
    flat = re.sub(r"\s+", " ", text)
    for kind, pats in _LABELS_RE.items():
        for pat, name in pats:
            m = re.search(_W + "(?:" + pat + ")", flat, re.I)
            if m:
                scores[kind] += LABEL_POINTS
                evidence[kind].append(f"{name} ({m.group(0).strip()!r})")
    # A change order is a purchase order too: its PO labels count for it.
    if scores[DocType.CHANGE_ORDER] >= TITLE_POINTS:
        scores[DocType.CHANGE_ORDER] += scores[DocType.PURCHASE_ORDER]
    return _decide(scores, evidence, set(best_title))


def _best_titles(head: list[tuple[str, bool]]) -> dict[DocType, tuple[int, str]]:
    """The strongest title word of each kind among the first lines (a subject line counts less)."""
    best_title: dict[DocType, tuple[int, str]] = {}
    for ln, subject in head:
        for kind, word, pts in _title_hits(ln, numbered_points=NUMBERED_POINTS):
            pts = min(pts, SUBJECT_POINTS) if subject else pts
            if pts > best_title.get(kind, (0, ""))[0]:
                best_title[kind] = (pts, word.strip())
    return best_title


def _decide(scores: dict[DocType, int], evidence: dict[DocType, list[str]], titled: set[DocType]) -> DocClass:
    """Another kind wins only by a clear margin over the order's score; else any order evidence
    makes it an order (a change order when its title says so)."""
    order_score = max(scores[DocType.PURCHASE_ORDER], scores[DocType.CHANGE_ORDER])
    others = [k for k in DocType if k not in ORDER_TYPES and k != DocType.OTHER]
    best = max(others, key=lambda k: (scores[k], k in titled))
    plain = {k.value: v for k, v in scores.items() if v}
    if scores[best] >= LABEL_POINTS * 2 and scores[best] >= order_score + MARGIN:
        ev = tuple(evidence[best])
        return DocClass(best, f"reads as {_LABELS[best]}: " + ", ".join(ev), ev, plain)
    if order_score > 0:
        kind = (
            DocType.CHANGE_ORDER
            if scores[DocType.CHANGE_ORDER] >= TITLE_POINTS and scores[DocType.CHANGE_ORDER] >= order_score
            else DocType.PURCHASE_ORDER
        )
        ev = tuple(evidence[kind])
        return DocClass(kind, f"reads as {_LABELS[kind]}: " + ", ".join(ev), ev, plain)
    return DocClass(DocType.OTHER, "no title or label names the kind of document", (), plain)


# --- any stored document -----------------------------------------------------------------------------

_SHARED_STRING = re.compile(rb"<t(?:\s[^>]*)?>([^<]{1,200})</t>")


def _xlsx_text(data: bytes) -> str:
    """The workbook's strings (shared and inline: title block and labels), without building the
    sheets; parts over 8 MiB inflated are skipped (the sheet parser reports those)."""
    parts: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                name = info.filename
                if name != "xl/sharedStrings.xml" and not name.startswith("xl/worksheets/sheet"):
                    continue
                if info.file_size > 8 * 1024 * 1024:
                    continue
                raw = z.read(info)
                parts += (m.group(1).decode("utf-8", "replace") for m in _SHARED_STRING.finditer(raw))
    except (KeyError, zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError, NotImplementedError):
        return "\n".join(parts)
    return "\n".join(parts)


def classify_document(data: bytes, fmt: DocFormat, *, text: str | None = None, title: str | None = None) -> DocClass:
    """Classify a stored document: EDI by its declared types, everything else by its text.

    ``text`` is the reading-order text a parser already rebuilt (PDF, mail body); without it the
    text comes from the bytes (CSV and plain text decoded, XLSX shared strings)."""
    try:
        if fmt in (DocFormat.X12, DocFormat.EDIFACT):
            return classify_edi(data, fmt)
        if text is None:
            if fmt == DocFormat.XLSX:
                text = _xlsx_text(data)
            elif fmt in (DocFormat.CSV, DocFormat.TEXT, DocFormat.HTML):
                text = data[:MAX_TEXT].decode("utf-8", "replace")
            else:
                text = ""
        return classify_text(text, title=title)
    except Exception as exc:  # never let classification cost a document: keep what the parser read
        return DocClass(DocType.OTHER, f"not classified ({type(exc).__name__})")


def screen(
    data: bytes,
    fmt: DocFormat,
    orders: list[PurchaseOrder],
    findings: list[Finding],
    *,
    text: str | None = None,
    title: str | None = None,
    document: str | None = None,
) -> tuple[list[PurchaseOrder], list[Finding]]:
    """What a parser read, kept or set aside by the document's kind.

    Not an order (invoice, quote, ASN, remittance): no purchase orders, and a ``not_an_order``
    WARNING with the reason (the document store files the document on it). A change order stays
    an order with an INFO ``change_order`` finding (validation treats it as a revision of the PO it
    names). Anything else is passed through untouched."""
    c = classify_document(data, fmt, text=text, title=title)
    src = Source(kind="manual", document=document)
    if c.not_an_order:
        msg = f"not a purchase order: {c.reason}"
        return [], [*findings, Finding(severity=Severity.WARNING, code=NOT_AN_ORDER, message=msg[:1000], source=src)]
    if c.kind == DocType.CHANGE_ORDER and orders:
        msg = f"a change to an earlier order: {c.reason}"
        return orders, [*findings, Finding(severity=Severity.INFO, code="change_order", message=msg[:1000], source=src)]
    return orders, findings
