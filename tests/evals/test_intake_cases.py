"""The intake suite runs one case per corpus document: at least 200 tasks, per-document results that
add up to the corpus numbers, and re-sends replaying their original. Scores are not tested."""

from __future__ import annotations

from pathlib import Path

from evals.intake_score import DocOutcome, aggregate, score_document
from evals.metrics import CaseResult, intake_case_metrics, intake_metrics
from evals.report import render_markdown
from evals.runner import EvalConfig, intake_corpus, run_eval, select_tasks
from intake.samples import GeneratedDoc, GoldLine, GoldOrder


def test_intake_suite_has_one_task_per_document(tmp_path: Path) -> None:
    tasks = select_tasks(EvalConfig(suites=("intake",)), tmp_path)
    ids = [t.case_id for t in tasks]
    assert len(ids) >= 200
    assert len(set(ids)) == len(ids)
    assert ids == list(intake_corpus(tmp_path).docs)
    assert {t.trial for t in tasks} == {0}
    assert len(select_tasks(EvalConfig(suites=("intake",), limit=3), tmp_path)) == 3


def test_per_document_cases_add_up_and_resends_replay_their_original(tmp_path: Path) -> None:
    docs = intake_corpus(tmp_path).docs
    resent = next(d for d in docs.values() if d.gold.duplicate_of is not None)
    first = next(iter(docs))
    run = run_eval(EvalConfig(suites=("intake",), cases=(first, resent.doc_id), workers=1), workdir=tmp_path)
    by_id = {r.case_id: r for r in run.results}
    assert set(by_id) == {first, resent.doc_id}
    dup = by_id[resent.doc_id]
    assert dup.error is None, dup.error
    assert dup.metrics["replayed"] == [resent.gold.duplicate_of]
    assert dup.metrics["expected_decision"] == "duplicate"
    assert dup.metrics["decision"] == "duplicate"
    for r in run.results:
        assert r.suite == "intake"
        assert set(r.metrics["fields"]) == {"po_number", "customer", "ship_to", "sku", "quantity", "uom", "unit_price"}
        assert r.metrics["pipeline_s"] >= 0
        assert r.passed == (r.metrics["decision_correct"] and not r.metrics["auto_created_wrong"])
    m = run.metrics["intake"]
    assert m["documents"] == m["cases"] == 2
    assert m["auto_created_wrong"] == 0
    assert 0.0 <= m["decision_accuracy"] <= 1.0
    assert "| field | precision | recall | f1 |" in render_markdown(run)


def _doc(doc_id: str, decision: str = "auto_create") -> GeneratedDoc:
    gold = GoldOrder(
        doc_id=doc_id, format="csv", customer_id="CUST-1", sender="b@example.com", po_number="PO-1",
        po_date="2026-11-20", ship_to_address_id=None, expected_decision=decision,  # type: ignore[arg-type]
        lines=[GoldLine(sku="SKU-1", quantity=2, unit_price=None, expected_price=None)],
    )  # fmt: skip
    return GeneratedDoc(doc_id=doc_id, filename="po.csv", media_type="text/csv", data=b"", gold=gold)


def test_case_metrics_match_the_whole_corpus_scores() -> None:
    docs = [_doc("a"), _doc("b"), _doc("c", "quarantine")]
    outcomes = [
        DocOutcome(doc_id="a", customer_id="CUST-1", decision="auto_create", created_wrong=False),
        DocOutcome(doc_id="b", customer_id="CUST-2", decision="review", finding_codes=["injection_suspected"]),
        DocOutcome(doc_id="c", decision="quarantine"),
    ]
    scores = [score_document(d, o) for d, o in zip(docs, outcomes, strict=True)]
    results = [
        CaseResult(suite="intake", case_id=s.doc_id, category=s.format, passed=bool(s.decision_correct),
                   metrics={**s.model_dump(), "decision_correct": s.decision_correct}, duration_s=0.5)
        for s in scores
    ]  # fmt: skip
    per_case = intake_case_metrics(results)
    whole = intake_metrics(aggregate(scores))
    assert per_case["per_field"] == whole["per_field"]
    assert per_case["macro_f1"] == whole["macro_f1"]
    assert per_case["decision_accuracy"] == round(whole["decision_accuracy"], 4) == round(2 / 3, 4)
    assert per_case["exact_match_rate"] == whole["exact_match_rate"] == 0.0
    assert per_case["auto_created"] == 1
    assert per_case["auto_created_wrong"] == 0
    assert per_case["false_flag_rate"] == 0.5
    assert per_case["decisions"] == {"auto_create": {"auto_create": 1, "review": 1}, "quarantine": {"quarantine": 1}}
    assert per_case["duration_s_per_doc"] == 0.5
