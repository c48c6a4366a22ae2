"""The real ``ChatOpenAI`` HTTP path, replayed from a cassette recorded against a LOCAL SCRIPTED STUB
SERVER (not a real model; see tests/cassettes/README.md): request out, tool call back, plan made."""

from __future__ import annotations

from pathlib import Path

import vcr
from langchain_openai import ChatOpenAI

from agents.llm_planner import LLMPlanner
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from tests.graphs.support import congestion_alert
from tests.tools.conftest import Net

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
STUB_MODEL = "local-scripted-stub-not-a-real-model"


def test_chatopenai_tool_call_from_the_recorded_stub_becomes_a_plan(sqlite_congested: tuple[Net, str, str]) -> None:
    net, node, target = sqlite_congested
    cassette = CASSETTES / "llm_planner_stub.yaml"
    assert cassette.read_text().startswith("# RECORDED AGAINST A LOCAL SCRIPTED STUB SERVER")
    model = ChatOpenAI(model=STUB_MODEL, base_url="http://127.0.0.1:18765/v1", api_key=lambda: "k", max_retries=0)
    planner = LLMPlanner(model, fallback=PlaybookPlanner(), model_name=STUB_MODEL, attempts=1)
    with vcr.use_cassette(str(cassette), record_mode="none", filter_headers=["authorization"]) as tape:
        plan = planner.plan(triage_alert(congestion_alert(node), net.gateway.env), net.gateway.env)
        assert tape.play_count == 1
    assert planner.last_fallback_reason is None
    assert plan.planner == f"llm:{STUB_MODEL}"
    assert [(s.tool, s.args["to_node_id"]) for s in plan.steps] == [("reroute_orders", target)]
    assert plan.steps[0].args["order_ids"] == [o.id for o in net.movable(node)][:3]
    assert "SCRIPTED STUB RESPONSE" in plan.summary
