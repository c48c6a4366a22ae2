"""The intake document generator: deterministic, and its clean documents read back to their gold."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from core.db import Database
from core.netgen import NetworkSpec, generate_network
from intake.documents import parse_bytes
from intake.samples import Catalog, generate_documents, load_catalog, write_dataset


@pytest.fixture
def catalog(sqlite_db: Database) -> Catalog:
    generate_network(sqlite_db, NetworkSpec(seed=3, nodes=2, skus=40, customers=4, orders=0))
    return load_catalog(sqlite_db)


def test_catalog_and_determinism(catalog: Catalog) -> None:
    assert len(catalog.customers) == 4
    assert len(catalog.skus) == 40
    assert all(c.prices for c in catalog.customers)
    a = generate_documents(catalog, seed=1, count=8)
    b = generate_documents(catalog, seed=1, count=8)
    assert [d.data for d in a] == [d.data for d in b]
    assert [d.data for d in a] != [d.data for d in generate_documents(catalog, seed=2, count=8)]


def test_clean_documents_parse_back_to_their_gold(catalog: Catalog) -> None:
    docs = generate_documents(catalog, seed=5, count=16, noise=0.0)
    assert {d.gold.format for d in docs} == {"csv", "xlsx", "email", "x12"}
    for d in docs:
        _fmt, orders, findings = parse_bytes(d.data, filename=d.filename, media_type=d.media_type)
        assert len(orders) == 1, (d.doc_id, [f.code for f in findings])
        po = orders[0]
        assert po.po_number == d.gold.po_number, d.doc_id
        got = [(ln.vendor_part_number, ln.quantity) for ln in po.lines]
        assert got == [(g.sku, Decimal(g.quantity)) for g in d.gold.lines], d.doc_id
        assert "injection_suspected" not in {f.code for f in findings}


def test_noisy_documents_carry_their_anomalies(catalog: Catalog, tmp_path: Path) -> None:
    docs = generate_documents(catalog, seed=9, count=40, noise=1.0)
    kinds = {a.split(":")[0] for d in docs for a in d.gold.anomalies}
    assert {"wrong_price", "unknown_sku", "missing_po_number", "injection", "duplicate"} <= kinds
    for d in docs:
        _fmt, _orders, findings = parse_bytes(d.data, filename=d.filename, media_type=d.media_type)
        if "injection" in d.gold.anomalies:
            assert "injection_suspected" in {f.code for f in findings}, d.doc_id
    gold = write_dataset(docs, tmp_path)
    assert len(gold.read_text().splitlines()) == len(docs)
