"""The hostile document set: small files built to exhaust a parser (bombs, huge headers, 2M-glyph
PDFs, 100k-line EDI), for ``bench_hostile.py`` and the intake sandbox tests.

Each builder takes a ``scale`` (1.0: the sizes of the adversarial report in issue 16; tests use a
fraction, which keeps the effect - every limit they hit is far below the small size) and returns
bytes. Nothing here is product code and nothing in the product imports it.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "HOSTILE",
    "edifact_huge",
    "eml_prose_backtrack",
    "eml_subject_bomb",
    "pdf_flate_bomb",
    "pdf_glyphs",
    "write_all",
    "x12_100k_lines",
    "xlsx_zip_bomb",
]

_ORDER_BODY = (
    "Purchase Order: PO-77001\n"
    "Ship to: Acme Retail DC, 1 Main St, Reno, NV 89501\n\n"
    "SKU-00001  qty 10\nSKU-00002  qty 5\n"
)


def eml_subject_bomb(scale: float = 1.0) -> bytes:
    """An e-mail whose Subject holds 20,000 encoded words (~1.8 MB); the body is a plain order."""
    n = max(1, int(20_000 * scale))
    word = "=?utf-8?B?" + base64.b64encode("Bestellung ünd Auftrag Nr. 1234567890 – dringend ".encode()).decode() + "?="
    subject = "\r\n ".join([word] * n)
    head = (
        "From: Buyer <buyer@example.com>\r\nTo: orders@example.net\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n"
        "Message-ID: <bomb-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )
    return (head + f"Subject: {subject}\r\n\r\n" + _ORDER_BODY.replace("\n", "\r\n")).encode()


def eml_prose_backtrack(scale: float = 1.0) -> bytes:
    """A plain-text mail written as prose (~1.3 MB) built to make a backtracking reader slow: runs of
    60,000 spaces after a part label, a quantity word and "PO", and one 20,000-line sentence
    ("4 of SKU-00001, 4 of SKU-00001, ..."): each once cost the prose reader minutes."""
    n = max(1, int(20_000 * scale))
    gap = " " * max(1, int(60_000 * scale))
    body = (
        f"Hi team, please ship the following to our Reno site.\n\nSKU{gap}!\nqty{gap}40\nour PO is{gap}\n"
        + "We need "
        + "4 of SKU-00001, " * n
        + "thanks.\n"
    )
    head = (
        "From: Buyer <buyer@example.com>\r\nTo: orders@example.net\r\nDate: Mon, 7 Dec 2026 09:00:00 +0000\r\n"
        "Message-ID: <prose-1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Subject: order\r\n\r\n"
    )
    return (head + body.replace("\n", "\r\n")).encode()


def _pdf(contents: list[bytes], *, flate: bool = False) -> bytes:
    """A minimal PDF, one page per content stream (Helvetica), optionally flate-compressed."""
    objs: list[bytes] = []
    n = len(contents)
    page_ids = [4 + 2 * i for i in range(n)]
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {n} >>".encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, content in enumerate(contents):
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {page_ids[i] + 1} 0 R >>".encode()
        )
        filt = b" /Filter /FlateDecode" if flate else b""
        objs.append(b"<< /Length %d%s >>\nstream\n" % (len(content), filt) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for k, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{k} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def pdf_glyphs(scale: float = 1.0) -> bytes:
    """A PDF of ~2M glyphs (~7 MB, uncompressed) on 20 pages: an order header, then walls of text."""
    glyphs = max(2_000, int(2_000_000 * scale))
    pages = 20 if glyphs >= 200_000 else 2
    per_page = glyphs // pages
    line = "SKU-00001 10 EA 1.00 " * 4  # 84 glyphs a line, kerned in pairs: [(SK)-5(U-)-5...] TJ
    kerned = b"[" + b"-5".join(b"(%s)" % line[i : i + 2].encode() for i in range(0, len(line), 2)) + b"] TJ"
    contents = []
    for p in range(pages):
        ops = [b"BT /F1 10 Tf 72 740 Td (Purchase Order: PO-77002) Tj ET"] if p == 0 else []
        done = 0
        y = 720
        while done < per_page:
            ops.append(b"BT /F1 2 Tf 20 %d Td %s ET" % (y, kerned))
            done += len(line)
            y = 720 if y <= 20 else y - 1
        contents.append(b"\n".join(ops))
    return _pdf(contents)


def pdf_prose_run(scale: float = 1.0) -> bytes:
    """A PDF of 10 pages, each an order header, then ~4,500 characters of words in 65 lines with no
    full stop, one paragraph once its lines are joined. The sentence reader once backtracked
    cubically over such a run (4,000 characters: 44 s; so ~8 minutes for the document)."""
    lines = max(4, int(65 * scale))
    words = "please ship these goods and tell our buyer when they leave the dock "  # 69 chars, no stop
    ops = [b"BT /F1 10 Tf 72 740 Td (Purchase Order: PO-77008) Tj ET"]
    for k in range(lines):
        ops.append(b"BT /F1 9 Tf 40 %d Td (%s) Tj ET" % (720 - 11 * k, words.encode()))
    return _pdf([b"\n".join(ops)] * 10)


def pdf_flate_bomb(scale: float = 1.0) -> bytes:
    """A one-page PDF whose content stream is ~1 MB of flate inflating to ~1 GB of whitespace."""
    inflated = max(1 << 20, int((1 << 30) * scale))
    comp = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [comp.compress(b"BT /F1 10 Tf 72 740 Td (Purchase Order: PO-77003) Tj ET\n")]
    for _ in range(inflated // len(chunk)):
        parts.append(comp.compress(chunk))
    parts.append(comp.flush())
    return _pdf([b"".join(parts)], flate=True)


def edifact_huge(scale: float = 1.0) -> bytes:
    """A 3.8 MB EDIFACT ORDERS interchange: one message with ~230,000 LIN/QTY segments."""
    n = max(100, int(115_000 * scale))
    head = (
        "UNA:+.? 'UNB+UNOC:3+BUYER:14+SELLER:14+261207:0900+1'UNH+1+ORDERS:D:96A:UN'BGM+220+PO-77004+9'"
        "DTM+137:20261207:102'NAD+BY+5412345000013::9'"
    )
    body = "".join(f"LIN+{i}++SKU-{i % 500:05d}:SA'QTY+21:1'" for i in range(1, n + 1))
    tail = f"UNT+{2 * n + 5}+1'UNZ+1+1'"
    return (head + body + tail).encode()


def x12_100k_lines(scale: float = 1.0) -> bytes:
    """An X12 850 of 100,000 lines (one segment a line): ISA/GS/ST/BEG, then PO1 lines."""
    n = max(100, int(100_000 * scale))
    head = [
        "ISA*00*          *00*          *ZZ*BUYER          *ZZ*SELLER         *261207*0900*U*00401*000000001*0*P*>~",
        "GS*PO*BUYER*SELLER*20261207*0900*1*X*004010~",
        "ST*850*0001~",
        "BEG*00*SA*PO-77005**20261207~",
    ]
    lines = [f"PO1*{i}*1*EA*1.00**VP*SKU-{i % 500:05d}~" for i in range(1, n - 7)]
    tail = [f"CTT*{len(lines)}~", f"SE*{len(lines) + 4}*0001~", "GE*1*1~", "IEA*1*000000001~"]
    return ("\n".join(head + lines + tail) + "\n").encode()


def xlsx_zip_bomb(scale: float = 1.0) -> bytes:
    """An .xlsx whose sheet XML inflates ~1000x (a ~1 GB sheet in ~1 MB)."""
    inflated = max(1 << 20, int((1 << 30) * scale))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook><sheets><sheet name="PO"/></sheets></workbook>')
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><worksheet><sheetData>')
            chunk = b" " * (1 << 20)
            for _ in range(inflated // len(chunk)):
                fh.write(chunk)
            fh.write(b"</sheetData></worksheet>")
    return buf.getvalue()


HOSTILE: dict[str, Callable[[float], bytes]] = {
    "eml_subject_bomb.eml": eml_subject_bomb,
    "eml_prose_backtrack.eml": eml_prose_backtrack,
    "pdf_2m_glyphs.pdf": pdf_glyphs,
    "pdf_flate_bomb.pdf": pdf_flate_bomb,
    "pdf_prose_run.pdf": pdf_prose_run,
    "edifact_3p8mb.edi": edifact_huge,
    "x12_100k_lines.x12": x12_100k_lines,
    "xlsx_zip_bomb.xlsx": xlsx_zip_bomb,
}
"""File name -> builder, in the order the bench runs them."""


def write_all(folder: Path, scale: float = 1.0) -> list[Path]:
    """Write every hostile document into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, build in HOSTILE.items():
        path = folder / name
        path.write_bytes(build(scale))
        out.append(path)
    return out


if __name__ == "__main__":  # pragma: no cover - a convenience: python -m evals.bench.hostile_docs DIR
    import sys

    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "var/hostile")):
        print(f"{p}  {p.stat().st_size:>10,d} bytes")
