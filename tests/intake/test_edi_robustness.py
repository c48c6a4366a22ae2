"""EDIFACT and X12 read as their envelopes say, on public samples transformed into the documents
real partners send (issue 19, item 6): a Cyrillic interchange under UNOE, repeated references, an
unknown segment where a NAD should be, a damaged UNB or ISA. None of these inputs is one the
parsers were written against; each starts from a file in ``../shared/corpora`` and changes it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.classify import DocFormat, sniff
from intake.documents import parse_bytes
from intake.edifact import EdifactDocument, decode_edifact, parse_edifact
from intake.model import Finding, Severity
from intake.x12 import X12Document, generate_997, map_850, parse_x12
from intake.x12.envelope import parse_document
from tests.intake.conftest import BOTS_EDIFACT, BOTS_X12, EDIFACT_DIR

NOW = datetime(2024, 5, 6, 7, 8)

ORDER2 = (EDIFACT_DIR / "pydifact" / "order2.edi").read_text()
"""One ORDERS under UNOC, one segment per line."""
ORDERS01 = (BOTS_EDIFACT / "in" / "orders01.edi").read_text()
"""Two ORDERS (references 1-1UNHREF, 1-2UNHREF) in one UNOA interchange."""
ORDERS02 = (BOTS_EDIFACT / "in" / "orders02.edi").read_text()
"""Many interchanges, one message each."""

CYRILLIC_NAD = "NAD+BY+123456789::9++ООО Ромашка+ул. Ленина 5+Москва++101000+RU"


def _codes(doc: EdifactDocument) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in doc.all_findings():
        out.setdefault(f.code, []).append(f)
    return out


def _errors(doc: EdifactDocument) -> set[str]:
    return {f.code for f in doc.all_findings() if f.severity is Severity.ERROR}


# --- character sets ---------------------------------------------------------------------------


def _cyrillic(syntax: str = "UNOE") -> str:
    return ORDER2.replace("UNB+UNOC:3", f"UNB+{syntax}:3").replace("NAD+BY+123456789::9", CYRILLIC_NAD)


def test_unoe_interchange_is_read_as_iso_8859_5() -> None:
    data = _cyrillic().encode("iso8859-5")
    doc = parse_edifact(data, document="cyr.edi")
    buyer = doc.purchase_orders[0].buyer
    assert buyer is not None
    assert (buyer.name, buyer.address_lines, buyer.city) == ("ООО Ромашка", ["ул. Ленина 5"], "Москва")
    assert doc.interchanges[0].charset == "ISO 8859-5"
    assert not [f for f in doc.all_findings() if f.code.startswith("charset")]
    # The same bytes read blindly as Latin-1 would be mojibake: this is what the old reader gave.
    assert data.decode("latin-1") != _cyrillic()


@pytest.mark.parametrize(
    ("syntax", "codec", "name", "text"),
    [
        ("UNOF", "iso8859-7", "Αθηνά Εμπορική", "Αθήνα"),
        ("UNOD", "iso8859-2", "Łódź Spółka", "Kraków"),
        ("UNOW", "utf-8", "東京商事", "東京"),
        ("UNOY", "utf-8", "Ромашка ΑΕ", "Київ"),
        ("UNOC", "iso8859-1", "Müller & Söhne", "Köln"),
        ("UNOJ", "iso8859-8", 'שלום בע"מ', "חיפה"),
        ("UNOX", "iso2022_jp_2", "東京商事", "大阪"),
    ],
)
def test_each_repertoire_is_decoded_as_declared(syntax: str, codec: str, name: str, text: str) -> None:
    edi = ORDER2.replace("UNB+UNOC:3", f"UNB+{syntax}:3").replace(
        "NAD+BY+123456789::9", f"NAD+BY+123456789::9++{name}+Street 1+{text}++1000+XX"
    )
    doc = parse_edifact(edi.encode(codec))
    buyer = doc.purchase_orders[0].buyer
    assert buyer is not None
    assert (buyer.name, buyer.city) == (name, text)
    assert not [f for f in doc.all_findings() if f.code.startswith("charset")]


def test_utf8_bytes_under_an_8859_declaration_are_read_as_utf8_and_named() -> None:
    doc = parse_edifact(_cyrillic("UNOE").encode("utf-8"))
    buyer = doc.purchase_orders[0].buyer
    assert buyer is not None
    assert buyer.city == "Москва"
    (mismatch,) = _codes(doc)["charset_mismatch"]
    assert mismatch.severity is Severity.WARNING
    assert "UNOE" in mismatch.message


def test_unknown_syntax_identifier_with_8bit_text_is_an_error_not_a_guess() -> None:
    doc = parse_edifact(_cyrillic("UNOZ").encode("iso8859-5"))
    codes = _codes(doc)
    assert "unknown_syntax_identifier" in codes
    assert codes["charset_unknown"][0].severity is Severity.ERROR
    assert len(doc.purchase_orders) == 1  # the order is still read, for a person to check


def test_unoa_violations_are_reported_with_their_position() -> None:
    edi = ORDERS01.replace("NAD+BY+PARTNER1::9", "NAD+BY+PARTNER1::9++Acme trading")
    doc = parse_edifact(edi.encode())
    (violation,) = _codes(doc)["charset_violation"]
    assert violation.severity is Severity.WARNING
    assert violation.source is not None
    assert violation.source.span is not None
    text, _ = decode_edifact(edi.encode())
    assert text[violation.source.span[0]] == "c"  # the first lower-case letter, in "Acme trading"
    # 8-bit bytes under UNOA are read as Latin-1 and said so.
    latin = parse_edifact(edi.replace("Acme trading", "ACME STRASSE Ä").encode("latin-1"))
    assert "charset_violation" in _codes(latin)
    assert latin.purchase_orders[0].buyer.name == "ACME STRASSE Ä"  # type: ignore[union-attr]


def test_level_b_control_characters_without_una() -> None:
    edi = ORDER2.replace("UNB+UNOC:3", "UNB+UNOB:3").replace("\n", "")
    edi = edi.replace("+", "\x1d").replace(":", "\x1f").replace("'", "\x1c")
    doc = parse_edifact(edi.encode())
    plain = parse_edifact(ORDER2.encode())
    assert [po.model_dump(exclude={"sources"}) for po in doc.purchase_orders] == [
        po.model_dump(exclude={"sources"}) for po in plain.purchase_orders
    ]
    assert _errors(doc) == _errors(plain) == {"unz_missing"}  # the sample has no UNZ


def test_each_interchange_keeps_its_own_charset_and_service_characters() -> None:
    comma = ORDER2.replace("PRI+AAA:25.00", "PRI+AAA:25,50")
    cyr = "UNA:+,? '\n" + _cyrillic().replace("PRI+AAA:25.00", "PRI+AAA:25,50")
    data = ORDERS01.encode() + cyr.encode("iso8859-5") + comma.encode("latin-1")
    doc = parse_edifact(data)
    assert [ic.charset for ic in doc.interchanges] == ["ISO 646 level A", "ISO 8859-5", "ISO 8859-1"]
    pos = doc.purchase_orders
    assert pos[2].buyer.name == "ООО Ромашка"  # type: ignore[union-attr]
    assert pos[2].lines[0].unit_price == Decimal("25.50")  # UNA decimal comma, second interchange
    assert pos[3].lines[0].unit_price is None  # back to the default '.', "25,50" is not a number
    assert "bad_number" in _codes(doc)


# --- repeated references ----------------------------------------------------------------------


def test_repeated_message_reference_is_an_error_and_both_messages_are_kept() -> None:
    doc = parse_edifact(ORDERS01.replace("1-2UNHREF", "1-1UNHREF"))
    (dup,) = _codes(doc)["duplicate_message_reference"]
    assert dup.severity is Severity.ERROR
    assert dup.source is not None
    assert dup.source.path == "UNH.01"
    assert [po.po_number for po in doc.purchase_orders] == ["1", "12"]
    assert doc.messages[1].findings[0].code == "duplicate_message_reference"  # on the repeat, not the first


def test_repeated_interchange_reference_is_an_error() -> None:
    first = ORDERS02.index("UNB+", 1)
    second = ORDERS02.index("UNB+", first + 1)
    ref_a = ORDERS02[first:].split("'", 1)[0].split("+")[5]
    ref_b = ORDERS02[second:].split("'", 1)[0].split("+")[5]
    edi = ORDERS02.replace(ref_b, ref_a)
    doc = parse_edifact(edi)
    assert [f.code for f in doc.all_findings() if f.severity is Severity.ERROR] == ["duplicate_interchange_reference"]
    assert len(doc.purchase_orders) == len(parse_edifact(ORDERS02).purchase_orders)


def test_groups_are_checked_and_a_repeated_group_reference_is_reported() -> None:
    head, rest = ORDERS01.split("UNH+1-1UNHREF", 1)
    one, two = rest.split("UNH+1-2UNHREF", 1)
    two, tail = two.split("UNZ+2+1UNBREF", 1)
    ung = "UNG+ORDERS+PARTNER1:14+PARTNER2:14+050824:1727+G1+UN+D:96A'\n"
    edi = f"{head}{ung}UNH+1-1UNHREF{one}UNE+1+G1'\n{ung}UNH+1-2UNHREF{two}UNE+2+G9'\nUNZ+2+1UNBREF{tail}"
    doc = parse_edifact(edi)
    codes = _codes(doc)
    assert set(codes) >= {"duplicate_group_reference", "une_count_mismatch", "une_reference_mismatch"}
    assert len(doc.purchase_orders) == 2
    assert [m.group_reference for m in doc.messages] == ["G1", "G1"]
    good = edi.replace("UNE+2+G9", "UNE+1+G2").replace(f"{ung}UNH+1-2", ung.replace("G1", "G2") + "UNH+1-2")
    assert not _errors(parse_edifact(good))


# --- unknown and misplaced segments -----------------------------------------------------------


def test_unknown_segment_in_place_of_nad_is_reported_with_its_position() -> None:
    edi = ORDERS01.replace("NAD+BY+PARTNER1::9", "NAX+BY+PARTNER1::9", 1)
    doc = parse_edifact(edi)
    (unknown,) = _codes(doc)["unknown_segment"]
    assert unknown.severity is Severity.WARNING
    assert unknown.source is not None
    assert unknown.source.path == "NAX[1]"
    assert unknown.source.span is not None
    assert edi[unknown.source.span[0] : unknown.source.span[1]] == "NAX+BY+PARTNER1::9"
    assert doc.purchase_orders[0].buyer is None  # nothing invented in its place


def test_misplaced_segments_are_reported() -> None:
    edi = ORDER2.replace("NAD+SU+987654321::9'", "NAD+SU+987654321::9'\nPIA+5+X1:SA'")
    edi = edi.replace("CNT+2:1'", "CNT+2:1'\nLIN+2++ZZZ:IN'")
    edi = edi.replace("UNT+11+1", "UNT+13+1")
    doc = parse_edifact(edi)
    placed = [f for f in doc.all_findings() if f.code == "misplaced_segment"]
    assert [f.source.path for f in placed if f.source] == ["PIA[1]", "LIN[2]"]


def test_lost_unt_and_unh_between_two_messages_do_not_merge_the_orders() -> None:
    """``UNT`` of the first and ``UNH`` of the second message lost: the second BGM starts a new
    message instead of adding its lines to the first order."""
    start, end = ORDERS01.index("UNT+22+1-1UNHREF"), ORDERS01.index("BGM+50E+12")
    doc = parse_edifact(ORDERS01[:start] + ORDERS01[end:])
    assert [(po.po_number, len(po.lines)) for po in doc.purchase_orders] == [("1", 4), ("12", 1)]
    assert {"unt_missing", "unh_missing"} <= _errors(doc)


# --- damaged envelopes ------------------------------------------------------------------------


def _two_orders(doc: EdifactDocument) -> list[str | None]:
    return [po.po_number for po in doc.purchase_orders]


def test_garbled_unb_keeps_both_messages_and_names_the_fault() -> None:
    doc = parse_edifact(ORDERS01.replace("UNB+UNOA:2", "U#B+UNOA:2"))
    assert _two_orders(doc) == ["1", "12"]
    codes = _codes(doc)
    assert "bad_segment" in codes  # the unreadable header, with its text
    assert "U#B" in codes["bad_segment"][0].message
    assert codes["unb_missing"][0].severity is Severity.ERROR


def test_unb_without_terminator_on_its_own_line_is_split_at_the_line_break() -> None:
    edi = ORDERS01.replace("++++++1'", "++++++1", 1)
    doc = parse_edifact(edi)
    assert _two_orders(doc) == ["1", "12"]
    assert doc.interchanges[0].sender == "PARTNER1"
    assert "missing_terminator" in _codes(doc)
    assert not _errors(doc)


def test_unb_swallowing_the_unh_recovers_the_message_from_its_bgm() -> None:
    flat = ORDERS01.replace("\r", "").replace("\n", "")
    doc = parse_edifact(flat.replace("++++++1'UNH", "++++++1UNH", 1))
    assert _two_orders(doc) == ["1", "12"]
    codes = _codes(doc)
    assert codes["unh_missing"][0].severity is Severity.ERROR
    assert doc.messages[0].reference == "1-1UNHREF"  # taken from its UNT


def test_incomplete_unb_and_wrong_trailers_keep_the_messages() -> None:
    edi = ORDERS01.replace("UNB+UNOA:2+PARTNER1:14+PARTNER2:14+050824:1727+1UNBREF++++++1", "UNB+UNOA:2")
    edi = edi.replace("UNZ+2+1UNBREF", "UNZ+7+XX")
    doc = parse_edifact(edi)
    assert _two_orders(doc) == ["1", "12"]
    assert {"unb_incomplete", "unz_count_mismatch"} <= _errors(doc)
    no_unz = parse_edifact(ORDERS01.split("UNZ")[0])
    assert _two_orders(no_unz) == ["1", "12"]
    assert "unz_missing" in _errors(no_unz)


def test_una_that_contradicts_the_segments_is_named_and_the_file_still_read() -> None:
    edi = "UNA:+.? ~\n" + ORDER2
    doc = parse_edifact(edi)
    assert doc.purchase_orders[0].po_number == "PO123456"
    assert "una_invalid" in _errors(doc)


def test_separators_changed_without_a_una_are_read_and_named() -> None:
    edi = ORDER2.replace("+", "*").replace("'", "~")
    doc = parse_edifact(edi)
    assert _two_orders(doc) == ["PO123456"]
    assert doc.purchase_orders[0].lines[0].quantity == Decimal(10)
    assert "service_characters_inferred" in _codes(doc)


def test_una_with_a_space_release_means_no_release_character() -> None:
    edi = "UNA:+.  '" + ORDER2.replace("NAD+SU+987654321::9", "NAD+SU+987654321::9++Big Shop Ltd")
    doc = parse_edifact(edi)
    seller = doc.purchase_orders[0].seller
    assert seller is not None
    assert seller.name == "Big Shop Ltd"


# --- still bounded ----------------------------------------------------------------------------


def test_many_interchanges_stay_bounded() -> None:
    unit = "UNB+UNOE:3+S+R+240101:1200+1'UNH+1+ORDERS:D:96A:UN'BGM+220+\xe0+9'UNT+3+1'UNZ+1+1'"
    data = (unit * 1000).encode("latin-1")
    started = time.perf_counter()
    doc = parse_edifact(data, max_segments=2000)
    assert time.perf_counter() - started < 10
    assert "too_many_segments" in _errors(doc)
    assert len(doc.all_findings()) < 20


# --- X12 ----------------------------------------------------------------------------------------

X12_850 = (BOTS_X12 / "in" / "850-02.x12").read_text()
"""One interchange, one group, four 850s; ``|`` elements, ``~`` terminators."""
X12_CRLF = (BOTS_X12 / "in" / "850-004010-05.x12").read_text()
"""``*`` elements, ``~`` terminators followed by CR LF."""
ISA_850 = X12_850[: X12_850.index("GS|")]


def _x12_codes(doc: X12Document) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in doc.all_findings():
        out.setdefault(f.code, []).append(f)
    return out


def _po_signature(doc: X12Document) -> list[tuple[str | None, int]]:
    return [(po.po_number, len(po.lines)) for po in doc.purchase_orders]


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace("ISA|00|          |00|", "ISA|00|", 1),  # ISA short of elements
        lambda t: "ISA" + t[t.index("GS|") - 40 :],  # truncated in the middle
        lambda t: t[t.index("GS|") :],  # no ISA at all
        lambda t: "ISA0000" + t[3:],  # unusable element separator
    ],
)
def test_corrupt_isa_with_a_readable_gs_keeps_every_order(damage: Callable[[str], str]) -> None:
    good = parse_x12(X12_850)
    doc = parse_x12(damage(X12_850))
    assert _po_signature(doc) == _po_signature(good)
    (unreadable,) = _x12_codes(doc)["isa_unreadable"]
    assert unreadable.severity is Severity.ERROR
    assert "GS at offset" in unreadable.message
    ic = doc.interchanges[0]
    assert ic.groups[0].control_number == "100001"
    ack = generate_997(ic, interchange_control_number=1, group_control_number=1, now=NOW)
    assert "AK1|PO|100001" in ack.replace("*", "|")


def test_isa_naming_a_terminator_the_file_never_uses_keeps_orders_and_sender() -> None:
    """A damaged ISA16 area (``>~`` became ``>#``) used to make the whole file one GS segment: no
    order and no finding saying why."""
    doc = parse_x12(X12_850.replace("|P|>~GS", "|P|>#GS", 1))
    assert _po_signature(doc) == _po_signature(parse_x12(X12_850))
    codes = _x12_codes(doc)
    assert {"isa_bad_terminator", "isa_unreadable"} <= set(codes)
    ic = doc.interchanges[0]
    assert (ic.sender_id, ic.control_number) == ("11111", "000000010")  # the ISA fields split cleanly
    assert doc.transactions[0].envelope.isa_sender_id == "11111"


def test_several_interchanges_one_without_iea_and_a_wrong_se01() -> None:
    second = X12_850.replace("000000010", "000000011").replace("SE|12|0001", "SE|13|0001")
    first = X12_CRLF.replace("IEA*1*", "XXX*1*") if "IEA*1*" in X12_CRLF else X12_CRLF
    doc = parse_x12(first.split("XXX*")[0] + second)
    assert len(doc.interchanges) == 2
    assert "iea_missing" in {f.code for f in doc.interchanges[0].findings}
    tx = doc.interchanges[1].groups[0].transactions[0]
    assert tx.ack_code == "R"
    assert "se_count_mismatch" in {f.code for f in tx.findings}
    assert tx.purchase_order is not None
    assert tx.purchase_order.po_number == "12345678"
    assert len(doc.purchase_orders) == len(parse_x12(X12_CRLF).purchase_orders) + 4


def test_repeated_control_numbers_are_reported() -> None:
    doc = parse_x12(X12_850 + X12_850)
    (dup_isa,) = _x12_codes(doc)["isa_duplicate_control"]
    assert dup_isa.severity is Severity.ERROR
    assert len(doc.purchase_orders) == 8  # both copies read; the pipeline's duplicate check sees the second
    group = X12_850[X12_850.index("GS|") : X12_850.index("IEA|")]
    two_groups = parse_x12(X12_850.replace("IEA|1|", group + "IEA|2|"))
    assert _x12_codes(two_groups)["gs_duplicate_control"][0].severity is Severity.ERROR
    st = parse_x12(X12_850.replace("ST|850|0002", "ST|850|0001").replace("SE|7|0002", "SE|7|0001"))
    (dup_st,) = _x12_codes(st)["st_duplicate_control"]
    assert dup_st.source is not None
    assert dup_st.source.path == "ST[1].02"


def test_unknown_segment_in_place_of_n1_and_misplaced_segments() -> None:
    text = X12_850.replace("N1|ST||15|3333333", "NX9|ST||15|3333333", 1)
    text = text.replace("DTM|063|20120909~N1", "DTM|063|20120909~PID|F||||EARLY~N1", 1)
    doc = parse_x12(text)
    codes = _x12_codes(doc)
    (unknown,) = codes["unknown_segment"]
    assert unknown.source is not None
    assert unknown.source.path == "NX9[1]"
    assert unknown.source.span is not None
    assert text[unknown.source.span[0] : unknown.source.span[1]] == "NX9|ST||15|3333333"
    assert doc.purchase_orders[0].ship_to is None
    assert [f.source.path for f in codes["misplaced_segment"] if f.source] == ["PID[1]"]
    assert doc.purchase_orders[0].lines[0].description is None


def test_lost_se_and_st_between_two_850s_do_not_merge_the_orders() -> None:
    start, end = X12_850.index("SE|12|0001"), X12_850.index("BEG|00|NE|12345678||20120827~N1")
    doc = parse_x12(X12_850[:start] + X12_850[end:])
    assert _po_signature(doc) == _po_signature(parse_x12(X12_850))
    codes = _x12_codes(doc)
    assert {"se_missing", "st_missing"} <= set(codes)
    assert [t.ack_code for t in doc.transactions] == ["R", "R", "A", "A"]
    corrupt_st = parse_x12(X12_850.replace("ST|850|0003", "SX|850|0003"))
    assert _po_signature(corrupt_st) == _po_signature(parse_x12(X12_850))


def test_x12_stays_bounded_with_many_broken_headers() -> None:
    data = ("ISA|00|~GS|PO|1|2|20120827|1444|1|X|004010~ST|850|1~BEG|00|NE|1||20120827~SE|3|1~" * 600).encode()
    started = time.perf_counter()
    doc = parse_document(data, mappers={"850": map_850}, max_segments=2000)
    assert time.perf_counter() - started < 10
    assert "too_many_segments" in {f.code for f in doc.all_findings()}


# --- through the front door -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fmt", "orders", "fault"),
    [
        (ORDERS01.replace("UNB+UNOA:2", "U#B+UNOA:2").encode(), DocFormat.EDIFACT, 2, "unb_missing"),
        (b"\x01\x02 transmission header\r\n" + ORDERS01.encode(), DocFormat.EDIFACT, 2, "bad_segment"),
        (X12_850[X12_850.index("GS|") :].encode(), DocFormat.X12, 4, "isa_unreadable"),
    ],
)
def test_damaged_envelopes_are_still_sniffed_as_edi_and_read(
    data: bytes, fmt: DocFormat, orders: int, fault: str
) -> None:
    """A garbled UNB or a missing ISA used to make the file "text": both orders went to the
    free-text reader and were lost without the fault being named."""
    got, pos, findings = parse_bytes(data, filename="orders.edi")
    assert got == fmt
    assert len(pos) == orders
    assert fault in {f.code for f in findings}


def test_prose_mentioning_segment_tags_is_not_edi() -> None:
    assert sniff(b"Please ship UNH+ORDERS and GS*PO items to dock 4 by Friday.\n") == DocFormat.TEXT


def test_a_cyrillic_interchange_reaches_the_pipeline_with_its_names() -> None:
    fmt, pos, findings = parse_bytes(_cyrillic().encode("iso8859-5"), filename="orders.edi")
    assert fmt == DocFormat.EDIFACT
    assert pos[0].buyer is not None
    assert pos[0].buyer.name == "ООО Ромашка"
    assert not [f for f in findings if f.code.startswith("charset")]


def test_counts_in_non_ascii_digits_are_findings_not_crashes() -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: a damaged Latin-1 byte in a count once
    crashed both parsers (found by fuzzing the public samples)."""
    x12 = parse_x12(X12_850.replace("IEA|1|", "IEA|\xb2|").encode("latin-1"))
    assert "iea_count_mismatch" in _x12_codes(x12)
    ctt = parse_x12(X12_850.replace("CTT|5|", "CTT|\xb2|").encode("latin-1"))
    assert "bad_number" in _x12_codes(ctt)
    edi = ORDERS01.replace("UNT+22+", "UNT+2\xb2+").replace("UNZ+2+", "UNZ+\xb2+")
    codes = _codes(parse_edifact(edi.encode("latin-1")))
    assert {"unt_count_mismatch", "unz_count_mismatch"} <= set(codes)


# --- never raises on the new paths ----------------------------------------------------------------

_FUZZ_EDIFACT = [
    _cyrillic().encode("iso8859-5"),
    ORDER2.replace("UNB+UNOC:3", "UNB+UNOX:3").replace("PO123456", "東京").encode("iso2022_jp_2"),
    ("UNA:+,? '\n" + ORDERS01).encode(),
]
_FUZZ_X12 = [
    X12_850.encode(),
    X12_850.replace("|P|>~GS", "|P|>#GS", 1).encode(),
    X12_850[X12_850.index("GS|") :].encode(),
]
_INSERTS = [
    b"UNA:+.? '",
    b"UNB+UNOE:3+",
    b"UNH+1+ORDERS:D:96A:UN'",
    b"BGM+",
    b"\x1b$B",
    b"\xb2",
    b"ISA|",
    b"GS|PO|",
    b"BEG|",
]


@st.composite
def _damaged(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            data[pos:pos] = draw(st.sampled_from(_INSERTS))
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged(_FUZZ_EDIFACT), _damaged(_FUZZ_X12))
def test_damaged_charsets_and_headers_never_raise(edifact: bytes, x12: bytes) -> None:
    parse_edifact(edifact).all_findings()
    for ic in parse_x12(x12).interchanges:
        generate_997(ic, interchange_control_number=1, group_control_number=1, now=NOW)
