"""Score the intake parsers on purchase orders this code base did not write.

``../shared/corpora/po-erp-styles`` holds ERP-like PDFs, scans, mails and spreadsheets made by a
generator written without reading OrderOps, each with a gold answer. This module reads each
document with :func:`intake.documents.parse_bytes` (what ``orderops intake`` does before
validation) and compares the first purchase order with the gold: PO number, PO date, the ship-to
postal code, the line count, and per line the part number, quantity, unit and unit price.

It scores *parsing* only (no catalogue, no decision): it is the measure to fix extraction classes
against. ``python -m evals.external_po [DIR]`` prints one row per document and the totals.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from intake.documents import parse_bytes
from intake.model import PurchaseOrder

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "po-erp-styles"


def _norm_id(s: object) -> str:
    return "".join(ch for ch in str(s or "").upper() if ch.isalnum())


def _dec(v: object) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(str(v))
    except ArithmeticError:
        return None


@dataclass
class ExternalScore:
    """The comparison of one document with its gold."""

    name: str
    fmt: str
    po_number: bool
    po_date: bool
    postal_code: bool
    line_count: tuple[int, int]
    """(gold lines, lines read)."""
    line_fields: tuple[int, int]
    """(line fields right, line fields in gold): part, quantity, unit price per gold line."""
    errors: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """PO number, date, ship-to ZIP, line count and every line field right."""
        g, r = self.line_count
        ok, total = self.line_fields
        return self.po_number and self.po_date and self.postal_code and g == r and ok == total


def _parts(po_line: object) -> set[str]:
    ids = getattr(po_line, "product_ids", [])
    return {_norm_id(p.value) for p in ids}


def score_one(name: str, gold: dict[str, object], data: bytes) -> ExternalScore:
    """Parse ``data`` (file ``name``) and compare its first purchase order with ``gold``."""
    _fmt, orders, findings = parse_bytes(data, filename=name, document=name)
    errors = [f"{f.code}: {f.message}" for f in findings if f.severity.value == "error"]
    po: PurchaseOrder | None = orders[0] if orders else None
    gold_lines = list(gold.get("lines") or [])  # type: ignore[call-overload]
    ship: dict[str, object] = gold.get("ship_to") or {}  # type: ignore[assignment]
    if po is None:
        return ExternalScore(name, str(gold.get("format")), False, False, False, (len(gold_lines), 0),
                             (0, 3 * len(gold_lines)), errors)  # fmt: skip
    st = po.ship_to
    zip_ok = bool(st and st.postal_code and str(st.postal_code).startswith(str(ship.get("postal_code"))))
    right = 0
    for i, gl in enumerate(gold_lines):
        line = po.lines[i] if i < len(po.lines) else None
        if line is None:
            continue
        parts = _parts(line)
        wanted = {_norm_id(gl.get(k)) for k in ("buyer_part_number", "vendor_part_number") if gl.get(k)}
        right += bool(parts & wanted)
        right += line.quantity is not None and _dec(gl.get("quantity")) == line.quantity
        gp = _dec(gl.get("unit_price"))
        right += line.unit_price is not None and gp is not None and abs(line.unit_price - gp) < Decimal("0.00005")
    return ExternalScore(
        name=name,
        fmt=str(gold.get("format")),
        po_number=_norm_id(po.po_number) == _norm_id(gold.get("po_number")),
        po_date=str(po.po_date) == str(gold.get("po_date")),
        postal_code=zip_ok,
        line_count=(len(gold_lines), len(po.lines)),
        line_fields=(right, 3 * len(gold_lines)),
        errors=errors,
    )


def score_dir(root: Path = DEFAULT_DIR) -> list[ExternalScore]:
    """Score every document ``gold.json`` names under ``root/docs``."""
    gold: dict[str, dict[str, object]] = json.loads((root / "gold.json").read_text())
    return [score_one(name, g, (root / "docs" / name).read_bytes()) for name, g in sorted(gold.items())]


def format_rows(scores: Iterable[ExternalScore]) -> str:
    """One row per document, then totals."""
    rows = ["document                              po  date zip lines    fields  exact"]
    scores = list(scores)
    for s in scores:
        g, r = s.line_count
        ok, tot = s.line_fields
        rows.append(f"{s.name:<37} {'Y' if s.po_number else '-':>2} {'Y' if s.po_date else '-':>5} "
                    f"{'Y' if s.postal_code else '-':>3} {r:>2}/{g:<3} {ok:>4}/{tot:<4} {'Y' if s.exact else '-':>5}"
                    + (f"  [{s.errors[0][:60]}]" if s.errors else ""))  # fmt: skip
    n = len(scores)
    ok_f = sum(s.line_fields[0] for s in scores)
    tot_f = sum(s.line_fields[1] for s in scores)
    counts = sum(s.line_count[0] == s.line_count[1] for s in scores)
    rows.append(
        f"totals: po {sum(s.po_number for s in scores)}/{n}, date {sum(s.po_date for s in scores)}/{n}, "
        f"zip {sum(s.postal_code for s in scores)}/{n}, line count {counts}/{n}, "
        f"line fields {ok_f}/{tot_f}, exact {sum(s.exact for s in scores)}/{n}"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a developer's command
    args = sys.argv[1:] if argv is None else argv
    print(format_rows(score_dir(Path(args[0]) if args else DEFAULT_DIR)))


if __name__ == "__main__":  # pragma: no cover
    main()
