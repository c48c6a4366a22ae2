"""Paths to the public sample corpora (read in place, never copied into the project)."""

from __future__ import annotations

from tests.conftest import CORPORA

X12_DIR = CORPORA / "x12-850"
BOTS_X12 = X12_DIR / "bots-x12-demo"
EDIFACT_DIR = CORPORA / "edifact-orders"
BOTS_EDIFACT = EDIFACT_DIR / "bots-edifactorder2xml"
