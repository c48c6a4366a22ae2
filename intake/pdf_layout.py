"""Reading ERP-style PDF purchase orders from word boxes: label/value grids, address blocks, tables.

:mod:`intake.pdf` rebuilds reading-order text and runs the text extractor over it. That finds a
``PO Number: 123`` written on one line, but real ERP output puts labels in grids (``Date  PO #``
with the values on the line below), in right-hand label lists with the value far to the right, in
boxes side by side (``Vendor | Bill To | Ship To``), and draws line tables whose columns are in any
order. This module reads those from geometry:

* **labels**: a vocabulary of label phrases (many spellings of the PO number, the PO date, the
  need-by date, and the look-alikes that must *not* be taken for them: quotation, revision,
  vendor and account numbers). A label's value is the run of words to its right on the same
  line, else the words under it on the next lines, nearest to it of all the labels of its row.
* **ship-to**: the block under a ship-to label, cut to the label's column (the next label on the
  same row bounds it), read down to the ``City, ST 12345`` line.
* **tables**: a header row is found by column vocabulary (one or two text lines); each data line
  is cut into runs of words and each run goes to the column it sits under. Columns are then
  judged by their content: a ``#`` / ``No.`` / ``Item`` column holding 1, 2, 3 is the line number,
  one holding codes is the part number; a ``[CODE] name`` description gives the code. A line
  with a quantity starts an item; lines without one continue it (wrapped description, a
  ``Vendor Item No. …`` / ``Supplier Item: …`` sub-line, a stacked part/description cell).
  Totals, tax, freight and discount rows end the table; ``** … **`` comment rows are skipped;
  pages of terms and conditions are never read for lines; a table left open at the foot of a
  page continues on the next, after its repeated header or from its first full row.

Nothing here keys on a particular document: only on label and header vocabulary, alignment and
the shape of values. Everything is pure: word boxes in, values with their page and box out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol

from intake.extract import DateOrder, column_field, parse_amount, parse_date_text
from intake.model import DateRef, Party, POLine, ProductId, Source

__all__ = [
    "HeaderFields",
    "TableResult",
    "WordBox",
    "is_terms_page",
    "read_header_fields",
    "read_tables",
]


class WordBox(Protocol):
    """One word as :mod:`intake.pdf` reads it (top-left origin, points)."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    page: int


Line = Sequence[WordBox]
"""The words of one text line, left to right."""


@dataclass(frozen=True, slots=True)
class _W:
    """A word box of our own (labels like ``#P00118`` are split, so the input is not reused)."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    page: int

    @property
    def h(self) -> float:
        return max(4.0, self.bottom - self.top)


def _own(line: Line) -> list[_W]:
    return [_W(w.text, w.x0, w.x1, w.top, w.bottom, w.page) for w in line]


def _bbox(words: Sequence[_W]) -> tuple[float, float, float, float]:
    return (
        round(min(w.x0 for w in words), 2),
        round(min(w.top for w in words), 2),
        round(max(w.x1 for w in words), 2),
        round(max(w.bottom for w in words), 2),
    )


def _src(words: Sequence[_W], document: str | None) -> Source:
    return Source(kind="pdf", document=document, page=words[0].page, bbox=_bbox(words))


def _text(words: Sequence[_W]) -> str:
    return " ".join(w.text for w in words)


def _runs(words: Sequence[_W], gap_em: float = 0.6) -> list[list[_W]]:
    """Words split where the gap is wider than ``gap_em`` times the text height (a column gap)."""
    out: list[list[_W]] = []
    for w in words:
        if out and w.x0 - out[-1][-1].x1 <= gap_em * w.h:
            out[-1].append(w)
        else:
            out.append([w])
    return out


def _norm(text: str) -> str:
    """A label or header as a key: lower case, no dots, ``#`` apart, no trailing colon or ``(USD)``."""
    s = text.lower().replace("\u00a0", " ")
    s = re.sub(r"\s*\([^)]*\)\s*$", "", s) if not s.startswith("(") else s
    s = s.replace(".", "").replace("#", " #").replace(":", " ")
    return re.sub(r"\s+", " ", s).strip(" *")


# --- labels -----------------------------------------------------------------------------------------

_LABELS: dict[str, str] = {}
for _fld, _names in {
    "po_number": (
        "po #", "po no", "po number", "po num", "purchase order #", "purchase order no", "purchase order number",
        "purchase order nbr", "order #", "order no", "order number", "order nbr", "doc no", "document no",
        "document number", "doc #", "p o #", "p o no", "p o number",
    ),
    "po_date": (
        "date", "po date", "order date", "doc date", "document date", "purchase order date", "issue date",
        "date issued", "date ordered", "order placed", "p o date",
    ),
    "need_by": (
        "delivery date", "need by", "needed by", "need by date", "need date", "required date", "required by",
        "date required", "expected", "expected date", "expected receipt date", "expected delivery",
        "receive by", "date req", "deliver by", "delivery by", "requested delivery date", "requested date",
        "requested delivery", "due date", "promised date", "required ship date", "ship by",
    ),
    "ship_to": (
        "ship to", "ship-to", "ship to address", "ship-to address", "shipping address", "deliver to",
        "delivery address", "ship to location", "delivery location", "consignee",
    ),
    "other": (
        "quotation no", "quotation #", "quotation number", "quotation date", "quote #", "quote no", "quote number",
        "quote date", "quote", "revision", "rev", "revision date", "vendor code", "vendor no", "vendor #",
        "vendor number", "vendor", "supplier", "supplier no", "contact person", "contact", "currency", "page",
        "created by", "terms", "payment terms", "ship via", "shipping type", "shipment method", "employee", "fob",
        "purchaser", "buyer", "confirm to", "purchase representative", "your order reference", "your reference",
        "our reference", "reference", "customer account no", "account no", "account #", "customer no",
        "freight terms", "transportation", "prices including tax", "phone", "phone no", "tel", "fax", "e-mail",
        "email", "bill to", "bill-to", "invoice to", "sold to", "ordered by", "requester", "remarks", "memo",
        "notes", "requisition", "requisition no", "release", "release no", "printed", "approved by",
        "prepared by", "authorized by", "status", "type", "order type",
    ),
}.items():  # fmt: skip
    for _n in _names:
        _LABELS.setdefault(_n, _fld)
_MAX_LABEL_WORDS = max(len(k.split()) for k in _LABELS)
_PO_PRIORITY = {"purchase": 3, "po": 3, "p": 3, "order": 2}
"""``Purchase order #`` and ``PO #`` beat ``Order No.``, which beats ``Doc No.``."""


@dataclass(frozen=True, slots=True)
class _Label:
    field: str
    key: str
    words: tuple[_W, ...]
    line: int
    """Index of the line in the page's lines."""
    index: int
    """Index of the label's last word in that line."""

    @property
    def x0(self) -> float:
        return self.words[0].x0

    @property
    def x1(self) -> float:
        return self.words[-1].x1


# A word that ends "#" (or "#:") and a code: the code is a letter or digit, then characters of
# [\w\-/.] holding a digit. The run of them before the first digit is possessive and holds no
# digit, and the run after it is possessive too: the old ``[\w\-/.]*\d[\w\-/.]*`` gave back one
# character at a time looking for another digit, so a word of 20,000 digits then "!" took over a
# second (quadratic; a page may hold 20,000 characters). Same words split at the same "#".
_GLUED_RE = re.compile(r"(.*#:?)([A-Za-z0-9](?:[^\W\d]|[\-/.])*+\d[\w\-/.]*+)")


def _split_glued(words: list[_W]) -> list[_W]:
    """``#P00118`` -> ``#`` and ``P00118``, so ``Purchase Order #P00118`` reads as a label and a value."""
    out: list[_W] = []
    for w in words:
        m = _GLUED_RE.fullmatch(w.text)
        if m and len(m.group(1)) <= 4 and out:
            cut = w.x0 + (w.x1 - w.x0) * len(m.group(1)) / len(w.text)
            out.append(_W(m.group(1), w.x0, cut, w.top, w.bottom, w.page))
            out.append(_W(m.group(2), cut, w.x1, w.top, w.bottom, w.page))
        else:
            out.append(w)
    return out


def _labels_in(words: Sequence[_W], line_no: int) -> list[_Label]:
    """Label phrases in a line, longest match first; a bare ``Date`` qualified by the word before it
    (``Revision Date`` when that phrase is not in the vocabulary) is not the PO date."""
    out: list[_Label] = []
    i = 0
    while i < len(words):
        hit: _Label | None = None
        for n in range(min(_MAX_LABEL_WORDS, len(words) - i), 0, -1):
            chunk = words[i : i + n]
            if any(chunk[k + 1].x0 - chunk[k].x1 > 0.8 * chunk[k].h for k in range(n - 1)):
                continue
            key = _norm(_text(chunk))
            fld = _LABELS.get(key)
            if fld is None:
                continue
            if fld in ("po_date", "po_number") and i > 0 and not words[i - 1].text.endswith(":"):
                prev = words[i - 1]
                if words[i].x0 - prev.x1 < 0.8 * prev.h and re.fullmatch(r"[A-Za-z][A-Za-z.]*", prev.text):
                    fld = "other"
            hit = _Label(fld, key, tuple(chunk), line_no, i + n - 1)
            break
        if hit is not None:
            out.append(hit)
            i = hit.index + 1
        else:
            i += 1
    return out


@dataclass
class HeaderFields:
    """Header values read from the page geometry, each with where it was printed."""

    po_number: tuple[str, Source] | None = None
    po_date: tuple[date, str, Source] | None = None
    need_by: tuple[date, str, Source] | None = None
    ship_to: tuple[Party, dict[str, Source]] | None = None
    """The party and the source of each of its fields (``name``, ``address_lines[0]``, ``city``...)."""


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-/_.]*$")


def _po_value(words: Sequence[_W]) -> tuple[str, list[_W]] | None:
    for w in words[:2]:
        t = w.text.strip(",;:")
        if _ID_RE.match(t) and any(ch.isdigit() for ch in t) and len(t) <= 30:
            return t, [w]
    return None


_DASH_MONTH_RE = re.compile(r"(?<!\d)(\d{1,2})-([A-Za-z]{3,9})-(\d{4})(?!\d)")


def _parse_date(text: str, order: DateOrder) -> tuple[date, int, int, bool] | None:
    """:func:`intake.extract.parse_date_text`, also reading ``27-JAN-2027`` (same length, so the
    offsets hold)."""
    return parse_date_text(_DASH_MONTH_RE.sub(r"\1 \2 \3", text), order)


def _date_value(words: Sequence[_W], order: DateOrder) -> tuple[date, str, list[_W]] | None:
    words = list(words[:4])
    text = _text(words)
    found = _parse_date(text, order)
    if found is None or found[1] > 1:
        return None
    used: list[_W] = []
    pos = 0
    for w in words:
        if pos < found[2]:
            used.append(w)
        pos += len(w.text) + 1
    return found[0], text[found[1] : found[2]], used


class _Page:
    """The lines of one page with the labels in each."""

    def __init__(self, lines: Sequence[Line]) -> None:
        self.lines = [_split_glued(_own(ln)) for ln in lines if ln]
        self.labels = [_labels_in(ln, i) for i, ln in enumerate(self.lines)]

    def is_label_word(self, line: int, w: _W) -> bool:
        return w.text.endswith(":") or any(w in lb.words for lb in self.labels[line])

    def right_of(self, lb: _Label) -> list[_W]:
        """The run of words after the label on its line, up to the next label or a wide gap."""
        line = self.lines[lb.line]
        nxt = [o.x0 for o in self.labels[lb.line] if o.x0 > lb.x1]
        stop = min(nxt) if nxt else float("inf")
        out: list[_W] = []
        for w in line[lb.index + 1 :]:
            if w.x0 >= stop - 0.5 or (w.text.endswith(":") and out):
                break
            if out and w.x0 - out[-1].x1 > 1.5 * w.h:
                break
            out.append(w)
        if out and out[0].x0 - lb.x1 > 30 * lb.words[-1].h:
            return []
        return out

    def below(self, lb: _Label) -> list[_W]:
        """Words on the next lines under the label, nearer to it than to the other labels of its row."""
        row = self.labels[lb.line]
        h = lb.words[-1].h
        bottom = max(w.bottom for w in lb.words)
        for j in range(lb.line + 1, min(len(self.lines), lb.line + 5)):
            line = self.lines[j]
            if line[0].top > bottom + 3.2 * h:
                break
            mine: list[_W] = []
            for w in line:
                if self.is_label_word(j, w):
                    continue
                dist = _gap(w.x0, w.x1, lb.x0, lb.x1)
                if dist > 3 * h:
                    continue
                if any(_gap(w.x0, w.x1, o.x0, o.x1) < dist for o in row if o is not lb):
                    continue
                mine.append(w)
            if mine:
                return mine
        return []


def _gap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, b0 - a1, a0 - b1)


_MAX_ROW_LABELS = 16
"""More labels than this on one line is text, not a grid of header fields."""


def read_header_fields(
    pages: Sequence[Sequence[Line]], *, document: str | None = None, date_order: DateOrder = "MDY"
) -> HeaderFields:
    """PO number, PO date, need-by date and ship-to from label geometry (first page that has them)."""
    out = HeaderFields()
    best_po = -1
    for raw in pages[:3]:
        page = _Page(raw)
        for labels in page.labels:
            if len(labels) > _MAX_ROW_LABELS:
                continue  # not a label grid (and each label would scan the whole row)
            for lb in labels:
                best_po = _read_label(out, page, lb, best_po, document, date_order)
    return out


def _read_label(
    out: HeaderFields, page: _Page, lb: _Label, best_po: int, document: str | None, date_order: DateOrder
) -> int:
    """Fill the field one label names, unless an earlier label filled it (a PO number only yields
    to a label of higher priority, e.g. ``PO No.`` over ``Order``); returns the PO priority held."""
    if lb.field == "po_number":
        prio = _PO_PRIORITY.get(lb.key.split()[0], 1)
        if prio <= best_po:
            return best_po
        found = _po_value(page.right_of(lb)) or _po_value(page.below(lb))
        if found is not None:
            out.po_number = found[0], _src(found[1], document)
            return prio
    elif lb.field in ("po_date", "need_by") and getattr(out, lb.field) is None:
        got = _date_value(page.right_of(lb), date_order) or _date_value(page.below(lb), date_order)
        if got is not None:
            setattr(out, lb.field, (got[0], got[1], _src(got[2], document)))
    elif lb.field == "ship_to" and out.ship_to is None:
        out.ship_to = _ship_to(page, lb, document)
    return best_po


# --- ship-to ----------------------------------------------------------------------------------------

# "(?<!\s)": the spaces before the state start a run, as in intake.extract._US_CITY_RE (same matches,
# without reading the rest of a long run of spaces from each of its spaces).
_CITY_RE = re.compile(
    r"^(?P<city>[A-Za-z][A-Za-z .'-]*?),?(?<!\s)\s+(?P<state>[A-Z]{2})\.?,?\s+(?P<zip>\d{5}(?:-\d{4})?)$"
)
_ATTN_RE = re.compile(r"^(attn|attention|c/o)\b[:.]?\s*", re.I)
_COUNTRY_RE = re.compile(r"^(usa|u\.s\.a\.|us|united states(?: of america)?)$", re.I)


def _ship_to(page: _Page, lb: _Label, document: str | None) -> tuple[Party, dict[str, Source]] | None:
    """The address block under (or right of) a ship-to label, within the label's column."""
    block = _ship_to_block(page, lb)
    if not block:
        return None
    rows = [(_text(b), b) for b in block]
    if len(rows) == 1:
        rows = _split_one_line(rows[0][0], rows[0][1])
    return _ship_to_party(rows, document)


def _ship_to_block(page: _Page, lb: _Label) -> list[list[_W]]:
    """The word runs of the address block: lines below the label inside its column, up to a gap, the
    next label or the city line."""
    h = lb.words[-1].h
    left = lb.x0 - 1.2 * h
    right_labels = [o.x0 for o in page.labels[lb.line] if o.x0 > lb.x1 and o.field != "ship_to"]
    right_labels += [w.x0 for w in page.lines[lb.line] if w.x0 > lb.x1 and w.text.endswith(":")]
    right = min(right_labels) - 0.5 if right_labels else float("inf")
    block: list[list[_W]] = []
    first = page.right_of(lb)
    if first:
        block.append(first)
    prev_bottom = max(w.bottom for w in lb.words)
    for j in range(lb.line + 1, min(len(page.lines), lb.line + 10)):
        # The block's words start at its left edge; words far to the right belong to another block.
        inside = [w for w in page.lines[j] if w.x0 >= left and w.x0 < right]
        if not inside or inside[0].x0 > lb.x1 + 2 * h:
            continue
        if inside[0].top - prev_bottom > 2.2 * h:
            break
        run = _first_run(inside)
        is_label = run[0].text.endswith(":") or any(lb2.words[0] == run[0] for lb2 in page.labels[j])
        if is_label and not _ATTN_RE.match(run[0].text):
            break
        block.append(run)
        prev_bottom = max(w.bottom for w in run)
        if _CITY_RE.match(_text(run)):
            break
    return block


def _first_run(words: list[_W]) -> list[_W]:
    """The leading words up to the first wide gap (what follows a wide gap is another column)."""
    run = [words[0]]
    for w in words[1:]:
        if w.x0 - run[-1].x1 > 1.5 * w.h:
            break
        run.append(w)
    return run


def _ship_to_party(rows: list[tuple[str, list[_W]]], document: str | None) -> tuple[Party, dict[str, Source]]:
    """Name, attention lines, street lines and city/state/ZIP of an address block's lines."""
    party = Party(role="ST")
    sources: dict[str, Source] = {}
    city_i = next((i for i, (t, _) in enumerate(rows) if _CITY_RE.match(t)), None)
    if city_i is not None:
        m = _CITY_RE.match(rows[city_i][0])
        assert m is not None
        party.city, party.state, party.postal_code = m.group("city").strip(), m.group("state"), m.group("zip")
        sources["city"] = sources["postal_code"] = _src(rows[city_i][1], document)
        body = rows[:city_i]
    else:
        body = [r for r in rows if not _COUNTRY_RE.match(r[0])]
    name: list[_W] = []
    texts = [t for t, _ in body]
    for i, (t, words) in enumerate(body):
        if _ATTN_RE.match(t):
            sources[f"additional_names[{len(party.additional_names)}]"] = _src(words, document)
            party.additional_names.append(t)
        elif i == 0 or (not party.address_lines and not t[:1].isdigit() and not _name_done(i, texts)):
            name += words
        else:
            sources[f"address_lines[{len(party.address_lines)}]"] = _src(words, document)
            party.address_lines.append(t)
    if name:
        party.name = _text(name)
        sources["name"] = _src(name, document)
    return party, sources


def _split_one_line(text: str, words: list[_W]) -> list[tuple[str, list[_W]]]:
    """``Name, 12 Main St, Springfield, IL 62701`` on one line: its parts, as a block would give them
    (all with the line's words as their source)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) >= 3 and re.fullmatch(r"[A-Z]{2}\.?\s+\d{5}(?:-\d{4})?", parts[-1]):
        return [(p, words) for p in parts[:-2]] + [(f"{parts[-2]}, {parts[-1]}", words)]
    return [(text, words)]


def _name_done(i: int, body: Sequence[str]) -> bool:
    """Whether line ``i`` of an address block is past the name: the name may wrap onto a second
    line only when a street line (starting with a number) still follows."""
    return not any(t[:1].isdigit() for t in body[i + 1 :]) or i > 2


# --- tables -----------------------------------------------------------------------------------------

_ROLE_WORDS: dict[str, str] = {}
for _r, _names in {
    "line": ("#", "line", "ln", "line no", "line #", "pos", "position", "seq"),
    "line_or_part": ("no", "nr", "number"),
    "item": ("item",),
    "part": (
        "item no", "item #", "item number", "item code", "part", "part #", "part no", "part number", "sku",
        "product code", "our part #", "material", "article", "catalog #", "code", "buyer part", "buyer part #",
        "customer part", "customer part #", "item id",
    ),
    "vendor_part": (
        "vendor #", "vendor part", "vendor part #", "vendor part no", "vendor item", "vendor item #",
        "vendor item no", "supplier item", "supplier part", "supplier part #", "supplier item no", "mfr part",
        "mfr part #", "mfr part no", "manufacturer part", "manufacturer part #", "vendor sku", "vendor code",
    ),
    "part_desc": ("part number / description", "item / description", "item/description", "part/description"),
    "desc": ("description", "item description", "desc", "product", "product description", "name"),
    "qty": ("qty", "quantity", "ordered", "qty ordered", "order qty", "quantity ordered", "qty ord"),
    "unit": ("uom", "u/m", "um", "unit", "units", "unit of measure", "unit of measurement"),
    "price": (
        "unit price", "price", "rate", "unit cost", "cost", "direct unit cost", "price each", "each",
        "net price", "unit price usd",
    ),
    "amount": ("amount", "total", "extension", "ext price", "extended", "line total", "ext amount", "net amount"),
    "date": (
        "receive by", "date req", "delivery date", "delivery date/time", "need by", "required date", "due date",
        "ship date", "date", "promised date", "req date",
    ),
    "skip": ("tax", "taxes", "disc %", "disc", "discount", "discount %", "taxable"),
}.items():  # fmt: skip
    for _n in _names:
        _ROLE_WORDS.setdefault(_n, _r)
_FROM_EXTRACT = {"line_number": "line", "sku": "part", "buyer_sku": "part", "description": "desc", "item": "item",
                 "quantity": "qty", "unit": "unit", "unit_price": "price", "amount": "amount", "upc": "upc",
                 "gtin": "gtin"}  # fmt: skip
_TEXT_ROLES = {"desc", "part_desc", "part", "item", "vendor_part", "line_or_part"}
_NUM_ROLES = {"qty", "price", "amount"}
_TOTALS_RE = re.compile(
    r"^(sub-?\s?total|total|grand total|discount|invoice discount|freight|shipping|s&h|handling|tax|sales tax|"
    r"vat|untaxed amount|net order|order total|amount due|balance due|estimated tax|remarks|memo|notes?)\b",
    re.I,
)
_TERMS_HEAD_RE = re.compile(r"terms\s+(and|&)\s+conditions|conditions\s+of\s+purchase|general\s+terms", re.I)
_CLAUSE_RE = re.compile(r"^\d{1,2}\.\s+[A-Z][A-Z &/-]{3,}\.")
_SUBLINE_RE = re.compile(
    r"^(?:vendor|supplier|mfr|manufacturer|mfg)\.?\s*+(?:item|part|sku)?\s*+(?:no\.?|number|#)?\s*+:?\s*+"
    r"(?P<code>[A-Za-z0-9][\w\-/.]*)$",
    re.I,
)
"""A row under a line naming the vendor's code ("Vendor Part No: AB-12"). The space runs are
possessive: what follows each is never a space, so handing spaces between them never changes the
match, and four runs in a row split a long space run every way ("vendor" and 5,000 spaces: over
2 s). Words are joined by single spaces, but one glyph's text may be many spaces (a font's
ToUnicode map says what a glyph reads as). The test holds it equal to the backtracking pattern."""
_BRACKET_RE = re.compile(r"^\[(?P<code>[^\]\s]{2,40})\]\s*(?P<rest>.*)$")


_MAX_HEADER_WORDS = 40
"""More words than this on one line is prose or data, never a table header (and keeps a dense
page's header search linear)."""


def _role(phrase: str) -> str | None:
    key = _norm(phrase)
    role = _ROLE_WORDS.get(key)
    if role is None:
        fld = column_field(phrase)
        role = _FROM_EXTRACT.get(fld) if fld else None
    return role


@dataclass
class _Col:
    role: str | None
    x0: float
    x1: float
    header: str


def _header(lines: list[list[_W]], i: int) -> tuple[list[_Col], int] | None:
    """Columns when line ``i`` (with a second header line under it, if any) is a line-table header;
    returns the columns and how many lines the header takes."""
    line = lines[i]
    if not 3 <= len(line) <= _MAX_HEADER_WORDS:
        return None
    phrases, used = _header_phrases(line, lines[i + 1] if i + 1 < len(lines) else None)
    cols = [c for p in phrases for c in _phrase_cols(p)]
    roles = [c.role for c in cols if c.role]
    unknown = len(cols) - len(roles)
    if "qty" not in roles or not set(roles) & {"part", "desc", "part_desc", "item", "line_or_part"}:
        return None
    if len(roles) < 3 or unknown > max(1, len(cols) // 4):
        return None
    return cols, used


def _header_phrases(line: list[_W], nxt: list[_W] | None) -> tuple[list[list[_W]], int]:
    """The header's phrases, with a second header line (short words, right under, each under one
    phrase) merged into the phrase above it; and how many lines the header takes."""
    phrases = _runs(line)
    if not (
        nxt
        and nxt[0].top - line[0].bottom < 1.2 * line[0].h
        and all(re.fullmatch(r"[A-Za-z/.%#&-]+|\([A-Za-z$%]+\)", w.text) for w in nxt)
        and all(any(_gap(w.x0, w.x1, p[0].x0, p[-1].x1) == 0 for p in phrases) for w in nxt)
    ):
        return phrases, 1
    merged = [list(p) for p in phrases]
    for w in nxt:
        k = next(k for k, p in enumerate(phrases) if _gap(w.x0, w.x1, p[0].x0, p[-1].x1) == 0)
        merged[k].append(w)
    return merged, 2


def _phrase_cols(p: list[_W]) -> list[_Col]:
    """The column(s) of one header phrase; an unknown phrase of several words may be known headers
    set too tightly to part, so it is split greedily into the longest known phrases."""
    text = _text(p)
    role = _role(text)
    if role is not None or len(p) == 1:
        return [_Col(role, min(w.x0 for w in p), max(w.x1 for w in p), text)]
    cols: list[_Col] = []
    k = 0
    while k < len(p):
        for n in range(min(len(p) - k, 5), 0, -1):
            sub = p[k : k + n]
            r = _role(_text(sub))
            if r is not None or n == 1:
                cols.append(_Col(r, sub[0].x0, max(w.x1 for w in sub), _text(sub)))
                k += n
                break
    return cols


def _assign(line: Sequence[_W], cols: list[_Col]) -> list[list[_W]]:
    """Words of a data line per column: a run of words goes to the one column it sits under; a run
    under none is text running on from the column to its left; a run under several is cut by word."""
    cells: list[list[_W]] = [[] for _ in cols]
    for run in _runs(line):
        hits = [k for k, c in enumerate(cols) if _gap(run[0].x0, run[-1].x1, c.x0, c.x1) == 0]
        if len(hits) == 1:
            cells[hits[0]].extend(run)
            continue
        if not hits:
            x0 = run[0].x0
            left = [k for k, c in enumerate(cols) if c.x1 <= x0]
            right = [k for k, c in enumerate(cols) if c.x0 >= run[-1].x1]
            lk = left[-1] if left else None
            rk = right[0] if right else None
            # Numbers sit under their header whatever their alignment, so a run under no header is
            # text running on from a text column to its left.
            if lk is not None and cols[lk].role in _TEXT_ROLES:
                cells[lk].extend(run)
            elif lk is None or rk is None:
                cells[lk if lk is not None else rk if rk is not None else 0].extend(run)
            else:
                near = _gap(run[0].x0, run[-1].x1, cols[lk].x0, cols[lk].x1) <= _gap(
                    run[0].x0, run[-1].x1, cols[rk].x0, cols[rk].x1
                )
                cells[lk if near else rk].extend(run)
            continue
        last = hits[0]
        for w in run:
            over = [(min(w.x1, c.x1) - max(w.x0, c.x0), k) for k, c in enumerate(cols)]
            best = max(over)
            if best[0] > 0:
                last = best[1]
            cells[last].append(w)
    return cells


def is_terms_page(lines: Sequence[Line]) -> bool:
    """A page of terms and conditions (or other numbered clauses): it never holds order lines."""
    texts = [" ".join(w.text for w in ln) for ln in lines]
    if any(_TERMS_HEAD_RE.search(t) for t in texts[:4]):
        return True
    return sum(1 for t in texts if _CLAUSE_RE.match(t)) >= 4


@dataclass
class _Row:
    cells: list[list[_W]]
    cols: list[_Col]


@dataclass
class TableResult:
    """Line items read from tables, with the sources of their values (keys ``lines[i].…``)."""

    lines: list[POLine] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)


def _is_totals(cells: list[list[_W]]) -> bool:
    """A totals, tax, freight or discount row (or a remark under the table): the table ends."""
    return any(_TOTALS_RE.match(_text(run)) for run in _runs([w for c in cells for w in c]))


def _qty_of(cells: list[list[_W]], cols: list[_Col], mark: str) -> Decimal | None:
    for k, c in enumerate(cols):
        if c.role == "qty" and cells[k]:
            m = re.match(r"^\s*(-?[\d.,]*\d)\b", _text(cells[k]))
            if m:
                return parse_amount(m.group(1), mark)
    return None


def read_tables(
    pages: Sequence[Sequence[Line]],
    *,
    document: str | None = None,
    decimal_mark: str = ".",
    date_order: DateOrder = "MDY",
) -> TableResult:
    """Line items from every line table of the document (see the module docstring)."""
    scan = _TableScan(decimal_mark)
    for raw in pages:
        lines = [_own(ln) for ln in raw if ln]
        if is_terms_page(raw) and not any(_header(lines, i) for i in range(len(lines))):
            # A page of clauses; one that also holds a line-table header is an order page that
            # merely mentions its terms ("see terms and conditions on the reverse").
            scan.open_table = False
            continue
        scan.page(lines)
    out = TableResult()
    for rows in scan.groups:
        _items(rows, out, document, decimal_mark, date_order)
    return out


@dataclass
class _TableScan:
    """Rows of the line tables, page by page: a table stays open across a page break (its header
    need not repeat) until a gap, a totals row or a page of terms ends it."""

    mark: str
    groups: list[list[_Row]] = field(default_factory=list)
    cols: list[_Col] | None = None
    open_table: bool = False
    started: bool = False
    prev_bottom: float | None = None

    def page(self, lines: list[list[_W]]) -> None:
        self.started = False
        self.prev_bottom = None
        i = 0
        while i < len(lines):
            found = _header(lines, i)
            if found is not None:
                self.cols, used = found
                self.groups.append([])
                self.open_table, self.started = True, True
                self.prev_bottom = lines[i + used - 1][-1].bottom
                i += used
                continue
            self._data_line(lines[i])
            i += 1

    def _data_line(self, line: list[_W]) -> None:
        cols = self.cols
        if not self.open_table or cols is None:
            return
        if self.prev_bottom is not None and line[0].top - self.prev_bottom > 3.5 * line[0].h:
            self.open_table = False
            return
        cells = _assign(line, cols)
        qty = _qty_of(cells, cols, self.mark)
        if qty is None and _is_totals(cells):
            self.open_table = False
            return
        if not self.started:
            # A table continued from the page before, without its header: skip the letterhead
            # until the first full row (a quantity and an item).
            if qty is None or not any(cells[k] for k, c in enumerate(cols) if c.role in _TEXT_ROLES):
                return
            self.started = True
        self.prev_bottom = line[-1].bottom
        self.groups[-1].append(_Row(cells, cols))


def _ints(values: list[str]) -> bool:
    return bool(values) and all(re.fullmatch(r"\d{1,4}\.?", v) for v in values)


def _resolve(rows: list[_Row], mark: str) -> list[str | None]:
    """Column roles from the header *and* the content: a ``#``/``No.``/``Item`` column of small
    integers is the line number, one of codes is the part number."""
    cols = rows[0].cols
    starts = [r for r in rows if _qty_of(r.cells, r.cols, mark) is not None]
    roles: list[str | None] = [c.role for c in cols]
    for k, c in enumerate(cols):
        if c.role not in ("line", "line_or_part", "item"):
            continue
        vals = [_text(r.cells[k]) for r in starts if r.cells[k]]
        if _ints(vals) or (c.role == "line" and not vals):
            roles[k] = "line"
        elif "desc" in roles or "part_desc" in roles or c.role != "item":
            roles[k] = "part" if "part" not in roles else "vendor_part"
        else:
            roles[k] = "desc"
    return roles


@dataclass
class _ItemCtx:
    """What every helper of :func:`_items` needs: where values and their sources go, and how the
    document writes numbers and dates."""

    out: TableResult
    document: str | None
    mark: str
    order: DateOrder
    part_qual: str


def _by_role(roles: list[str | None], cells: list[list[_W]]) -> dict[str, list[_W]]:
    """The first non-empty cell of each role (a role resolved twice keeps its leftmost column)."""
    by: dict[str, list[_W]] = {}
    for k, r in enumerate(roles):
        if r and cells[k] and r not in by:
            by[r] = cells[k]
    return by


def _comment_state(text: str, in_comment: bool) -> tuple[bool, bool]:
    """``(skip this row, inside a comment after it)`` for ``** … **`` comment blocks, which some
    ERPs print between item rows and may wrap over several rows."""
    if in_comment:
        return True, not text.rstrip().endswith("**")
    if text.startswith("**"):
        stripped = text.strip()
        return True, not (len(stripped) > 2 and stripped.endswith("**"))
    return False, False


def _items(rows: list[_Row], out: TableResult, document: str | None, mark: str, order: DateOrder) -> None:
    """Order lines from one table's rows: a row with a quantity starts a line, a row without one
    continues the line above (wrapped description, vendor code printed under the item)."""
    if not rows:
        return
    roles = _resolve(rows, mark)
    ctx = _ItemCtx(out, document, mark, order, "BP" if "vendor_part" in roles else "VN")
    in_comment = False
    current: POLine | None = None
    key = ""
    for row in rows:
        by = _by_role(roles, row.cells)
        qty = _qty_of(row.cells, row.cols, mark)
        skip, in_comment = _comment_state(_text([w for c in row.cells for w in c]), in_comment)
        if skip:
            continue
        if qty is None:
            if current is not None:
                _continue_line(current, key, by, ctx)
            continue
        if not any(r in by for r in ("part", "desc", "part_desc", "vendor_part")):
            continue
        key = f"lines[{len(out.lines)}]."
        current = _new_line(qty, key, by, ctx)
        out.lines.append(current)


def _continue_line(current: POLine, key: str, by: dict[str, list[_W]], ctx: _ItemCtx) -> None:
    """A row without a quantity under a line: a vendor code, or wrapped description text."""
    for r in ("desc", "part_desc", "part", "line_or_part"):
        if r not in by:
            continue
        t = _text(by[r])
        sub = _SUBLINE_RE.match(t)
        if sub:
            _add_id(current, ctx.out, key, "VN", sub.group("code"), by[r], ctx.document)
            _promote_buyer(current)
        elif r in ("desc", "part_desc"):
            # Wrapped text: kept in ``descriptions``; ``description`` is the first line,
            # as for the other readers (a stacked part/description cell gives it here).
            current.descriptions.append(t)
            if current.description is None:
                current.description = t
                ctx.out.sources[key + "description"] = _src(by[r], ctx.document)
        return


def _new_line(qty: Decimal, key: str, by: dict[str, list[_W]], ctx: _ItemCtx) -> POLine:
    """An order line from a row with a quantity, each value with its source."""
    current = POLine()
    _set_quantity_unit(current, qty, key, by, ctx)
    if "line" in by:
        current.line_number = _text(by["line"]).rstrip(".")
        ctx.out.sources[key + "line_number"] = _src(by["line"], ctx.document)
    _set_ids(current, key, by, ctx)
    if "desc" in by:
        _set_description(current, key, by["desc"], ctx)
    _set_money_and_date(current, key, by, ctx)
    return current


def _set_quantity_unit(current: POLine, qty: Decimal, key: str, by: dict[str, list[_W]], ctx: _ItemCtx) -> None:
    """The quantity, and the unit from its own column or else from the quantity cell (``12 EA``)."""
    qcell = by["qty"]
    current.quantity = qty
    ctx.out.sources[key + "quantity"] = _src(qcell, ctx.document)
    unit_m = re.match(r"^\s*-?[\d.,]*\d\s+(.+)$", _text(qcell))
    if "unit" in by:
        current.unit = _text(by["unit"]).upper()
        ctx.out.sources[key + "unit"] = _src(by["unit"], ctx.document)
    elif unit_m:
        current.unit = unit_m.group(1).upper()


def _set_ids(current: POLine, key: str, by: dict[str, list[_W]], ctx: _ItemCtx) -> None:
    """Part numbers: the part column is the buyer's when a vendor column is also printed."""
    if "part" in by:
        _add_id(current, ctx.out, key, ctx.part_qual, _text(by["part"]), by["part"], ctx.document)
    if "part_desc" in by:
        code, _, rest = _text(by["part_desc"]).partition(" ")
        _add_id(current, ctx.out, key, ctx.part_qual, code, by["part_desc"], ctx.document)
        if rest:
            current.description = rest
            current.descriptions.append(rest)
    if "vendor_part" in by:
        _add_id(current, ctx.out, key, "VN", _text(by["vendor_part"]), by["vendor_part"], ctx.document)


def _set_description(current: POLine, key: str, cell: list[_W], ctx: _ItemCtx) -> None:
    """The description; a ``[CODE] text`` prefix or a lone code-like word is the part number when
    the row printed none elsewhere."""
    d = _text(cell)
    bm = _BRACKET_RE.match(d)
    if bm and not current.product_ids:
        _add_id(current, ctx.out, key, "VN", bm.group("code"), cell, ctx.document)
        d = bm.group("rest")
    elif not current.product_ids and " " not in d and re.search(r"\d", d):
        _add_id(current, ctx.out, key, "VN", d, cell, ctx.document)
        d = ""
    if d:
        current.description = d
        current.descriptions.append(d)
        ctx.out.sources[key + "description"] = _src(cell, ctx.document)


def _set_money_and_date(current: POLine, key: str, by: dict[str, list[_W]], ctx: _ItemCtx) -> None:
    """Unit price, extended amount and the line's requested date, where their cells parse."""
    for r, attr in (("price", "unit_price"), ("amount", "amount")):
        if r in by:
            v = parse_amount(_text(by[r]), ctx.mark)
            if v is not None:
                setattr(current, attr, v)
                ctx.out.sources[key + attr] = _src(by[r], ctx.document)
    if "date" in by:
        got = _parse_date(_text(by["date"]), ctx.order)
        if got is not None:
            current.dates.append(DateRef(qualifier="002", value=got[0], raw=_text(by["date"])[got[1] : got[2]]))


def _add_id(line: POLine, out: TableResult, key: str, qual: str, value: str, words: Sequence[_W],
            document: str | None) -> None:  # fmt: skip
    value = value.strip(",;")
    if not value or any(p.value == value for p in line.product_ids):
        return
    out.sources[f"{key}product_ids[{len(line.product_ids)}]"] = _src(words, document)
    line.product_ids.append(ProductId(qualifier=qual, value=value))


def _promote_buyer(line: POLine) -> None:
    """A vendor code printed under the item: the item's own code is the buyer's part number."""
    vn = [p for p in line.product_ids if p.qualifier == "VN"]
    if len(vn) > 1:
        vn[0].qualifier = "BP"
