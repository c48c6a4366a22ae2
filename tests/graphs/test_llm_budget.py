"""The LLM planner's token budget and fallback reason, with scripted chat models that report
``usage_metadata``: tokens add up over repair rounds, a spent budget hands over to the playbooks
with the reason, and the run report shows both."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from agents.llm_planner import LLMPlanner, tokens_of
from agents.plan import Triage
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from graphs.checkpoints import open_checkpointer
from graphs.exception import Budgets, ExceptionRuns
from tests.graphs.support import congestion_alert, deps_for
from tests.tools.conftest import Net

Congested = tuple[Net, str, str]


def call(name: str, args: dict[str, Any], cid: str, tokens: tuple[int, int]) -> AIMessage:
    inp, out = tokens
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": cid}],
        usage_metadata={"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out},
    )


def two_rounds(net: Net, node: str, target: str) -> FakeMessagesListChatModel:
    """A malformed first answer (900 + 100 tokens), repaired in the second (1,100 + 100)."""
    ids = [o.id for o in net.movable(node)][:3]
    return FakeMessagesListChatModel(
        responses=[
            call("reroute_orders", {"order_ids": ids, "to_node": target}, "c1", (900, 100)),
            call("reroute_orders", {"order_ids": ids, "to_node_id": target}, "c2", (1100, 100)),
        ]
    )


def planner(model: FakeMessagesListChatModel, **kw: Any) -> LLMPlanner:
    return LLMPlanner(model, fallback=PlaybookPlanner(), model_name="scripted", retry_wait_s=0, **kw)


def triage(net: Net, node: str) -> Triage:
    return triage_alert(congestion_alert(node), net.gateway.env)


def test_tokens_are_counted_across_repair_rounds(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    llm = planner(two_rounds(net, node, target))
    plan = llm.plan_within(triage(net, node), net.gateway.env, max_tokens=5_000)
    assert plan.planner == "llm:scripted"
    assert plan.fallback_reason is None
    assert plan.tokens_used == 2_200
    assert llm.last_tokens_used == 2_200
    assert len(plan.steps) == 1


def test_a_spent_budget_falls_back_to_the_playbook_with_the_reason(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    llm = planner(two_rounds(net, node, target))
    plan = llm.plan_within(triage(net, node), net.gateway.env, max_tokens=1_500)
    assert plan.planner.startswith("playbook:")
    assert plan.steps, "the playbook plans instead"
    assert plan.fallback_reason is not None
    assert "token budget exceeded" in plan.fallback_reason
    assert "2200 tokens used" in plan.fallback_reason
    assert plan.tokens_used == 2_200
    assert "LLM planner not used: token budget exceeded" in plan.summary
    assert llm.last_fallback_reason == plan.fallback_reason


def test_the_planner_own_limit_applies_and_the_lower_one_wins(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    plan = planner(two_rounds(net, node, target), max_tokens=999).plan(triage(net, node), net.gateway.env)
    assert plan.fallback_reason is not None
    assert "1000 tokens used, the run allows 999" in plan.fallback_reason
    plan = planner(two_rounds(net, node, target), max_tokens=10_000).plan_within(
        triage(net, node), net.gateway.env, max_tokens=1_500
    )
    assert plan.planner.startswith("playbook:")


def test_no_model_says_why_in_fallback_reason(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    plan = LLMPlanner(None, fallback=PlaybookPlanner()).plan(triage(net, node), net.gateway.env)
    assert plan.fallback_reason == "no model is configured"
    assert plan.tokens_used is None


def test_usage_without_a_total_adds_input_and_output() -> None:
    assert tokens_of(AIMessage(content="")) == 0
    msg = AIMessage(content="", usage_metadata={"input_tokens": 7, "output_tokens": 5, "total_tokens": 0})
    assert tokens_of(msg) == 12


def test_run_report_shows_tokens_and_the_fallback_reason(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    deps = deps_for(net, planner(two_rounds(net, node, target)), budgets=Budgets(max_tokens=1_500))
    with open_checkpointer(net.db) as saver:
        result = ExceptionRuns(deps, saver).start(alert=congestion_alert(node), run_id="run-tok")
        state = ExceptionRuns(deps, saver).state("run-tok")
    assert result.waiting, "the playbook's reroute needs approval"
    plan = state["plan"]
    assert plan is not None
    assert plan["planner"].startswith("playbook:")
    assert plan["tokens_used"] == 2_200
    assert "token budget exceeded" in plan["fallback_reason"]
    assert any(n.startswith("planner fell back") and "token budget" in n for n in state["notes"])


def test_run_report_of_a_finished_run_has_tokens(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    deps = deps_for(net, planner(two_rounds(net, node, target)), budgets=Budgets(max_tokens=50_000))
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps, saver)
        result = runs.start(alert=congestion_alert(node), run_id="run-tok2")
        if result.waiting:
            decisions = [{"approval_id": a["approval_id"], "decision": "approve"} for a in result.approvals]
            result = runs.resume("run-tok2", decisions=decisions, approver={"id": "amir", "roles": ["approver"]})
    assert result.report is not None
    assert result.report["tokens_used"] == 2_200
    assert result.report["plan"]["tokens_used"] == 2_200
    assert result.report["plan"]["fallback_reason"] is None
    assert result.report["plan"]["planner"] == "llm:scripted"
