"""Numbers a document states that no integer column (or workflow checkpoint) can hold end in a
finding and a review item, never in a crash: a public X12 sample with a 24-digit quantity and a
23-digit line count went through ``orderops intake`` as "internal error (TypeError): Integer
exceeds 64-bit range" from the checkpoint serializer."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.model import MAX_DOCUMENT_INT
from intake.x12 import parse_x12
from tests.conftest import CORPORA
from tests.intake.test_cli_intake import cli_env, run_json  # noqa: F401

SAMPLE = CORPORA / "x12-850" / "edi-net" / "x12.850.edi"


def _huge() -> bytes:
    data = SAMPLE.read_bytes()
    data = data.replace(b"PO1*1*1*EA", b"PO1*1*123456789012345678901234*EA")
    data = data.replace(b"CTT*1*1~", b"CTT*99999999999999999999999*1~")
    assert b"123456789012345678901234" in data
    return data


def test_a_count_out_of_range_is_a_finding_not_an_int() -> None:
    doc = parse_x12(_huge(), document="huge.edi")
    po = doc.purchase_orders[0]
    assert po.declared_line_count is None or po.declared_line_count <= MAX_DOCUMENT_INT
    dumped = doc.model_dump_json()  # the transaction's findings sit under its interchange
    assert '"code":"bad_number","message":"CTT01' in dumped


def test_a_huge_quantity_goes_to_review_through_the_cli(
    cli_env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = cli_env / "huge.edi"
    path.write_bytes(_huge())
    out = run_json(capsys, "intake", str(path))
    results = out if isinstance(out, list) else [out]
    text = repr(results)
    assert "bad_quantity" in text
    assert "out of range" in text
    assert "review" in text
