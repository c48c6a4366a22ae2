"""Bounded prompts: the planner's fact sheet shows the orders in scope as counts and a few
exemplars, the model names sets of orders by filter, code expands the filter into ids through the
read tools, and a per-call prompt budget is enforced before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from agents.llm_planner import (
    EXEMPLARS,
    LEFT_BY_MODEL,
    LLMPlanner,
    OrderSelector,
    expand_selector,
    gather_facts,
    tool_spec,
)
from agents.playbooks import PlaybookPlanner
from agents.triage import triage_alert
from core.db import Database
from core.domain import REROUTABLE_STATUSES
from tests.graphs.support import congest, congestion_alert
from tests.tools.conftest import Net, build_net
from tools.adapters.protocols import OrderFilter
from tools.llm import StructuredModel
from tools.write import WRITE_TOOLS


@pytest.fixture
def congested(sqlite_db: Database) -> tuple[Net, str]:
    net = build_net(sqlite_db)
    node, _ = congest(net)
    return net, node


def planner_for(answer: Mapping[str, object], **kw: object) -> tuple[LLMPlanner, FakeMessagesListChatModel]:
    chat = FakeMessagesListChatModel(responses=[AIMessage(content=json.dumps(answer))] * 3)
    model = StructuredModel(chat, mode="json_schema", **kw)  # type: ignore[arg-type]
    return LLMPlanner(model, fallback=PlaybookPlanner(), model_name="m", max_repairs=0), chat


def test_fact_sheet_counts_the_scope_and_lists_only_exemplars(congested: tuple[Net, str]) -> None:
    net, node = congested
    env = net.gateway.env
    facts = gather_facts(triage_alert(congestion_alert(node), env), env)
    scope = facts["orders_in_scope"]
    total = env.adapters.oms.count_orders(OrderFilter(node_ids=[node], statuses=sorted(REROUTABLE_STATUSES)))
    assert total > EXEMPLARS, "the fixture congests more orders than the sheet lists"
    assert scope["total"] == total
    assert len(scope["exemplars"]) == EXEMPLARS
    assert scope["by_node"] == {node: total}
    assert sum(scope["by_promise"].values()) == total
    assert sum(scope["by_tier"].values()) == total
    assert sum(scope["by_service_level"].values()) == total
    assert "orders" not in facts


def test_a_filter_the_model_writes_is_expanded_into_the_matching_orders(congested: tuple[Net, str]) -> None:
    net, node = congested
    env = net.gateway.env
    target = net.other_dc(node)
    answer = {
        "summary": "move the orders due within a week",
        "calls": [
            {
                "tool": "reroute_orders",
                "arguments": {"orders": {"node_ids": [node], "promised_within_days": 7}, "to_node_id": target},
            }
        ],
    }
    llm, _ = planner_for(answer)
    plan = llm.plan(triage_alert(congestion_alert(node), env), env)
    assert plan.fallback_reason is None, plan.fallback_reason
    assert [s.tool for s in plan.steps] == ["reroute_orders"]
    expected = expand_selector("reroute_orders", OrderSelector(node_ids=[node], promised_within_days=7), env)
    assert expected, "some congested orders are due within a week"
    planned = plan.steps[0].args["order_ids"]
    assert planned, "some of them can move"
    assert set(planned) <= set(expected)
    left = set(expected) - set(planned)
    assert all(plan.not_planned[oid].startswith("left out of reroute_orders: ") for oid in left), (
        "what the twin says cannot move is left out with its reason"
    )
    scope = {o.id for o in env.adapters.oms.list_orders(
        OrderFilter(node_ids=[node], statuses=sorted(REROUTABLE_STATUSES)), limit=10_000)}  # fmt: skip
    assert all(plan.not_planned.get(oid) == LEFT_BY_MODEL for oid in scope - set(expected)), (
        "in-scope orders the filter did not select are accounted for"
    )
    assert "orders" not in plan.steps[0].args, "the plan carries the exact ids, as approvals and policy need"


def test_a_filter_that_narrows_nothing_or_names_an_unknown_node_is_refused(congested: tuple[Net, str]) -> None:
    net, node = congested
    env = net.gateway.env
    with pytest.raises(ValueError, match="must narrow"):
        expand_selector("hold_orders", OrderSelector(statuses=["created"]), env)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown node ids"):
        expand_selector("reroute_orders", OrderSelector(node_ids=["DC-NOWHERE"]), env)
    answer = {"calls": [{"tool": "reroute_orders", "arguments": {"orders": {"node_ids": ["DC-NOWHERE"]},
              "to_node_id": net.other_dc(node)}}], "summary": "s"}  # fmt: skip
    llm, _ = planner_for(answer)
    plan = llm.plan(triage_alert(congestion_alert(node), env), env)
    assert plan.steps == []
    assert any("unknown node ids" in why for why in plan.not_planned.values())


def test_the_model_is_told_to_name_orders_by_filter() -> None:
    reroute = next(t for t in WRITE_TOOLS if t.name == "reroute_orders")
    params = tool_spec(reroute).parameters
    assert "orders" in params["properties"]
    assert "order_ids" not in params.get("required", []), "ids are optional once a filter can name the orders"


def test_a_prompt_over_the_per_call_budget_is_not_sent(congested: tuple[Net, str]) -> None:
    net, node = congested
    env = net.gateway.env
    llm, chat = planner_for({"calls": [], "summary": "none"}, max_prompt_tokens=300)
    plan = llm.plan(triage_alert(congestion_alert(node), env), env)
    assert plan.fallback_reason is not None
    assert "one call may send 300" in plan.fallback_reason
    assert plan.planner.startswith("playbook:")
    assert chat.i == 0, "nothing reached the model"


def test_each_call_records_its_estimated_prompt_size(congested: tuple[Net, str]) -> None:
    net, node = congested
    env = net.gateway.env
    llm, _ = planner_for({"calls": [], "summary": "nothing to do"}, max_prompt_tokens=20_000)
    plan = llm.plan(triage_alert(congestion_alert(node), env), env)
    assert llm.model is not None
    [call] = llm.model.calls
    assert 300 < call.prompt_tokens_est < 20_000
    [recorded] = plan.model_calls
    assert recorded["prompt_tokens_est"] == call.prompt_tokens_est
    assert recorded["prompt_budget"] == 20_000, "the plan says which budget each call was checked against"
