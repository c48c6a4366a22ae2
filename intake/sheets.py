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
import warnings
import zipfile
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
    "ship_to_postal", "currency", "customer",
}  # fmt: skip


class _Grid:
    def __init__(self, rows: list[list[str]], sheet: str, document: str | None) -> None:
        self.rows = rows
        self.sheet = sheet
        self.document = document

    def src(self, r: int, c: int) -> Source:
        """``r`` and ``c`` are 0-based here; paths are the spreadsheet's 1-based A1 names."""
        return Source(kind="sheet", document=self.document, path=f"{self.sheet}!{_col_letter(c + 1)}{r + 1}")


def _party_from_text(text: str) -> Party:
    parts = [p.strip() for p in text.replace("\r", "").replace(";", "\n").split("\n") if p.strip()]
    if len(parts) == 1 and text.count(",") >= 2:
        parts = [p.strip() for p in text.split(",") if p.strip()]
    return Party(role="ST", name=parts[0] if parts else None, address_lines=parts[1:])


class _OrderBuilder:
    def __init__(self, grid: _Grid, findings: list[Finding], order: DateOrder, mark: str) -> None:
        self.grid = grid
        self.findings = findings
        self.order: DateOrder = order
        self.mark = mark
        self.po = PurchaseOrder(document_type="sheet")

    def set_header(self, fld: str, value: str, r: int, c: int) -> None:
        po, src = self.po, self.grid.src(r, c)
        value = value.strip()
        if not value:
            return
        if fld == "po_number":
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
        elif fld in ("po_date", "delivery_date"):
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
        elif fld == "currency":
            po.currency = value.upper()[:3]
            po.sources["currency"] = src
        elif fld == "customer":
            if po.party("BY") is None:
                po.sources[f"parties[{len(po.parties)}].name"] = src
                po.parties.append(Party(role="BY", name=value))
        elif fld.startswith("ship_to"):
            party = po.party("ST")
            if party is None:
                party = Party(role="ST")
                po.parties.append(party)
            k = po.parties.index(party)
            if fld == "ship_to":
                if party.name is None:
                    parsed_party = _party_from_text(value)
                    party.name, party.address_lines = parsed_party.name, parsed_party.address_lines
                    po.sources[f"parties[{k}].name"] = src
            else:
                attr = {"ship_to_name": "name", "ship_to_city": "city", "ship_to_state": "state",
                        "ship_to_postal": "postal_code"}[fld]  # fmt: skip
                if getattr(party, attr) is None:
                    setattr(party, attr, value)
                    po.sources[f"parties[{k}].{attr}"] = src


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


def _orders_from_grid(grid: _Grid, findings: list[Finding], limits: SheetLimits) -> list[PurchaseOrder]:
    rows = grid.rows
    flat = "\n".join(" ".join(r) for r in rows[:200])
    order = guess_date_order(flat)
    mark = guess_decimal_mark(flat)
    header_row, header = None, None
    for r, row in enumerate(rows[: limits.header_scan_rows]):
        found = classify_header(row)
        if found is not None:
            header_row, header = r, found
            break
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
    group_col = next((i for i, f in header.items() if f == "po_number"), None)
    builders: dict[str, _OrderBuilder] = {}
    for r in range(header_row + 1, len(rows)):
        row = rows[r]
        if not any(v.strip() for v in row):
            continue
        if any(is_totals_text(v) for v in row[:2] if v.strip()):
            break
        key = row[group_col].strip() if group_col is not None and group_col < len(row) else ""
        if key not in builders:
            b = _OrderBuilder(grid, findings, order, mark)
            b.po = top.po.model_copy(deep=True)
            builders[key] = b
        b = builders[key]
        for c, fld in header.items():
            if fld in _HEADER_FIELDS and c < len(row):
                b.set_header(fld, row[c], r, c)
        cells = [Cell(v, grid.src(r, c)) for c, v in enumerate(row)]
        lines_from_rows(header, [cells], b.po, findings, decimal_mark=mark, stop_at_totals=False)
    out = [b.po for b in builders.values()]
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


def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float):
        d = Decimal(repr(v))
        return format(d.normalize(), "f") if d == d.to_integral_value() else repr(v)
    return str(v).strip()


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
            try:
                for ws in wb.worksheets:
                    rows: list[list[str]] = []
                    for row in ws.iter_rows(values_only=True, max_col=limits.max_cols):
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
                        rows.append([_cell_text(v) for v in row])
                    if not any(any(v for v in r) for r in rows):
                        continue
                    grid = _Grid(rows, ws.title, document)
                    out.purchase_orders.extend(_orders_from_grid(grid, out.findings, limits))
                    out.findings.extend(_injections(grid))
            finally:
                wb.close()
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
