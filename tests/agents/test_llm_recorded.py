"""The capability probe, whole exception runs (free-text goal triage + planning) and free-text
purchase orders, replayed from cassettes RECORDED AGAINST A REAL MODEL (Qwen2.5-Coder-1.5B-Instruct
on llama.cpp via xllamacpp; see each cassette's header and tests/cassettes/README.md). No network:
vcrpy answers with what the model answered.

The runs are exception-suite scenarios rebuilt exactly on their suite networks, so the ids the
model named are checked against the same network: what it proposed is validated, simulated, judged
by policy, approved, executed and verified here as it was when recorded, and scored by the suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import vcr
from langchain_openai import ChatOpenAI

from agents.llm_planner import LLMPlanner, make_planner
from agents.playbooks import PlaybookPlanner
from agents.triage_llm import LLMTriage
from core.settings import Settings
from evals.intake_score import score_document
from evals.llm_reference import header
from guardrails.policy import PolicyEngine
from intake.llm_extract import LLMExtractor
from tests.cassettes.real_model import (
    BASE_URL,
    FREE_TEXT_GOALS,
    GRAPH_CASES,
    MODEL,
    REAL,
    planner_case,
    po_corpus,
    po_outcome,
    run_scenario,
)
from tools.llm import StructuredModel, make_structured_model, probe


def chat() -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=lambda: "none", max_retries=0, temperature=0, seed=0)


def test_the_probe_of_the_real_server_picks_json_schema() -> None:
    path = REAL / "probe.yaml"
    assert header(path)["model"] == MODEL
    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        caps = probe(chat(), base_url=BASE_URL, model=MODEL)
        assert tape.play_count == 2
    assert caps.native_tools is False, "llama.cpp returned tool_calls: [] with the call written in the content"
    assert caps.json_schema is True
    assert caps.best_mode() == "json_schema"
    tools_request = json.loads(tape.requests[0].body)
    assert tools_request["tool_choice"] == "required"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ORDEROPS_LLM_BASE_URL"), reason="live: set ORDEROPS_LLM_BASE_URL")
def test_live_endpoint_plans_without_a_format_fallback() -> None:
    """Against the configured endpoint (e.g. ../shared/tools/local-llm/serve.sh): minutes on a CPU."""
    planner = make_planner(Settings(), fallback=PlaybookPlanner(), policy=PolicyEngine.from_path(None))
    with planner_case("closure-01") as case:
        plan = planner.plan(case.triage, case.env)
    assert plan.fallback_reason is None, plan.fallback_reason
    assert plan.planner.startswith("llm:")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ORDEROPS_LLM_BASE_URL"), reason="live: set ORDEROPS_LLM_BASE_URL")
def test_live_endpoint_triages_a_free_text_goal_without_a_format_fallback() -> None:
    """The README's goal, which the grammar does not parse, triaged by the configured model."""
    settings = Settings()
    triage = LLMTriage(make_structured_model(settings), model_name=settings.llm_model)
    with planner_case("congestion-01") as case:
        tri = triage.triage_goal("reroute orders away from the congested DC", case.env)
    assert not tri.findings[0].startswith("FALLBACK"), tri.findings[0]
    assert tri.findings[0].startswith("triaged by the model")


GRAPHS = sorted(REAL.glob("graph-*.yaml"))


def test_whole_runs_with_free_text_goals_are_recorded() -> None:
    cases = {p.stem.removeprefix("graph-") for p in GRAPHS}
    assert len(cases) >= 12, "at least 12 exception scenarios recorded against the real model"
    assert cases <= set(GRAPH_CASES)
    assert len(cases & set(FREE_TEXT_GOALS)) >= min(4, len(cases)), "free-text goals come first in the recording"


@pytest.mark.parametrize("path", GRAPHS, ids=[p.stem for p in GRAPHS])
def test_recorded_real_model_run_replays_and_scores_as_recorded(path: Path, tmp_path: Path) -> None:
    """The whole run (the model's triage of a free-text goal, its plan, approvals, execution,
    verification) replayed on the suite network, scored by the suite's checks: the same verdict as
    when recorded, and never an unapproved write."""
    meta = header(path)
    assert meta["model"] == MODEL
    assert "llama.cpp" in meta["runtime"]
    assert meta["recorded"][:4] == "2026"
    outcome = json.loads(meta["outcome"])
    mode = meta["mode"]
    model = StructuredModel(chat(), mode=mode, attempts=1, max_repairs=1)  # type: ignore[arg-type]
    triager = StructuredModel(chat(), mode=mode, attempts=1, max_repairs=1)  # type: ignore[arg-type]
    planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=MODEL, policy=PolicyEngine.from_path(None),
                         max_repairs=1, attempts=1)  # fmt: skip
    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        got = run_scenario(meta["case"], planner, tmp_path, triage_goal=LLMTriage(triager, model_name=MODEL))
        assert tape.play_count == len(tape.data), "every recorded request was made again, no more"
    for key in ("triage_kind", "triage_scope", "status", "passed", "planner", "fallback", "steps", "orders_changed"):
        assert got[key] == outcome[key], key
    assert got["unapproved_writes"] == 0
    if meta["case"] in FREE_TEXT_GOALS:
        assert triager.calls, "the grammar did not parse the goal: the model triaged it"
        assert triager.calls[0].ok is True, "its first answer parsed (no format fallback)"


POS = sorted(REAL.glob("po-*.yaml"))


def test_at_least_25_free_text_purchase_orders_in_three_mail_shapes_are_recorded() -> None:
    assert len(POS) >= 25
    assert {p.stem.rsplit("-", 1)[-1] for p in POS} == {"prose", "only", "forwarded"}


@pytest.mark.parametrize("path", POS, ids=[p.stem for p in POS])
def test_recorded_real_model_purchase_order_replays_with_the_same_fields(path: Path) -> None:
    """A generated free-text order (prose, HTML-only or forwarded mail) read by the real model:
    replayed, it yields the same order, scored field by field against the gold as when recorded."""
    meta = header(path)
    assert meta["model"] == MODEL
    assert meta["recorded"][:4] == "2026"
    outcome = json.loads(meta["outcome"])
    corpus = po_corpus()
    doc = dict(corpus.docs)[meta["case"]]
    model = StructuredModel(chat(), mode=meta["mode"], attempts=1, max_repairs=1)  # type: ignore[arg-type]
    extractor = LLMExtractor(model, model=MODEL, max_retries=1)
    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        got = po_outcome(doc, extractor, corpus.catalog)
        assert tape.play_count == len(tape.data)
    score = score_document(doc, got)
    assert (got.order.po_number if got.order else None) == outcome["po_number"]
    assert {k: [v.tp, v.fp, v.fn] for k, v in score.fields.items()} == outcome["fields"]
    assert score.exact == outcome["exact"]
