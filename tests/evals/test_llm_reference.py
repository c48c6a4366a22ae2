"""The committed real-model eval reference (``evals/reference/run-llm.json`` / ``.md``) re-run from
the cassettes RECORDED AGAINST A REAL MODEL (Qwen2.5-Coder-1.5B-Instruct on llama.cpp): every
number must equal the committed one, so a prompt, planner or validation change that moves the
real-model results fails here until the reference is rewritten (``python -m evals.llm_reference
--write``) and the diff committed. No network: vcrpy answers with what the model answered.

Whatever the numbers, three hold across all real-model runs: no unapproved write, no wrong
auto-created order, and every fallback named on the report's first line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.llm_reference import CASSETTES, REFERENCE, headline_line, po_case, reference_run, render, stable_numbers
from evals.runner import EvalRun


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> EvalRun:
    return reference_run(workdir=tmp_path_factory.mktemp("llm-ref"))


@pytest.fixture(scope="module")
def committed() -> EvalRun:
    return EvalRun.model_validate_json((REFERENCE / "run-llm.json").read_text(encoding="utf-8"))


def test_the_replay_gives_the_committed_numbers(replayed: EvalRun, committed: EvalRun) -> None:
    want, got = stable_numbers(committed), stable_numbers(replayed)
    assert got["metrics"] == want["metrics"]
    for case in sorted(set(want["cases"]) | set(got["cases"])):
        assert got["cases"].get(case) == want["cases"].get(case), case


def test_no_unapproved_write_no_wrong_order_and_every_fallback_on_the_first_line(replayed: EvalRun) -> None:
    totals = replayed.metrics["real-model"]
    assert totals["runs"] == 13
    assert totals["purchase_orders"] == 30
    assert totals["unapproved_writes"] == 0
    assert totals["auto_created"] > 0, "the pipeline's normal auto-create policy ran"
    assert totals["auto_created_wrong"] == 0
    first = render(replayed).splitlines()[0]
    assert first == headline_line(replayed)
    assert f"fallbacks {totals['fallbacks']}" in first
    for case in totals["fallback_cases"]:
        assert case in first
    assert all(r.metrics["model_calls"] > 0 for r in replayed.results), "every case asked the (replayed) model"


def test_the_report_says_the_answers_were_replayed_and_recorded_where(committed: EvalRun) -> None:
    text = (REFERENCE / "run-llm.md").read_text(encoding="utf-8")
    assert text == render(committed)
    replay = next(line for line in text.splitlines() if "REPLAYED" in line)
    assert "qwen2.5-coder-1.5b-instruct" in replay
    assert "llama.cpp" in replay
    assert "xllamacpp" in replay
    assert "2026-12-06" in replay


def test_a_model_value_not_in_the_document_blocks_auto_create(tmp_path: Path) -> None:
    """The model made the PO number up from the date (doc-13-0017) and read 24 as 2 (doc-13-0021):
    both values validate, so only the extractor's ``llm_value_unlocated`` finding tells; it sends
    the order to review instead of creating it wrong."""
    for case in ("doc-13-0017-forwarded", "doc-13-0021-prose"):
        r = po_case(CASSETTES / f"po-{case}.yaml", tmp_path)
        assert r.metrics["wrong_fields"], "the model's reading is wrong"
        assert r.metrics["unlocated_value"]
        assert r.metrics["decision"] == "review"
        assert not r.metrics["auto_created"]
    assert json.loads((REFERENCE / "run-llm.json").read_text())["metrics"]["real-model"]["auto_created_wrong"] == 0


def test_a_fallback_is_named_on_the_first_line(committed: EvalRun) -> None:
    """No recorded run fell back today; the day one does (the model's plan refused and the playbook
    standing in, or the extractor giving up for the rules), the report's first line names it."""
    from evals.llm_reference import _totals

    results = [r.model_copy(deep=True) for r in committed.results]
    results[0].metrics["fallbacks"] = ["plan: the model's plan named an unknown order"]
    po = next(r for r in results if r.suite == "intake")
    po.metrics["fallbacks"] = ["llm_unavailable"]
    run = committed.model_copy(
        update={"results": results, "metrics": {**committed.metrics, "real-model": _totals(results)}}
    )
    first = render(run).splitlines()[0]
    assert "fallbacks 2 (" in first
    assert f"{results[0].case_id}: plan: the model's plan named an unknown order" in first
    assert f"{po.case_id}: llm_unavailable" in first
