"""X12 850 parsing and 997 generation against the real public samples in ../shared/corpora."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from intake.model import PurchaseOrder, Severity
from intake.x12 import X12Document, decode, generate_997, parse_x12, tokenize
from tests.intake.conftest import BOTS_X12, X12_DIR

BOTS_INPUTS = sorted((BOTS_X12 / "in").iterdir())
# bots' mapping of X12 product-id qualifiers to its XML tags
BOTS_ID_KIND = {"UP": "gtin", "EN": "gtin", "IN": "byart", "BP": "byart", "VN": "suart"}
NOW = datetime(2024, 5, 6, 7, 8)


def _parse(path: Path) -> X12Document:
    return parse_x12(path.read_bytes(), document=path.name)


def _line_signature(po: PurchaseOrder) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for line in po.lines:
        ids = frozenset((BOTS_ID_KIND[p.qualifier], p.value) for p in line.product_ids if p.qualifier in BOTS_ID_KIND)
        out.append((line.quantity, line.unit, line.unit_price, ids))
    return out


def _expected_signature(msg: ET.Element) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for line in msg.findall("lines/line"):
        price = line.findtext("price")
        ids = frozenset((k, line.findtext(k)) for k in ("gtin", "byart", "suart") if line.findtext(k))
        qty = Decimal(line.findtext("ordqua") or "nan")
        out.append((qty, line.findtext("ordunit"), Decimal(price) if price else None, ids))
    return out


def test_bots_850s_match_expected_xml() -> None:
    parsed: dict[tuple[str, str], list[list[tuple[object, ...]]]] = defaultdict(list)
    n_tx = 0
    for path in BOTS_INPUTS:
        doc = _parse(path)
        for ic in doc.interchanges:
            for g in ic.groups:
                for tx in g.transactions:
                    assert tx.purchase_order is not None, path.name
                    n_tx += 1
                    parsed[(ic.sender_id, tx.purchase_order.po_number or "")].append(_line_signature(tx.purchase_order))
    expected_files = sorted((BOTS_X12 / "expected-xml").glob("*.xml"))
    assert n_tx == len(expected_files) == 36
    for xml_path in expected_files:
        msg = ET.parse(xml_path).getroot()
        key = (msg.findtext("sender") or "", msg.findtext("docnum") or "")
        assert key in parsed, f"{xml_path.name}: no parsed PO {key}"
        expected = _expected_signature(msg)
        assert expected in parsed[key], f"{xml_path.name}: lines differ for {key}"


def test_bots_descriptions_and_header_fields() -> None:
    doc = _parse(BOTS_X12 / "in" / "850-004010-02.x12")
    po = doc.purchase_orders[0]
    assert po.po_number == "95018017"
    assert str(po.po_date) == "2007-09-29"
    assert po.purpose_code == "00"
    assert po.order_type == "SA"
    ship_to = po.ship_to
    assert ship_to is not None
    assert ship_to.name == "JIT MANUFACTURING"
    assert ship_to.address_lines == ["BUILDING 3B", "2001 ENTERPRISE PARK"]
    assert (ship_to.city, ship_to.state, ship_to.country) == ("JUAREZ", "CH", "MEX")
    bill_to = po.bill_to
    assert bill_to is not None
    assert bill_to.additional_names == ["ACCOUNTS  PAYABLE DEPARTMENT"]
    seller = po.seller
    assert seller is not None
    assert seller.name == "UNIVERSAL WIDGETS"
    line = po.lines[0]
    assert line.description == "HIGH PERFORMANCE WIDGET"
    assert line.buyer_part_number == "525"
    assert line.vendor_part_number == "X357-W2"
    assert line.price_basis == "TE"


def test_header_segments_cur_ref_per_dtm_td5_sac() -> None:
    doc = _parse(BOTS_X12 / "in" / "850-004010-10.x12")
    po = doc.purchase_orders[0]
    assert [r.qualifier for r in po.references] == ["19", "IA", "2P", "CO"]
    assert po.contacts[0].function == "BD"
    assert [c.qualifier for c in po.contacts[0].communications] == ["TE", "FX", "EM"]
    assert str(po.requested_ship_date) == "2006-12-05"
    assert str(po.requested_delivery_date) == "2006-12-05"
    assert po.carriers[0].id == "UPSN"
    assert po.carriers[0].routing == "UPS GROUND"
    assert po.allowances_charges[0].indicator == "N"
    doc5 = _parse(BOTS_X12 / "in" / "850-004010-05.x12")
    assert doc5.purchase_orders[0].currency == "USD"
    contact = doc5.purchase_orders[0].contacts[0]
    assert (contact.name, contact.party_role) == ("Buyer Name", "BT")
    doc12 = _parse(BOTS_X12 / "in" / "850-004010-12.x12")
    sac = doc12.purchase_orders[0].allowances_charges[0]
    assert (sac.indicator, sac.code, sac.amount) == ("A", "E750", Decimal("0.80"))  # SAC05 is N2 (cents)
    assert doc12.purchase_orders[0].lines[0].pack is not None
    assert doc12.purchase_orders[0].lines[0].pack.pack == 4  # type: ignore[union-attr]
    assert doc12.purchase_orders[0].lines[0].gtin == "499762800094"


def test_source_pointers_point_at_the_value() -> None:
    path = X12_DIR / "node-x12" / "850.edi"
    text = decode(path.read_bytes())
    po = parse_x12(text, document="850.edi").purchase_orders[0]
    src = po.source_of("lines[1].unit_price")
    assert src is not None
    assert (src.kind, src.path, src.document) == ("edi", "PO1[2].04", "850.edi")
    assert src.span is not None
    assert text[src.span[0] : src.span[1]] == "13.79"
    num = po.source_of("po_number")
    assert num is not None
    assert num.span is not None
    assert num.path == "BEG[1].03"
    assert text[num.span[0] : num.span[1]] == "08292233294"
    pid = po.source_of("lines[0].product_ids[2]")
    assert pid is not None
    assert pid.path == "PO1[1].11"


def test_node_x12_matches_partial_mapping() -> None:
    expected = json.loads((X12_DIR / "node-x12" / "850_map_result.json").read_text())
    doc = _parse(X12_DIR / "node-x12" / "850.edi")
    tx = doc.transactions[0]
    po = tx.purchase_order
    assert po is not None
    assert tx.control_number == expected["ControlNumber"]
    assert po.po_number == expected["OrderNumber"]
    ship = po.ship_to
    assert ship is not None
    exp_ship = expected["ShipTo"]
    got = (ship.name, ship.id, ship.address_lines[0], ship.city, ship.state, ship.postal_code)
    keys = ("Name", "Destination", "Address", "City", "State", "Zip")
    assert got == tuple(exp_ship[k] for k in keys)
    assert [str(line.quantity) for line in po.lines] == [ol["Quantity"] for ol in expected["OrderLines"]]
    assert [str(tx.segment_count), tx.control_number] == expected["Trailer"]


@pytest.mark.parametrize(
    ("name", "po_numbers", "line_counts"),
    [
        ("node-x12/850.edi", ["08292233294"], [6]),
        ("node-x12/850_2.edi", ["08292233294"], [6]),
        ("node-x12/850_3.edi", ["----------"], [1]),
        ("node-x12/850_fat.edi", ["08292233294", "08292233294"], [6, 6]),
        ("edi-net/x12.850.edi", ["1000012"], [1]),
        ("edi-net/x12.850a.edi", ["4600000406"], [3]),
        ("edi-net/x12.850.issue135.edi", ["740150", "740151"], [10, 11]),
    ],
)
def test_other_samples(name: str, po_numbers: list[str], line_counts: list[int]) -> None:
    doc = _parse(X12_DIR / name)
    assert [po.po_number for po in doc.purchase_orders] == po_numbers
    assert [len(po.lines) for po in doc.purchase_orders] == line_counts
    assert all(t.ack_code == "A" for t in doc.transactions)


def test_855_is_reported_not_mapped() -> None:
    doc = _parse(X12_DIR / "node-x12" / "855.edi")
    assert doc.purchase_orders == []
    assert any(f.code == "unsupported_set" for f in doc.all_findings())


def test_edi_net_quirks_bom_nbsp_padding_and_missing_terminator() -> None:
    doc = _parse(X12_DIR / "edi-net" / "x12.850.edi")
    ic = doc.interchanges[0]
    assert ic.sender_id.endswith("000123456") or "000123456" in ic.sender_id
    po = doc.purchase_orders[0]
    assert po.ship_to is not None
    assert po.ship_to.postal_code == "11788-1234"
    assert {f.code for f in doc.all_findings()} >= {"iea_control_mismatch"}
    doc135 = _parse(X12_DIR / "edi-net" / "x12.850.issue135.edi")
    codes = {f.code for f in doc135.all_findings()}
    assert {"isa16_missing", "missing_terminator"} <= codes
    assert doc135.purchase_orders[0].lines[2].line_number == "30"


@pytest.mark.parametrize(
    ("name", "element", "component", "segment", "suffix"),
    [
        ("850-004010VICS-01.x12", "\x7f", ">", "\x15", ""),
        ("850_01.x12", "~", "|", "\n", ""),
        ("850-02.x12", "|", ">", "~", ""),
        ("850-004010-10.x12", "*", "}", "\x15", "\r\n"),
        ("850-004010-05.x12", "*", ">", "~", "\r\n"),
        ("850-004010.13.x12", "*", ">", "\r", ""),
    ],
)
def test_delimiters_read_from_isa(name: str, element: str, component: str, segment: str, suffix: str) -> None:
    ic = _parse(BOTS_X12 / "in" / name).interchanges[0]
    d = ic.delimiters
    assert (d.element, d.component, d.segment, d.segment_suffix) == (element, component, segment, suffix)


def test_several_isa_envelopes_in_one_file() -> None:
    doc = _parse(BOTS_X12 / "in" / "850-004010-12.x12")
    assert len(doc.interchanges) == 3
    assert [g.control_number for ic in doc.interchanges for g in ic.groups] == ["150", "151", "152"]
    assert not [f for f in doc.all_findings() if f.severity is Severity.ERROR]


def test_unpadded_isa_and_repetition_separator() -> None:
    text = (
        "ISA*00**00**ZZ*SENDER*ZZ*RECEIVER*240101*1200*^*00501*7*0*T*:~"
        "GS*PO*S*R*20240101*1200*9*X*005010~ST*850*0001~BEG*00*SA*PO-1**20240101~"
        "PO1*1*2*EA*3.5**UP*012345678905~CTT*1~SE*5*0001~GE*1*9~IEA*1*7~"
    )
    doc = parse_x12(text)
    assert doc.interchanges[0].delimiters.repetition == "^"
    assert doc.interchanges[0].delimiters.component == ":"
    po = doc.purchase_orders[0]
    assert (po.po_number, po.lines[0].quantity, po.lines[0].upc) == ("PO-1", Decimal(2), "012345678905")
    assert not [f for f in doc.all_findings() if f.severity is not Severity.INFO]


# --- 997 -------------------------------------------------------------------------------------------


def _ack_structure(text: str) -> dict[tuple[str, str], tuple[tuple[tuple[str, str], ...], str]]:
    """(original GS sender, GS06) -> ((ST02, AK5-01) per AK2, AK9-01) for every 997 in ``text``."""
    out = {}
    interchanges, _ = tokenize(decode(text))
    for ic in interchanges:
        receiver = ""
        key: tuple[str, str] | None = None
        sets: list[tuple[str, str]] = []
        for seg in ic.segments:
            if seg.tag == "GS":
                receiver = seg.get(3)
            elif seg.tag == "AK1":
                key, sets = (receiver, seg.get(2)), []
            elif seg.tag == "AK2":
                sets.append((seg.get(2), ""))
            elif seg.tag == "AK5":
                sets[-1] = (sets[-1][0], seg.get(1))
            elif seg.tag == "AK9":
                assert key is not None
                out[key] = (tuple(sets), seg.get(1))
    return out


def _our_997s() -> dict[tuple[str, str], tuple[tuple[tuple[str, str], ...], str]]:
    ours = {}
    for n, path in enumerate(BOTS_INPUTS, start=1):
        for ic in _parse(path).interchanges:
            ack = generate_997(ic, interchange_control_number=n, group_control_number=n, now=NOW)
            ours.update(_ack_structure(ack))
    return ours


def test_generated_997s_agree_with_bots() -> None:
    ours = _our_997s()
    expected: dict[tuple[str, str], tuple[tuple[tuple[str, str], ...], str]] = {}
    for path in sorted((BOTS_X12 / "expected-997").glob("*.x12")):
        expected.update(_ack_structure(path.read_text()))
    assert len(expected) >= 14
    for key, value in expected.items():
        assert ours.get(key) == value, key


def test_997_envelope_is_valid_and_swapped() -> None:
    path = BOTS_X12 / "in" / "850-004010-05.x12"
    ic = _parse(path).interchanges[0]
    ack = generate_997(ic, interchange_control_number=42, group_control_number=7, first_set_control_number=100, now=NOW)
    assert ack.startswith(
        "ISA*00*          *00*          *01*Duns           *01*111111111      *240506*0708*|*00403*000000042*0*P*>~\r\n"
    )
    assert "GS*FA*Suppliers Duns*092173731*20240506*0708*7*X*004010~\r\n" in ack
    assert "AK1*PO*8~\r\nAK2*850*0007~\r\nAK5*A~\r\nAK2*850*0001~\r\nAK5*A~\r\nAK9*A*2*2*2~\r\nSE*8*0100~" in ack
    reparsed = parse_x12(ack)
    assert not [f for f in reparsed.all_findings() if f.severity is not Severity.INFO]
    assert [t.set_id for t in reparsed.transactions] == ["997"]
    # deterministic
    again = generate_997(
        ic, interchange_control_number=42, group_control_number=7, first_set_control_number=100, now=NOW
    )
    assert ack == again


def test_997_rejects_bad_counts_and_control_numbers() -> None:
    text = (BOTS_X12 / "in" / "850-02.x12").read_text()
    text = text.replace("SE|12|0001", "SE|99|0001").replace("SE|7|0002", "SE|7|9999")
    ic = parse_x12(text).interchanges[0]
    assert [t.ack_code for t in ic.groups[0].transactions] == ["R", "R", "A", "A"]
    ack = generate_997(ic, interchange_control_number=1, group_control_number=1, now=NOW)
    assert "AK2|850|0001~AK5|R|4~" in ack
    assert "AK2|850|0002~AK5|R|3~" in ack
    assert "AK9|P|4|4|2~" in ack
