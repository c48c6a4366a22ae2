"""E-mailed purchase orders: MIME messages to canonical :class:`~intake.model.PurchaseOrder` objects.

(Named ``mail`` because a module called ``email`` would shadow the standard library.)

We read the message with the standard library (``policy.default``), walk nested multiparts, turn
HTML bodies into text, and follow forwarded chains - ``message/rfc822`` parts and the
"---------- Forwarded message ----------" / "Begin forwarded message:" blocks mail clients write -
to find who originally sent the order. Attachments go to the parser for their sniffed format (X12,
EDIFACT, PDF, CSV, XLSX, a nested .eml); when none of them carries an order, the body text goes to
the deterministic extractor with ``Source(kind="email", span=...)`` pointers into
:attr:`EmailDocument.body_text`.

Sender address and domain, Message-ID and subject are kept for customer identification and
de-duplication. Instruction-like text in the body is reported (``injection_suspected``), never
followed. Never raises on bad input.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from intake.classify import DocFormat, sniff
from intake.extract import SpanSource, TemplateRegistry, detect_injection, extract_order, span_source
from intake.model import Finding, Party, PurchaseOrder, Severity, Source
from intake.prose import add_unread_lines, body_ship_to, read_prose_order

if TYPE_CHECKING:
    from intake.llm_extract import TextExtractor

__all__ = ["AttachmentInfo", "EmailDocument", "MailLimits", "html_to_text", "parse_attachment", "parse_email"]


@dataclass(frozen=True)
class MailLimits:
    max_bytes: int = 40 * 1024 * 1024
    max_attachments: int = 50
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_depth: int = 5
    max_header_bytes: int = 256 * 1024
    """The top-level header block; a real one is a few kilobytes even with a long Received chain."""
    max_encoded_words: int = 1_000
    """RFC 2047 encoded words in the whole message; decoding them is where header bombs cost."""
    max_text_chars: int = 200_000
    """Body text read for an order (a 2,000-line order is some 100,000); the rest is not read."""


class AttachmentInfo(BaseModel):
    filename: str | None = None
    media_type: str
    size: int
    sha256: str
    format: DocFormat
    order_count: int = 0


class EmailDocument(BaseModel):
    document: str | None = None
    message_id: str | None = None
    subject: str | None = None
    sender: str | None = None
    """Address of the ``From`` header, lower-cased."""
    sender_name: str | None = None
    sender_domain: str | None = None
    date: datetime | None = None
    original_sender: str | None = None
    """For a forwarded order: the address of whoever sent the original message."""
    original_subject: str | None = None
    body_text: str = ""
    """The text ``Source.span`` pointers of body-extracted values refer to."""
    attachments: list[AttachmentInfo] = Field(default_factory=list)
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    @property
    def customer_address(self) -> str | None:
        """Who the order is from: the original sender of a forwarded chain, else the sender."""
        return self.original_sender or self.sender

    def all_findings(self) -> list[Finding]:
        return list(self.findings)


# --- HTML to text ---------------------------------------------------------------------------------


_HIDDEN_STYLE_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})  # fmt: skip


class _HtmlText(HTMLParser):
    """Text a reader of the rendered HTML sees: hidden elements (``display:none``, ``hidden``) are
    left out, so they can never become order fields; :mod:`intake.hidden` reports them."""

    _BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
                        "pre", "hr", "section", "article", "ul", "ol"})  # fmt: skip
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.hidden = 0
        """Open elements inside a hidden one (0: not hidden)."""
        self.first_cell = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID and tag not in self._BLOCK:
            return
        if self.hidden:
            self.hidden += tag not in _VOID
            return
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag not in _VOID and ("hidden" in a or _HIDDEN_STYLE_RE.search(a.get("style", ""))):
            self.hidden = 1
            return
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
            self.first_cell = True
        elif tag in ("td", "th"):
            if not self.first_cell:
                self.parts.append("  |  ")
            self.first_cell = False

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            self.hidden -= tag not in _VOID
            return
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK and tag != "tr":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip and not self.hidden:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: block elements become lines, table cells ``|``-separated."""
    p = _HtmlText()
    try:
        p.feed(html)
        p.close()
    except Exception:  # pragma: no cover - HTMLParser is lenient; keep the text we have
        pass
    text = "".join(p.parts)
    lines = [ln.strip() for ln in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- attachments ----------------------------------------------------------------------------------


def parse_attachment(
    data: bytes,
    *,
    filename: str | None = None,
    media_type: str | None = None,
    document: str | None = None,
    templates: TemplateRegistry | None = None,
    sender: str | None = None,
    depth: int = 0,
    extractor: TextExtractor | None = None,
) -> tuple[DocFormat, list[PurchaseOrder], list[Finding]]:
    """Run the parser for the sniffed format; text formats go to the extractor. Never raises."""
    fmt = sniff(data, filename=filename, media_type=media_type)
    template = templates.for_sender(sender) if templates else None
    try:
        if fmt == DocFormat.X12:
            from intake.x12 import parse_x12

            x = parse_x12(data, document=document)
            return fmt, x.purchase_orders, x.all_findings()
        if fmt == DocFormat.EDIFACT:
            from intake.edifact import parse_edifact

            e = parse_edifact(data, document=document)
            return fmt, e.purchase_orders, e.all_findings()
        if fmt == DocFormat.PDF:
            from intake.pdf import parse_pdf

            p = parse_pdf(data, document=document, template=template)
            return fmt, p.purchase_orders, p.findings
        if fmt == DocFormat.CSV:
            from intake.sheets import parse_csv

            c = parse_csv(data, document=document)
            return fmt, c.purchase_orders, c.findings
        if fmt == DocFormat.XLSX:
            from intake.sheets import parse_xlsx

            s = parse_xlsx(data, document=document)
            return fmt, s.purchase_orders, s.findings
        if fmt == DocFormat.EMAIL:
            m = parse_email(data, document=document, templates=templates, extractor=extractor, _depth=depth + 1)
            return fmt, m.purchase_orders, m.findings
        if fmt in (DocFormat.TEXT, DocFormat.HTML):
            text = data.decode("utf-8", errors="replace")
            if fmt == DocFormat.HTML:
                text = html_to_text(text)
            src = span_source("email", document)
            ex = (
                extractor.extract(text, source=src, template=template)
                if extractor is not None
                else extract_order(text, source=src, template=template)
            )
            return fmt, [ex.purchase_order] if ex.purchase_order else [], ex.findings
    except Exception as exc:  # pragma: no cover - every parser promises not to raise; belt and braces
        return fmt, [], [_f(Severity.ERROR, "parser_error", f"{fmt} parser failed: {exc!r}", document)]
    return fmt, [], [_f(Severity.INFO, "unsupported_attachment", f"no parser for a {fmt} attachment", document)]


# --- the message ----------------------------------------------------------------------------------

_FWD_RE = re.compile(
    r"^[ \t>]*(?:-{3,}\s*(?:Forwarded message|Original Message|Weitergeleitete Nachricht|Message transféré)\s*-{3,}"
    r"|Begin forwarded message:)[ \t]*$",
    re.I | re.M,
)
_FWD_FIELD_RE = re.compile(r"^[ \t>]*(From|Von|De|Subject|Betreff|Objet|Date|Sent|To)[ \t]*:[ \t]*(.*)$", re.I)


def _f(sev: Severity, code: str, msg: str, document: str | None, span: tuple[int, int] | None = None) -> Finding:
    return Finding(severity=sev, code=code, message=msg, source=Source(kind="email", document=document, span=span))


def _text_of(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except Exception:
        pass
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:
            return raw.decode("latin-1")
    payload = part.get_payload()
    return payload if isinstance(payload, str) else ""


def _header(msg: Message, name: str) -> str | None:
    try:
        v = msg.get(name)
    except Exception:
        return None
    if v is None:
        return None
    s = str(v).strip()
    return s or None


class _Walker:
    def __init__(
        self,
        doc: EmailDocument,
        limits: MailLimits,
        templates: TemplateRegistry | None,
        depth: int,
        extractor: TextExtractor | None = None,
        *,
        sender_only: bool = False,
    ) -> None:
        self.doc = doc
        self.sender_only = sender_only
        self.limits = limits
        self.templates = templates
        self.depth = depth
        self.extractor = extractor
        self.plain: list[str] = []
        self.html: list[str] = []
        self.forwarded_from: list[tuple[str | None, str | None]] = []

    def walk(self, part: Message, depth: int = 0) -> None:
        if depth > self.limits.max_depth:
            self.doc.findings.append(
                _f(Severity.WARNING, "too_deep", "MIME nesting too deep; rest ignored", self.doc.document)
            )
            return
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            self._forwarded(part, depth)
        elif part.is_multipart():
            self._multipart(part, ctype, depth)
        else:
            self._leaf(part, ctype, depth)

    def _forwarded(self, part: Message, depth: int) -> None:
        """A message attached whole (a forward): who sent it, and its parts."""
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            self.forwarded_from.append((_header(inner, "From"), _header(inner, "Subject")))
            self.walk(inner, depth + 1)

    def _multipart(self, part: Message, ctype: str, depth: int) -> None:
        """Each sub-part; of alternatives, only the one :meth:`alternative` picks."""
        subs = part.get_payload()
        if not isinstance(subs, list):
            return
        if ctype == "multipart/alternative":
            subs = self.alternative([s for s in subs if isinstance(s, Message)])
        for sub in subs:
            if isinstance(sub, Message):
                self.walk(sub, depth + 1)

    def _leaf(self, part: Message, ctype: str, depth: int) -> None:
        """A body text (plain or HTML), or an attachment: anything named that is not text, or not text."""
        filename = None
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        disposition = (part.get_content_disposition() or "").lower()
        if (
            disposition == "attachment"
            or (filename and ctype not in ("text/plain", "text/html"))
            or not (ctype.startswith("text/"))
        ):
            self.attachment(part, filename, ctype, depth)
            return
        if ctype == "text/html":
            self.html.append(_text_of(part))
        else:
            self.plain.append(_text_of(part))

    def alternative(self, subs: list[Message]) -> list[Message]:
        """The one part of a ``multipart/alternative`` to read: the richer of plain text and HTML.

        Mail clients send the same message twice; most write a faithful plain part, but some send
        a stub ("This message contains HTML content, please see the HTML version") or lose the
        table's columns in it. The plain part is read unless the HTML part's text carries a table
        or more order-like lines (a quantity next to a code) than it does.
        """
        plain = next((s for s in subs if s.get_content_type() == "text/plain"), None)
        html = next((s for s in subs if s.get_content_type() == "text/html"), None)
        if plain is None or html is None:
            return ([plain] if plain is not None else []) or subs[-1:]
        plain_text = _text_of(plain)
        html_text = html_to_text(_text_of(html)[: self.limits.max_text_chars])
        (hr, hc), (pr, pc) = _richness(html_text), _richness(plain_text)
        if hr > pr or (hr == pr and pc * 3 < hc):
            return [html]
        return [plain]

    def attachment(self, part: Message, filename: str | None, ctype: str, depth: int) -> None:
        doc = self.doc
        if len(doc.attachments) >= self.limits.max_attachments:
            doc.findings.append(
                _f(Severity.WARNING, "too_many_attachments", "attachment limit reached; rest ignored", doc.document)
            )
            return
        raw = part.get_payload(decode=True)
        data = raw if isinstance(raw, bytes) else _text_of(part).encode()
        info = AttachmentInfo(
            filename=filename,
            media_type=ctype,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            format=DocFormat.UNKNOWN,
        )
        doc.attachments.append(info)
        if self.sender_only:
            return
        if len(data) > self.limits.max_attachment_bytes:
            doc.findings.append(
                _f(Severity.ERROR, "oversized", f"attachment {filename!r} is {len(data)} bytes", doc.document)
            )
            return
        name = f"{doc.document or 'email'}#{filename or len(doc.attachments)}"
        fmt, pos, findings = parse_attachment(
            data,
            filename=filename,
            media_type=ctype,
            document=name,
            templates=self.templates,
            sender=doc.customer_address,
            depth=self.depth + depth,
            extractor=self.extractor,
        )
        info.format = fmt
        info.order_count = len(pos)
        doc.purchase_orders.extend(pos)
        doc.findings.extend(findings)


_ROWISH_RE = re.compile(r"\d")
_CODEISH_RE = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9][\w-]{2,}")


def _richness(text: str) -> tuple[int, int]:
    """How much order a body text carries: (lines that read as item rows, characters of text).

    An item row has a code (letters and digits) and another number on it; a stub saying "see the
    HTML version" has none, a signature's phone numbers have no code.
    """
    rows = 0
    for line in text.splitlines():
        if _CODEISH_RE.search(line) and len(_ROWISH_RE.findall(line)) >= 2:
            rows += 1
    return rows, len(text.strip())


def _forwarded_blocks(text: str) -> list[tuple[str | None, str | None]]:
    out: list[tuple[str | None, str | None]] = []
    for m in _FWD_RE.finditer(text):
        sender = subject = None
        for line in text[m.end() :].lstrip("\r\n").split("\n")[:10]:
            fm = _FWD_FIELD_RE.match(line)
            if fm is None:
                if line.strip():
                    break
                continue
            key = fm.group(1).lower()
            if key in ("from", "von", "de") and sender is None:
                sender = fm.group(2).strip()
            elif key in ("subject", "betreff", "objet") and subject is None:
                subject = fm.group(2).strip()
        out.append((sender, subject))
    return out


# Tried only where a run of address characters starts: the run ends at its "@" or nowhere, so a
# later start in it finds the same "@" or none, and a search wants the leftmost. Before, a
# 20,000-letter From header with no "@" was read from every letter (0.67 s, quadratic).
_ADDRESS_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _address(raw: str | None) -> tuple[str | None, str | None]:
    if not raw:
        return None, None
    try:
        pairs = getaddresses([raw])
    except Exception:
        pairs = [parseaddr(raw)]
    for name, addr in pairs:
        if addr and "@" in addr:
            return addr.strip().lower(), (name or None)
    m = _ADDRESS_RE.search(raw)
    return (m.group(0).lower(), None) if m else (None, None)


def parse_email(
    data: bytes | str,
    *,
    document: str | None = None,
    templates: TemplateRegistry | None = None,
    limits: MailLimits | None = None,
    extractor: TextExtractor | None = None,
    sender_only: bool = False,
    _depth: int = 0,
) -> EmailDocument:
    """Read one RFC 5322 message (``.eml``); never raises. ``sender_only``: just who sent it
    (headers and forwarded blocks), no attachment parsing and no order extraction - for callers
    outside the parse sandbox that need the customer's address of a message parsed there."""
    limits = limits or MailLimits()
    doc = EmailDocument(document=document)
    raw = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    if _refused(raw, doc, limits, _depth):
        return doc
    try:
        _read_message(raw, doc, templates, limits, extractor, sender_only, _depth)
    except Exception as exc:
        doc.findings.append(_f(Severity.ERROR, "unreadable", f"the message cannot be read: {exc!r}", document))
    return doc


def _refused(raw: bytes, doc: EmailDocument, limits: MailLimits, depth: int) -> bool:
    """Whether the message is refused before parsing (empty, over a limit, nested too deep), with
    the finding that says why."""
    document = doc.document
    if not raw.strip():
        doc.findings.append(_f(Severity.ERROR, "empty_document", "the message is empty", document))
        return True
    if len(raw) > limits.max_bytes:
        doc.findings.append(_f(Severity.ERROR, "oversized", f"{len(raw)} bytes is over the limit", document))
        return True
    if depth > limits.max_depth:
        doc.findings.append(_f(Severity.WARNING, "too_deep", "forwarded messages nested too deep", document))
        return True
    problem = _header_problem(raw, limits)
    if problem is not None:
        doc.findings.append(_f(Severity.ERROR, "header_limit", problem, document))
        return True
    return False


def _read_message(
    raw: bytes,
    doc: EmailDocument,
    templates: TemplateRegistry | None,
    limits: MailLimits,
    extractor: TextExtractor | None,
    sender_only: bool,
    _depth: int,
) -> None:
    """Headers, body text, the original sender of a forward, and the order in the body (when no
    attachment gave one); may raise on a message the parser cannot take."""
    document = doc.document
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    doc.message_id = _header(msg, "Message-ID")
    doc.subject = _header(msg, "Subject")
    doc.sender, doc.sender_name = _address(_header(msg, "From"))
    doc.sender_domain = doc.sender.rsplit("@", 1)[1] if doc.sender else None
    try:
        d = msg.get("Date")
        doc.date = getattr(d, "datetime", None)
    except Exception:
        doc.date = None
    if not doc.sender and not any(msg.keys()):
        doc.findings.append(_f(Severity.WARNING, "not_an_email", "no message headers found", document))
    walker = _Walker(doc, limits, templates, _depth, extractor, sender_only=sender_only)
    walker.walk(msg)
    body = "\n\n".join(t.strip("\n") for t in walker.plain if t.strip())
    if not body and walker.html:
        body = "\n\n".join(html_to_text(h) for h in walker.html)
    doc.body_text = body.replace("\r\n", "\n")
    if len(doc.body_text) > limits.max_text_chars:
        # Reading stops here; an order read in part must not be created on its own.
        doc.body_text = doc.body_text[: limits.max_text_chars]
        doc.findings.append(_f(Severity.ERROR, "too_long", f"the message text is over {limits.max_text_chars} "
                               "characters; the rest was not read", document))  # fmt: skip
    blocks = walker.forwarded_from + _forwarded_blocks(doc.body_text)
    if blocks:
        # The deepest forward is the original: rfc822 parts nest outward-in, text blocks top-down.
        orig_from, orig_subject = next(((s, subj) for s, subj in reversed(blocks) if s), (None, None))
        doc.original_sender, _ = _address(orig_from)
        doc.original_subject = orig_subject or blocks[-1][1]
    if not sender_only:
        _body_order(doc, templates, extractor, forwarded=bool(blocks))
    for d_ in msg.defects:
        doc.findings.append(_f(Severity.INFO, "mime_defect", type(d_).__name__, document))


def _body_order(
    doc: EmailDocument, templates: TemplateRegistry | None, extractor: TextExtractor | None, *, forwarded: bool
) -> None:
    """The order written in the body, unless an attachment gave one (then the body is only checked
    for injected instructions); the subject and Date header fill a missing number and date."""
    src = span_source("email", doc.document)
    if doc.purchase_orders:
        doc.findings.extend(detect_injection(doc.body_text, src))
        return
    template = templates.for_sender(doc.customer_address) if templates else None
    text = doc.body_text
    ex = (
        extractor.extract(text, source=src, document_type="email", template=template)
        if extractor is not None
        else extract_order(text, source=src, document_type="email", template=template)
    )
    by_model = extractor is not None and extractor.name.startswith("llm:")
    po, findings = _from_sentences(text, ex.purchase_order, ex.findings, src, cross_check=not by_model)
    doc.findings.extend(findings)
    if po is not None:
        if po.po_number is None and doc.subject:
            _po_from_subject(doc, po)
        if po.po_date is None:
            _po_date_from_header(doc, po, forwarded)
        doc.purchase_orders.append(po)


_SETTLED_BY = {"no_order_found": "order", "po_number_missing": "po_number", "no_lines": "lines"}


def _from_sentences(
    text: str, po: PurchaseOrder | None, findings: list[Finding], src: SpanSource, *, cross_check: bool
) -> tuple[PurchaseOrder | None, list[Finding]]:
    """What the extractor left empty, read from the body's sentences (:mod:`intake.prose`): the PO
    number and lines (only where none were read, each a ``read_from_prose`` doubt) and a ship-to
    the text states (matched to the address book in validation). The extractor's "nothing found"
    findings that the sentences settled are dropped.

    ``cross_check``: also add, as doubts, lines the sentences give for parts no line read names (the
    rules read "120 x SKU-12" of "pls ship 120 x SKU-12 asap, and SKU-5, qty 40" and nothing else).
    Not on a model's answer: its recorded readings are replayed as they were (a model that missed a
    line is a matter for the model's prompt and its recordings)."""
    if po is None or po.po_number is None or not po.lines:
        po, more = read_prose_order(text, po, src=src, document_type="email")
        findings = [*findings, *more]
    elif cross_check:
        findings = [*findings, *add_unread_lines(po, text, src=src)]
    if po is not None and not _has_address(po.ship_to):
        _add_body_ship_to(po, text, src, findings)
    settled = {
        "order": po is not None,
        "po_number": po is not None and po.po_number is not None,
        "lines": po is not None and bool(po.lines),
    }
    return po, [f for f in findings if not settled.get(_SETTLED_BY.get(f.code, ""), False)]


def _has_address(party: Party | None) -> bool:
    return party is not None and bool(party.address_lines or party.postal_code or party.id)


def _add_body_ship_to(po: PurchaseOrder, text: str, src: SpanSource, findings: list[Finding]) -> None:
    found = body_ship_to(text, src)
    if found is None:
        return
    party, sources, finding = found
    old = po.ship_to
    if old is not None:  # a ship-to named without an address ("our Dallas site"): the text's address completes it
        party.name = party.name or old.name
        po.parties.remove(old)
    k = len(po.parties)
    po.parties.append(party)
    for key, source in sources.items():
        po.sources[f"parties[{k}].{key}"] = source
    findings.append(finding)


_ENCODED_WORD_RE = re.compile(rb"=\?[^?\s]{1,75}\?[bBqQ]\?")
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def _header_problem(raw: bytes, limits: MailLimits) -> str | None:
    """Why the headers must not be decoded at all (checked on the raw bytes, before any parsing)."""
    end = _HEADER_END_RE.search(raw)
    header_len = end.start() if end else len(raw)
    if header_len > limits.max_header_bytes:
        return f"the message headers are {header_len} bytes, over the {limits.max_header_bytes} limit"
    for words, _ in enumerate(_ENCODED_WORD_RE.finditer(raw), start=1):
        if words > limits.max_encoded_words:
            return f"more than {limits.max_encoded_words} encoded words (RFC 2047) in the message headers"
    return None


def _po_date_from_header(doc: EmailDocument, po: PurchaseOrder, forwarded: bool) -> None:
    """A mailed order that states no date was placed when its buyer sent it: the ``Date`` header
    of the message (of the forwarded buyer's message in a forwarded chain), with a finding."""
    sent = doc.date.date() if doc.date is not None else None
    where = "Date"
    if forwarded:
        marks = list(_FWD_RE.finditer(doc.body_text))
        m = _FWD_DATE_RE.search(doc.body_text, marks[-1].end()) if marks else None
        fwd = None
        if m is not None:
            try:
                fwd = parsedate_to_datetime(m.group(1).strip())
            except (TypeError, ValueError, IndexError):
                fwd = None
        if fwd is not None:
            sent, where = fwd.date(), "forwarded message's Date"
    if sent is None:
        return
    po.po_date = sent
    po.sources["po_date"] = Source(kind="email", document=doc.document, path=where)
    doc.findings.append(
        _f(Severity.INFO, "po_date_from_header", f"PO date taken from the {where} header", doc.document)
    )


_FWD_DATE_RE = re.compile(r"^[ \t]*(?:Date|Sent|Datum|Envoyé)[ \t]*:[ \t]*(.+)$", re.I | re.M)
# "PO 4711" in a subject was one pattern,
#   \b(?:PO|P\.O\.|purchase\s+order|order)\s*+(?:#|no\.?|number)?\s*+:?\s*+([A-Z0-9][\w\-/]*\d[\w\-/]*)
# (re.I; its space runs possessive, since trying every split of a long run took 15 s for "PO" and
# 2,000 spaces). Its number is a first character and the rest of that run of [\w\-/] characters,
# which must hold a digit; a subject of "POX-" repeated is one run with a "PO" every four
# characters, and each was read to the end of the run looking for a digit (0.73 s at 20,000
# characters, quadratic; headers may hold 256 KB). _subject_po tries the same places in the same
# order, but looks the run's end and the next digit up once (bisect) instead of reading the run.
_SUBJECT_PO_WORD_RE = re.compile(r"\b(?:PO|P\.O\.|purchase\s+order|order)\s*+", re.I)
_SUBJECT_PO_MARKS = tuple(re.compile(m, re.I) for m in ("#", r"no\.", "no", "number", ""))
r"""``(?:#|no\.?|number)?`` in the order the engine tries it: each mark, then none."""
_SUBJECT_PO_GAP_RE = re.compile(r"\s*+:?\s*+")
"""Not taking a ":" that is there leaves the number to start at it, which fails: one way to try."""
_SUBJECT_PO_FIRST_RE = re.compile(r"[A-Z0-9]", re.I)
_SUBJECT_PO_RUN_RE = re.compile(r"[\w\-/]+")
_DIGIT_RE = re.compile(r"\d")


def _subject_po(subject: str) -> tuple[int, int] | None:
    """Span of the PO number the old pattern's ``search`` found in ``subject`` (its group 1), or None."""
    runs: list[tuple[int, int]] | None = None
    digits: list[int] = []
    pos = 0
    while (word := _SUBJECT_PO_WORD_RE.search(subject, pos)) is not None:
        pos = word.start() + 1  # a failed try goes on at the next place, as search does
        for mark in _SUBJECT_PO_MARKS:
            m = mark.match(subject, word.end())
            if m is None:
                continue
            q = _SUBJECT_PO_GAP_RE.match(subject, m.end()).end()  # type: ignore[union-attr]  # always matches
            if not _SUBJECT_PO_FIRST_RE.match(subject, q):
                continue
            if runs is None:  # only a subject with a PO word pays for these
                runs = [r.span() for r in _SUBJECT_PO_RUN_RE.finditer(subject)]
                digits = [d.start() for d in _DIGIT_RE.finditer(subject)]
            i = bisect_right(runs, (q + 1, len(subject) + 1)) - 1  # the run holding q + 1, if any
            if i < 0 or not runs[i][0] <= q + 1 < runs[i][1]:
                continue
            end = runs[i][1]
            j = bisect_left(digits, q + 1)
            if j < len(digits) and digits[j] < end:
                return q, end  # the greedy runs take the whole run: the number ends where it does
    return None


def _po_from_subject(doc: EmailDocument, po: PurchaseOrder) -> None:
    """ "Subject: PO 4711" when the body does not say: the number, with a finding saying where from."""
    span = _subject_po(doc.subject or "")
    if span is None:
        return
    po.po_number = (doc.subject or "")[span[0] : span[1]]
    po.sources["po_number"] = Source(kind="email", document=doc.document, path="Subject", span=span)
    doc.findings.append(
        _f(Severity.INFO, "po_number_from_subject", "PO number taken from the subject line", doc.document)
    )
