"""PDF purchase orders (and invoices) to the canonical :class:`~intake.model.PurchaseOrder`.

We read words with their boxes (pdfplumber), rebuild reading-order lines, and then:

* header fields come from the deterministic text extractor (:mod:`intake.extract`) run over the
  page text, with character spans mapped back to ``page`` + ``bbox``; values printed *under* their
  label (``Invoice Date:`` above ``03/20/2023``) are found by geometry (:class:`PdfLayout`);
* line items come from tables: ruled ones (pdfplumber's line strategy) and unruled ones, whose
  columns are the x ranges of a header row the vocabulary recognises; a table that runs onto the
  next page continues there, with or without a repeated header.

Never raises on bad input: encrypted, corrupt, empty and image-only files, too many pages, flate
bombs, pages with too many glyphs and a blown time budget become findings (the document store
quarantines on them). Limits are parameters (:class:`PdfLimits`): every flate stream is inflated
with a cap before pdfplumber sees the file, and a page's glyphs are counted from its content
streams before pdfplumber builds an object per glyph. The time limit is checked between pages and
tables, so one pathological page can still overrun it: the document store parses in a capped
child process (:mod:`intake.sandbox`) that is killed at the limit.
"""

from __future__ import annotations

import bisect
import io
import re
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from intake.extract import (
    Cell,
    CustomerTemplate,
    DateOrder,
    classify_header,
    column_field,
    extract_order,
    guess_date_order,
    guess_decimal_mark,
    is_totals_text,
    lines_from_rows,
)
from intake.hidden import page_text_findings
from intake.model import DateRef, Finding, PurchaseOrder, Severity, Source
from intake.ocr import OcrLimits, OcrState, ocr_findings, read_page
from intake.pdf_layout import HeaderFields, read_header_fields, read_tables

__all__ = ["QUARANTINE_CODES", "PdfDocument", "PdfLayout", "PdfLimits", "parse_pdf"]

QUARANTINE_CODES = frozenset(
    {"not_a_pdf", "encrypted", "corrupt_pdf", "empty_pdf", "image_only", "too_many_pages", "parse_timeout", "oversized",
     "pdf_bomb", "too_many_chars"}
)  # fmt: skip
"""Findings after which a person must look at the file; the document store quarantines on them."""


@dataclass(frozen=True)
class PdfLimits:
    max_pages: int = 50
    max_seconds: float = 30.0
    max_bytes: int = 25 * 1024 * 1024
    max_stream_bytes: int = 32 * 1024 * 1024
    """What one flate stream may inflate to (checked before pdfplumber inflates anything)."""
    max_inflated_bytes: int = 128 * 1024 * 1024
    """What all flate streams together may inflate to."""
    max_chars_per_page: int = 20_000
    """Glyphs a page may show (a dense page of small print has ~8,000); a page over it is skipped."""
    max_chars: int = 200_000
    """Glyphs the whole document may show; reading stops past it."""
    ocr: OcrLimits = field(default_factory=OcrLimits)
    """Pages without a text layer are read by OCR (intake.ocr) within its own time budget."""


class PdfDocument(BaseModel):
    document: str | None = None
    page_count: int = 0
    text: str = ""
    """Reading-order text of the pages read; ``Source.span`` is not used for PDF, ``bbox`` is."""
    is_invoice: bool = False
    purchase_order: PurchaseOrder | None = None
    findings: list[Finding] = Field(default_factory=list)
    ocr: OcrState | None = None
    """What OCR read (words and confidences), when a page had no text layer."""

    @property
    def purchase_orders(self) -> list[PurchaseOrder]:
        return [self.purchase_order] if self.purchase_order is not None else []

    def all_findings(self) -> list[Finding]:
        return list(self.findings)


@dataclass(slots=True)
class _Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    page: int
    start: int = 0
    end: int = 0


@dataclass
class _Line:
    words: list[_Word]
    page: int

    @property
    def top(self) -> float:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self.words)

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)


def _group_lines(words: list[_Word], page: int) -> list[_Line]:
    lines: list[_Line] = []
    for w in sorted(words, key=lambda w: (round(w.top, 1), w.x0)):
        if lines:
            cur = lines[-1]
            ref = cur.words[0]
            if abs(w.top - ref.top) <= max(2.0, 0.4 * (ref.bottom - ref.top)):
                cur.words.append(w)
                continue
        lines.append(_Line([w], page))
    for ln in lines:
        ln.words.sort(key=lambda w: w.x0)
    return lines


@dataclass
class _Text:
    """The reading-order text of the document and the word behind each character span."""

    parts: list[str] = field(default_factory=list)
    words: list[_Word] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    pos: int = 0

    def add_line(self, line: _Line) -> None:
        for i, w in enumerate(line.words):
            if i:
                self.parts.append(" ")
                self.pos += 1
            w.start, w.end = self.pos, self.pos + len(w.text)
            self.parts.append(w.text)
            self.words.append(w)
            self.starts.append(w.start)
            self.pos = w.end
        self.parts.append("\n")
        self.pos += 1

    def add_page_break(self) -> None:
        self.parts.append("\f\n")
        self.pos += 2

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def words_in(self, start: int, end: int) -> list[_Word]:
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        out: list[_Word] = []
        while i < len(self.words) and self.words[i].start < end:
            w = self.words[i]
            if w.end > start:
                out.append(w)
            i += 1
        return out


def _bbox(words: Sequence[_Word]) -> tuple[float, float, float, float]:
    return (
        round(min(w.x0 for w in words), 2),
        round(min(w.top for w in words), 2),
        round(max(w.x1 for w in words), 2),
        round(max(w.bottom for w in words), 2),
    )


class PdfLayout:
    """Geometry of the rebuilt text; implements :class:`intake.extract.Layout`."""

    def __init__(self, text: _Text, document: str | None) -> None:
        self._t = text
        self._document = document
        self._lines: dict[int, list[list[_Word]]] = {}
        cur: list[_Word] = []
        for w in text.words:
            if cur and (w.page != cur[-1].page or text.text[cur[-1].end : w.start] != " "):
                self._lines.setdefault(cur[0].page, []).append(cur)
                cur = []
            cur.append(w)
        if cur:
            self._lines.setdefault(cur[0].page, []).append(cur)

    def source(self, start: int, end: int) -> Source:
        words = self._t.words_in(start, end)
        if not words:
            return Source(kind="pdf", document=self._document)
        page = words[0].page
        return Source(kind="pdf", document=self._document, page=page, bbox=_bbox([w for w in words if w.page == page]))

    def value_below(self, start: int, end: int) -> tuple[int, int] | None:
        label = self._t.words_in(start, end)
        if not label:
            return None
        page = label[0].page
        x0, x1 = min(w.x0 for w in label), max(w.x1 for w in label)
        bottom = max(w.bottom for w in label)
        height = max(1.0, bottom - min(w.top for w in label))
        for ln in self._lines.get(page, []):
            top = min(w.top for w in ln)
            if top < bottom - 0.5 or top > bottom + 2.5 * height:
                continue
            hit = [w for w in ln if w.x1 > x0 - 3 and w.x0 < x1 + 3]
            if not hit:
                continue
            first = ln.index(hit[0])
            run = [ln[first]]
            for w in ln[first + 1 :]:
                if w.x0 - run[-1].x1 > 1.2 * height or w.x0 > x1 + 3 * height:
                    break
                run.append(w)
            return run[0].start, run[-1].end
        return None


# --- tables ---------------------------------------------------------------------------------------


@dataclass
class _Column:
    field: str | None
    x0: float
    x1: float


def _header_phrases(line: _Line) -> list[tuple[str, float, float]]:
    """Greedy longest match of the line's words against the column vocabulary."""
    words = line.words
    out: list[tuple[str, float, float]] = []
    i = 0
    while i < len(words):
        for n in (4, 3, 2, 1):
            if i + n > len(words):
                continue
            chunk = words[i : i + n]
            if n > 1 and any(chunk[k + 1].x0 - chunk[k].x1 > 2.0 * line.height for k in range(n - 1)):
                continue
            text = " ".join(w.text for w in chunk)
            if n == 1 or column_field(text) is not None:
                out.append((text, chunk[0].x0, chunk[-1].x1))
                i += n
                break
    return out


def _columns_for(line: _Line) -> tuple[list[_Column], dict[int, str]] | None:
    phrases = _header_phrases(line)
    header = classify_header([p[0] for p in phrases])
    if header is None or len(header) < 2:
        return None
    return [_Column(header.get(i), p[1], p[2]) for i, p in enumerate(phrases)], header


def _assign(line: _Line, cols: list[_Column], layout: PdfLayout) -> list[Cell]:
    bounds = [(cols[i].x1 + cols[i + 1].x0) / 2 for i in range(len(cols) - 1)]
    buckets: list[list[_Word]] = [[] for _ in cols]
    for w in line.words:
        overlapping = [i for i, c in enumerate(cols) if w.x1 > c.x0 and w.x0 < c.x1]
        k = overlapping[0] if len(overlapping) == 1 else bisect.bisect_left(bounds, (w.x0 + w.x1) / 2)
        buckets[k].append(w)
    cells: list[Cell] = []
    for b in buckets:
        if not b:
            cells.append(Cell(""))
        else:
            cells.append(Cell(" ".join(w.text for w in b), layout.source(b[0].start, b[-1].end)))
    return cells


@dataclass
class _TableState:
    header: dict[int, str] | None = None
    columns: list[_Column] | None = None
    ruled_width: int | None = None
    active: bool = False


def _is_stop(cells: Sequence[Cell]) -> bool:
    return any(is_totals_text(c.text) for c in cells[:2] if c.text)


def _unruled(
    lines: list[_Line],
    state: _TableState,
    po: PurchaseOrder,
    findings: list[Finding],
    layout: PdfLayout,
    mark: str,
) -> None:
    continuing = state.active and state.columns is not None
    started = not continuing
    prev_bottom: float | None = None
    for ln in lines:
        found = _columns_for(ln)
        if found is not None:
            state.columns, state.header = found
            state.active, started, prev_bottom = True, True, ln.bottom
            continue
        if not state.active or state.columns is None or state.header is None:
            continue
        if prev_bottom is not None and ln.top - prev_bottom > 4 * ln.height:
            state.active = False
            continue
        cells = _assign(ln, state.columns, layout)
        if _is_stop(cells):
            state.active = False
            continue
        if not started:
            # A continued table on a new page: skip the letterhead until the first real row.
            qty_i = next((i for i, f in state.header.items() if f == "quantity"), None)
            if qty_i is None or not cells[qty_i].text or not any(ch.isdigit() for ch in cells[qty_i].text):
                continue
            started = True
        prev_bottom = ln.bottom
        lines_from_rows(state.header, [cells], po, findings, decimal_mark=mark, stop_at_totals=False)


def _ruled(
    page: Any,
    page_no: int,
    state: _TableState,
    po: PurchaseOrder,
    findings: list[Finding],
    document: str | None,
    mark: str,
) -> list[tuple[float, float, float, float]]:
    """Line items from ruled tables on the page; returns the boxes of the tables it used."""
    used: list[tuple[float, float, float, float]] = []
    for table in page.find_tables({"vertical_strategy": "lines", "horizontal_strategy": "lines"}):
        data = table.extract()
        if not data:
            continue
        rows: list[list[Cell]] = []
        for r_i, row in enumerate(table.rows):
            texts = data[r_i] if r_i < len(data) else []
            cells = []
            for c_i, bbox in enumerate(row.cells):
                t = texts[c_i] if c_i < len(texts) and texts[c_i] is not None else ""
                src = (
                    Source(kind="pdf", document=document, page=page_no, bbox=tuple(round(v, 2) for v in bbox))
                    if bbox is not None
                    else None
                )
                cells.append(Cell(str(t).replace("\n", " ").strip(), src))
            rows.append(cells)
        start = 0
        for r_i, cells in enumerate(rows[:3]):
            hdr = classify_header([c.text for c in cells])
            if hdr is not None:
                state.header, state.ruled_width, state.columns = hdr, len(cells), None
                start = r_i + 1
                break
        else:
            if not (state.active and state.header is not None and state.ruled_width == len(rows[0])):
                continue
        state.active = lines_from_rows(state.header or {}, rows[start:], po, findings, decimal_mark=mark)
        used.append(tuple(table.bbox))
    return used


def _apply_fields(po: PurchaseOrder, fields: HeaderFields) -> None:
    """Header values read from label geometry win over those the text pass found: the text pass
    reads ``Label: value`` on one line and cannot tell a grid's columns apart."""
    if fields.po_number is not None:
        po.po_number, po.sources["po_number"] = fields.po_number
    for qual, found, is_po_date in (("004", fields.po_date, True), ("002", fields.need_by, False)):
        if found is None:
            continue
        value, raw, src = found
        k = next((j for j, d in enumerate(po.dates) if d.qualifier == qual), len(po.dates))
        ref = DateRef(qualifier=qual, value=value, raw=raw)
        if k < len(po.dates):
            po.dates[k] = ref
        else:
            po.dates.append(ref)
        po.sources[f"dates[{k}].value"] = src
        if is_po_date:
            po.po_date, po.sources["po_date"] = value, src
    if fields.ship_to is not None:
        party, srcs = fields.ship_to
        old = po.ship_to
        if old is not None and old.postal_code and not party.postal_code:
            return
        k = po.parties.index(old) if old is not None else len(po.parties)
        po.sources = {key: v for key, v in po.sources.items() if not key.startswith(f"parties[{k}].")}
        if old is not None:
            po.parties[k] = party
        else:
            po.parties.append(party)
        po.sources.update({f"parties[{k}].{key}": v for key, v in srcs.items()})


def _need_by_from_lines(po: PurchaseOrder, table: PurchaseOrder) -> None:
    """Where only the lines carry dates (``Receive By``, ``Date Req.``, ``Delivery Date/Time``
    columns), the order's requested delivery is the earliest of them."""
    if po.requested_delivery_date is not None:
        return
    dated = [d for ln in table.lines for d in ln.dates if d.qualifier == "002" and d.value is not None]
    if dated:
        first = min(dated, key=lambda d: d.value or date.max)
        po.dates.append(DateRef(qualifier="002", value=first.value, raw=first.raw))


# --- entry point ----------------------------------------------------------------------------------


def _finding(sev: Severity, code: str, msg: str, document: str | None, page: int | None = None) -> Finding:
    return Finding(severity=sev, code=code, message=msg, source=Source(kind="pdf", document=document, page=page))


def parse_pdf(
    data: bytes,
    *,
    document: str | None = None,
    limits: PdfLimits | None = None,
    template: CustomerTemplate | None = None,
    date_order: DateOrder | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> PdfDocument:
    """Read a PDF purchase order; never raises. ``timer`` is injectable so tests can blow the budget."""
    limits = limits or PdfLimits()
    out = PdfDocument(document=document)
    if not data or not data.strip():
        out.findings.append(_finding(Severity.ERROR, "empty_pdf", "the file is empty", document))
        return out
    if len(data) > limits.max_bytes:
        out.findings.append(
            _finding(Severity.ERROR, "oversized", f"{len(data)} bytes is over the {limits.max_bytes} limit", document)
        )
        return out
    if b"%PDF-" not in data[:1024]:
        out.findings.append(_finding(Severity.ERROR, "not_a_pdf", "no %PDF- header in the first 1024 bytes", document))
        return out
    bomb = _bomb_check(data, limits)
    if bomb is not None:
        out.findings.append(_finding(Severity.ERROR, "pdf_bomb", bomb, document))
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _parse(data, out, limits, template, date_order, timer)
        except Exception as exc:
            out.findings.append(_classify_error(exc, document))
    if out.ocr is not None:  # confidences of what OCR read, per field: such an order is always reviewed
        out.findings += ocr_findings(out.purchase_order, out.ocr, document=document)
    return out


_STREAM_RE = re.compile(rb"stream\r?\n")
_STRING_RE = re.compile(rb"\((?:[^()\\]|\\.)*\)|<[0-9A-Fa-f\s]*>", re.S)


def _is_zlib(head: bytes | memoryview) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] * 256 + head[1]) % 31 == 0


def _inflate(buf: memoryview, cap: int) -> bytes | None:
    """The zlib stream at the start of ``buf``, inflated up to ``cap`` + 1 bytes (None: not zlib).

    Input goes in 64 KiB pieces and output is capped, so neither a bomb nor a long file behind a
    small stream costs more than about ``cap``."""
    d = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    pos = 0
    try:
        while pos < len(buf) and not d.eof and size <= cap:
            piece = d.decompress(buf[pos : pos + 65536], cap + 1 - size)
            pos += 65536
            while True:
                parts.append(piece)
                size += len(piece)
                if size > cap or not d.unconsumed_tail:
                    break
                piece = d.decompress(d.unconsumed_tail, cap + 1 - size)
    except zlib.error:
        if not size:
            return None
    return b"".join(parts)


def _bomb_check(data: bytes, limits: PdfLimits) -> str | None:
    """Why the PDF's flate streams must not be inflated (a bomb), from a bounded inflate of each.

    Streams are found by their ``stream`` keyword, not through the xref, so a broken xref cannot
    hide one; nested flate (a filter chain of several FlateDecode) is followed a few layers deep."""
    total = 0
    view = memoryview(data)
    for m in _STREAM_RE.finditer(data):
        if not _is_zlib(view[m.end() : m.end() + 2]):
            continue
        chunk: bytes | memoryview | None = view[m.end() :]
        for _layer in range(3):
            assert chunk is not None
            chunk = _inflate(memoryview(chunk), limits.max_stream_bytes)
            if chunk is None:
                break
            if len(chunk) > limits.max_stream_bytes:
                return f"a stream inflates to over {limits.max_stream_bytes} bytes (a flate bomb)"
            total += len(chunk)
            if total > limits.max_inflated_bytes:
                return f"the streams inflate to over {limits.max_inflated_bytes} bytes together (a flate bomb)"
            if not _is_zlib(chunk[:2]):
                break
    return None


def _glyphs(page: Any) -> int:
    """An upper bound of the glyphs a page shows, from its content streams and form XObjects
    without interpreting them: the bytes inside string operands (two-byte fonts count double)."""
    from pdfminer.pdftypes import resolve1

    streams = []
    contents = getattr(page.page_obj, "contents", None) or []
    streams += [resolve1(c) for c in contents]
    try:
        xobjects = resolve1((page.page_obj.resources or {}).get("XObject")) or {}
        for ref in dict(xobjects).values():
            x = resolve1(ref)
            if getattr(getattr(x, "attrs", {}).get("Subtype"), "name", None) == "Form":
                streams.append(x)
    except Exception:  # a broken resource dictionary: the page's own content is what we count
        pass
    n = 0
    for s in streams:
        try:
            raw = s.get_data()
        except Exception:
            continue
        for m in _STRING_RE.finditer(raw):
            tok = m.group(0)
            n += len(tok) - 2 if tok[:1] == b"(" else (len(tok) - 2) // 2
    return n


def _classify_error(exc: BaseException, document: str | None) -> Finding:
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    name = type(inner).__name__
    if "Password" in name or "Encrypt" in name or "encrypt" in str(exc).lower():
        return _finding(
            Severity.ERROR, "encrypted", "the PDF is encrypted and cannot be read without a password", document
        )
    return _finding(Severity.ERROR, "corrupt_pdf", f"the PDF cannot be read: {name}: {str(inner)[:200]}", document)


@dataclass
class _Read:
    """What the page pass leaves for the table pass: the pages as read (deduplicated), their lines,
    the text, and whether a limit cut the reading short."""

    pages: list[Any]
    ocr: OcrState
    page_lines: list[list[_Line]] = field(default_factory=list)
    text: _Text = field(default_factory=lambda: _Text())
    images: int = 0
    skipped: set[int] = field(default_factory=set)
    timed_out: bool = False


def _parse(
    data: bytes,
    out: PdfDocument,
    limits: PdfLimits,
    template: CustomerTemplate | None,
    date_order: DateOrder | None,
    timer: Callable[[], float],
) -> None:
    import pdfplumber

    document = out.document
    t0 = timer()
    ocr = out.ocr = OcrState.new(limits.ocr)
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        pages = pdf.pages
        out.page_count = len(pages)
        if out.page_count == 0:
            out.findings.append(_finding(Severity.ERROR, "empty_pdf", "the PDF has no pages", document))
            return
        if out.page_count > limits.max_pages:
            out.findings.append(
                _finding(
                    Severity.ERROR,
                    "too_many_pages",
                    f"{out.page_count} pages is over the {limits.max_pages} page limit; read the first "
                    f"{limits.max_pages}",
                    document,
                )
            )
        read = _read_pages(_Read(list(pages[: limits.max_pages]), ocr), out, limits, timer, t0)
        out.text = read.text.text
        # Prose the order has no use for (a story, a chatbot script) sends it to a person (intake.hidden).
        out.findings.extend(page_text_findings(out.text, document=document))
        if not read.text.words:
            _no_text(read, out)
            return
        layout = PdfLayout(read.text, document)
        ex = extract_order(
            out.text,
            source=layout.source,
            document_type="pdf",
            template=template,
            layout=layout,
            date_order=date_order,
        )
        out.is_invoice = ex.is_invoice
        findings = [f for f in ex.findings if f.code not in ("no_order_found", "no_lines")]
        po = ex.purchase_order or PurchaseOrder(document_type="pdf")
        mark = (template.decimal_mark if template else None) or guess_decimal_mark(out.text)
        order: DateOrder = (
            template.date_order if template else date_order if date_order is not None else guess_date_order(out.text)
        )
        boxes = [[ln.words for ln in lines] for lines in read.page_lines]
        _apply_fields(po, read_header_fields(boxes, document=document, date_order=order))
        table_po, table_findings, ruled_any = _grid_tables(read, out, layout, limits, timer, t0, mark)
        # The geometric reader (columns by header vocabulary and content, sub-lines, totals, terms
        # pages) wins; where ruled grids gave the same lines, their cells are the better sources.
        found = read_tables(boxes, document=document, decimal_mark=mark, date_order=order)
        if found.lines:
            sources = dict(found.sources)
            same = len(found.lines) == len(table_po.lines) and all(
                a.quantity == b.quantity for a, b in zip(found.lines, table_po.lines, strict=False)
            )
            if ruled_any and same:
                sources.update({k: v for k, v in table_po.sources.items() if k in sources})
            table_po = PurchaseOrder(document_type="pdf", lines=found.lines, sources=sources)
            table_findings = []
    _finish(po, table_po, findings, table_findings, out)


def _read_pages(read: _Read, out: PdfDocument, limits: PdfLimits, timer: Callable[[], float], t0: float) -> _Read:
    """Words and lines of each page, within the time and glyph limits (a page over the per-page
    glyph limit is skipped, one over the document's stops the reading); OCR for a page without a
    text layer."""
    document = out.document
    glyphs = 0
    for i, page in enumerate(list(read.pages), start=1):
        if timer() - t0 > limits.max_seconds:
            out.findings.append(
                _finding(
                    Severity.ERROR,
                    "parse_timeout",
                    f"stopped after {i - 1} pages: over the {limits.max_seconds}s limit",
                    document,
                    i,
                )
            )
            read.timed_out = True
            break
        # Count before pdfplumber builds an object per glyph: that is where 2M-glyph pages cost.
        n = _glyphs(page)
        glyphs += n
        if glyphs > limits.max_chars:
            out.findings.append(_finding(Severity.ERROR, "too_many_chars", f"stopped at page {i}: over "
                                         f"{limits.max_chars} glyphs in the document", document, i))  # fmt: skip
            read.timed_out = True
            break
        if n > limits.max_chars_per_page:
            out.findings.append(_finding(Severity.ERROR, "too_many_chars", f"page {i} skipped: about {n} "
                                         f"glyphs, over the {limits.max_chars_per_page} page limit", document,
                                         i))  # fmt: skip
            read.skipped.add(i)
            read.page_lines.append([])
            continue
        _read_page(page, i, read, out)
    return read


def _read_page(page: Any, i: int, read: _Read, out: PdfDocument) -> None:
    """One page's words (OCR where it has images and no text layer), grouped into lines."""
    # Fake bold: the same glyphs drawn twice a fraction of a point apart read "PPOO" without this.
    page = page.dedupe_chars(tolerance=1)
    read.pages[i - 1] = page
    raw = page.extract_words(keep_blank_chars=False, use_text_flow=False)
    if not raw and page.images:  # no text layer (a scan): OCR reads the page image
        raw = read_page(page, i, read.ocr, out.findings, document=out.document)
    words = [
        _Word(str(w["text"]), float(w["x0"]), float(w["x1"]), float(w["top"]), float(w["bottom"]), i)
        for w in raw
        if str(w["text"]).strip()
    ]
    read.images += len(page.images)
    lines = _group_lines(words, i)
    read.page_lines.append(lines)
    if i > 1:
        read.text.add_page_break()
    for ln in lines:
        read.text.add_line(ln)


def _no_text(read: _Read, out: PdfDocument) -> None:
    """The finding for a PDF that gave no words: none when a limit stopped the reading (that
    finding is the reason), else a scan OCR could not read, or an empty document."""
    if read.skipped or read.timed_out:
        return
    if read.images:
        out.findings.append(
            _finding(
                Severity.ERROR,
                "image_only",
                "the PDF has no text layer (scanned?) and OCR read no words from it (see the OCR findings)",
                out.document,
            )
        )
    else:
        out.findings.append(_finding(Severity.ERROR, "empty_pdf", "the PDF holds no text", out.document))


def _grid_tables(
    read: _Read,
    out: PdfDocument,
    layout: PdfLayout,
    limits: PdfLimits,
    timer: Callable[[], float],
    t0: float,
    mark: str,
) -> tuple[PurchaseOrder, list[Finding], bool]:
    """Lines from ruled grids, and from the text lines of pages without one; and whether any page
    had a ruled grid."""
    table_po = PurchaseOrder(document_type="pdf")
    table_findings: list[Finding] = []
    state = _TableState()
    ruled_any = False
    for i, page in enumerate(read.pages[: len(read.page_lines)], start=1):
        if read.timed_out or timer() - t0 > limits.max_seconds:
            if not read.timed_out:
                out.findings.append(
                    _finding(
                        Severity.ERROR,
                        "parse_timeout",
                        f"over the {limits.max_seconds}s limit while reading tables",
                        out.document,
                        i,
                    )
                )
            break
        if i in read.skipped:
            continue
        used = _ruled(page, i, state, table_po, table_findings, out.document, mark)
        ruled_any = ruled_any or bool(used)
        if not used:
            _unruled(read.page_lines[i - 1], state, table_po, table_findings, layout, mark)
    return table_po, table_findings, ruled_any


def _finish(
    po: PurchaseOrder, table_po: PurchaseOrder, findings: list[Finding], table_findings: list[Finding], out: PdfDocument
) -> None:
    """Table lines replace the text reader's, and the document gets its order and findings (a
    missing PO number is no finding once a label gave one)."""
    document = out.document
    if table_po.lines:
        _need_by_from_lines(po, table_po)
        po.lines = table_po.lines
        po.sources = {k: v for k, v in po.sources.items() if not k.startswith("lines[")}
        po.sources.update(table_po.sources)
        findings = [f for f in findings if f.code != "no_lines"] + table_findings
    if po.po_number is None and not po.lines:
        findings.append(_finding(Severity.WARNING, "no_order_found", "no order number or line items found", document))
        out.findings.extend(findings)
        return
    if not po.lines:
        findings.append(_finding(Severity.WARNING, "no_lines", "no line items found", document))
    for f in findings:
        if f.code == "po_number_missing" and po.po_number is not None:
            continue
        out.findings.append(f)
    out.purchase_order = po
