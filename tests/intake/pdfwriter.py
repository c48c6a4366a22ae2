"""The tiny PDF writer now lives in :mod:`evals.datasets.pdfwriter` (the intake corpus uses it too)."""

from __future__ import annotations

from evals.datasets.pdfwriter import PAGE_H, PAGE_W, Page, PdfWriter, encrypted_pdf

__all__ = ["PAGE_H", "PAGE_W", "Page", "PdfWriter", "encrypted_pdf"]
