"""The intake-external suite: gold derived from other projects' expected outputs, field scoring,
the created-order check, and a short run through the runner with the report it makes. Scores are
not tested (they move as the parsers improve); the safety number is: 0 wrong auto-created orders."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli_eval import eval_app
from core.db import make_database
from core.domain import OrderCreate, OrderLineIn
from evals.datasets.external_po import (
    ExternalDoc,
    GoldLine,
    GoldOrder,
    GoldShipTo,
    canonical_unit,
    external_docs,
    load_bots_edifact,
    load_bots_x12,
    load_node_x12,
)
from evals.external_po import (
    FIELDS,
    _created_wrong,
    build_master_data,
    external_suite,
    pair_orders,
    prepare_external_template,
    score_order,
)
from evals.report import render_markdown
from evals.runner import EvalConfig, run_eval, select_tasks
from intake.model import Party, POLine, ProductId, PurchaseOrder
from tests.conftest import CORPORA
from tools.adapters.embedded import embedded_adapters

needs_corpora = pytest.mark.skipif(not (CORPORA / "x12-850").is_dir(), reason="../shared/corpora not present")


def _po(lines: list[POLine], *, number: str = "PO-7", zip_code: str = "06103") -> PurchaseOrder:
    return PurchaseOrder(
        document_type="850", po_number=number, po_date=None,
        parties=[Party(role="ST", name="Works", address_lines=["41 Foundry Ct"], city="Hartford", state="CT",
                       postal_code=zip_code)],
        lines=lines,
    )  # fmt: skip


def _line(part: str, qty: str, unit: str | None, price: str | None) -> POLine:
    return POLine(
        product_ids=[ProductId(qualifier="BP", value=part)], quantity=Decimal(qty), unit=unit,
        unit_price=Decimal(price) if price else None,
    )  # fmt: skip


GOLD = GoldOrder(
    po_number="PO-7", po_date=None, ship_to=GoldShipTo(postal_code="06103"),
    lines=(
        GoldLine(part_ids=("GS-1",), quantity=Decimal(10), unit="CS", unit_price=Decimal("64.05")),
        GoldLine(part_ids=("GS-2", "DB-2"), vendor_part="DB-2", quantity=Decimal(2), unit="EA",
                 unit_price=Decimal("0.1154")),
    ),
)  # fmt: skip


def test_units_compare_as_one_code_per_unit() -> None:
    assert canonical_unit("case of 12") == canonical_unit("CA") == canonical_unit("Case") == "CS"
    assert canonical_unit("pk/24") == "PK"
    assert canonical_unit("Each") == canonical_unit("PCS") == "EA"
    assert canonical_unit("box of 100") == "BX" != canonical_unit("EA")
    assert canonical_unit(None) is None


def test_an_order_read_right_is_exact_whatever_the_line_order_and_spelling() -> None:
    po = _po([_line("DB-2", "2", "Each", "0.1154"), _line("GS-1", "10", "case of 12", "64.05")])
    s = score_order(GOLD, po)
    assert s.exact, s.diffs
    assert s.fields["part"].tp == 2
    assert s.fields["quantity"].tp == 2
    assert s.fields["unit_price"].tp == 2
    assert s.fields["po_date"].tp == s.fields["po_date"].fn == 0  # not in the gold: not scored


def test_wrong_missing_and_invented_values_are_counted() -> None:
    po = _po(
        [_line("GS-1", "1", "CS", "64.05"), _line("TERMS-18", "2510", None, "5.00")], number="PO-8", zip_code="01608"
    )
    s = score_order(GOLD, po)
    assert not s.exact
    assert s.fields["po_number"].fp == s.fields["po_number"].fn == 1
    assert s.fields["ship_to"].fn == 1
    assert (s.fields["quantity"].tp, s.fields["quantity"].fn) == (0, 2)
    assert s.fields["part"].tp == 1
    assert s.fields["part"].fn == 1
    # the second read line is paired by position with the gold's second line: wrong part, quantity, price
    assert s.fields["part"].fp == 1
    assert s.fields["unit_price"].fp == 1
    assert any("quantity: expected 10, found 1" in d for d in s.diffs)
    nothing = score_order(GOLD, None)
    assert not nothing.exact
    assert nothing.fields["part"].fn == 2
    assert nothing.fields["unit_price"].fn == 2
    extra = score_order(GOLD, _po([_line("GS-1", "10", "CS", "64.05"), _line("GS-2", "2", "EA", "0.1154"),
                                   _line("FREIGHT", "1", None, "40")]))  # fmt: skip
    assert not extra.exact
    assert extra.fields["part"].fp == 1
    assert extra.fields["quantity"].fp == 1


def test_orders_pair_by_po_number_then_in_order() -> None:
    a, b = GOLD, GoldOrder(po_number="PO-9", po_date=None, ship_to=None, lines=())
    read = [_po([], number="PO-9"), _po([], number="X")]
    assert pair_orders([a, b], read) == [1, 0]
    assert pair_orders([a, b], read[:1]) == [None, 0]


@needs_corpora
def test_gold_comes_from_the_expected_outputs_and_covers_every_message() -> None:
    x12 = load_bots_x12()
    assert sum(len(d.orders) for d in x12) == len(list((CORPORA / "x12-850/bots-x12-demo/expected-xml").glob("*.xml")))
    first = next(d for d in x12 if d.filename == "850-004010-01.x12").orders[0]
    assert (first.po_number, str(first.po_date), first.ship_to and first.ship_to.postal_code) == (
        "91393058", "1997-11-07", "00928",
    )  # fmt: skip
    assert [ln.quantity for ln in first.lines] == [Decimal(6)] * 8
    edi = load_bots_edifact()
    assert sum(len(d.orders) for d in edi) == len(list((CORPORA / "edifact-orders/bots-edifactorder2xml/expected-xml")
                                                      .glob("*.xml")))  # fmt: skip
    (node,) = load_node_x12()
    assert node.orders[0].po_date is None  # the mapping's empty date is not gold
    assert [ln.quantity for ln in node.orders[0].lines] == [Decimal(q) for q in (120, 220, 126, 76, 72, 696)]
    docs = external_docs()
    assert {d.source for d in docs} >= {"po-erp-styles", "bots-x12-demo", "bots-edifactorder2xml", "node-x12",
                                        "invoice2data"}  # fmt: skip
    assert all(d.negative and not d.orders for d in docs if d.source == "invoice2data")
    assert len({d.case_id for d in docs}) == len(docs)


@needs_corpora
def test_created_order_check_compares_with_the_gold_through_the_master_data(tmp_path: Path) -> None:
    suite = external_suite()
    case = "bots-x12-demo/850-004010-10.x12"
    expect = suite.master.expect[case][0]
    assert expect is not None
    assert expect["lines"]
    db = make_database(url=f"sqlite:///{prepare_external_template(tmp_path, suite)}")
    try:
        from datetime import UTC, datetime

        from core.clock import FixedClock

        oms = embedded_adapters(db, FixedClock(datetime(2026, 11, 23, 9, tzinfo=UTC))).oms
        lines = [OrderLineIn(sku=s, quantity=int(q), unit_price=Decimal(p)) for s, q, p in expect["lines"]]
        right = oms.create_order(OrderCreate(customer_id=expect["customer_id"], ship_to_id=expect["ship_to_id"],
                                             external_ref=expect["po_number"], lines=lines))  # fmt: skip
        assert _created_wrong(right.id, expect, oms) is None
        assert "po_number" in str(_created_wrong(right.id, {**expect, "po_number": "OTHER"}, oms))
        changed = [(s, str(int(q) + 1), p) for s, q, p in expect["lines"]]
        assert "lines" in str(_created_wrong(right.id, {**expect, "lines": changed}, oms))
        assert _created_wrong(right.id, None, oms) is not None  # nothing to vouch for it: wrong
    finally:
        db.dispose()


def test_master_data_is_what_an_installation_holds_for_the_gold_buyers() -> None:
    gold = GoldOrder(po_number="1", po_date=None, ship_to=GoldShipTo(postal_code="06103", street="41 Foundry Ct"),
                     lines=GOLD.lines, buyer_name="Granite Shoals")  # fmt: skip
    doc = ExternalDoc(case_id="s/a.csv", source="s", format="csv", path=Path("a.csv"), orders=(gold, gold))
    md = build_master_data([doc])
    assert [c["name"] for c in md.customers] == ["Granite Shoals"]
    assert len(md.addresses) == 1
    assert md.addresses[0]["postal_code"] == "06103"
    assert {p["uom"] for p in md.products} == {"CS", "EA"}
    assert ("XC-001", "GS-2", "DB-2") in md.xrefs  # our SKU is the vendor part the buyer prints
    first, second = md.expect["s/a.csv"]
    assert first == second
    assert first is not None
    assert len(first["lines"]) == 2


@needs_corpora
def test_suite_runs_a_few_documents_and_reports_per_format_and_source(tmp_path: Path) -> None:
    picks = ("bots-x12-demo/850-004010-10.x12", "node-x12/850.edi", "po-erp-styles/csv-02-preamble.csv",
             "invoice2data/oyo.pdf")  # fmt: skip
    tasks = select_tasks(EvalConfig(suites=("intake-external",)), tmp_path)
    assert len(tasks) >= 60
    assert {t.trial for t in tasks} == {0}
    run = run_eval(EvalConfig(suites=("intake-external",), cases=picks, workers=1), workdir=tmp_path)
    assert sorted(r.case_id for r in run.results) == sorted(picks)
    for r in run.results:
        assert r.error is None, r.error
        assert set(r.metrics["fields"]) == set(FIELDS)
        assert r.metrics["auto_created_wrong"] == 0, r.failures
    m = run.metrics["intake-external"]
    assert m["auto_created_wrong"] == 0
    assert m["negatives"] == 1
    assert m["negatives_order_created"] == 0
    assert set(m["by_format"]) == {"x12", "csv", "pdf"}
    assert set(m["by_source"]) == {"bots-x12-demo", "node-x12", "po-erp-styles", "invoice2data"}
    for g in [*m["by_format"].values(), *m["by_source"].values()]:
        assert {"documents", "orders", "exact_orders", "exact_order_rate", "macro_f1", "f1", "auto_created",
                "auto_created_wrong"} <= set(g)  # fmt: skip
    assert m["orders"] == 4
    assert 0.0 <= m["exact_order_rate"] <= 1.0
    md = render_markdown(run)
    assert "### intake-external" in md
    assert "| source | docs | exact orders |" in md
    json.dumps(m)  # the stored run is JSON


@needs_corpora
def test_cli_takes_the_suite_and_comma_lists(tmp_path: Path) -> None:
    results = f"sqlite:///{tmp_path / 'r.db'}"
    runner = CliRunner()
    bad = runner.invoke(eval_app, ["run", "--suite", "intake,nope", "--results-db", results])
    assert bad.exit_code == 2
    ok = runner.invoke(eval_app, ["run", "--suite", "intake-external", "--case", "invoice2data/oyo.pdf", "--workers",
                                  "1", "--results-db", results, "--out", str(tmp_path / "out"), "--json"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    out = json.loads(ok.output.strip().splitlines()[-1])
    assert out["metrics"]["intake-external"]["negatives_order_created"] == 0
    assert "intake-external" in (tmp_path / "out" / "report.md").read_text()
