"""Deterministic extraction of a purchase order from unstructured text (e-mail bodies, PDF text).

This is the default extractor when no model is configured, and the fallback when one is: label
rules (``PO Number: 4711``, ``Ship To:`` blocks, dates in the usual spellings of EN/FR/DE/NL),
line-item patterns (``10 x SKU-00042 @ 12.50``, ``Qty 5 EA Part# AB-12``), text tables whose header
names the columns, and per-customer :class:`CustomerTemplate` rules keyed by e-mail domain that run
before the generic ones.

It also holds what the table-shaped parsers share (PDF tables, CSV/XLSX sheets): the column-name
vocabulary (:func:`classify_header`) and the row-to-line mapping (:func:`lines_from_rows`), so a
"Qty" column means the same thing in every format.

Every value gets a :class:`~intake.model.Source`; the caller says how a character span of the text
becomes one (``span_source``), which is how a PDF maps spans back to page and bounding box.

Text that addresses the system rather than the supplier ("ignore previous instructions", "approve
automatically") is reported as ``injection_suspected``; this module never acts on document text.
Never raises on bad input.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal, Protocol

from core.injection import find_injections
from intake.model import (
    Amount,
    DateRef,
    Finding,
    Party,
    POLine,
    ProductId,
    PurchaseOrder,
    Reference,
    Severity,
    Source,
    SourceKind,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "AddressParts",
    "Cell",
    "CustomerTemplate",
    "DateOrder",
    "Layout",
    "SpanSource",
    "TemplateRegistry",
    "TextExtraction",
    "TextLayout",
    "classify_header",
    "column_field",
    "detect_injection",
    "extract_order",
    "guess_date_order",
    "guess_decimal_mark",
    "is_totals_text",
    "lines_from_rows",
    "normalize_header",
    "parse_amount",
    "parse_date_text",
    "span_source",
    "split_address",
]

DateOrder = Literal["MDY", "DMY", "YMD"]
SpanSource = Callable[[int, int], Source]
"""Turns a half-open character span of the extracted text into a :class:`Source`."""


@dataclass(frozen=True)
class _SpanSource:
    # A class, not a closure: it crosses the parse sandbox's pipe (intake.sandbox) with the text.
    kind: SourceKind
    document: str | None

    def __call__(self, start: int, end: int) -> Source:
        return Source(kind=self.kind, document=self.document, span=(start, end))


def span_source(kind: SourceKind, document: str | None = None) -> SpanSource:
    """The plain mapping: the span itself is the pointer (e-mail bodies, text files)."""
    return _SpanSource(kind, document)


# --- numbers and dates ----------------------------------------------------------------------------

_NUM_RE = re.compile(r"-?\d[\d.,' \u00a0\u202f]*\d|-?\d")


def guess_decimal_mark(text: str) -> str:
    """``","`` when the text writes amounts the European way (``1.234,56``), else ``"."``."""
    comma = len(re.findall(r"\d,\d{2}(?!\d)", text))
    dot = len(re.findall(r"\d\.\d{2}(?!\d)", text))
    return "," if comma > dot else "."


def _mark_of(s: str, decimal_mark: str | None) -> str:
    """The decimal mark of one unsigned figure: the last of two separators; a lone comma with one or
    two digits after it (or when the document writes commas); a dot unless it repeats or the
    document writes commas and three digits follow it (``1.234``)."""
    if "," in s and "." in s:
        return "," if s.rfind(",") > s.rfind(".") else "."
    if "," in s:
        if s.count(",") > 1:
            return "."
        if decimal_mark == ",":
            return ","
        return "," if len(s.rsplit(",", 1)[1]) in (1, 2) else "."
    if "." in s:
        tail = s.rsplit(".", 1)[1]
        return "," if s.count(".") > 1 or (decimal_mark == "," and len(tail) == 3) else "."
    return "."


def parse_amount(raw: str, decimal_mark: str | None = None) -> Decimal | None:
    """A money or quantity figure as people write it (``$1,234.50``, ``€ 2.321,00``, ``1939``).

    With both separators present the last one is the decimal mark; with one, ``decimal_mark``
    decides (guessed from the shape when not given). Returns None when no number is there.
    """
    m = _NUM_RE.search(raw.replace("\u2212", "-"))
    if m is None:
        return None
    s = re.sub(r"[' \u00a0\u202f]", "", m.group(0))
    neg = s.startswith("-")
    s = s.lstrip("-")
    mark = _mark_of(s, decimal_mark)
    thousands = "," if mark == "." else "."
    s = s.replace(thousands, "")
    if mark == ",":
        s = s.replace(",", ".")
    if s.count(".") > 1:
        return None
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return -value if neg else value


_MONTHS: dict[str, int] = {}
for _i, _names in enumerate(
    [
        "january jan januar janvier janv januari jänner",
        "february feb februar février fév fevrier februari",
        "march mar märz maerz mars maart mrt",
        "april apr avril avr",
        "may mai mei",
        "june jun juni juin",
        "july jul juli juillet juil",
        "august aug août aout augustus",
        "september sep sept septembre",
        "october oct oktober octobre okt",
        "november nov novembre",
        "december dec dezember décembre déc decembre",
    ],
    start=1,
):
    for _n in _names.split():
        _MONTHS[_n] = _i
_MONTH_ALT = "|".join(sorted((re.escape(k) for k in _MONTHS), key=len, reverse=True))
_DATE_RES: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")),
    ("num", re.compile(r"(?<!\d)(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?!\d)")),
    ("dmy_name", re.compile(rf"(?<!\d)(\d{{1,2}})\.?\s*(?:de\s+)?({_MONTH_ALT})\.?,?\s+(\d{{4}})(?!\d)", re.I)),
    # "\s*,?\s+" as the two spacings it can be, each taken whole (it was quadratic in a run of spaces)
    (
        "mdy_name",
        re.compile(rf"\b({_MONTH_ALT})\.?\s++(\d{{1,2}})(?:st|nd|rd|th)?(?:\s*+,\s++|\s++)(\d{{4}})(?!\d)", re.I),
    ),
    ("compact", re.compile(r"(?<!\d)(20\d{2})(\d{2})(\d{2})(?!\d)")),
]


def _mkdate(y: int, m: int, d: int) -> date | None:
    if y < 100:
        y += 2000 if y < 70 else 1900
    try:
        return date(y, m, d)
    except ValueError:
        return None


def guess_date_order(text: str, default: DateOrder = "MDY") -> DateOrder:
    """``DMY`` or ``MDY`` from the numeric dates in the text (a first part over 12 settles it), else
    from the decimal mark (a decimal comma goes with day-first dates), else ``default``."""
    for m in _DATE_RES[1][1].finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if a > 12 >= b:
            return "DMY"
        if b > 12 >= a:
            return "MDY"
    return "DMY" if guess_decimal_mark(text) == "," else default


def parse_date_text(text: str, order: DateOrder = "MDY") -> tuple[date, int, int, bool] | None:
    """The first date written in ``text``: ``(value, start, end, ambiguous)``.

    ``ambiguous`` is true for numeric dates like ``03/04/2024`` that read differently in the other
    order; ``order`` (a customer template's or the caller's) decided them.
    """
    best: tuple[date, int, int, bool] | None = None
    for kind, rx in _DATE_RES:
        for m in rx.finditer(text):
            if best is not None and m.start() >= best[1]:
                break
            g = m.groups()
            ambiguous = False
            value: date | None
            if kind in ("iso", "compact"):
                value = _mkdate(int(g[0]), int(g[1]), int(g[2]))
            elif kind == "num":
                a, b, y = int(g[0]), int(g[1]), int(g[2])
                if order == "DMY" or a > 12:
                    value = _mkdate(y, b, a) if b <= 12 else None
                else:
                    value = _mkdate(y, a, b) if a <= 12 else None
                ambiguous = a <= 12 and b <= 12 and a != b
            elif kind == "dmy_name":
                value = _mkdate(int(g[2]), _MONTHS[g[1].lower()], int(g[0]))
            else:
                value = _mkdate(int(g[2]), _MONTHS[g[0].lower()], int(g[1]))
            if value is not None:
                best = (value, m.start(), m.end(), ambiguous)
                break
    return best


# --- column vocabulary (shared by PDF tables, sheets and text tables) ------------------------------

_COLUMNS: dict[str, tuple[str, ...]] = {
    "line_number": (
        "line number",
        "line item",
        "ln #",
        "ln no",
        "seq",
        "line",
        "line #",
        "line no",
        "ln",
        "pos",
        "pos.",
        "#",
        "no",
        "no.",
        "position",
        "item line",
    ),
    "sku": (
        "sku",
        "sku #",
        "sku no",
        "part",
        "part #",
        "part no",
        "part no.",
        "part number",
        "partnumber",
        "item #",
        "item no",
        "item no.",
        "item number",
        "item code",
        "item id",
        "product code",
        "product id",
        "article",
        "article no",
        "artikelnummer",
        "art nr",
        "art.-nr.",
        "material",
        "catalog #",
        "catalog number",
        "code",
        "model",
        "our part #",
        "stock code",
        "ref",
        "reference",
        "item sku",
        "product sku",
        "part#",
        "item#",
        "sku#",
    ),
    "vendor_sku": (
        "vendor part",
        "vendor part #",
        "vendor part no",
        "vendor item",
        "vendor item #",
        "vendor item no",
        "supplier part",
        "supplier part #",
        "supplier item",
        "supplier item #",
        "mfr part",
        "mfr part #",
        "mfr part no",
        "mfr part number",
        "mfg part",
        "mfg part #",
        "manufacturer part",
        "manufacturer part #",
        "manufacturer part no",
        "mpn",
    ),
    "buyer_sku": (
        "buyer part no",
        "buyer part number",
        "customer item",
        "customer item #",
        "cust part",
        "customer part no",
        "customer part number",
        "buyer item",
        "buyer item #",
        "customer part",
        "customer part #",
        "customer sku",
        "buyer part",
        "buyer part #",
        "buyer sku",
    ),
    "upc": ("upc number", "upc no", "upc #", "upc a", "upc", "upc code"),
    "gtin": (
        "gtin 14",
        "gtin number",
        "ean number",
        "ean code",
        "ean13",
        "gtin/upc",
        "ean",
        "gtin",
        "ean/gtin",
        "barcode",
    ),
    "description": (
        "item desc",
        "item description",
        "product desc",
        "part description",
        "material description",
        "description 1",
        "item name",
        "description",
        "desc",
        "item description",
        "product",
        "product name",
        "product title",
        "name",
        "artikel",
        "beschreibung",
        "désignation",
        "designation",
        "omschrijving",
        "product description",
        "title",
        "details",
        "service",
        "libellé",
    ),
    "item": ("item",),
    "quantity": (
        "ordered qty",
        "qty ord",
        "ord qty",
        "order quantity",
        "qty requested",
        "requested qty",
        "qty req",
        "qty",
        "quantity",
        "qty ordered",
        "order qty",
        "ordered",
        "menge",
        "aantal",
        "nombre",
        "quantité",
        "qté",
        "qte",
        "pcs",
        "quantity ordered",
        "qty.",
        "anzahl",
    ),
    "unit": ("uom", "unit", "u/m", "um", "unit of measure", "einheit", "eenheid", "unité", "units", "pack"),
    "unit_price": (
        "cost each",
        "price per unit",
        "direct unit cost",
        "price ea",
        "unit cost usd",
        "unit net price",
        "price",
        "unit price",
        "price each",
        "each",
        "rate",
        "unit cost",
        "cost",
        "p.u.",
        "p.u. ht",
        "vk-preis",
        "prijs per stuk",
        "prix unitaire",
        "einzelpreis",
        "unit price (usd)",
        "price/unit",
        "net price",
        "prix",
        "prijs",
        "preis",
    ),
    "amount": (
        "ext cost",
        "extended cost",
        "ext amount",
        "extension",
        "total cost",
        "ext",
        "amount",
        "total",
        "line total",
        "ext price",
        "extended price",
        "ext. price",
        "extended",
        "zeilenbetrag",
        "montant",
        "montant ht",
        "bedrag",
        "gesamt",
        "gesamtpreis",
        "prijs incl. btw",
        "line amount",
        "net amount",
    ),
    "po_number": (
        "po nbr",
        "purchase order no",
        "customer po number",
        "po ref",
        "po no.",
        "po",
        "po #",
        "po number",
        "po no",
        "purchase order",
        "purchase order #",
        "purchase order number",
        "order #",
        "order number",
        "order no",
        "po#",
        "bestellnummer",
        "bestell-nr",
        "ordernummer",
        "bon de commande",
        "customer po",
        "customer po #",
    ),
    "po_date": ("po date", "order date", "date"),
    "delivery_date": (
        "req date",
        "req ship date",
        "requested ship date",
        "deliver no later than",
        "required by",
        "requested delivery date",
        "need date",
        "ship by",
        "delivery date",
        "required date",
        "need by",
        "need by date",
        "requested delivery",
        "deliver by",
        "ship date",
        "due date",
        "requested date",
    ),
    "ship_to": ("ship to", "ship-to", "deliver to", "delivery address", "shipping address", "ship to address"),
    "ship_to_name": ("ship to name", "ship-to name", "consignee", "recipient"),
    "ship_to_city": ("ship to city", "city"),
    "ship_to_state": ("ship to state", "state", "province"),
    "ship_to_postal": (
        "ship to zip",
        "zip",
        "postal code",
        "zip code",
        "postcode",
        "ship to postal code",
        "ship to zip code",
        "ship to postcode",
        "zip/postal code",
    ),
    "currency": ("currency", "curr", "ccy"),
    "customer": ("customer", "customer name", "buyer", "cust name", "buyer name", "company", "sold to name"),
    # Identifiers a buyer sends are stronger than any name: they go on the party as ``Party.id``.
    "customer_account": (
        "account",
        "account #",
        "account no",
        "account number",
        "acct",
        "acct #",
        "acct no",
        "customer #",
        "customer number",
        "customer no",
        "customer account",
        "customer acct",
        "cust account",
        "cust acct",
        "cust #",
        "cust no",
        "customer id",
        "cust id",
        "customer code",
        "cust code",
        "sold to account",
        "buyer account",
        "account id",
    ),
    "customer_gln": ("gln", "buyer gln", "customer gln", "sold to gln"),
    "customer_edi_id": ("edi id", "edi sender id", "trading partner id", "partner id", "isa id"),
    "ship_to_code": (
        "ship to code",
        "ship to id",
        "ship to #",
        "ship to no",
        "ship to location",
        "ship to loc",
        "location code",
        "location id",
        "store #",
        "store number",
        "store no",
        "dc #",
        "dc number",
    ),
    "ship_to_gln": ("ship to gln", "deliver to gln", "delivery gln"),
    "ship_to_street": (
        "ship to street",
        "ship to address 1",
        "ship to addr1",
        "ship to addr 1",
        "ship to address1",
        "ship to line 1",
        "address 1",
        "address1",
        "addr1",
        "addr 1",
        "street",
        "street address",
    ),
    "ship_to_street2": ("ship to address 2", "ship to addr2", "ship to addr 2", "address 2", "address2", "addr2"),
    "bill_to": ("bill to", "bill to address", "invoice to", "billing address"),
}
LINE_FIELDS = frozenset(
    {
        "line_number",
        "sku",
        "vendor_sku",
        "buyer_sku",
        "upc",
        "gtin",
        "description",
        "item",
        "quantity",
        "unit",
        "unit_price",
        "amount",
    }
)


def normalize_header(text: str) -> str:
    """A column or label name in one spelling: ``QTY_ORDERED``, ``Qty. Ordered`` and ``qty-ordered``
    all become ``qty ordered``; ``Item#`` becomes ``item #``; a trailing ``(USD)`` or ``:`` goes."""
    s = text.strip().lower().replace("\n", " ")
    if not s.startswith("("):
        s = _without_trailing_parens(s)
    s = re.sub(r"[_\u00a0]+", " ", s)
    s = re.sub(r"(?<=[a-z])\.(?=\s*[a-z])|(?<=[a-z0-9])-(?=\s*[a-z0-9])", " ", s)
    s = re.sub(r"(?<!\s)\s*+#", " #", s)  # from a run's start only: linear in a cell of spaces
    s = re.sub(r"\s+", " ", s)
    return s.strip(" :*.")


def _without_trailing_parens(s: str) -> str:
    """``s`` without what ``re.sub(r"\\s*\\(.*?\\)\\s*$", "", s)`` removes (from the spaces before
    the first "(" to the end, when the text ends with ")"), found in one pass: the pattern tried
    every "(" against every ")" (quadratic in "x (a) (a) (a)...")."""
    body = s.rstrip()
    if "\n" in s or not body.endswith(")"):
        return s if "\n" not in s else re.sub(r"\s*\(.*?\)\s*$", "", s)
    first = s.find("(", 0, len(body) - 1)
    return s if first < 0 else s[: len(s[:first].rstrip())]


_HEADER_LOOKUP = {normalize_header(name): fld for fld, names in _COLUMNS.items() for name in names}


def column_field(text: str) -> str | None:
    """The field a column called ``text`` holds (``"Unit Price"`` -> ``unit_price``), if known."""
    return _HEADER_LOOKUP.get(normalize_header(text))


def is_totals_text(text: str) -> bool:
    """True for the first cell of a totals row (``Subtotal``, ``Total``, ``Tax``...)."""
    return _STOP_ROW_RE.match(text) is not None


def classify_header(cells: Sequence[str]) -> dict[int, str] | None:
    """Map column index -> field name when ``cells`` reads as a line-item header row, else None.

    A header must name a quantity and something that identifies the item (part number or
    description); one unknown column is fine, a row of values is not.
    """
    out: dict[int, str] = {}
    for i, c in enumerate(cells):
        fld = _HEADER_LOOKUP.get(normalize_header(c))
        if fld is not None and fld not in out.values():
            out[i] = fld
    fields = set(out.values())
    if "quantity" not in fields or not fields & {
        "sku",
        "vendor_sku",
        "buyer_sku",
        "description",
        "item",
        "upc",
        "gtin",
    }:
        return None
    if "item" in fields:
        # A bare "Item" column is a part number when a description column exists, else the description.
        k = next(i for i, f in out.items() if f == "item")
        out[k] = "sku" if "description" in fields and "sku" not in fields else "description"
        if out[k] == "description" and "description" in [f for i, f in out.items() if i != k]:
            del out[k]
    return out


@dataclass(frozen=True, slots=True)
class Cell:
    """One table cell as a parser read it, with where it came from."""

    text: str
    source: Source | None = None


# A code: letters, digits and "-_/." with a digit after its first character or in its leading run of
# letters and digits. Was "^x[...]*\d[...]*$|^[A-Za-z0-9]*\d[...]*$", which gave back one character
# at a time and read the rest again from each digit (a 20,000-digit cell ending in "!" took 2.1 s,
# quadratic). Now each way the digit can sit is tried once: an ASCII digit looked for ahead, then the
# run taken whole; or another script's digit ("\d" also takes those) right after the run. Same matches.
_CODE_RE = re.compile(
    r"^[A-Za-z0-9](?:(?=[A-Za-z0-9\-_/.]*?[0-9])|[A-Za-z0-9\-_/.]*+\d)[A-Za-z0-9\-_/.]*+$"
    r"|^(?:(?=[A-Za-z0-9]*?[0-9])|[A-Za-z0-9]*+\d)[A-Za-z0-9\-_/.]*+$"
)
_STOP_ROW_RE = re.compile(r"^\s*(sub\s*-?total|total|totaal|gesamt|summe|somme|tax|vat|tva|btw|mwst)\b", re.I)
_PRODUCT_QUALIFIERS = {"sku": "VN", "buyer_sku": "BP", "vendor_sku": "VP", "upc": "UP", "gtin": "EN"}


def _split_qty_unit(raw: str) -> tuple[str, str | None]:
    m = re.match(r"^\s*(-?[\d.,]+)\s*([A-Za-z]{1,8})\.?\s*$", raw)
    if m:
        return m.group(1), m.group(2).upper()
    return raw, None


def lines_from_rows(
    header: Mapping[int, str],
    rows: Iterable[Sequence[Cell]],
    po: PurchaseOrder,
    findings: list[Finding],
    *,
    decimal_mark: str | None = None,
    stop_at_totals: bool = True,
) -> bool:
    """Append the line items in ``rows`` (under ``header``) to ``po``; returns False at a totals row.

    A row with neither quantity nor item id continues the previous line's description (wrapped
    text); a totals row ends the table.
    """
    for row in rows:
        texts = [c.text.strip() if c.text else "" for c in row]
        if not any(texts):
            continue
        if stop_at_totals and any(_STOP_ROW_RE.match(t) for t in texts[:2] if t):
            return False
        vals = _row_values(header, row, texts)
        qty_cell = vals.get("quantity")
        qty_raw, unit_from_qty = _split_qty_unit(qty_cell.text) if qty_cell else ("", None)
        qty = parse_amount(qty_raw, decimal_mark) if qty_cell else None
        if qty is None and not any(k in vals for k in _PRODUCT_QUALIFIERS):
            if po.lines and "description" in vals:
                po.lines[-1].descriptions.append(vals["description"].text)
            continue
        p = f"lines[{len(po.lines)}]."
        line = POLine()
        if "line_number" in vals:
            line.line_number = vals["line_number"].text.rstrip(".")
            _put(po, p + "line_number", vals["line_number"].source)
        _row_quantity(line, qty, qty_cell, unit_from_qty, vals, po, findings)
        _row_ids_and_text(line, vals, po)
        _row_money(line, vals, po, findings, decimal_mark)
        po.lines.append(line)
    return True


def _row_values(header: Mapping[int, str], row: Sequence[Cell], texts: list[str]) -> dict[str, Cell]:
    """The row's non-empty line fields; a description that is one code-like word on a row with a
    quantity and no item column is the item's code."""
    vals: dict[str, Cell] = {}
    for i, fld in header.items():
        if i < len(row) and texts[i] and fld in LINE_FIELDS:
            vals[fld] = Cell(texts[i], row[i].source)
    if "description" in vals and not any(k in vals for k in _PRODUCT_QUALIFIERS):
        d = vals["description"].text
        if " " not in d and _CODE_RE.match(d) and "quantity" in vals:
            vals["sku"] = vals.pop("description")
    return vals


def _row_quantity(
    line: POLine,
    qty: Decimal | None,
    qty_cell: Cell | None,
    unit_from_qty: str | None,
    vals: dict[str, Cell],
    po: PurchaseOrder,
    findings: list[Finding],
) -> None:
    """Quantity (a finding when missing or not a number) and unit, from its column or the quantity
    cell (``12 EA``)."""
    p = f"lines[{len(po.lines)}]."
    if qty_cell is not None:
        if qty is None:
            findings.append(
                _f(Severity.WARNING, "bad_quantity", f"quantity {qty_cell.text!r} is not a number", qty_cell.source)
            )
        line.quantity = qty
        _put(po, p + "quantity", qty_cell.source)
    else:
        findings.append(_f(Severity.WARNING, "quantity_missing", f"line {len(po.lines) + 1} has no quantity", None))
    if "unit" in vals:
        line.unit = vals["unit"].text.upper()
        _put(po, p + "unit", vals["unit"].source)
    elif unit_from_qty is not None and qty_cell is not None:
        line.unit = unit_from_qty
        _put(po, p + "unit", qty_cell.source)


def _row_ids_and_text(line: POLine, vals: dict[str, Cell], po: PurchaseOrder) -> None:
    """Item codes (each column with its qualifier) and the description."""
    p = f"lines[{len(po.lines)}]."
    for fld, qual in _PRODUCT_QUALIFIERS.items():
        if fld in vals:
            _put(po, f"{p}product_ids[{len(line.product_ids)}]", vals[fld].source)
            line.product_ids.append(ProductId(qualifier=qual, value=vals[fld].text))
    if "description" in vals:
        line.description = vals["description"].text
        line.descriptions.append(line.description)
        _put(po, p + "description", vals["description"].source)


def _row_money(
    line: POLine, vals: dict[str, Cell], po: PurchaseOrder, findings: list[Finding], decimal_mark: str | None
) -> None:
    """Unit price and amount; one that is not a number is a finding and stays unset."""
    p = f"lines[{len(po.lines)}]."
    for fld in ("unit_price", "amount"):
        if fld not in vals:
            continue
        v = parse_amount(vals[fld].text, decimal_mark)
        if v is None:
            findings.append(
                _f(Severity.WARNING, "bad_number", f"{fld} {vals[fld].text!r} is not a number", vals[fld].source)
            )
            continue
        setattr(line, fld, v)
        _put(po, p + fld, vals[fld].source)


def _put(po: PurchaseOrder, key: str, source: Source | None) -> None:
    if source is not None:
        po.sources[key] = source


def _f(sev: Severity, code: str, msg: str, source: Source | None) -> Finding:
    return Finding(severity=sev, code=code, message=msg, source=source)


# --- customer templates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerTemplate:
    """Rules for one customer's documents, tried before the generic ones.

    ``fields`` maps a header field (``po_number``, ``po_date``, ``delivery_date``, ``total``,
    ``currency``) to a regex whose group ``value`` holds it; ``line_patterns`` are regexes with
    named groups ``qty``, ``sku`` and optionally ``uom``, ``price``, ``description``.
    """

    name: str
    domains: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    line_patterns: tuple[str, ...] = ()
    date_order: DateOrder = "MDY"
    decimal_mark: str | None = None
    sku_qualifier: str = "VN"


class TemplateRegistry:
    """Customer templates by e-mail domain (``acme.com`` also covers ``orders.acme.com``)."""

    def __init__(self, templates: Iterable[CustomerTemplate] = ()) -> None:
        self._by_domain: dict[str, CustomerTemplate] = {}
        for t in templates:
            self.register(t)

    def register(self, template: CustomerTemplate) -> None:
        for d in template.domains:
            self._by_domain[d.lower().strip(".")] = template

    def for_sender(self, address_or_domain: str | None) -> CustomerTemplate | None:
        if not address_or_domain:
            return None
        domain = address_or_domain.rsplit("@", 1)[-1].strip().strip(">").lower()
        parts = domain.split(".")
        for i in range(len(parts) - 1):
            t = self._by_domain.get(".".join(parts[i:]))
            if t is not None:
                return t
        return None


# --- layout ---------------------------------------------------------------------------------------


class Layout(Protocol):
    """Geometry of the text, for values written under their label instead of after it."""

    def value_below(self, start: int, end: int) -> tuple[int, int] | None:
        """Span of the value printed under the label at ``[start, end)``, if any."""
        ...


class TextLayout:
    """Monospace layout: the value below is the token starting near the label's column."""

    def __init__(self, text: str) -> None:
        self.text = text

    def value_below(self, start: int, end: int) -> tuple[int, int] | None:
        t = self.text
        ls = t.rfind("\n", 0, start) + 1
        col = start - ls
        le = t.find("\n", start)
        if le < 0:
            return None
        nl_end = t.find("\n", le + 1)
        nl_end = len(t) if nl_end < 0 else nl_end
        below = t[le + 1 : nl_end]
        for m in re.finditer(r"\S+(?: \S+)*", below):
            if m.start() <= col + 2 and m.end() > col:
                return le + 1 + m.start(), le + 1 + m.end()
        return None


# --- labels ---------------------------------------------------------------------------------------

_ID = r"[#:]?[ \t]*(?:n[°o]\.?|no\.?|nr\.?|number|num(?:ber|éro)?)?[ \t]*[:#.]?[ \t]*"
_LABELS: dict[str, list[str]] = {
    "po_number": [
        r"p\.?\s?o\.?\s*(?:number|no\.?|num|#)",
        r"purchase\s+order\s*(?:number|no\.?|#|id)?",
        r"po\s*#",
        r"order\s*(?:number|no\.?|#|id)",
        r"ordernummer",
        r"bestell(?:nummer|nr\.?)",
        r"bon\s+de\s+commande",
        r"num[ée]ro\s+de\s+commande",
        r"your\s+(?:order|po)\s*(?:no\.?|number|#|ref\.?)",
        # A bare upper-case "PO" before a token with a digit ("on PO 7581-B"); "PO Box 12" is not one.
        r"(?-i:PO)(?=[ \t]+[A-Z0-9][\w\-/]*\d)",
    ],
    "invoice_number": [
        r"invoice\s*(?:number|no\.?|#|nr\.?)",
        r"invoice(?=\s+[A-Z]*[/\-_]?\d)",
        r"facture(?=\s)",
        r"rechnungs?-?(?:nr\.?|nummer)",
        r"f\s?actuurnummer",
        r"factuur\s*(?:nr\.?|nummer)",
        r"n[°o]\s+de\s+facture",
        r"bill\s*(?:no\.?|number|#)",
        r"receipt\s*(?:no\.?|number|#)",
        r"booking\s+id",
        r"factuur(?!\w)",
        r"^#(?=\s*\S*\d)",
    ],
    "po_date": [
        r"p\.?\s?o\.?\s*date",
        r"order\s+date",
        r"date\s+of\s+order",
        r"orderdatum",
        r"bestelldatum",
        r"date\s+de\s+commande",
        r"purchase\s+order\s+date",
        r"dated",
    ],
    "invoice_date": [
        r"invoice\s+date",
        r"rechnungsdatum",
        r"f\s?actuur\s?datum",
        r"date\s+de\s+facture",
        r"date\s+of\s+issue",
        r"issue\s+date",
        r"datum",
        r"(?<!due\s)(?<!due\s\s)date",
    ],
    "delivery_date": [
        r"(?:requested\s+)?delivery\s+date",
        r"deliver\s+by",
        r"need(?:ed)?\s+by",
        r"required\s+(?:by|date)",
        r"requested\s+date",
        r"lieferdatum",
        r"date\s+de\s+livraison",
        r"leverdatum",
    ],
    "ship_date": [r"(?:requested\s+)?ship\s+(?:by|date)", r"versanddatum", r"date\s+d'exp[ée]dition"],
    "total": [
        r"grand\s+total",
        r"total\s+amount\s+due",
        r"amount\s+due",
        r"balance\s+due",
        r"total\s+due",
        r"total\s+ttc",
        r"somme\s+[àa]\s+payer",
        r"gesamtbetrag",
        r"rechnungsbetrag",
        r"endbetrag",
        r"totaal",
        r"order\s+total",
        r"total\s+for\s+this\s+invoice",
        r"invoice\s+total",
        r"total(?!\s*(?:ht|tax|vat|net|excl))",
    ],
    "currency": [r"currency", r"währung", r"devise", r"valuta"],
    "customer_account": [
        r"(?:customer\s+|cust\.?\s+)?acc(?:oun)?t\.?\s*(?:#|no\.?|number|id)",
        r"customer\s*(?:#|no\.?|number|id)",
    ],
    "ship_to_code": [
        r"ship[\s-]*to\s+(?:code|id|location|loc\.?|#|no\.?)",
        r"location\s+code",
        r"store\s*(?:#|no\.?|number)",
    ],
    "gln": [r"gln(?:\s*(?:#|no\.?|number))?"],
}
_LABEL_RES = {
    fld: [
        re.compile(rf"(?<![\w/])(?:{lab})(?![\w])[ \t]*{_ID if fld.endswith('number') else ''}", re.I | re.M)
        for lab in labs
    ]
    for fld, labs in _LABELS.items()
}
_TOKEN_RE = re.compile(r"[A-Za-z0-9][\w\-/.]*\d[\w\-/.]*|\d[\w\-/.]*|[A-Za-z][\w\-]*_\w*")
# Linear on hostile lines (a total followed by 2,000 spaces cost 0.9 s, quadratic): a run of spaces is
# entered from its start only ((?<!\s); from inside it the same figure was already tried) and taken
# whole; the second figure's digits are taken whole and not started inside a run of digits (any
# shorter reading ends before a digit, which its look-ahead refuses); "no digit further on" looks
# past separators only ("[\d.,]*\d" finds a digit exactly when "[.,]*\d" does).
_MONEY_RE = re.compile(
    r"(?:[$€£¥₹]|rs\.?|inr|usd|eur|gbp)?(?<!\s)\s*+-?\d{1,3}(?:[.,'\s]\d{3})+(?:[.,]\d{1,2})?(?!\d)"
    r"|(?:[$€£¥₹]|rs\.?|inr|usd|eur|gbp)?(?<!\s)\s*+-?(?<!\d)\d++(?:[.,]\d{1,2})?(?![.,]*+\d)",
    re.I,
)
_CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "rs": "INR"}
_SHIP_TO_RE = re.compile(
    r"^[ \t]*(ship(?:ping)?[\s-]*to|deliver(?:y)?\s+(?:to|address)|shipping\s+address|afleveradres|lieferadresse"
    r"|adresse\s+de\s+livraison)(?:\s*[:|][ \t|]*|[ \t]*$)",
    # A colon, or the label alone on its line (the block follows): "Delivery to the back dock
    # please." in a note is prose, not an address.
    re.I | re.M,
)
_BILL_TO_RE = re.compile(
    r"^[ \t]*(bill(?:ing)?[\s-]*to|billing\s+address|invoice\s+to|sold\s+to)\s*:?[ \t]*", re.I | re.M
)
_SHIP_TO_LEAD_RE = re.compile(
    r"^[^\n:]{0,80}\b(?:ship[\s-]*to|deliver(?:y)?\s+(?:to|address)|ship(?:ping)?\s+address)\b[^\n:]{0,80}:[ \t]*$",
    re.I | re.M,
)
_SHIP_TO_INLINE_RE = re.compile(
    # "Please ship to our Tulsa yard, 6120 Crossdock Ln, Tulsa, OK 74103" - no colon, the address on the line.
    r"^[ \t]*(?:please\s+)?(?:ship|deliver)\s+(?:it\s+|them\s+|this\s+)?to\s+(?:our\s+|the\s+)?"
    r"(?=[^\n]*,\s*[A-Z]{2}\.?,?\s+\d{5}(?:-\d{4})?[ \t.]*$)",
    re.I | re.M,
)
_INVOICE_WORDS = re.compile(r"\b(invoice|facture|rechnung|factuur|receipt)\b", re.I)
_ANY_LABEL_RE = re.compile(r"^\s*[A-Za-z][A-Za-z .#/-]{1,30}:", re.M)
# The spaces before the state start a run ("(?<!\s)"): the city is the shortest that fits, and that
# ends where the run before the state starts (or at its comma), so a try from inside a run never
# wins; it read the rest of the run from each of its spaces ("A" and 20,000 spaces, 2.3 s: quadratic).
_US_CITY_RE = re.compile(
    r"^(?P<city>[A-Za-z][A-Za-z .'-]*?),?(?<!\s)\s+(?P<state>[A-Z]{2})\.?,?\s+(?P<zip>\d{5}(?:-\d{4})?)\s*$"
)
_EU_CITY_RE = re.compile(r"^(?P<zip>\d{4,5}(?:\s?[A-Z]{2})?)\s+(?P<city>[A-Za-z .'-]+)$")
_STATE_ZIP_RE = re.compile(r"^(?P<state>[A-Z]{2})\.?\s+(?P<zip>\d{5}(?:-\d{4})?)$")
_STATE_ZIP_END = re.compile(r"[A-Z]{2}\.?,?\s+\d{5}(?:-\d{4})?\s*$")
_CITY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .'-")


def _trailing_city(text: str) -> bool:
    """Whether ``text`` ends ``, City, ST 12345``, in one pass: what this pattern's ``search`` found,
    ``,\\s*[A-Za-z .'-]+,?\\s+[A-Z]{2}\\.?,?\\s+\\d{5}(?:-\\d{4})?\\s*$``.

    The pattern splits a run of spaces three ways (before the city, in it, after it), so a comma
    and 2,000 spaces without a state took over 10 s (cubic; an address line of a mail body can be
    200,000 characters). Here the ``ST 12345`` end is found first (the state sits right before the
    last run of spaces before the ZIP, so there is one place for it) and what comes before it is read
    backwards once, keeping the set of parts of ``,\\s*city,?\\s+`` the characters so far can be in."""
    pos = 0
    while (end := _STATE_ZIP_END.search(text, pos)) is not None:
        x = end.start()
        pos = x + 1
        if x == 0 or not text[x - 1].isspace():
            continue
        # read backwards: "w2" the spaces before the state, "k" its comma, "c" the city, "w1" spaces after the comma
        states = {"w2"}
        for ch in reversed(text[: x - 1]):
            nxt: set[str] = set()
            space, city = ch.isspace(), ch in _CITY_CHARS
            for st in states:
                if st == "w2":
                    nxt |= {"w2"} if space else set()
                    nxt |= {"c"} if city else set()
                    nxt |= {"k"} if ch == "," else set()
                elif st == "k":
                    nxt |= {"c"} if city else set()
                elif ch == ",":  # "c" or "w1": the comma the pattern starts with
                    return True
                else:
                    nxt |= {"c"} if st == "c" and city else set()
                    nxt |= {"w1"} if space else set()
            if not nxt:
                break
            states = nxt
    return False


_COUNTRY_RE = re.compile(r"^(?:usa|u\.s\.a\.?|us|united\s+states(?:\s+of\s+america)?)$", re.I)
_ADDRESS_SEP_RE = re.compile(r"[ \t]*\|[ \t]*")


@dataclass
class AddressParts:
    """An address block split into its parts; each part keeps its ``(start, end)`` in the caller's text."""

    name: tuple[str, int, int] | None = None
    lines: list[tuple[str, int, int]] = field(default_factory=list)
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    city_span: tuple[int, int] | None = None
    country: str | None = None


def _explode(item: tuple[str, int, int]) -> list[tuple[str, int, int]]:
    """``41 Foundry Ct, Hartford, CT 06103`` (or ``... | ...``) -> one piece per comma-separated part."""
    text, s, _e = item
    if not (_trailing_city(text) or "|" in text):
        return [item]
    out: list[tuple[str, int, int]] = []
    for m in re.finditer(r"[^,|]+", text):
        piece = m.group(0).strip()
        if piece:
            off = s + m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            out.append((piece, off, off + len(piece)))
    # "Hartford, CT 06103": the city and "ST ZIP" were split by the comma; join them back.
    joined: list[tuple[str, int, int]] = []
    for part in out:
        if joined and _STATE_ZIP_RE.match(part[0]) and not _US_CITY_RE.match(joined[-1][0]):
            prev = joined.pop()
            part = (f"{prev[0]}, {part[0]}", prev[1], part[2])
        joined.append(part)
    return joined


def split_address(lines: Sequence[tuple[str, int, int]]) -> AddressParts:
    """Name, street lines, city/state/ZIP of an address written on several lines or on one.

    ``lines`` are ``(text, start, end)``; one-line addresses (``Name, 41 Foundry Ct, Hartford, CT
    06103``) are split at their commas. The city line is the last ``City, ST 12345`` line (a
    European ``12345 City`` only as the last line); lines after it stay address lines, a country
    line becomes ``country``. ZIP codes stay text (``06103`` keeps its zero). The first line is the
    name unless it starts with a number (a street).
    """
    items: list[tuple[str, int, int]] = []
    for t, s, _e in lines:
        stripped = re.sub(r"(?<=\d)\.$", "", t.strip())  # "..., OK 74103." at the end of a sentence
        if stripped:
            off = s + t.find(stripped)
            items.extend(_explode((stripped, off, off + len(stripped))))
    out = AddressParts()
    if not items:
        return out
    city_at = None
    for i in range(len(items) - 1, -1, -1):
        cm = _US_CITY_RE.match(items[i][0])
        if cm is None and i == len(items) - 1:
            cm = _EU_CITY_RE.match(items[i][0]) if i > 0 else None
        if cm is not None:
            city_at = i
            out.city = cm.group("city").strip(" ,")
            out.state = cm.groupdict().get("state")
            out.postal_code = cm.group("zip")
            out.city_span = (items[i][1], items[i][2])
            break
    before = items[:city_at] if city_at is not None else items
    after = items[city_at + 1 :] if city_at is not None else []
    if before and not re.match(r"^\d|^p\.?\s?o\.?\s+box\b", before[0][0], re.I):
        out.name, before = before[0], before[1:]
    out.lines = list(before)
    for t, s, e in after:
        if _COUNTRY_RE.match(t):
            out.country = "US"
        else:
            out.lines.append((t, s, e))
    return out


# --- line-item patterns ---------------------------------------------------------------------------

_SKU = r"(?P<sku>[A-Z0-9][A-Z0-9\-_/.]*\d[A-Z0-9\-_/]*|[A-Z]{2,}[\-_]\w+)"
_QTY = r"(?P<qty>\d+(?:[.,]\d+)?)"
_UOM = r"(?P<uom>EA|EACH|PCS?|PC|CS|CASES?|BX|BOX(?:ES)?|PK|PL|PALLETS?|UNITS?|KG|LBS?|DZ|CT)"
_PRICE = r"(?P<price>[$€£]?\s?\d[\d,]*(?:\.\d{1,4})?)"
# Hostile text made these patterns superlinear (a 200,000-character mail cost minutes), so they are
# written to do the same in linear time:
# * every run of spaces that a word, a code or a sign must follow is possessive (\s*+): a space it
#   gave back could only stand where that word must start;
# * after a description, the price clause is tried only where a run of spaces starts ((?<!\s)) and
#   the end of the line only where a run of blanks starts ((?<![ \t])): from inside the run the same
#   clause or line end was already tried from its start, so each run is read once, not once per space;
# * a code followed by a description is atomic ((?>...)): its longest reading is tried first, and when
#   that fails an '@' later on the line stops every shorter one too, so giving characters back only
#   repeated the failure (quadratic, cubic on "1 x 111...1@");
# * in the code-first pattern, a run of spaces after the quantity gives back only to end the line
#   before its last line break, which is all that backtracking could find there;
# * the code-first pattern is not tried inside a code of more than _CODE_MAX characters (each split of
#   such a code was tried against the 'x' that must follow: quadratic in its length), and it is run
#   once per run of blank lines (:func:`_finditer_lines`), not once per line of it.
_DESC_MAX = 400
"""Characters of the longest description a line pattern reads between a code and its price or the end
of its line: each start of a pattern on a long line read on to its end ("1 x A1 " 20,000 times and an
"@" cost minutes); a longer text after a code is not one line item's description."""
_CODE_MAX = 64
"""Characters of the longest item code the code-first line pattern reads ("SKU-1 x 4")."""
_SKU_SHORT = (
    rf"(?P<sku>(?=[A-Z0-9][A-Z0-9\-_/.]{{0,{_CODE_MAX - 1}}}+(?![A-Z0-9\-_/.]))[A-Z0-9][A-Z0-9\-_/.]*\d[A-Z0-9\-_/]*"
    r"|[A-Z]{2,}[\-_]\w+)"
)
_DESC = rf"(?P<description>[^@\n]{{0,{_DESC_MAX}}}?)"
_PRICE_TAIL = rf"(?:(?<!\s)\s*+(?:@|at)\s*+{_PRICE}(?:\s*+(?:/|per)\s*+\w+)?)?(?<![ \t])[ \t]*+$"
_LINE_RES = [
    re.compile(
        rf"(?<![\w.\-/#]){_QTY}\s*+(?:{_UOM}\b\.?\s*+)?(?:x|×|\*)\s*+(?:of\s++)?(?>{_SKU}){_DESC}" + _PRICE_TAIL,
        re.I | re.M,
    ),
    re.compile(
        rf"\bqty\.?:?\s*+{_QTY}\s*+(?:{_UOM}\b\.?)?\s*+,?\s*+(?:part|item|sku|article)\s*+(?:#|no\.?|number)?\s*+:?"
        rf"\s*+(?>{_SKU}){_DESC}(?:(?<!\s)\s*+(?:@|at|price:?|unit price:?)\s*+{_PRICE})?"
        rf"(?<![ \t])[ \t]*+$",
        re.I | re.M,
    ),
    re.compile(
        rf"^[ \t]*+(?:[-*•]\s*+)?(?:sku|part|item)?\s*+#?:?\s*+{_SKU_SHORT}\s*+(?:[-–:,]\s*+)?(?:qty\.?:?\s*+)?"
        rf"(?:x|×)\s*+{_QTY}"
        rf"(?:\s*+(?:{_UOM}\b\.?)?(?:\s*+(?:@|at)\s*+{_PRICE})?[ \t]*+$|\s*(?=\n))",
        re.I | re.M,
    ),
    re.compile(
        rf"^[ \t]*+(?:[-*•]\s*+)?{_QTY}\s++{_UOM}\b\.?\s++(?:of\s++)?(?>{_SKU}){_DESC}"
        rf"(?:(?<!\s)\s*+(?:@|at)\s*+{_PRICE})?(?<![ \t])[ \t]*+$",
        re.I | re.M,
    ),
]

_INJECTION_RES = [
    re.compile(p, re.I)
    for p in (
        r"ignore\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|earlier)\s+(?:instructions|prompts?|rules)",
        r"disregard\s+(?:all\s+|any\s+)?(?:the\s+)?(?:previous|prior|above|your)\s+(?:instructions|rules|prompts?)",
        r"approve\s+(?:this\s+(?:order\s+)?)?automatically",
        r"auto-?approve",
        r"(?:^|\n)\s*(?:system|assistant)\s*:",
        r"\byou\s+are\s+now\b",
        r"\bnew\s+instructions?\s*:",
        r"\bskip\s+(?:the\s+)?(?:approval|review|validation|credit\s+check)",
        r"\bdo\s+not\s+(?:tell|notify|inform)\s+(?:anyone|the\s+(?:user|human|reviewer))",
        r"\bset\s+(?:the\s+)?price\s+to\b",
        r"\bact\s+as\s+(?:an?\s+)?(?:admin|administrator|system)",
        r"<(?>\s*)/?(?>\s*)(?:system|instructions?)\s*>",
    )
]


MAX_TEXT_CHARS = 200_000
"""Characters of one text the rules read and check for instructions (the mail parser stops a body at
the same number). Every pattern here is linear in what it reads, so this bounds the time one text can
cost wherever it runs - in the parse sandbox, or in the calling process when a model's extractor falls
back to the rules. A longer text is read up to here and gets a ``too_long`` error finding, which
blocks the order: nothing is cut off without a person being told."""


def _too_long(text: str, what: str, source: SpanSource) -> Finding:
    return _f(Severity.ERROR, "too_long", f"the text is {len(text)} characters; only the first {MAX_TEXT_CHARS} "
              f"were {what}; a person must read the rest", source(MAX_TEXT_CHARS, len(text)))  # fmt: skip


def detect_injection(text: str, source: SpanSource) -> list[Finding]:
    """Flag text that gives orders to the system instead of the supplier (one finding per match).

    Matching runs on a normalised view (:func:`core.injection.text_view`: accents, zero-width
    characters, look-alike letters and case folded away) with this module's English patterns plus
    the shared multilingual, tool-call and chat-role ones; spans point at the original text. Only the
    first :data:`MAX_TEXT_CHARS` characters are checked; a longer text also gets a ``too_long`` error.
    """
    out: list[Finding] = []
    if len(text) > MAX_TEXT_CHARS:
        out.append(_too_long(text, "checked for instructions aimed at the system", source))
        text = text[:MAX_TEXT_CHARS]
    for start, end in find_injections(text, _INJECTION_RES):
        snippet = text[start:end].strip()
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="injection_suspected",
                message=f"instruction-like text aimed at the system: {snippet!r}",
                source=source(start, end),
            )
        )
    return out


# --- the extractor --------------------------------------------------------------------------------


@dataclass
class TextExtraction:
    """What the extractor found; ``purchase_order`` is None when nothing order-like was there."""

    purchase_order: PurchaseOrder | None
    findings: list[Finding] = field(default_factory=list)
    is_invoice: bool = False
    template: str | None = None


class _Extractor:
    def __init__(
        self,
        text: str,
        src: SpanSource,
        document_type: str,
        template: CustomerTemplate | None,
        layout: Layout | None,
        date_order: DateOrder | None,
    ) -> None:
        self.text = text
        self.src = src
        self.template = template
        self.layout = layout or TextLayout(text)
        self.date_order: DateOrder = (
            template.date_order if template else date_order if date_order is not None else guess_date_order(text)
        )
        self.decimal_mark = (template.decimal_mark if template else None) or guess_decimal_mark(text)
        self.po = PurchaseOrder(document_type=document_type)
        self.findings: list[Finding] = []
        self.consumed: list[tuple[int, int]] = []
        self.is_invoice = False

    # header fields ---------------------------------------------------------------------------
    def _after_label(self, fld: str) -> Iterable[tuple[int, int, int]]:
        """(label start, value start, end of line) for every label of ``fld``, best label first."""
        for rx in _LABEL_RES[fld]:
            for m in rx.finditer(self.text):
                eol = self.text.find("\n", m.end())
                yield m.start(), m.end(), len(self.text) if eol < 0 else eol

    def _template_value(self, fld: str) -> tuple[str, int, int] | None:
        if self.template is None or fld not in self.template.fields:
            return None
        try:
            m = re.search(self.template.fields[fld], self.text, re.I | re.M)
        except re.error:
            self.findings.append(_f(Severity.WARNING, "template_invalid", f"template regex for {fld} is invalid", None))
            return None
        if m is None or "value" not in m.groupdict() or m.group("value") is None:
            return None
        return m.group("value"), m.start("value"), m.end("value")

    def ident(self, fld: str) -> tuple[str, int, int] | None:
        tv = self._template_value(fld)
        if tv is not None:
            return tv
        for ls, vs, eol in self._after_label(fld):
            rest = self.text[vs:eol]
            m = _TOKEN_RE.match(rest.lstrip(" \t#:°º|"))
            if _only_labels(rest):
                below = self.layout.value_below(ls, vs)
                if below is not None:
                    tok = self.text[below[0] : below[1]].split(" ")[0]
                    if _TOKEN_RE.fullmatch(tok):
                        return tok, below[0], below[0] + len(tok)
                continue
            if m is None:
                continue
            off = vs + (len(rest) - len(rest.lstrip(" \t#:°º|")))
            val = m.group(0).rstrip(".,;")
            return val, off + m.start(), off + m.start() + len(val)
        return None

    def date_field(self, fld: str) -> tuple[date, int, int] | None:
        tv = self._template_value(fld)
        if tv is not None:
            parsed = parse_date_text(tv[0], self.date_order)
            if parsed is not None:
                return parsed[0], tv[1], tv[2]
        for ls, vs, eol in self._after_label(fld):
            rest = self.text[vs:eol]
            if _only_labels(rest):
                below = self.layout.value_below(ls, vs)
                if below is None:
                    continue
                vs, rest = below[0], self.text[below[0] : below[1]]
            parsed = parse_date_text(rest[:40], self.date_order)
            if parsed is None or parsed[1] > 12:
                continue
            value, s, e, ambiguous = parsed
            if ambiguous:
                self.findings.append(
                    _f(
                        Severity.INFO,
                        "ambiguous_date",
                        f"{rest[s:e]!r} read as {value.isoformat()} ({self.date_order})",
                        self.src(vs + s, vs + e),
                    )
                )
            return value, vs + s, vs + e
        return None

    def money_field(self, fld: str) -> tuple[Decimal, int, int] | None:
        tv = self._template_value(fld)
        if tv is not None:
            v = parse_amount(tv[0], self.decimal_mark)
            if v is not None:
                return v, tv[1], tv[2]
        for _ls, vs, eol in self._after_label(fld):
            rest = self.text[vs:eol]
            matches = [m for m in _MONEY_RE.finditer(rest) if re.search(r"\d", m.group(0))]
            # Skip dates on the line ("AMOUNT DUE ON August 3, 2014 $4.11"): take the last figure.
            if not matches:
                continue
            m = matches[-1]
            v = parse_amount(m.group(0), self.decimal_mark)
            if v is None:
                continue
            s = vs + m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            sign = re.match(r"\s*([$€£¥₹]|rs)", m.group(0), re.I)
            if sign and self.po.currency is None:
                self.po.currency = _CURRENCY_SIGNS.get(sign.group(1).lower())
            return v, s, vs + m.end()
        return None

    def header(self) -> None:
        """Numbers, dates, total, currency and the ship-to and bill-to blocks of the document."""
        inv_no = self._numbers()
        self._dates(inv_no)
        self._total_and_currency()
        self.party_block(_SHIP_TO_RE, "ST")
        self.party_block(_BILL_TO_RE, "BT")
        self.party_ids()

    def _numbers(self) -> tuple[str, int, int] | None:
        """PO number and invoice number (an invoice's number stands in for a missing PO number; a
        label read as both is the invoice's); sets :attr:`is_invoice`. Returns the invoice number."""
        po = self.po
        inv_no = self.ident("invoice_number")
        po_no = self.ident("po_number")
        if po_no is not None and inv_no is not None and po_no[1] == inv_no[1]:
            po_no = None
        if po_no is not None:
            po.po_number = po_no[0]
            po.sources["po_number"] = self.src(po_no[1], po_no[2])
        if inv_no is not None:
            k = len(po.references)
            po.references.append(Reference(qualifier="IV", value=inv_no[0], description="invoice number"))
            po.sources[f"references[{k}].value"] = self.src(inv_no[1], inv_no[2])
            if po.po_number is None:
                po.po_number = inv_no[0]
                po.sources["po_number"] = self.src(inv_no[1], inv_no[2])
        self.is_invoice = inv_no is not None or bool(_INVOICE_WORDS.search(self.text[:400]))
        return inv_no

    def _date_after_number(self, inv_no: tuple[str, int, int]) -> tuple[date, int, int] | None:
        """ "Facture n°562044387 du 02 Juillet 2015": a date right after the invoice number."""
        after = self.text[inv_no[2] : inv_no[2] + 40]
        m = re.match(r"\s*(?:du|vom|of|dated|from|d\.d\.)\s+", after, re.I)
        if m:
            parsed = parse_date_text(after[m.end() :], self.date_order)
            if parsed is not None and parsed[1] == 0:
                s = inv_no[2] + m.end()
                return parsed[0], s + parsed[1], s + parsed[2]
        return None

    def _dates(self, inv_no: tuple[str, int, int] | None) -> None:
        """Order and invoice dates (the order's date is the PO date, else the invoice's), and the
        delivery and ship dates unless they are the document date read again."""
        po = self.po
        po_date = self.date_field("po_date")
        inv_date = self.date_field("invoice_date")
        if inv_date is None and inv_no is not None:
            inv_date = self._date_after_number(inv_no)
        for qual, found in (("004", po_date), ("003", inv_date)):
            if found is not None:
                k = len(po.dates)
                po.dates.append(DateRef(qualifier=qual, value=found[0], raw=self.text[found[1] : found[2]]))
                po.sources[f"dates[{k}].value"] = self.src(found[1], found[2])
        doc_date = po_date if po_date is not None else inv_date
        if doc_date is not None:
            po.po_date = doc_date[0]
            po.sources["po_date"] = self.src(doc_date[1], doc_date[2])
        for fld, qual in (("delivery_date", "002"), ("ship_date", "010")):
            dd = self.date_field(fld)
            if dd is not None and (doc_date is None or dd[1] != doc_date[1]):
                k = len(po.dates)
                po.dates.append(DateRef(qualifier=qual, value=dd[0], raw=self.text[dd[1] : dd[2]]))
                po.sources[f"dates[{k}].value"] = self.src(dd[1], dd[2])

    def _total_and_currency(self) -> None:
        """The order total, and the currency from its label, else from a currency code in the text
        (a sign on the total may have set it already)."""
        po = self.po
        total = self.money_field("total")
        if total is not None:
            po.amounts.append(Amount(qualifier="TT", value=total[0]))
            po.sources[f"amounts[{len(po.amounts) - 1}].value"] = self.src(total[1], total[2])
        cur = self.ident("currency")
        if cur is not None and re.fullmatch(r"[A-Z]{3}", cur[0]):
            po.currency = cur[0]
            po.sources["currency"] = self.src(cur[1], cur[2])
        elif po.currency is None:
            m = re.search(r"\b(USD|EUR|GBP|CAD|INR|PLN|CHF)\b", self.text)
            if m:
                po.currency = m.group(1)
                po.sources["currency"] = self.src(m.start(), m.end())

    def party_ids(self) -> None:
        """Identifiers the buyer sends, on the party they name: ``Account #: C04816`` (the buyer's
        account with us, qualifier ``91``), ``Ship To Code: LOU-MOLD`` (``92``), ``GLN`` (``UL``; the
        ship-to's when the label says so). Downstream an identifier wins over any name. A vendor's,
        supplier's or bank's number (``Vendor Acct #``) is nobody's id here."""
        for fld, role, qual in (("customer_account", "BY", "91"), ("ship_to_code", "ST", "92"), ("gln", "BY", "UL")):
            for ls, vs, eol in self._after_label(fld):
                line_start = self.text.rfind("\n", 0, ls) + 1
                before = self.text[max(line_start, ls - 30) : ls]
                if re.search(r"(?:vendor|supplier|bank|routing|remit)\W*(?:\w+\W*)?$", before, re.I):
                    continue
                rest = self.text[vs:eol]
                m = _TOKEN_RE.match(rest.lstrip(" \t#:|"))
                if m is None:
                    continue
                off = vs + len(rest) - len(rest.lstrip(" \t#:|"))
                value = m.group(0).rstrip(".,;")
                who = "ST" if fld == "gln" and re.search(r"ship|deliver", before, re.I) else role
                party = self.po.party(who)
                if party is None:
                    party = Party(role=who)
                    self.po.parties.append(party)
                if party.id is None:
                    k = self.po.parties.index(party)
                    party.id, party.id_qualifier = value, qual
                    self.po.sources[f"parties[{k}].id"] = self.src(off, off + len(value))
                break

    def party_block(self, rx: re.Pattern[str], role: str) -> None:
        m = rx.search(self.text)
        if m is None and role == "ST":
            # "Same ship-to as last time, the Salt Lake City site:" - the block follows the sentence.
            m = _SHIP_TO_LEAD_RE.search(self.text) or _SHIP_TO_INLINE_RE.search(self.text)
        if m is None:
            return
        lines = self._block_lines(m.end())
        if lines:
            self._add_party(role, lines)

    def _block_lines(self, pos: int) -> list[tuple[str, int, int]]:
        """The address block after a label (the rest of its line, then up to six lines) with their
        offsets; it ends at a blank line, another label or the line table."""
        lines: list[tuple[str, int, int]] = []
        first_rest_end = self.text.find("\n", pos)
        first_rest_end = len(self.text) if first_rest_end < 0 else first_rest_end
        first = self.text[pos:first_rest_end]
        if first.strip(" \t|"):
            s = pos + len(first) - len(first.lstrip(" \t|"))
            lines.append((first.strip(" \t|"), s, s + len(first.strip(" \t|"))))
        cur = first_rest_end + 1
        blank_ok = not lines
        while cur < len(self.text) and len(lines) < 6:
            eol = self.text.find("\n", cur)
            eol = len(self.text) if eol < 0 else eol
            raw = self.text[cur:eol]
            stripped = raw.strip(" \t>")
            if not stripped and blank_ok:
                blank_ok = False  # one blank line between a label alone on its line and its block
                cur = eol + 1
                continue
            blank_ok = False
            if not stripped or _ANY_LABEL_RE.match(raw) or _SHIP_TO_RE.match(raw) or _BILL_TO_RE.match(raw):
                break
            if any(rx2.match(raw) for rx2 in _LINE_RES) or re.match(r"^\s*(qty|sku|item|part)\b", raw, re.I):
                break
            off = cur + raw.find(stripped)
            lines.append((stripped, off, off + len(stripped)))
            cur = eol + 1
        return lines

    def _add_party(self, role: str, lines: list[tuple[str, int, int]]) -> None:
        """A party from an address block's lines, each part with its source."""
        parts = split_address(lines)
        k = len(self.po.parties)
        party = Party(role=role, city=parts.city, state=parts.state, postal_code=parts.postal_code)
        party.country = parts.country
        if parts.name is not None:
            party.name = parts.name[0]
            self.po.sources[f"parties[{k}].name"] = self.src(parts.name[1], parts.name[2])
        if parts.city_span is not None:
            self.po.sources[f"parties[{k}].city"] = self.src(*parts.city_span)
        for text, s, e in parts.lines:
            self.po.sources[f"parties[{k}].address_lines[{len(party.address_lines)}]"] = self.src(s, e)
            party.address_lines.append(text)
        self.po.parties.append(party)

    # line items ------------------------------------------------------------------------------
    def text_table(self) -> None:
        text = self.text
        offsets: list[tuple[int, int]] = []
        pos = 0
        for raw in text.split("\n"):
            offsets.append((pos, pos + len(raw)))
            pos += len(raw) + 1
        i = 0
        while i < len(offsets):
            s, e = offsets[i]
            cells = _split_cells(text, s, e)
            header = classify_header([c[0] for c in cells]) if len(cells) >= 2 else None
            if header is None:
                i += 1
                continue
            starts = [c[1] for c in cells]
            rows: list[list[Cell]] = []
            j = i + 1
            while j < len(offsets):
                rs, re_ = offsets[j]
                if not text[rs:re_].strip() or re.fullmatch(r"[\s\-=|+_]+", text[rs:re_]):
                    if rows:
                        break
                    j += 1
                    continue
                row_cells = _split_cells(text, rs, re_)
                if len(row_cells) == len(cells):
                    row = [Cell(c[0], self.src(c[1], c[2])) for c in row_cells]
                else:
                    row = [Cell("", None) for _ in cells]
                    for c in row_cells:
                        col = min(range(len(starts)), key=lambda k: abs(starts[k] - (c[1] - rs) - s))
                        prev = row[col]
                        row[col] = Cell((prev.text + " " + c[0]).strip(), self.src(c[1], c[2]))
                rows.append(row)
                self.consumed.append((rs, re_))
                j += 1
            self.consumed.append((s, e))
            lines_from_rows(header, rows, self.po, self.findings, decimal_mark=self.decimal_mark)
            i = j

    def excluded(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Spans no line item may come from: ``(never, quoted)``.

        ``never``: signatures (after a ``--`` line) and legal disclaimers, full of phone numbers,
        certificate numbers and addresses. ``quoted``: ``>``-quoted text and everything after
        "On ... wrote:" - an older message (a quote, a previous order) whose lines are not this
        order's; they are read only when nothing outside them is.
        """
        never: list[tuple[int, int]] = []
        quoted: list[tuple[int, int]] = []
        text = self.text
        for m in _QUOTED_RE.finditer(text):
            quoted.append((m.start(), m.end()))
        # Bounded work on hostile text: the forward marks and paragraph ends are found once and
        # looked up, not searched for again from every signature or disclaimer match.
        marks = [m.start() for m in _FWD_MARK_RE.finditer(text)]
        paras = [m.start() for m in _PARA_END_RE.finditer(text)]

        def until(found: list[int], pos: int) -> int:
            i = bisect.bisect_left(found, pos)
            return found[i] if i < len(found) else len(text)

        for m in _WROTE_RE.finditer(text):
            quoted.append((m.start(), until(marks, m.end())))
        for m in _SIG_RE.finditer(text):
            never.append((m.start(), until(marks, m.end())))
        for m in _DISCLAIMER_RE.finditer(text):
            never.append((m.start(), until(paras, m.end())))
        return never, quoted

    def inline_lines(self) -> None:
        never, quoted = self.excluded()
        before = len(self.po.lines)
        self._inline_lines(list(self.consumed) + never + quoted)
        if len(self.po.lines) == before and quoted:
            self._inline_lines(list(self.consumed) + never)

    def _inline_lines(self, blocked: list[tuple[int, int]]) -> None:
        """Lines written one per text line outside any table: a customer's own patterns first, then
        whole-line prose shapes, then the older in-line patterns (which could take "48 x 40" inside
        a description for a quantity and a part); each span is read once, in text order."""
        mask = _SpanMask(len(self.text))
        for a, b in blocked:
            mask.take(a, b)
        found: list[tuple[int, dict[str, tuple[str, int, int]]]] = []
        self._regex_lines(self._template_patterns(), mask, found)
        self._prose_lines(mask, found)
        self._regex_lines(_LINE_RES, mask, found, check=True)
        sku_qual = self.template.sku_qualifier if self.template else "VN"
        for _, g in sorted(found, key=lambda t: t[0]):
            self._add_inline_line(g, sku_qual)

    def _template_patterns(self) -> list[re.Pattern[str]]:
        """The customer template's line patterns; an invalid one is a finding, not an error."""
        patterns: list[re.Pattern[str]] = []
        if self.template is None:
            return patterns
        for p in self.template.line_patterns:
            try:
                patterns.append(re.compile(p, re.I | re.M))
            except re.error:
                self.findings.append(_f(Severity.WARNING, "template_invalid", "template line pattern is invalid", None))
        return patterns

    def _regex_lines(
        self,
        rxs: list[re.Pattern[str]],
        mask: _SpanMask,
        found: list[tuple[int, dict[str, tuple[str, int, int]]]],
        check: bool = False,
    ) -> None:
        """Matches of ``rxs`` on text not yet read (with ``check``, not a dimension like ``20 x 47``)."""
        for rx in rxs:
            for m in _finditer_lines(rx, self.text) if rx is _LINE_RES[2] else rx.finditer(self.text):
                if mask.is_taken(m.start(), m.end()):
                    continue
                if check and _dimension_not_line(self.text, m):
                    continue
                mask.take(m.start(), m.end())
                found.append((m.start(), {k: (v, m.start(k), m.end(k)) for k, v in m.groupdict().items() if v}))

    def _prose_lines(self, mask: _SpanMask, found: list[tuple[int, dict[str, tuple[str, int, int]]]]) -> None:
        """Whole text lines that read as a line item sentence (never the PO number taken for a part)."""
        pos = 0
        for raw in self.text.split("\n"):
            ls, le = pos, pos + len(raw)
            pos = le + 1
            if not raw.strip() or mask.is_taken(ls, le):
                continue
            hit = _prose_line(raw)
            if hit is None or (self.po.po_number and hit["sku"][0] == self.po.po_number):
                continue
            mask.take(ls, le)
            found.append((ls, {k: (v, ls + a, ls + b) for k, (v, a, b) in hit.items()}))

    def _add_inline_line(self, g: dict[str, tuple[str, int, int]], sku_qual: str) -> None:
        """An order line from one match's groups, each value with its source."""
        k = len(self.po.lines)
        p = f"lines[{k}]."
        line = POLine(line_number=g["line"][0] if "line" in g else str(k + 1))
        line.quantity = parse_amount(g["qty"][0], self.decimal_mark)
        self.po.sources[p + "quantity"] = self.src(g["qty"][1], g["qty"][2])
        sku = g["sku"][0].rstrip(".,")
        line.product_ids.append(ProductId(qualifier=sku_qual, value=sku))
        self.po.sources[p + "product_ids[0]"] = self.src(g["sku"][1], g["sku"][1] + len(sku))
        if "uom" in g:
            line.unit = _norm_uom(g["uom"][0])
            self.po.sources[p + "unit"] = self.src(g["uom"][1], g["uom"][2])
        if "price" in g:
            line.unit_price = parse_amount(g["price"][0], self.decimal_mark)
            self.po.sources[p + "unit_price"] = self.src(g["price"][1], g["price"][2])
        raw_desc = g["description"][0] if "description" in g else ""
        desc = raw_desc.strip(" -–,:;")
        if desc:
            line.description = desc
            line.descriptions.append(desc)
            ds = g["description"][1] + raw_desc.find(desc)
            self.po.sources[p + "description"] = self.src(ds, ds + len(desc))
        self.po.lines.append(line)


def _finditer_lines(rx: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """What ``rx.finditer(text)`` gives for the code-first line pattern (``_LINE_RES[2]``), with one
    try per run of blank lines instead of one per line of it.

    That pattern starts at a line start, and from a line that begins (after blanks) with another
    space it reads on across the whole run of spaces and line breaks to the next character. So when
    the line before is spaces only and its own try failed, this line's try would read the same run
    to the same character and fail the same way; it is not made (a line of 100,000 line breaks was
    100,000 reads of the rest of it)."""
    pos = 0
    start = 0
    n = len(text)
    blank_failed = False  # the line before is spaces only, and trying it (or its own line before) failed
    while True:
        nl = text.find("\n", start)
        end = n if nl < 0 else nl
        if start < pos:
            blank_failed = False
        else:
            lead = start + len(text[start:end]) - len(text[start:end].lstrip(" \t"))
            space_led = lead < n and text[lead].isspace()
            m = None if space_led and blank_failed else rx.match(text, start)
            if m is not None:
                yield m
                pos = max(m.end(), m.start() + 1)
            blank_failed = m is None and nl >= 0 and (start == end or text[start:end].isspace())
        if nl < 0:
            return
        start = nl + 1


class _SpanMask:
    """Characters already read or not to be read: one byte each, so an overlap test is one C-level
    find whatever the number of spans (a 2,000-line order stays linear)."""

    def __init__(self, size: int) -> None:
        self.mask = bytearray(size)

    def take(self, a: int, b: int) -> None:
        self.mask[a:b] = b"\x01" * max(0, b - a)

    def is_taken(self, a: int, b: int) -> bool:
        return self.mask.find(1, a, max(a + 1, b)) >= 0


# --- prose line items ----------------------------------------------------------------------------
# Buyers write lines as sentences: "60 CBL-CAT6 at 112.00", "qty 12 - KJ-C6-WH jacks @ $33.00/pk",
# "4 boxes of gloves (GLV-N6-L), 13.30 a box", "PP-24C6 x 2 @ 102.20 ea", "please send 12 of
# ABC-1 @ $4.50", "ABC-1 - 12 ea - $4.50/ea". A line is read only when the whole text line fits one
# of these shapes: a quantity, one item code (letters and digits, upper case) and at most a price
# clause; anything else on the line (a date, "2nd shift", "1000' boxes") and it is prose, not a line.

_P_UNIT = (
    r"(?i:ea|each|pcs?|pieces?|units?|cs|cases?|bx|box(?:es)?|pk|packs?|pkgs?|packages?|rl|rolls?|sp|spools?"
    r"|ft|feet|foot|lbs?|pounds?|kg|dz|dozen|ct|pr|pairs?|sets?|bags?|drums?|pails?|reels?|cartons?|ctns?"
    r"|pallets?|plts?)"
)
_P_CODE = r"(?P<sku>(?=[A-Z0-9./_-]*\d)(?=[A-Z0-9./_-]*[A-Z])[A-Z0-9][A-Z0-9./_-]*[A-Z0-9]|\d{2,}(?:-\d+){1,3})"
_P_QTY = r"(?P<qty>\d{1,6}(?:\.\d+)?)"
_P_LEAD = r"^\s*(?:[-*•·]\s*|(?P<line>\d{1,3})[.)]\s+|(?i:line|item)\s*\d{1,3}\s*[:.)-]\s*)?"
_P_ASK = (
    r"(?:(?i:please\s+)?(?i:send|ship|add|order|supply|include|need|we\s+need|i\s+need|we'?d\s+like"
    r"|i'?d\s+like|also|and|plus)\s+(?:(?i:us|me)\s+)?)?"
)
_P_ID = r"(?:(?i:part|item|sku|p/n|pn)\s*(?:#|(?i:no)\.?)?\s*:?\s*)?"
_PROSE_SHAPES = [
    # qty [unit] [x|of|-] CODE [description]
    re.compile(
        rf"{_P_LEAD}{_P_ASK}(?:(?i:qty|quantity)\.?\s*:?\s*)?{_P_QTY}(?=[\sx×*])\s*(?:(?P<uom>{_P_UNIT})\.?\s+)?"
        rf"(?:(?:x|×|\*|(?i:of)|-|–|:)\s*)?{_P_ID}{_P_CODE}(?P<description>\s+.*?)?$"
    ),
    # CODE [description] x|qty qty [unit]
    re.compile(
        rf"{_P_LEAD}{_P_ID}{_P_CODE}(?:\s+(?P<description>.+?))?\s*(?:[-–:,]\s*)?"
        rf"(?:(?i:qty|quantity)\.?\s*:?\s*|(?:x|×|\*)\s*){_P_QTY}(?:\s*(?P<uom>{_P_UNIT})\.?)?$"
    ),
    # CODE [description] - qty unit (the unit says it is a quantity)
    re.compile(
        rf"{_P_LEAD}{_P_ID}{_P_CODE}(?:\s+(?P<description>.+?))?(?:\s*[-–:,]\s*|\s{{2,}}|\s+){_P_QTY}\s*"
        rf"(?P<uom>{_P_UNIT})\.?$"
    ),
    # qty [unit] [of] description (CODE)
    re.compile(
        rf"{_P_LEAD}{_P_ASK}{_P_QTY}\s+(?:(?P<uom>{_P_UNIT})\.?\s+)?(?:(?i:of)\s+)?(?P<description>.+?)\s*"
        rf"[(\[]\s*{_P_ID}{_P_CODE}\s*[)\]]$"
    ),
]
_P_PRICE = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,4})?|\d+(?:\.\d{1,4})?"
_P_TAIL_RE = re.compile(
    rf"(?:\s*[,;]?\s*(?:@|(?<!\w)(?i:at|for)\b)\s*\$?\s*(?P<p1>{_P_PRICE})"
    rf"|\s*[,;\-–]?\s*\$\s*(?P<p2>{_P_PRICE})"
    rf"|\s*[,;\-–]\s*(?P<p3>{_P_PRICE})(?=\s*(?:/|(?i:per|a|an|ea|each)\b)))"
    rf"(?:\s*(?:/|(?i:per|a|an)\b)\s*(?P<pu>[A-Za-z]+)|\s*(?P<pe>(?i:ea|each|apiece)))?\s*\.?\s*$"
)
_NOT_A_CODE_RE = re.compile(r"^\d{3}-\d{3}-\d{4}$|^\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}$")


def _prose_line(raw: str) -> dict[str, tuple[str, int, int]] | None:
    """The line item a buyer wrote as a sentence (groups with offsets in ``raw``), or None."""
    if len(raw) > 300:
        return None
    price, per_unit, core_end = _price_tail(raw)
    core = raw[:core_end].rstrip(" \t,;-–.!")
    m = next((m for rx in _PROSE_SHAPES if (m := rx.match(core)) is not None), None)
    if m is None or not _plausible_line(m):
        return None
    out = {k: (v, m.start(k), m.end(k)) for k, v in m.groupdict().items() if v}
    if price is not None:
        out["price"] = price
    if "uom" not in out and per_unit is not None and per_unit[0].lower() not in ("a", "an"):
        out["uom"] = per_unit
    return out


_Span = tuple[str, int, int]


def _price_tail(raw: str) -> tuple[_Span | None, _Span | None, int]:
    """The price clause ending the line (``@ $4.50/ea``, ``, 13.30 a box``): the price, the unit it
    is per, and where the rest of the line ends."""
    tail = _P_TAIL_RE.search(raw)
    if tail is None:
        return None, None, len(raw.rstrip())
    pg = next(g for g in ("p1", "p2", "p3") if tail.group(g))
    price = (tail.group(pg), tail.start(pg), tail.end(pg))
    ug = "pu" if tail.group("pu") else "pe" if tail.group("pe") else None
    per_unit = (tail.group(ug), tail.start(ug), tail.end(ug)) if ug is not None else None
    return price, per_unit, tail.start()


def _plausible_line(m: re.Match[str]) -> bool:
    """A shape's match is a line only with a real item code (not a phone number or a date), a
    quantity in range and a short description with no second price in it."""
    sku = m.group("sku")
    if _NOT_A_CODE_RE.match(sku) or len(sku) > 40:
        return False
    if not 0 < Decimal(m.group("qty")) < 1_000_000:
        return False
    desc = m.group("description") or ""
    return not (len(desc) > 160 or re.search(r"[@$]", desc))


def _dimension_not_line(text: str, m: re.Match[str]) -> bool:
    """``20 x 47 x 14 mm`` in a description is a size, not "20 of part 47": a short all-digit
    "part" or one followed by another ``x N`` or a length unit is not read as a line."""
    sku = m.group("sku")
    after = text[m.end("sku") : m.end("sku") + 12]
    if sku.isdigit() and len(sku) <= 3:
        return True
    return re.match(r"\s*(?:[x×]\s*\d|(?:mm|cm|in|ft|m)\b|[\"'])", after) is not None


_PARA_END_RE = re.compile(r"\n[ \t]*\n")
_QUOTED_RE = re.compile(r"^[ \t]*>.*$", re.M)
_WROTE_RE = re.compile(r"^[ \t]*On\b[^\n]{5,200}\bwrote:[ \t]*$", re.M)
_FWD_MARK_RE = re.compile(
    r"^[ \t>]*(?:-{3,}\s*(?:Forwarded message|Original Message)\s*-{3,}|Begin forwarded message:)", re.I | re.M
)
_SIG_RE = re.compile(r"^--[ \t]?$", re.M)
_DISCLAIMER_RE = re.compile(
    r"^[ \t]*(?:CONFIDENTIALITY(?:\s+NOTICE)?|DISCLAIMER|LEGAL\s+NOTICE|PRIVILEGED\s+(?:AND|&)\s+CONFIDENTIAL"
    r"|This\s+e-?mail(?:\s+message)?(?:,\s+including\s+any\s+attachments,)?\s+(?:is|and\s+any)[^\n]{0,80}confidential)",
    re.I | re.M,
)


_UOM_NORMAL = {
    "EACH": "EA",
    "PIECE": "EA",
    "PIECES": "EA",
    "PACK": "PK",
    "PACKS": "PK",
    "PKG": "PK",
    "PKGS": "PK",
    "ROLL": "RL",
    "ROLLS": "RL",
    "SPOOL": "SP",
    "SPOOLS": "SP",
    "FEET": "FT",
    "FOOT": "FT",
    "POUND": "LB",
    "POUNDS": "LB",
    "DOZEN": "DZ",
    "PAIR": "PR",
    "PAIRS": "PR",
    "PC": "EA",
    "PCS": "EA",
    "UNIT": "EA",
    "UNITS": "EA",
    "CASE": "CS",
    "CASES": "CS",
    "BOX": "BX",
    "BOXES": "BX",
    "PALLET": "PL",
    "PALLETS": "PL",
    "LB": "LB",
    "LBS": "LB",
}


def _norm_uom(raw: str) -> str:
    u = raw.upper().rstrip(".")
    return _UOM_NORMAL.get(u, u)


# Each "label:" is atomic (its colon ends it whichever way its spaces are counted) and each word is
# taken whole: trying every split of them made a line of short labels exponential and a long word
# cubic, and no other split could make the whole rest match.
_LABELS_ONLY_RE = re.compile(r"(?>[ \t]*[^\d:\n]{1,30}:)*[ \t]*|[ \t]*+[^\W\d_]++(?:[ \t]*+[^\W\d_]++){0,2}[ \t]*+")


def _only_labels(rest: str) -> bool:
    """True when what follows a label is empty or more labels (``Invoice Date: Due Date:``)."""
    return not rest.strip(" \t:#") or _LABELS_ONLY_RE.fullmatch(rest.lstrip(" \t:")) is not None


def _split_cells(text: str, s: int, e: int) -> list[tuple[str, int, int]]:
    """Cells of one text-table line: separated by ``|``, tabs or two or more spaces."""
    out: list[tuple[str, int, int]] = []
    for m in _CELL_RE.finditer(text, s, e):
        val = m.group(0).strip()
        if val:
            off = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            out.append((val, off, off + len(val)))
    return out


# "\s{2}", not "\s{2,}": the look-ahead only asks whether two spaces follow; "\s{2,}" read the whole
# run of spaces from each of its characters (quadratic in a line of spaces).
_CELL_RE = re.compile(r"[^|\t]+?(?=\s{2}|\t|\||$)")


def extract_order(
    text: str,
    *,
    source: SpanSource | None = None,
    document_type: str = "text",
    template: CustomerTemplate | None = None,
    layout: Layout | None = None,
    date_order: DateOrder | None = None,
    with_lines: bool = True,
) -> TextExtraction:
    """Read a purchase order out of free text; never raises.

    Returns ``purchase_order=None`` (and a ``no_order_found`` finding) when the text holds neither
    an order number nor a line item. Injection-like text is always reported. Only the first
    :data:`MAX_TEXT_CHARS` characters are read; a longer text also gets a ``too_long`` error.
    """
    src = source or span_source("email")
    cut: list[Finding] = []
    if len(text) > MAX_TEXT_CHARS:
        cut.append(_too_long(text, "read for an order and checked for instructions aimed at the system", src))
        text = text[:MAX_TEXT_CHARS]
    try:
        ex = _Extractor(text, src, document_type, template, layout, date_order)
        ex.header()
        if with_lines:
            ex.text_table()
            ex.inline_lines()
    except Exception as exc:  # pragma: no cover - a bug here must not lose the document
        return TextExtraction(
            purchase_order=None,
            findings=[
                *cut,
                _f(Severity.ERROR, "extractor_error", f"extractor failed: {exc!r}", None),
                *detect_injection(text, src),
            ],
        )
    findings = cut + ex.findings + detect_injection(text, src)
    po = ex.po
    if po.po_number is None and not po.lines:
        findings.append(_f(Severity.WARNING, "no_order_found", "no order number or line items found in the text", None))
        return TextExtraction(
            purchase_order=None,
            findings=findings,
            is_invoice=ex.is_invoice,
            template=template.name if template else None,
        )
    if po.po_number is None:
        findings.append(_f(Severity.WARNING, "po_number_missing", "no purchase order number found", None))
    if ex.is_invoice:
        findings.append(
            _f(
                Severity.WARNING,
                "document_is_invoice",
                "the document reads as an invoice, not a purchase order; its number is kept as po_number",
                None,
            )
        )
    if with_lines and not po.lines:
        findings.append(
            _f(
                Severity.WARNING,
                "no_lines",
                "no line items found: could not read the lines (no table, list or line in a known shape)",
                None,
            )
        )
    return TextExtraction(
        purchase_order=po, findings=findings, is_invoice=ex.is_invoice, template=template.name if template else None
    )
