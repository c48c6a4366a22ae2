"""The LLM extractor on prose purchase-order e-mails, replayed from cassettes RECORDED AGAINST A REAL
MODEL (Qwen2.5-Coder-1.5B-Instruct on llama.cpp; see each cassette's header and
tests/cassettes/README.md). No network: vcrpy answers with what the model answered.

The model's answers came back as JSON in the message content (the server honours a
``response_format`` JSON schema, and returns no native tool calls): these tests check that such
answers become purchase orders with sources in the text, as the recording saw them.

A live test against a configured endpoint (``ORDEROPS_LLM_BASE_URL``) runs only when one is set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import vcr
from langchain_openai import ChatOpenAI

from core.settings import Settings
from evals.llm_reference import header
from intake.llm_extract import LLMExtractor, make_extractor
from intake.mail import parse_email
from tests.cassettes.real_model import BASE_URL, CORPUS_DOCS, EMAILS, MODEL, REAL, cassette_path
from tools.llm import StructuredModel

RECORDED = sorted(REAL.glob("extractor-*.yaml"))


def replay_extractor(mode: str) -> tuple[LLMExtractor, StructuredModel]:
    chat = ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=lambda: "none", max_retries=0, temperature=0, seed=0)
    model = StructuredModel(chat, mode=mode, attempts=1, max_repairs=1)  # type: ignore[arg-type]
    return LLMExtractor(model, model=MODEL, max_retries=1), model


def test_at_least_three_prose_emails_are_recorded() -> None:
    assert len(RECORDED) >= 3
    assert {p.name for p in RECORDED} <= {cassette_path("extractor", e).name for e in EMAILS}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_real_model_answer_becomes_the_order(path: Path) -> None:
    meta = header(path)
    assert meta["model"] == MODEL
    assert "llama.cpp" in meta["runtime"]
    assert meta["runtime_version"].startswith("xllamacpp ")
    assert meta["recorded"][:4] == "2026"
    outcome = json.loads(meta["outcome"])
    extractor, model = replay_extractor(meta["mode"])
    data = (CORPUS_DOCS / meta["case"]).read_bytes()
    with vcr.use_cassette(str(path), record_mode="none", filter_headers=["authorization"]) as tape:
        doc = parse_email(data, document=meta["case"], extractor=extractor)
        assert tape.play_count == len(tape.data), "every recorded request was made again, no more"
    sent = json.loads(tape.requests[0].body)
    assert sent["temperature"] == 0
    if meta["mode"] == "json_schema":
        assert sent["response_format"]["type"] == "json_schema"
        assert "tools" not in sent
    assert [c.ok for c in model.calls][-1] is True, "the real model's last answer parsed and validated"
    assert sum(c.ok for c in model.calls) == outcome["parsed"]
    assert doc.purchase_orders, [f.code for f in doc.findings]
    po = doc.purchase_orders[0]
    assert po.po_number == outcome["po_number"]
    assert len(po.lines) == outcome["lines"]
    codes = {f.code for f in doc.findings}
    assert "llm_invalid" not in codes
    assert "llm_unavailable" not in codes
    assert po.sources.get("po_number") is not None, "the PO number was found in the text"


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("ORDEROPS_LLM_BASE_URL"), reason="live: set ORDEROPS_LLM_BASE_URL")
def test_live_endpoint_extracts_a_prose_email() -> None:
    """Against the configured endpoint (e.g. ../shared/tools/local-llm/serve.sh): minutes on a CPU."""
    settings = Settings()
    extractor = make_extractor(settings)
    assert isinstance(extractor, LLMExtractor)
    doc = parse_email((CORPUS_DOCS / "eml-02-prose-lines.eml").read_bytes(), document="eml-02", extractor=extractor)
    codes = [f.code for f in doc.findings]
    assert "llm_unavailable" not in codes
    assert "llm_invalid" not in codes
    assert doc.purchase_orders
    assert doc.purchase_orders[0].lines
