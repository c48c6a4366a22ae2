"""The fork server preloads only the parsers a one-shot command's documents need
(:func:`intake.sandbox.preload_for`); a document of another format still parses, in a child."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import json
from intake import sandbox
from intake.classify import DocFormat
from intake.parsing import DocumentLimits, parse_bytes
from intake.pdfwriter import PdfWriter

assert sandbox.preload_for([DocFormat.X12])
trimmed = list(sandbox._preload)
w = PdfWriter()
w.page().text(72, 72, "PURCHASE ORDER  PO Number: PO-7781")
data = w.to_bytes()
out = sandbox.parse_isolated(data, fmt=DocFormat.PDF, document="po.pdf", limits=DocumentLimits())
_fmt, _orders, direct = parse_bytes(data, fmt=DocFormat.PDF, document="po.pdf")
print(json.dumps({"trimmed": trimmed, "late": sandbox.preload_for([DocFormat.PDF]), "fmt": out.fmt,
                  "codes": sorted(f.code for f in out.findings), "direct": sorted(f.code for f in direct)}))
"""


def test_an_x12_preload_leaves_out_the_pdf_and_sheet_libraries_and_a_pdf_still_parses_in_a_child() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "pdfplumber" not in found["trimmed"]
    assert "openpyxl" not in found["trimmed"]
    assert "intake.x12" in found["trimmed"]
    assert found["late"] is False  # the server runs: its preload can no longer change
    assert found["fmt"] == "pdf"
    assert found["codes"] == found["direct"]  # the child parsed it as the parser does in-process
    assert not {"parser_crashed", "parse_timeout", "parse_memory_limit"} & set(found["codes"])


def test_mail_and_unknown_documents_keep_the_full_preload() -> None:
    code = (
        "from intake import sandbox; from intake.classify import DocFormat;"
        "sandbox.preload_for([DocFormat.X12, DocFormat.EMAIL]); print(sorted(sandbox._preload))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert "pdfplumber" in done.stdout
    assert "openpyxl" in done.stdout
