"""Sniff a received document's format from its bytes, file name and declared MIME type.

Content wins over names: a ``.txt`` attachment that starts with ``ISA`` is X12, a ``.pdf`` that
is really HTML is not a PDF. Names and MIME types only decide between text formats the bytes
cannot tell apart. Never raises; never parses more than the first few kilobytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from enum import StrEnum

__all__ = ["DocFormat", "sniff"]


class DocFormat(StrEnum):
    X12 = "x12"
    EDIFACT = "edifact"
    PDF = "pdf"
    XLSX = "xlsx"
    CSV = "csv"
    EMAIL = "email"
    HTML = "html"
    TEXT = "text"
    ZIP = "zip"
    UNKNOWN = "unknown"


_EXT = {
    ".x12": DocFormat.X12, ".850": DocFormat.X12, ".edi": None, ".edifact": DocFormat.EDIFACT,
    ".pdf": DocFormat.PDF, ".xlsx": DocFormat.XLSX, ".xlsm": DocFormat.XLSX, ".csv": DocFormat.CSV,
    ".tsv": DocFormat.CSV, ".eml": DocFormat.EMAIL, ".html": DocFormat.HTML, ".htm": DocFormat.HTML,
    ".txt": DocFormat.TEXT,
}  # fmt: skip
_MIME = {
    "application/pdf": DocFormat.PDF,
    "text/csv": DocFormat.CSV,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": DocFormat.XLSX,
    "message/rfc822": DocFormat.EMAIL,
    "text/html": DocFormat.HTML,
    "application/edi-x12": DocFormat.X12,
    "application/edifact": DocFormat.EDIFACT,
    "text/plain": DocFormat.TEXT,
}
_EMAIL_HEADER = re.compile(
    rb"^(?:From|To|Subject|Date|Message-ID|MIME-Version|Received|Return-Path|Content-Type|Delivered-To|X-[\w-]+):",
    re.I | re.M,
)


def _head_text(data: bytes) -> str:
    head = data[:4096]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("latin-1").lstrip("\x00\r\n\t ")


def sniff(data: bytes, *, filename: str | None = None, media_type: str | None = None) -> DocFormat:
    """The document's format; :attr:`DocFormat.UNKNOWN` when nothing fits (binary junk)."""
    head = _head_text(data)
    found = _by_magic(data) or _by_head(head)
    if found is not None:
        return found
    lines = head.splitlines()[:12]
    by_name = None
    if filename and "." in filename:
        by_name = _EXT.get("." + filename.rsplit(".", 1)[1].lower())
    by_mime = _MIME.get((media_type or "").split(";")[0].strip().lower())
    binary = sum(1 for b in data[:2048] if b < 9 or 13 < b < 32) > 8
    if binary:
        return DocFormat.UNKNOWN
    for hint in (by_name, by_mime):
        if hint in (DocFormat.CSV, DocFormat.TEXT, DocFormat.HTML, DocFormat.EMAIL):
            return hint
    if _looks_like_csv(lines):
        return DocFormat.CSV
    return DocFormat.TEXT if head.strip() else DocFormat.UNKNOWN


def _by_magic(data: bytes) -> DocFormat | None:
    """PDF, or a zip (an XLSX when it holds a workbook), by their signature bytes."""
    if b"%PDF-" in data[:1024]:
        return DocFormat.PDF
    if data[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            return DocFormat.ZIP
        return DocFormat.XLSX if any(n.startswith("xl/") for n in names) else DocFormat.ZIP
    return None


def _by_head(head: str) -> DocFormat | None:
    """EDI envelopes, a mail's headers, HTML, and EDI with a damaged envelope, by the first text;
    None when the content alone does not tell (names and media types are the hints then)."""
    if head.startswith("ISA"):
        return DocFormat.X12
    if head.startswith(("UNA", "UNB")) or re.match(r"UNH\+", head):
        return DocFormat.EDIFACT
    lines = head.splitlines()[:12]
    if (
        lines
        and len(_EMAIL_HEADER.findall(head.encode("latin-1")[:2048])) >= 2
        and _EMAIL_HEADER.match(lines[0].encode("latin-1"))
    ):
        return DocFormat.EMAIL
    low = head[:512].lower()
    if low.startswith(("<!doctype html", "<html")) or "<body" in low:
        return DocFormat.HTML
    from intake.edifact import looks_like_edifact  # EDI whose envelope is damaged (issue 19)
    from intake.x12.tokenizer import looks_like_x12

    if looks_like_x12(head):
        return DocFormat.X12
    if looks_like_edifact(head):
        return DocFormat.EDIFACT
    return None


def _looks_like_csv(lines: list[str]) -> bool:
    rows = [ln for ln in lines if ln.strip()][:6]
    if len(rows) < 2:
        return False
    for sep in (",", ";", "\t", "|"):
        counts = {ln.count(sep) for ln in rows}
        if len(counts) == 1 and min(counts) >= 2:
            return True
    return False
