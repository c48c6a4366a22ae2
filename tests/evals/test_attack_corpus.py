"""The attack corpus and its scoring work: sizes, determinism, documents that parse, the metrics.

These check the machinery (as every eval test does), not the detector's scores."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from evals.datasets import attack_corpus as ac
from evals.datasets.security import corpus_cases
from evals.metrics import CaseResult, security_metrics
from evals.runner import EvalConfig, Task, run_tasks
from intake.classify import DocFormat, sniff

BITS = ac.DocBits(po_number="PO-123456", sender="buyer@example.com", edi_id="BUYER1", ship_name="Acme Receiving",
                  street="100 Main St", city="Atlanta", state="GA", postal_code="30303",
                  lines=(("SKU-00001", 5, "12.50"), ("SKU-00002", 10, "3.00")), customer_name="Acme")  # fmt: skip


def test_the_generated_corpus_is_large_varied_and_deterministic() -> None:
    items = ac.corpus_items(public=False)
    assert items == ac.corpus_items(public=False)
    attacks = [i for i in items if not i.control]
    controls = [i for i in items if i.control]
    assert len(attacks) >= 1400
    assert len(controls) >= 300
    techniques = Counter(i.technique for i in attacks)
    assert len(techniques) >= 30
    assert sum(t.startswith("lang:") for t in techniques) >= 10
    assert set(Counter(i.carrier for i in items)) == set(ac.CARRIERS)
    assert len({i.id for i in items}) == len(items)


def test_public_prompts_come_from_an_installed_collection_or_are_reported_missing() -> None:
    got = ac.public_prompts()
    if got:
        assert sum(len(v) for v in got.values()) >= 500
        assert all(i.source.startswith("public:") for i in ac.corpus_items() if i.technique.startswith("public:"))
    else:
        assert ac.public_status().startswith("missing")


def test_every_document_carrier_renders_a_document_of_its_format() -> None:
    expected = {"email": DocFormat.EMAIL, "email_html": DocFormat.EMAIL, "pdf": DocFormat.PDF,
                "x12_nte": DocFormat.X12, "x12_msg": DocFormat.X12, "edifact_ftx": DocFormat.EDIFACT}  # fmt: skip
    for carrier, fmt in expected.items():
        for technique in ("plain", "hidden_html", "pdf_hidden_text", "control"):
            note = "Please deliver to dock 4 (ref: a+b:c'd?)."
            item = ac.CorpusItem(id=f"x-{carrier}", carrier=carrier, technique=technique, source="test",  # type: ignore[arg-type]
                                 payload=note, control=technique == "control")  # fmt: skip
            data, name, media = ac.render_document(item, BITS, item.payload)
            assert sniff(data, filename=name, media_type=media) is fmt, (carrier, technique)


def test_corpus_cases_cover_documents_alerts_and_goals() -> None:
    cases = corpus_cases()
    kinds = Counter(c.kind for c in cases)
    assert kinds["document"] > 0
    assert kinds["alert"] > 0
    assert kinds["goal"] > 0
    multi = [c for c in cases if c.extra["technique"] == "multi_incident"]
    assert multi
    assert all(c.kind == "goal" and "{other}" in (c.payload.text if c.payload else "") for c in multi)


def _result(
    case_id: str, *, control: bool, technique: str, flagged: bool, writes: int = 0, outside: int = 0
) -> CaseResult:
    return CaseResult(suite="security", case_id=case_id, category="corpus_control" if control else "corpus_attack",
                      trial=0, passed=True, metrics={"corpus": True, "control": control, "technique": technique,
                      "carrier": "email", "source": "generated", "flagged": flagged, "unapproved_writes": writes,
                      "orders_outside_scope": outside})  # fmt: skip


def test_corpus_metrics_count_writes_widened_scopes_and_rates_per_technique() -> None:
    results = [
        _result("a1", control=False, technique="rot13", flagged=True),
        _result("a2", control=False, technique="rot13", flagged=False, writes=1),
        _result("a3", control=False, technique="leetspeak", flagged=False, outside=3),
        _result("c1", control=True, technique="control", flagged=True),
        _result("c2", control=True, technique="control", flagged=False),
    ]
    c = security_metrics(results)["corpus"]
    assert c["attacks"] == 3
    assert c["controls"] == 2
    assert c["writes_without_person"] == 1
    assert c["widened_scopes"] == 1
    assert c["false_flag_rate"] == 0.5
    assert c["by_technique"]["rot13"]["detection_rate"] == 0.5
    assert c["by_technique"]["leetspeak"]["widened_scopes"] == 1


def test_corpus_cases_run_end_to_end(tmp_path: Path) -> None:
    ids = ["corpus-gen-lang-nl-email-00", "corpus-gen-multi_incident-goal-00", "corpus-ctl-doc-email-00"]
    results = {r.case_id: r for r in run_tasks([Task("security", i, 0) for i in ids], EvalConfig(workers=1), tmp_path)}
    for r in results.values():
        assert r.error is None, r.error
        assert r.metrics["corpus"] is True
    doc = results["corpus-gen-lang-nl-email-00"].metrics
    assert doc["purchase_orders"] == 1
    assert doc["auto_created"] == 0
    goal = results["corpus-gen-multi_incident-goal-00"].metrics
    assert goal["orders_outside_scope"] == 0
    control = results["corpus-ctl-doc-email-00"].metrics
    assert control["purchase_orders"] == 1
    assert not control["flagged"]
