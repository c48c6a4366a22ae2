"""A tiny PDF writer (for the intake corpus generator and the tests): text at positions, straight lines.

reportlab is not a dependency; this writes just enough PDF 1.4 (one content stream per page,
the standard Helvetica font, a correct xref table) for pdfplumber to read words and ruling lines.
Coordinates are given top-down like pdfplumber reports them (``top`` from the page's upper edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

PAGE_W, PAGE_H = 612.0, 792.0


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


@dataclass
class Page:
    ops: list[str] = field(default_factory=list)

    def text(self, x: float, top: float, s: str, size: float = 10.0) -> None:
        # Baseline at ``top + size * 0.8`` roughly puts the glyph box's top at ``top``.
        y = PAGE_H - top - size * 0.8
        self.ops.append(f"BT /F1 {size:g} Tf {x:.2f} {y:.2f} Td ({_esc(s)}) Tj ET")

    def line(self, x0: float, top0: float, x1: float, top1: float) -> None:
        self.ops.append(f"0.5 w {x0:.2f} {PAGE_H - top0:.2f} m {x1:.2f} {PAGE_H - top1:.2f} l S")

    def grid(self, xs: Sequence[float], tops: Sequence[float]) -> None:
        """A ruled table: vertical lines at ``xs``, horizontal lines at ``tops``."""
        for x in xs:
            self.line(x, tops[0], x, tops[-1])
        for t in tops:
            self.line(xs[0], t, xs[-1], t)


@dataclass
class PdfWriter:
    pages: list[Page] = field(default_factory=list)

    def page(self) -> Page:
        p = Page()
        self.pages.append(p)
        return p

    def to_bytes(self, *, trailer_extra: str = "") -> bytes:
        objs: list[bytes] = []
        n_pages = len(self.pages)
        font_id = 3
        page_ids = [4 + 2 * i for i in range(n_pages)]
        objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
        kids = " ".join(f"{i} 0 R" for i in page_ids)
        objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
        objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        for i, p in enumerate(self.pages):
            content = "\n".join(p.ops).encode("latin-1")
            objs.append(
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W:g} {PAGE_H:g}] "
                f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>".encode()
            )
            objs.append(f"<< /Length {len(content)} >>\nstream\n".encode() + content + b"\nendstream")
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for k, body in enumerate(objs, start=1):
            offsets.append(len(out))
            out += f"{k} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
        for off in offsets:
            out += f"{off:010d} 00000 n \n".encode()
        out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R {trailer_extra}>>\nstartxref\n{xref}\n%%EOF\n".encode()
        return bytes(out)


def encrypted_pdf() -> bytes:
    """A PDF whose trailer names a Standard security handler the empty password cannot open."""
    w = PdfWriter()
    w.page().text(72, 72, "secret")
    o = "<" + "11" * 32 + ">"
    u = "<" + "22" * 32 + ">"
    ident = "<" + "33" * 16 + ">"
    return w.to_bytes(
        trailer_extra=f"/Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /O {o} /U {u} /P -4 >> "
        f"/ID [{ident} {ident}] "
    )
