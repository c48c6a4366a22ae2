"""The tiny PDF writer now lives in :mod:`intake.pdfwriter` (the intake corpus uses it too)."""

from __future__ import annotations

from intake.pdfwriter import PAGE_H, PAGE_W, Page, PdfWriter, encrypted_pdf

__all__ = ["PAGE_H", "PAGE_W", "Page", "PdfWriter", "encrypted_pdf"]
