"""`orderops intake` and `orderops review` on a seeded SQLite network."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api.auth import create_key
from api.cli import run
from api.demo_intake import SampleDoc, sample_documents
from core.db import make_database
from core.settings import Settings
from intake.samples import GoldLine, GoldOrder, load_catalog, render
from tools.adapters.embedded import embedded_adapters

SMALL = ["--orders", "200", "--nodes", "4", "--skus", "40", "--customers", "8"]
CORRUPT = b"%PDF-1.4\n garbage, not a pdf body"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ORDEROPS_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ORDEROPS_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run(["init", *SMALL, "--json"]) == 0
    return tmp_path


def samples(home: Path) -> tuple[list[SampleDoc], bytes]:
    """The demo's X12 / PDF / e-mail samples and a clean CSV, for this network."""
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    try:
        from api.bootstrap import make_clock

        clock = make_clock(Settings(), db)
        adapters = embedded_adapters(db, clock)
        catalog = load_catalog(db, business_date=clock.now().date())
        docs = sample_documents(adapters, catalog)
        pdf_cust = next(c for c in catalog.customers if c.email == docs[1].sender)
        sku = next(s for s in catalog.skus if s in pdf_cust.prices and pdf_cust.prices[s] < 100)
        gold = GoldOrder(doc_id="cli-csv", format="csv", customer_id=pdf_cust.id, sender=pdf_cust.email,
                         po_number="PO-771204", po_date=catalog.business_date,
                         ship_to_address_id=pdf_cust.addresses[0].id,
                         lines=[GoldLine(sku=sku, quantity=7, unit_price=pdf_cust.prices[sku],
                                         expected_price=pdf_cust.prices[sku])])  # fmt: skip
        data, _name, _media = render(gold, catalog, random.Random(5), 9)
        return docs, data
    finally:
        db.dispose()


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    code = run([*argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def order_count(home: Path, po_number: str) -> int:
    db = make_database(url=f"sqlite:///{home / 'orderops.db'}")
    with db.engine.connect() as conn:
        n = conn.execute(text("select count(*) from orders where external_ref = :p"), {"p": po_number}).scalar_one()
    db.dispose()
    return int(n)


def test_intake_files_reports_orders_findings_and_decisions(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs, csv_data = samples(cli_env)
    (cli_env / "po.csv").write_bytes(csv_data)
    (cli_env / "po.x12").write_bytes(docs[0].data)
    (cli_env / "broken.pdf").write_bytes(CORRUPT)
    out = run_json(capsys, "intake", "po.csv", "--sender", str(docs[1].sender))
    out += run_json(capsys, "intake", "po.x12", "broken.pdf")
    assert [d["file"] for d in out] == ["po.csv", "po.x12", "broken.pdf"]
    csv_doc, x12_doc, bad = out
    for d in (csv_doc, x12_doc):
        assert d["status"] == "processed"
        (o,) = d["orders"]
        assert o["decision"]["status"] == "created", o["decision"]
        assert o["decision"]["order_id"]
        assert o["customer_id"]
        assert o["ship_to_id"]
        assert all(ln["sku"] and ln["quantity"] and ln["unit_price"] and ln["product_ids"] for ln in o["lines"])
    (o,) = csv_doc["orders"]
    assert o["po_number"] == "PO-771204"
    assert [ln["quantity"] for ln in o["lines"]] == ["7"]
    assert order_count(cli_env, "PO-771204") == 1
    assert {"x12-997", "x12-855"} <= {a["kind"] for a in x12_doc["acks"]}
    assert any(f["code"] == "customer_identified" for f in x12_doc["orders"][0]["findings"])
    assert bad["status"] == "quarantined"
    assert bad["reason"]
    assert bad["orders"] == []
    # The same files again: the stored results, no second order.
    again = run_json(capsys, "intake", "po.csv", "--sender", str(docs[1].sender))
    assert again[0]["received_before"] is True
    assert again[0]["orders"][0]["decision"]["order_id"] == o["decision"]["order_id"]
    assert order_count(cli_env, "PO-771204") == 1
    # The table view says the same in words.
    capsys.readouterr()
    assert run(["intake", "po.x12"]) == 0
    assert "auto-created order" in capsys.readouterr().out
    assert run(["intake", "missing.csv"]) == 2


def test_watch_once_moves_processed_and_quarantined_files(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs, _csv = samples(cli_env)
    inbox = cli_env / "inbox"
    inbox.mkdir()
    (inbox / "po.x12").write_bytes(docs[0].data)
    (inbox / "broken.pdf").write_bytes(CORRUPT)
    assert run(["intake", "watch", str(inbox), "--once"]) == 0
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []
    assert (inbox / "processed" / "po.x12").exists()
    assert (inbox / "quarantine" / "broken.pdf").exists()
    assert "quarantined" in (inbox / "quarantine" / "broken.pdf.reason.txt").read_text()
    # Dropped again: ingested once (same content), not a second order.
    (inbox / "po.x12").write_bytes(docs[0].data)
    assert run(["intake", "watch", str(inbox), "--once"]) == 0
    assert (inbox / "processed" / "po.1.x12").exists()
    assert order_count(cli_env, "PO-850123") == 1


def test_review_correct_then_approve_creates_the_order(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs, _csv = samples(cli_env)
    mail = docs[2]
    (cli_env / "mail.eml").write_bytes(mail.data)
    (doc,) = run_json(capsys, "intake", "mail.eml", "--channel", "email")  # the From: names the customer
    (o,) = doc["orders"]
    assert o["decision"]["status"] == "queued"
    item_id = o["decision"]["review_item_id"]
    unknown = next(f for f in o["findings"] if f["code"] == "unknown_part")
    assert unknown["source"] is not None
    listed = run_json(capsys, "review", "list")
    assert [i["id"] for i in listed] == [item_id]
    shown = run_json(capsys, "review", "show", item_id)
    assert shown["status"] == "open"
    bad_line = unknown["field"].split(".")[0]  # lines[i]
    good_sku = next(ln["sku"] for ln in o["lines"] if ln["sku"])
    db = make_database(url=f"sqlite:///{cli_env / 'orderops.db'}")
    with db.engine.connect() as conn:
        addr = conn.execute(text("select id from addresses where customer_id = :c order by id"),
                            {"c": o["customer_id"]}).scalars().first()  # fmt: skip
    db.dispose()
    alice = create_key(cli_env, "alice", ["operator"])
    viewer = create_key(cli_env, "vic", ["viewer"])
    # A name typed on the command line is no identity: the reviewer is the person behind a key.
    assert run(["review", "approve", item_id, "--as", "alice", "--role", "operator"]) == 2
    assert run(["review", "approve", item_id, "--key", viewer]) == 2
    # Approving before the fixes fails and changes nothing.
    assert run(["review", "approve", item_id, "--key", alice]) == 2
    fixed = run_json(capsys, "review", "correct", item_id, f"{bad_line}.sku={good_sku}", f"ship_to={addr}",
                     "--key", alice)  # fmt: skip
    assert fixed["status"] == "open"
    assert fixed["reviewer"] == "alice"
    approved = run_json(capsys, "review", "approve", item_id, "--key", alice)
    assert approved["status"] == "approved"
    assert approved["order_id"]
    assert order_count(cli_env, o["po_number"]) == 1
    assert run(["review", "reject", item_id, "--key", alice, "--reason", "late"]) == 2


def test_worker_runs_intake_process_jobs(cli_env: Path) -> None:
    from api.bootstrap import open_context
    from api.cli_intake import intake_deps
    from api.worker_dbos import DbosWorker
    from core.outbox import INTAKE_PROCESS, Outbox
    from intake.pipeline import load_result

    docs, _csv = samples(cli_env)
    actx = open_context(Settings())
    try:
        deps = intake_deps(actx)
        doc = deps.documents.receive(docs[0].data, channel="email", filename="po.x12")
        queue = Outbox(actx.db)
        job = queue.enqueue(INTAKE_PROCESS, {"document_id": doc.id})
        with DbosWorker(actx, worker_id="w-test", planner="playbook") as worker:
            done = worker.run_once()
            assert done is not None
            assert done.id == job.id
            assert done.status == "done", done
            result = load_result(doc.id, deps)
            assert result is not None
            assert result.outcomes[0].status == "created"
            bad = queue.enqueue(INTAKE_PROCESS, {"document_id": "no-such-document"})
            failed = worker.run_once()
            assert failed is not None
            assert failed.id == bad.id
            assert failed.status in ("failed", "dead")  # NotFound: not retried
    finally:
        actx.close()
    assert order_count(cli_env, "PO-850123") == 1
