"""Spreadsheets with a broad header vocabulary (issue 19, item 4).

The CSV and XLSX files of ``po-erp-styles`` (a generator written without reading this code) are
read in place and compared with their ``gold.json``; small hand-made sheets in other spellings
show the rules are general: header names normalised (underscores, case, punctuation), header rows
below a title block or preamble, totals rows, a workbook with the header on one sheet and the
lines on another, ZIP and UPC number cells, and the identifiers a buyer sends (account number,
GLN, EDI id, ship-to code) on the parties, where they win over names.
"""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from intake.extract import column_field, normalize_header
from intake.model import PurchaseOrder
from intake.sheets import parse_csv, parse_xlsx
from tests.conftest import CORPORA

ERP = CORPORA / "po-erp-styles"
GOLD: dict[str, dict[str, Any]] = json.loads((ERP / "gold.json").read_text()) if (ERP / "gold.json").exists() else {}
SHEETS = sorted(name for name, g in GOLD.items() if g["format"] in ("csv", "xlsx"))


def _norm(s: object) -> str:
    return "".join(ch for ch in str(s or "").upper() if ch.isalnum())


def _parse(name: str, data: bytes) -> tuple[list[PurchaseOrder], list[str]]:
    doc = parse_xlsx(data, document=name) if name.endswith(".xlsx") else parse_csv(data, document=name)
    return doc.purchase_orders, [f.code for f in doc.findings]


@pytest.mark.skipif(not SHEETS, reason="po-erp-styles corpus not present")
@pytest.mark.parametrize("name", SHEETS)
def test_corpus_sheet_matches_gold(name: str) -> None:
    gold = GOLD[name]
    orders, codes = _parse(name, (ERP / "docs" / name).read_bytes())
    [po] = orders
    assert po.po_number == gold["po_number"]
    assert po.po_date == date.fromisoformat(gold["po_date"])
    st_ = po.ship_to
    assert st_ is not None
    g_ship = gold["ship_to"]
    assert st_.postal_code == g_ship["postal_code"]  # leading zeros kept (06103, 03101)
    assert (_norm(st_.city), st_.state) == (_norm(g_ship["city"]), g_ship["state"])
    assert _norm(g_ship["street"]) in {_norm(a) for a in st_.address_lines}
    assert len(po.lines) == len(gold["lines"])  # totals, freight and BOM rows are not lines
    for ln, gl in zip(po.lines, gold["lines"], strict=True):
        parts = {_norm(p.value) for p in ln.product_ids}
        assert _norm(gl["buyer_part_number"]) in parts
        if gl.get("vendor_part_number"):
            assert _norm(gl["vendor_part_number"]) in parts
        assert ln.quantity == Decimal(str(gl["quantity"]))
        assert ln.unit_price is not None
        assert abs(ln.unit_price - Decimal(str(gl["unit_price"]))) < Decimal("0.00005")
    if gold.get("ship_to_code"):
        assert (st_.id, st_.id_qualifier) == (gold["ship_to_code"], "92")
    assert "po_number_missing" not in codes
    assert "no_header_row" not in codes


@pytest.mark.skipif(not SHEETS, reason="po-erp-styles corpus not present")
def test_upc_columns_keep_their_leading_zeros() -> None:
    for name in SHEETS:
        gold = GOLD[name]
        if not gold.get("upc"):
            continue
        [po], _ = _parse(name, (ERP / "docs" / name).read_bytes())
        upcs = [ln.upc or ln.gtin for ln in po.lines]
        assert upcs == [str(u) for u in gold["upc"]], name


@pytest.mark.skipif(not SHEETS, reason="po-erp-styles corpus not present")
def test_item_column_holding_line_numbers_is_the_line_number() -> None:
    name = next(n for n in SHEETS if "header_and_lines_on_separate_sheets" in GOLD[n]["traps"])
    [po], codes = _parse(name, (ERP / "docs" / name).read_bytes())
    assert [ln.line_number for ln in po.lines] == [str(gl["line_no"]) for gl in GOLD[name]["lines"]]
    assert all(ln.buyer_part_number and ln.vendor_part_number for ln in po.lines)
    assert "header_on_other_sheet" in codes


# --- hand-made sheets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("UPC_NUMBER", "upc"),
        ("Upc-Number", "upc"),
        ("QTY_ORDERED", "quantity"),
        ("Qty. Ordered", "quantity"),
        ("ITEM_DESC", "description"),
        ("Ext. Cost", "amount"),
        ("UNIT_COST", "unit_price"),
        ("Unit Price (USD)", "unit_price"),
        ("GTIN-14", "gtin"),
        ("EAN", "gtin"),
        ("Item#", "sku"),
        ("Buyer Part No.", "buyer_sku"),
        ("MFR_PART_NO", "vendor_sku"),
        ("Customer Account", "customer_account"),
        ("CUST_ACCT", "customer_account"),
        ("GLN", "customer_gln"),
        ("Ship-To Code", "ship_to_code"),
        ("SHIP_TO_ADDR1", "ship_to_street"),
        ("Ship-To Postal Code", "ship_to_postal"),
        ("Bill To", "bill_to"),
        ("PO_NUMBER", "po_number"),
        ("Deliver No Later Than", "delivery_date"),
    ],
)
def test_header_vocabulary(header: str, field: str) -> None:
    assert column_field(header) == field, normalize_header(header)


def test_flat_export_with_account_gln_and_repeated_header_fields() -> None:
    data = (
        b"Cust_Acct;Buyer_GLN;PO_Nbr;Order_Date;Ship_To_Name;Ship_To_Addr1;Ship_To_City;Ship_To_State;"
        b"Ship_To_Zip;Ln;Upc_Number;Vendor_Item_No;Qty_Ord;UoM;Unit_Cost\n"
        b"A-7781;0614141000012;77-4410;2027-03-09;Birch Lane Market #12;55 Elm St;Providence;RI;02903;1;"
        b"012345678905;BL-100;4;CS;18.2500\n"
        b"A-7781;0614141000012;77-4410;2027-03-09;Birch Lane Market #12;55 Elm St;Providence;RI;02903;2;"
        b"009876543210;BL-200;12;EA;1.0500\n"
        b";;;;;;;;;;;;;;Freight 25.00\n"
    )
    [po], codes = _parse("flat.csv", data)
    assert po.po_number == "77-4410"
    assert po.po_date == date(2027, 3, 9)
    buyer = po.buyer
    assert buyer is not None
    # The first identifier the buyer sent is kept as the buyer's id.
    assert (buyer.id, buyer.id_qualifier) == ("A-7781", "91")
    st_ = po.ship_to
    assert st_ is not None
    assert (st_.name, st_.address_lines, st_.city, st_.state, st_.postal_code) == (
        "Birch Lane Market #12",
        ["55 Elm St"],
        "Providence",
        "RI",
        "02903",
    )
    assert [(ln.line_number, ln.upc, ln.vendor_part_number, ln.quantity, ln.unit_price) for ln in po.lines] == [
        ("1", "012345678905", "BL-100", Decimal("4"), Decimal("18.2500")),
        ("2", "009876543210", "BL-200", Decimal("12"), Decimal("1.0500")),
    ]
    assert "no_header_row" not in codes


def test_preamble_title_and_header_lower_down_with_totals_after() -> None:
    data = (
        b"ACME HARDWARE CO-OP\r\nPurchase Order\r\n\r\n"
        b'PO No.:,HW-9001\r\nDate:,03/10/2027\r\nShip To:,"Co-op Store 4, 120 Lake Rd, Duluth, MN 55802"\r\n'
        b"Account No.,HW-CUST-19\r\n\r\n"
        b"Line #,Customer Item,Item Description,Order Qty,U/M,Cost Each,Extension\r\n"
        b'1,CI-55,"Hinge, 3"" brass",24,EA,2.10,50.40\r\n'
        b"2,CI-56,Latch,10,EA,4.00,40.00\r\n"
        b",,Sub-Total,,,,90.40\r\n,,Shipping,,,,12.00\r\nGrand Total,,,,,,102.40\r\n"
    )
    [po], _ = _parse("preamble.csv", data)
    assert po.po_number == "HW-9001"
    assert po.po_date == date(2027, 3, 10)
    st_ = po.ship_to
    assert st_ is not None
    assert (st_.name, st_.address_lines, st_.city, st_.state, st_.postal_code) == (
        "Co-op Store 4",
        ["120 Lake Rd"],
        "Duluth",
        "MN",
        "55802",
    )
    assert po.buyer is not None
    assert po.buyer.id == "HW-CUST-19"
    assert [(ln.buyer_part_number, ln.quantity, ln.unit_price) for ln in po.lines] == [
        ("CI-55", Decimal("24"), Decimal("2.10")),
        ("CI-56", Decimal("10"), Decimal("4.00")),
    ]


def _workbook(sheets: dict[str, list[list[object]]], formats: dict[tuple[str, str], str] | None = None) -> bytes:
    wb = openpyxl.Workbook()
    first = True
    for title, rows in sheets.items():
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        first = False
        ws.title = title
        for r in rows:
            ws.append(r)
    for (title, ref), fmt in (formats or {}).items():
        wb[title][ref].number_format = fmt
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_workbook_with_header_sheet_and_lines_sheet() -> None:
    data = _workbook(
        {
            "Order": [
                ["PO No.", 40021],
                ["PO Date", date(2027, 4, 1)],
                ["Customer #", "C-0042"],
                ["Ship To Code", "DC-EAST"],
                ["Ship To", "East DC\n9 Rail Spur Rd\nAllentown, PA 18101"],
                ["Bill To", "Head Office, 1 Main St, Reading, PA 19601"],
                ["Vendor #", "V-99"],
            ],
            "Items": [
                ["Item #", "Buyer Part", "Supplier Part", "Description", "Qty", "UOM", "Unit Price", "Line Total"],
                [1, "EC-1", "SP-77", "Cable ties", 5, "BX", 3.5, "=E2*G2"],
                [2, "EC-2", "SP-78", "Conduit", 20, "EA", 4.25, "=E3*G3"],
                [None, None, None, "Total", None, None, None, "=SUM(H2:H3)"],
            ],
            "Terms": [["1. Payment 2% 10 net 30 days; 12 CS minimum on 3 pallets."]],
        }
    )
    [po], codes = _parse("two.xlsx", data)
    assert po.po_number == "40021"
    assert po.po_date == date(2027, 4, 1)
    assert po.buyer is not None
    assert (po.buyer.id, po.buyer.id_qualifier) == ("C-0042", "91")
    st_ = po.ship_to
    assert st_ is not None
    assert (st_.id, st_.name, st_.city, st_.postal_code) == ("DC-EAST", "East DC", "Allentown", "18101")
    bt = po.bill_to
    assert bt is not None
    assert (bt.city, bt.postal_code) == ("Reading", "19601")
    assert [(ln.line_number, ln.buyer_part_number, ln.vendor_part_number, ln.quantity) for ln in po.lines] == [
        ("1", "EC-1", "SP-77", Decimal("5")),
        ("2", "EC-2", "SP-78", Decimal("20")),
    ]
    assert "po_number_missing" not in codes
    assert "header_on_other_sheet" in codes


def test_zip_and_upc_number_cells_keep_their_zeros() -> None:
    data = _workbook(
        {
            "Export": [
                ["PO_NUMBER", "SHIP_TO_NAME", "CITY", "STATE", "ZIP", "UPC", "QTY", "PRICE"],
                [123, "Dock 2", "Boston", "MA", 2108, 12345678905, 3, 1.5],
            ]
        },
        formats={("Export", "E2"): "00000", ("Export", "F2"): "000000000000"},
    )
    [po], _ = _parse("zip.xlsx", data)
    assert po.ship_to is not None
    assert po.ship_to.postal_code == "02108"
    assert po.lines[0].upc == "012345678905"


def test_sheet_without_a_line_header_is_a_finding_not_an_order() -> None:
    data = b"Notes\nPlease call 555-0100 about 12 pallets of 3 CS each.\n"
    orders, codes = _parse("notes.csv", data)
    assert orders == []
    assert "no_header_row" in codes
