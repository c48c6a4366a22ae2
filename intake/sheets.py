"""CSV and XLSX order sheets to canonical :class:`~intake.model.PurchaseOrder` objects.

A sheet is read as a grid: the first row the column vocabulary recognises as a line-item header
(``SKU | Description | Qty | UOM | Unit Price``, in any order, under the usual synonyms) starts
the lines; label/value cells above it (``PO Number | 4711``, ``Ship To: ...``) give header fields.
Header fields may also be columns (``PO Number`` on every row): rows are then grouped by PO number
into several orders. Every value points at its cell: ``Source(kind="sheet", path="Sheet1!C7")``.

An XLSX file is a zip; :func:`check_zip` looks at the archive's directory (entry count, total
uncompressed size, compression ratio) before openpyxl inflates anything, so a zip bomb becomes a
finding instead of an out-of-memory kill. Never raises on bad input.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from intake.extract import (
    Cell,
    DateOrder,
    SpanSource,
    classify_header,
    column_field,
    detect_injection,
    guess_date_order,
    guess_decimal_mark,
    is_totals_text,
    lines_from_rows,
    parse_date_text,
    split_address,
)
from intake.model import DateRef, Finding, Party, PurchaseOrder, Severity, Source

__all__ = ["SheetDocument", "SheetLimits", "check_zip", "parse_csv", "parse_xlsx"]

QUARANTINE_CODES = frozenset({"zip_bomb", "not_xlsx", "corrupt_xlsx", "oversized", "too_many_rows"})


@dataclass(frozen=True)
class SheetLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_rows: int = 20_000
    max_cols: int = 200
    max_uncompressed: int = 100 * 1024 * 1024
    max_ratio: float = 200.0
    max_entries: int = 2_000
    header_scan_rows: int = 50


class SheetDocument(BaseModel):
    document: str | None = None
    purchase_orders: list[PurchaseOrder] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)

    def all_findings(self) -> list[Finding]:
        return list(self.findings)


def _col_letter(c: int) -> str:
    s = ""
    while c > 0:
        c, r = divmod(c - 1, 26)
        s = chr(65 + r) + s
    return s


def _f(sev: Severity, code: str, msg: str, document: str | None, path: str | None = None) -> Finding:
    return Finding(severity=sev, code=code, message=msg, source=Source(kind="sheet", document=document, path=path))


# --- grid -> orders -------------------------------------------------------------------------------

_HEADER_FIELDS = {
    "po_number", "po_date", "delivery_date", "ship_to", "ship_to_name", "ship_to_city", "ship_to_state",
    "ship_to_postal", "currency", "customer", "customer_account", "customer_gln", "customer_edi_id", "ship_to_code",
    "ship_to_gln", "ship_to_street", "ship_to_street2", "bill_to",
}  # fmt: skip
_PARTY_IDS = {
    # field: (party role, id qualifier). X12 code list 66: 91 assigned by the seller (our account
    # number for the customer), 92 assigned by the buyer (its own location code), UL a GLN, ZZ mutual.
    "customer_account": ("BY", "91"),
    "customer_gln": ("BY", "UL"),
    "customer_edi_id": ("BY", "ZZ"),
    "ship_to_code": ("ST", "92"),
    "ship_to_gln": ("ST", "UL"),
}


class _Grid:
    def __init__(self, rows: list[list[str]], sheet: str, document: str | None) -> None:
        self.rows = rows
        self.sheet = sheet
        self.document = document

    def src(self, r: int, c: int) -> Source:
        """``r`` and ``c`` are 0-based here; paths are the spreadsheet's 1-based A1 names."""
        return Source(kind="sheet", document=self.document, path=f"{self.sheet}!{_col_letter(c + 1)}{r + 1}")


def _party_from_text(text: str, role: str = "ST") -> Party:
    """An address written in one cell, on several lines or on one (``Name, 41 Foundry Ct, Hartford, CT 06103``)."""
    parts = split_address([(ln, 0, 0) for ln in text.replace("\r", "").replace(";", "\n").split("\n")])
    return Party(role=role, name=parts.name[0] if parts.name else None, address_lines=[t for t, _, _ in parts.lines],
                 city=parts.city, state=parts.state, postal_code=parts.postal_code, country=parts.country)  # fmt: skip


class _OrderBuilder:
    def __init__(self, grid: _Grid, findings: list[Finding], order: DateOrder, mark: str) -> None:
        self.grid = grid
        self.findings = findings
        self.order: DateOrder = order
        self.mark = mark
        self.po = PurchaseOrder(document_type="sheet")

    def set_header(self, fld: str, value: str, r: int, c: int) -> None:
        """Set one header field from cell ``(r, c)``; a field set already keeps its first value (a
        second, different PO number is a finding)."""
        value = value.strip()
        if not value:
            return
        src = self.grid.src(r, c)
        setter = _HEADER_SETTERS.get(fld)
        if setter is not None:
            setter(self, fld, value, src)
        elif fld in _PARTY_IDS:
            self._set_party_id(fld, value, src)
        elif fld.startswith("ship_to"):
            self._set_ship_to_part(fld, value, src)

    def _set_po_number(self, fld: str, value: str, src: Source) -> None:
        po = self.po
        if po.po_number is not None and po.po_number != value:
            self.findings.append(
                _f(
                    Severity.WARNING,
                    "conflicting_values",
                    f"PO number {value!r} differs from {po.po_number!r}",
                    self.grid.document,
                    src.path,
                )
            )
            return
        po.po_number = value
        po.sources["po_number"] = src

    def _set_date(self, fld: str, value: str, src: Source) -> None:
        po = self.po
        parsed = parse_date_text(value, self.order)
        if parsed is None:
            self.findings.append(
                _f(Severity.WARNING, "bad_date", f"{value!r} is not a date", self.grid.document, src.path)
            )
            return
        qual = "004" if fld == "po_date" else "002"
        if any(d.qualifier == qual for d in po.dates):
            return
        po.sources[f"dates[{len(po.dates)}].value"] = src
        po.dates.append(DateRef(qualifier=qual, value=parsed[0], raw=value))
        if fld == "po_date":
            po.po_date = parsed[0]
            po.sources["po_date"] = src

    def _set_currency(self, fld: str, value: str, src: Source) -> None:
        self.po.currency = value.upper()[:3]
        self.po.sources["currency"] = src

    def _set_customer(self, fld: str, value: str, src: Source) -> None:
        party = self._party("BY")
        if party.name is None:
            party.name = value
            self.po.sources[f"parties[{self.po.parties.index(party)}].name"] = src

    def _set_party_id(self, fld: str, value: str, src: Source) -> None:
        role, qual = _PARTY_IDS[fld]
        party = self._party(role)
        if party.id is None:
            # The buyer's own identifiers win over any name downstream (customer and ship-to matching).
            party.id, party.id_qualifier = value, qual
            self.po.sources[f"parties[{self.po.parties.index(party)}].id"] = src

    def _set_address(self, fld: str, value: str, src: Source) -> None:
        """A whole address in one cell fills what the party lacks."""
        po = self.po
        role = "ST" if fld == "ship_to" else "BT"
        party = self._party(role)
        k = po.parties.index(party)
        parsed_party = _party_from_text(value, role)
        if party.name is None and parsed_party.name is not None and not (party.address_lines or party.city):
            party.name = parsed_party.name
            po.sources[f"parties[{k}].name"] = src
        elif parsed_party.name is not None and not parsed_party.address_lines and parsed_party.city is None:
            # "Ship-To Address | 415 Erie Canal Wharf" beside a name column: a street, not a name.
            parsed_party.address_lines = [parsed_party.name]
        if not party.address_lines and parsed_party.address_lines:
            party.address_lines = parsed_party.address_lines
            po.sources[f"parties[{k}].address_lines[0]"] = src
        for attr in ("city", "state", "postal_code", "country"):
            if getattr(party, attr) is None and getattr(parsed_party, attr) is not None:
                setattr(party, attr, getattr(parsed_party, attr))
                po.sources[f"parties[{k}].{attr}"] = src

    def _set_ship_to_part(self, fld: str, value: str, src: Source) -> None:
        """One part of the ship-to address from its own column (street lines add up)."""
        po = self.po
        party = self._party("ST")
        k = po.parties.index(party)
        if fld in ("ship_to_street", "ship_to_street2"):
            if value not in party.address_lines:
                po.sources[f"parties[{k}].address_lines[{len(party.address_lines)}]"] = src
                party.address_lines.append(value)
            return
        attr = {"ship_to_name": "name", "ship_to_city": "city", "ship_to_state": "state",
                "ship_to_postal": "postal_code"}[fld]  # fmt: skip
        if getattr(party, attr) is None:
            setattr(party, attr, value)
            po.sources[f"parties[{k}].{attr}"] = src

    def _party(self, role: str) -> Party:
        party = self.po.party(role)
        if party is None:
            party = Party(role=role)
            self.po.parties.append(party)
        return party


_HEADER_SETTERS: dict[str, Callable[[_OrderBuilder, str, str, Source], None]] = {
    "po_number": _OrderBuilder._set_po_number,
    "po_date": _OrderBuilder._set_date,
    "delivery_date": _OrderBuilder._set_date,
    "currency": _OrderBuilder._set_currency,
    "customer": _OrderBuilder._set_customer,
    "ship_to": _OrderBuilder._set_address,
    "bill_to": _OrderBuilder._set_address,
}
"""Header fields with a setter of their own; party ids and ship-to parts by column go by family."""


def _label_value(row: list[str], c: int) -> tuple[str, str, int] | None:
    """A header field written as ``Label | value`` or ``Label: value`` starting at cell ``c``."""
    cell = row[c].strip()
    if not cell:
        return None
    label, _, inline = cell.partition(":")
    fld = column_field(label)
    if fld is None or fld not in _HEADER_FIELDS:
        return None
    if inline.strip():
        return fld, inline.strip(), c
    for k in range(c + 1, min(len(row), c + 4)):
        if row[k].strip():
            return fld, row[k].strip(), k
    return None


_CHARGE_ROW_RE = re.compile(
    r"^(?:order\s+total|grand\s+total|freight|shipping|handling|discount|surcharge|s\s*&\s*h|est\.?\s+freight)\b",
    re.I,
)
_ID_FIELDS = frozenset({"sku", "vendor_sku", "buyer_sku", "upc", "gtin"})


def _line_number_columns(header: dict[int, str], rows: list[list[str]]) -> dict[int, str]:
    """A part-number column that holds 1, 2, 3 ... is the line number (``Item #`` beside ``Buyer
    Part``), when another column identifies the item and no line-number column exists."""
    if "line_number" in header.values():
        return header
    out = dict(header)
    for c, fld in header.items():
        if fld != "sku" or not any(f in _ID_FIELDS for k, f in header.items() if k != c):
            continue
        values = [row[c].strip() for row in rows if c < len(row) and row[c].strip()]
        values = values[: next((i for i, v in enumerate(values) if not v.isdigit()), len(values))]
        if (
            values
            and int(values[0]) in (0, 1)
            and [int(v) for v in values] == list(range(int(values[0]), int(values[0]) + len(values)))
        ):
            out[c] = "line_number"
            break
    return out


def _line_orders(
    grid: _Grid, findings: list[Finding], top: _OrderBuilder, header_row: int, header: dict[int, str]
) -> list[PurchaseOrder]:
    """Orders from the rows under the header row, up to a totals or charge row: one per PO number
    in a PO-number column (a sheet may hold several orders), each starting from the header fields
    found above the table."""
    rows = grid.rows
    group_col = next((i for i, f in header.items() if f == "po_number"), None)
    builders: dict[str, _OrderBuilder] = {}
    for r in range(header_row + 1, len(rows)):
        row = rows[r]
        if not any(v.strip() for v in row):
            continue
        first = next(v.strip() for v in row if v.strip())
        if is_totals_text(first) or _CHARGE_ROW_RE.match(first):
            break
        key = row[group_col].strip() if group_col is not None and group_col < len(row) else ""
        if key not in builders:
            builders[key] = _OrderBuilder(grid, findings, top.order, top.mark)
            builders[key].po = top.po.model_copy(deep=True)
        b = builders[key]
        for c, fld in header.items():
            if fld in _HEADER_FIELDS and c < len(row):
                b.set_header(fld, row[c], r, c)
        cells = [Cell(v, grid.src(r, c)) for c, v in enumerate(row)]
        lines_from_rows(header, [cells], b.po, findings, decimal_mark=top.mark, stop_at_totals=False)
    return [b.po for b in builders.values()]


def _orders_from_grid(grid: _Grid, findings: list[Finding], limits: SheetLimits) -> list[PurchaseOrder]:
    rows = grid.rows
    flat = "\n".join(" ".join(r) for r in rows[:200])
    order = guess_date_order(flat)
    mark = guess_decimal_mark(flat)
    scanned = ((r, classify_header(row)) for r, row in enumerate(rows[: limits.header_scan_rows]))
    header_row, header = next(((r, found) for r, found in scanned if found is not None), (None, None))
    top = _OrderBuilder(grid, findings, order, mark)
    for r, row in enumerate(rows[: header_row if header_row is not None else limits.header_scan_rows]):
        for c in range(len(row)):
            lv = _label_value(row, c)
            if lv is not None:
                top.set_header(lv[0], lv[1], r, lv[2])
    if header_row is None or header is None:
        findings.append(
            _f(Severity.WARNING, "no_header_row", "no line-item header row (quantity + item) found", grid.document)
        )
        return [top.po] if top.po.po_number else []
    out = _line_orders(grid, findings, top, header_row, _line_number_columns(header, rows[header_row + 1 :]))
    if not out:
        findings.append(_f(Severity.WARNING, "no_lines", "the header row has no line items under it", grid.document))
        return [top.po] if top.po.po_number else []
    for po in out:
        if po.po_number is None:
            findings.append(_f(Severity.WARNING, "po_number_missing", "no PO number in the sheet", grid.document))
    return out


def _at(source: Source) -> SpanSource:
    def make(_start: int, _end: int) -> Source:
        return source

    return make


def _injections(grid: _Grid) -> list[Finding]:
    """Instruction-like text in any cell (a "Notes" cell is where it hides), pointing at the cell."""
    out: list[Finding] = []
    for r, row in enumerate(grid.rows):
        for c, v in enumerate(row):
            if len(v) > 12:
                out.extend(detect_injection(v, _at(grid.src(r, c))))
    return out


# --- CSV ------------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _delimiter(sample: str) -> str:
    """The candidate found on most lines (then most often): csv.Sniffer gives up on ragged sheets."""
    lines = [ln for ln in sample.splitlines() if ln.strip()][:30]
    best, score = ",", (0, 0)
    for d in (",", ";", "\t", "|"):
        s = (sum(1 for ln in lines if d in ln), sum(ln.count(d) for ln in lines))
        if s > score:
            best, score = d, s
    return best


def parse_csv(
    data: bytes | str,
    *,
    document: str | None = None,
    limits: SheetLimits | None = None,
    sheet_name: str = "Sheet1",
) -> SheetDocument:
    """Read a CSV order sheet (delimiter sniffed among ``, ; TAB |``); never raises."""
    limits = limits or SheetLimits()
    out = SheetDocument(document=document)
    try:
        text = data if isinstance(data, str) else _decode(data)
        if len(text) > limits.max_bytes:
            out.findings.append(_f(Severity.ERROR, "oversized", f"{len(text)} characters is over the limit", document))
            return out
        if not text.strip():
            out.findings.append(_f(Severity.ERROR, "empty_document", "the file is empty", document))
            return out
        text = text.replace("\x00", "")
        rows: list[list[str]] = []
        for row in csv.reader(io.StringIO(text), delimiter=_delimiter(text[:8192])):
            if len(rows) >= limits.max_rows:
                out.findings.append(
                    _f(Severity.ERROR, "too_many_rows", f"over {limits.max_rows} rows; rest ignored", document)
                )
                break
            rows.append([v.strip() for v in row[: limits.max_cols]])
        grid = _Grid(rows, sheet_name, document)
        out.purchase_orders = _orders_from_grid(grid, out.findings, limits)
        out.findings.extend(_injections(grid))
    except Exception as exc:  # pragma: no cover - csv errors are caught above; a bug must not lose the file
        out.findings.append(_f(Severity.ERROR, "unreadable", f"CSV could not be read: {exc!r}", document))
    return out


# --- XLSX -----------------------------------------------------------------------------------------


def check_zip(data: bytes, limits: SheetLimits | None = None, *, document: str | None = None) -> list[Finding]:
    """Findings that make the archive unsafe or unfit to open (empty when it is fine).

    Reads only the central directory; declared sizes are what a bomb would inflate to, and a
    ratio over ``max_ratio`` is refused even when the total looks small.
    """
    limits = limits or SheetLimits()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as exc:
        return [_f(Severity.ERROR, "corrupt_xlsx", f"not a readable zip archive: {exc}", document)]
    if len(infos) > limits.max_entries:
        return [
            _f(Severity.ERROR, "zip_bomb", f"{len(infos)} entries is over the {limits.max_entries} limit", document)
        ]
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > limits.max_uncompressed:
        return [
            _f(
                Severity.ERROR,
                "zip_bomb",
                f"{total} bytes uncompressed is over the {limits.max_uncompressed} limit",
                document,
            )
        ]
    for i in infos:
        if i.file_size > 1_000_000 and i.file_size / max(1, i.compress_size) > limits.max_ratio:
            return [
                _f(
                    Severity.ERROR,
                    "zip_bomb",
                    f"{i.filename} inflates {i.file_size / max(1, i.compress_size):.0f} times",
                    document,
                )
            ]
    if total > 10_000_000 and total / max(1, packed) > limits.max_ratio:
        return [_f(Severity.ERROR, "zip_bomb", "the archive's compression ratio is suspicious", document)]
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        return [_f(Severity.ERROR, "not_xlsx", "the archive holds no xl/workbook.xml", document)]
    return []


def _cell_text(v: Any, number_format: str | None = None) -> str:
    if v is None:
        return ""
    zero_padded = bool(number_format and re.fullmatch(r"0+", number_format))
    if zero_padded and isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 and float(v) == int(v):
        # A ZIP (03101) or UPC kept as a number with a zero-padded format: the text is what is shown.
        return str(int(v)).zfill(len(number_format or ""))
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        d = Decimal(repr(v))
        return format(d.normalize(), "f") if d == d.to_integral_value() else repr(v)
    return str(v).strip()


def _join_sheets(
    per_sheet: list[tuple[list[PurchaseOrder], list[Finding]]], document: str | None
) -> tuple[list[PurchaseOrder], list[Finding]]:
    """One order from a workbook that keeps its header on one sheet and its lines on another.

    A sheet of label/value pairs (``PO Header``) yields an order without lines; a ``Lines`` sheet
    yields lines without a PO number. When the workbook has exactly one such header order, its
    fields fill what the line orders lack (same PO number or none), and the sheet-level "no PO
    number" / "no header row" warnings that the split caused are dropped (a terms sheet beside
    the order is not a fault either).
    """
    headers = [po for orders, _ in per_sheet for po in orders if not po.lines]
    with_lines = [po for orders, _ in per_sheet for po in orders if po.lines]
    findings = [f for _, fs in per_sheet for f in fs]
    if not with_lines:
        return [po for orders, _ in per_sheet for po in orders], findings
    merged = False
    if len(headers) == 1:
        head = headers[0]
        for po in with_lines:
            if po.po_number in (None, head.po_number):
                _fill_from(po, head)
                merged = True
    out = with_lines if merged else [po for orders, _ in per_sheet for po in orders]
    kept: list[Finding] = []
    for f in findings:
        if f.code == "po_number_missing" and merged:
            continue
        if f.code == "no_header_row":
            f = _f(Severity.INFO, "sheet_without_lines", f"{f.message} on one sheet; the lines are on another",
                   document, f.source.path if f.source else None)  # fmt: skip
        kept.append(f)
    if merged:
        kept.append(_f(Severity.INFO, "header_on_other_sheet", "header fields and lines read from different sheets",
                       document))  # fmt: skip
    return out, kept


def _fill_from(po: PurchaseOrder, head: PurchaseOrder) -> None:
    """Header fields of ``head`` that ``po`` lacks, with their sources."""
    for attr in ("po_number", "po_date", "currency"):
        if getattr(po, attr) is None and getattr(head, attr) is not None:
            setattr(po, attr, getattr(head, attr))
            if attr in head.sources:
                po.sources[attr] = head.sources[attr]
    have = {d.qualifier for d in po.dates}
    for i, d in enumerate(head.dates):
        if d.qualifier not in have:
            if f"dates[{i}].value" in head.sources:
                po.sources[f"dates[{len(po.dates)}].value"] = head.sources[f"dates[{i}].value"]
            po.dates.append(d.model_copy())
    for i, party in enumerate(head.parties):
        _fill_party(po, head, i, party)


def _fill_party(po: PurchaseOrder, head: PurchaseOrder, i: int, party: Party) -> None:
    """Party ``i`` of ``head``: added whole (with its sources) when ``po`` has no party of its role,
    else only the parts ``po``'s party lacks."""
    mine = po.party(party.role)
    if mine is None:
        k = len(po.parties)
        po.parties.append(party.model_copy(deep=True))
        for key, src in head.sources.items():
            if key.startswith(f"parties[{i}]."):
                po.sources[f"parties[{k}]." + key.split(".", 1)[1]] = src
        return
    for attr in ("name", "id", "id_qualifier", "city", "state", "postal_code", "country"):
        if getattr(mine, attr) is None and getattr(party, attr) is not None:
            setattr(mine, attr, getattr(party, attr))
    if not mine.address_lines:
        mine.address_lines = list(party.address_lines)


def parse_xlsx(data: bytes, *, document: str | None = None, limits: SheetLimits | None = None) -> SheetDocument:
    """Read every sheet of an XLSX order workbook; never raises."""
    limits = limits or SheetLimits()
    out = SheetDocument(document=document)
    if len(data) > limits.max_bytes:
        out.findings.append(_f(Severity.ERROR, "oversized", f"{len(data)} bytes is over the limit", document))
        return out
    problems = check_zip(data, limits, document=document)
    if problems:
        out.findings.extend(problems)
        return out
    try:
        import openpyxl

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            per_sheet: list[tuple[list[PurchaseOrder], list[Finding]]] = []
            try:
                for ws in wb.worksheets:
                    rows: list[list[str]] = []
                    for row in ws.iter_rows(max_col=limits.max_cols):
                        if len(rows) >= limits.max_rows:
                            out.findings.append(
                                _f(
                                    Severity.ERROR,
                                    "too_many_rows",
                                    f"sheet {ws.title}: over {limits.max_rows} rows",
                                    document,
                                )
                            )
                            break
                        rows.append([_cell_text(c.value, getattr(c, "number_format", None)) for c in row])
                    if not any(any(v for v in r) for r in rows):
                        continue
                    grid = _Grid(rows, ws.title, document)
                    sheet_findings: list[Finding] = []
                    per_sheet.append((_orders_from_grid(grid, sheet_findings, limits), sheet_findings))
                    out.findings.extend(_injections(grid))
            finally:
                wb.close()
            orders, findings = _join_sheets(per_sheet, document)
            out.purchase_orders.extend(orders)
            out.findings[:0] = findings
    except Exception as exc:
        out.findings.append(
            _f(
                Severity.ERROR,
                "corrupt_xlsx",
                f"the workbook cannot be read: {type(exc).__name__}: {str(exc)[:200]}",
                document,
            )
        )
    if not out.purchase_orders and not any(f.severity == Severity.ERROR for f in out.findings):
        out.findings.append(_f(Severity.WARNING, "no_order_found", "no order found in any sheet", document))
    return out
