"""EDIFACT ORDERS parsing against the real public samples in ../shared/corpora."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from intake.edifact import parse_edifact
from intake.model import Severity
from tests.intake.conftest import BOTS_EDIFACT, EDIFACT_DIR


def test_bots_orders_match_expected_xml() -> None:
    by_ref = {}
    for path in sorted((BOTS_EDIFACT / "in").iterdir()):
        doc = parse_edifact(path.read_bytes(), document=path.name)
        assert not [f for f in doc.all_findings() if f.severity is Severity.ERROR], path.name
        for m in doc.messages:
            by_ref[m.reference] = m
    expected_files = sorted((BOTS_EDIFACT / "expected-xml").glob("*.xml"))
    assert len(expected_files) == len(by_ref) == 26
    for xml_path in expected_files:
        root = ET.parse(xml_path).getroot()
        msg = by_ref[root.findtext("_0062") or ""]
        po = msg.purchase_order
        assert po is not None
        assert po.po_number == root.findtext("BGM/_1004"), xml_path.name
        lins = root.findall(".//LIN")
        assert len(po.lines) == len(lins), xml_path.name
        for line, lin in zip(po.lines, lins, strict=True):
            assert line.line_number == lin.findtext("_1082")
            qtys = {q.findtext("_C186.6063"): q.findtext("_C186.6060") for q in lin.findall("QTY")}
            assert line.quantity == Decimal(qtys.get("21") or lin.findtext("QTY/_C186.6060") or "nan")
            price = lin.findtext("PRI/_C509.5118")
            assert line.unit_price == (Decimal(price) if price else None)
            ids = [(lin.findtext("_C212.7143"), lin.findtext("_C212.7140"))]
            ids += [(p.findtext("_C212_1.7143"), p.findtext("_C212_1.7140")) for p in lin.findall("PIA")]
            assert [(p.qualifier, p.value) for p in line.product_ids] == ids


def test_parties_dates_and_sources() -> None:
    path = BOTS_EDIFACT / "in" / "orders01.edi"
    text = path.read_text()
    po = parse_edifact(text, document="orders01.edi").purchase_orders[0]
    assert str(po.po_date) == "2005-08-19"
    assert str(po.requested_delivery_date) == "2005-08-29"
    assert po.seller is not None
    assert po.seller.id == "PARTNER2"
    assert po.buyer is not None
    assert po.buyer.id == "PARTNER1"
    assert po.bill_to is not None
    assert po.bill_to.role == "IV"
    assert po.ship_to is not None
    assert po.ship_to.role == "DP"
    assert po.lines[0].gtin == "8712345678901"
    src = po.source_of("lines[2].quantity")
    assert src is not None
    assert src.path == "QTY[3].01.02"
    assert src.span is not None
    assert text[src.span[0] : src.span[1]] == "QTY+21:1.00"
    assert po.source_of("lines[0].product_ids[0]").path == "LIN[1].03.01"  # type: ignore[union-attr]


def test_pydifact_samples() -> None:
    doc = parse_edifact((EDIFACT_DIR / "pydifact" / "order.edi").read_bytes())
    po = doc.purchase_orders[0]
    assert (po.po_number, len(po.lines), po.lines[1].gtin) == ("801715918011", 2, "5020436373108")
    assert po.lines[1].quantity == Decimal(8)
    assert "unz_missing" in {f.code for f in doc.all_findings()}
    doc2 = parse_edifact((EDIFACT_DIR / "pydifact" / "order2.edi").read_bytes())
    po2 = doc2.purchase_orders[0]
    assert (po2.po_number, po2.lines[0].buyer_part_number) == ("PO123456", "ABC123")
    assert po2.lines[0].unit_price == Decimal("25.00")
    assert po2.declared_line_count == 1
    wiki = parse_edifact((EDIFACT_DIR / "pydifact" / "wikipedia_en.edi").read_bytes())
    assert wiki.purchase_orders == []
    assert wiki.messages[0].message_type == "PAORES"
    assert not [f for f in wiki.all_findings() if f.severity is Severity.ERROR]


SAMPLE = (
    "UNA:+,? '"
    "UNB+UNOC:3+SENDER:14+RECEIVER:14+240101:1200+REF1'"
    "UNH+M1+ORDERS:D:01B:UN:EAN010'"
    "BGM+220+PO?+77+9'"
    "DTM+137:20240101:102'"
    "CUX+2:EUR:9'"
    "NAD+DP+4012345000009::9++Shop?'s Name+Main Street 1+Berlin++10115+DE'"
    "LIN+1++4000862141404:SRV'"
    "PIA+5+ABC-1:SA'"
    "IMD+F++:::Box 10?+2 ?:pcs'"
    "QTY+21:12,5:KGM'"
    "PRI+AAA:3,10'"
    "MOA+203:38,75'"
    "UNS+S'"
    "MOA+79:38,75'"
    "CNT+2:1'"
    "UNT+15+M1'"
    "UNZ+1+REF1'"
)


def test_release_character_decimal_comma_and_fields() -> None:
    doc = parse_edifact(SAMPLE)
    assert not [f for f in doc.all_findings() if f.severity is not Severity.INFO]
    po = doc.purchase_orders[0]
    assert po.po_number == "PO+77"
    assert po.currency == "EUR"
    ship = po.ship_to
    assert ship is not None
    assert (ship.name, ship.address_lines, ship.city, ship.postal_code, ship.country) == (
        "Shop's Name",
        ["Main Street 1"],
        "Berlin",
        "10115",
        "DE",
    )
    line = po.lines[0]
    assert line.description == "Box 10+2 :pcs"
    assert (line.quantity, line.unit) == (Decimal("12.5"), "KGM")
    assert (line.unit_price, line.amount) == (Decimal("3.10"), Decimal("38.75"))
    assert (line.gtin, line.vendor_part_number) == ("4000862141404", "ABC-1")
    assert po.total_amount == Decimal("38.75")


def test_unt_and_unz_mismatches_are_findings() -> None:
    bad = SAMPLE.replace("UNT+15+M1", "UNT+9+M2").replace("UNZ+1+REF1", "UNZ+3+REF9")
    codes = {f.code for f in parse_edifact(bad).all_findings()}
    assert {"unt_count_mismatch", "unt_reference_mismatch", "unz_count_mismatch", "unz_reference_mismatch"} <= codes
    truncated = SAMPLE[: SAMPLE.index("UNS")]
    doc = parse_edifact(truncated)
    assert {"unt_missing", "unz_missing"} <= {f.code for f in doc.all_findings()}
    assert doc.purchase_orders[0].lines[0].quantity == Decimal("12.5")
