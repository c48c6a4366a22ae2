"""Bad input never raises: malformed documents become findings, and fuzzing finds no crash."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.edifact import parse_edifact
from intake.model import Severity
from intake.x12 import generate_997, parse_x12
from tests.intake.conftest import BOTS_EDIFACT, BOTS_X12, EDIFACT_DIR, X12_DIR

NOW = datetime(2024, 1, 1)
INSERTS = [b"*", b"~", b"|", b"\r\n", b"ISA", b"SE*", b"'", b"+", b"?", b":", b"UNH+"]
GOOD_X12 = (BOTS_X12 / "in" / "850-02.x12").read_bytes()
X12_SAMPLES = [
    GOOD_X12,
    (BOTS_X12 / "in" / "850-004010VICS-02.x12").read_bytes(),
    (BOTS_X12 / "in" / "850-004010-10.x12").read_bytes(),
    (X12_DIR / "edi-net" / "x12.850.issue135.edi").read_bytes()[:1200],
]
EDIFACT_SAMPLES = [
    (BOTS_EDIFACT / "in" / "orders01.edi").read_bytes(),
    (EDIFACT_DIR / "pydifact" / "order.edi").read_bytes(),
    (EDIFACT_DIR / "pydifact" / "order2.edi").read_bytes(),
]


def _codes(data: bytes) -> set[str]:
    return {f.code for f in parse_x12(data).all_findings()}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_document"),
        (b"   \r\n", "empty_document"),
        (b"hello, this is not EDI", "no_isa"),
        (GOOD_X12[:50], "isa_truncated"),
        (b"ISA", "isa_truncated"),
        (b"ISA0000000", "isa_bad_separator"),
        (GOOD_X12.replace(b"IEA|1|000000010~", b""), "iea_missing"),
        (GOOD_X12.replace(b"IEA|1|000000010", b"IEA|2|000000011"), "iea_control_mismatch"),
        (GOOD_X12.replace(b"SE|12|0001", b"SE|13|0001"), "se_count_mismatch"),
        (GOOD_X12.replace(b"SE|12|0001~", b""), "se_missing"),
        (GOOD_X12.replace(b"GE|4|100001", b"GE|3|100002"), "ge_count_mismatch"),
        (GOOD_X12.replace(b"GE|4|100001~", b""), "ge_missing"),
        (GOOD_X12.replace(b"BEG|00|NE|12345678||20120827", b"BEG|00|NE|12345678||2012XX27", 1), "bad_date"),
        (GOOD_X12.replace(b"PO1|1|25|", b"PO1|1|2x5|", 1), "bad_number"),
        (b"\x00\xff\xfe" * 40 + GOOD_X12[:200], "leading_junk"),
    ],
)
def test_malformed_x12_becomes_findings(data: bytes, code: str) -> None:
    assert code in _codes(data)


def test_rejected_set_still_yields_its_order() -> None:
    doc = parse_x12(GOOD_X12.replace(b"SE|12|0001", b"SE|13|0001"))
    tx = doc.transactions[0]
    assert tx.ack_code == "R"
    assert tx.purchase_order is not None
    assert tx.purchase_order.po_number == "12345678"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_document"),
        (b"UNA:+", "una_truncated"),
        (b"UNH+1+ORDERS:D:96A:UN'BGM+220+X+9'UNT+3+1'", "unb_missing"),
        (b"UNB+UNOA:2+A+B+050824:1727+1'UNH+1+ORDERS:D:96A:UN'BGM+220'UNT+3+1'UNZ+1+1'", "po_number_missing"),
        (b"\x00\x01garbage without segments", "bad_segment"),
    ],
)
def test_malformed_edifact_becomes_findings(data: bytes, code: str) -> None:
    findings = parse_edifact(data).all_findings()
    assert code in {f.code for f in findings}
    assert any(f.severity is not Severity.INFO for f in findings)


def _check_x12(data: bytes) -> None:
    doc = parse_x12(data)
    doc.all_findings()
    for ic in doc.interchanges:
        generate_997(ic, interchange_control_number=1, group_control_number=1, now=NOW)


@st.composite
def _mutated(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(INSERTS))
        else:
            del data[pos:]
    return bytes(data)


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=600))
def test_x12_fuzz_random_bytes(data: bytes) -> None:
    _check_x12(b"ISA" + data if data[:1] == b"*" else data)


@FUZZ
@given(_mutated(X12_SAMPLES))
def test_x12_fuzz_mutated_samples(data: bytes) -> None:
    _check_x12(data)


@FUZZ
@given(st.one_of(st.binary(max_size=600), _mutated(EDIFACT_SAMPLES)))
def test_edifact_fuzz(data: bytes) -> None:
    parse_edifact(data).all_findings()
