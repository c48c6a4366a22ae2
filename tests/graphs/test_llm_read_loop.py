"""The LLM planner's agent loop (agents/read_loop.py): the model reads through the gateway, within a
budget, before it proposes. Driven by a SCRIPTED chat model (fixed answers, not a real model), so
each test says exactly what the "model" asks for and checks what the loop made of it."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from agents.llm_planner import LLMPlanner, example_for, make_planner
from agents.plan import ExceptionKind, Triage
from agents.playbooks import PlaybookPlanner
from agents.read_loop import READS_PER_STEP, GatewayReads
from agents.triage import triage_alert
from core.domain import OrderStatus
from core.settings import Settings
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, allowed_tools
from guardrails.audit import EventType
from guardrails.calls import Actor
from tests.graphs.support import APPROVER, congestion_alert, deps_for
from tests.tools.conftest import Net
from tools.adapters.protocols import OrderFilter
from tools.llm import StructuredModel

Congested = tuple[Net, str, str]
AGENT = Actor(kind="agent", id="run-loop", on_behalf_of="olivia")
READ_JSON = {"calls": [{"tool": "get_node_load", "arguments": {}}], "summary": "look first"}
BUDGET = 12000
"""Per-call prompt budget of the budget test: the first call fits, six reads of 50 orders would not."""
TOKENS = {"input_tokens": 30, "output_tokens": 10, "total_tokens": 40}


class ScriptedChat(FakeMessagesListChatModel):
    """A SCRIPTED model, not a real one: answers with the given messages in turn and keeps what it
    was sent."""

    seen: list[list[BaseMessage]] = []  # noqa: RUF012 - a pydantic field, copied per instance

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def calls(*tools: tuple[str, dict[str, Any]], text: str = "") -> AIMessage:
    """One scripted reply with native tool calls (and token usage, as a server reports it)."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": n, "args": a, "id": f"c{i}"} for i, (n, a) in enumerate(tools)],
        usage_metadata=TOKENS,  # type: ignore[arg-type]
    )


def planner(model: ScriptedChat | StructuredModel, **kw: Any) -> LLMPlanner:
    return LLMPlanner(model, fallback=PlaybookPlanner(), model_name="scripted", retry_wait_s=0, **kw)


def triage(net: Net, node: str) -> Triage:
    return triage_alert(congestion_alert(node), net.gateway.env)


def reroute(net: Net, node: str, target: str, n: int = 3) -> tuple[str, dict[str, Any]]:
    ids = [o.id for o in net.movable(node)][:n]
    return "reroute_orders", {"order_ids": ids, "to_node_id": target, "reason": "backlog"}


def test_the_model_reads_through_the_gateway_then_proposes_and_nothing_runs_unapproved(
    sqlite_congested: Congested,
) -> None:
    net, node, target = sqlite_congested
    model = ScriptedChat(
        responses=[
            calls(("get_node_load", {})),
            calls(("search_orders", {"node_ids": [node], "limit": 2}), ("get_inventory", {"skus": ["NOPE"]})),
            calls(reroute(net, node, target, n=40)),
        ]
    )
    before = net.snapshot()
    with open_checkpointer(net.db) as saver:
        runs = ExceptionRuns(deps_for(net, planner(model)), saver)
        first = runs.start(alert=congestion_alert(node), run_id="run-loop")
        assert first.waiting, "a reroute of 40 orders waits for a person"
        assert net.snapshot() == before, "reading and proposing changed nothing"
        done = runs.resume(
            "run-loop", decisions=[{"approval_id": a["approval_id"], "decision": "approve"} for a in first.approvals],
            approver=APPROVER,
        )  # fmt: skip
    assert done.status == "completed", done.report
    report = done.typed_report
    assert report is not None
    reads = report.plan.reads
    assert [(r.step, r.tool, r.status) for r in reads] == [
        (1, "get_node_load", "read"),
        (2, "search_orders", "read"),
        (2, "get_inventory", "failed"),  # an unknown SKU: the gateway says so, the model is told
    ]
    assert reads[1].args == {"node_ids": [node], "limit": 2}
    assert all(r.tokens == 40 for r in reads)
    assert report.plan.tokens_used == 120
    assert report.plan.prompt_version is not None
    assert "+exception_planner_reads@" in report.plan.prompt_version
    # Every read is in the run's audit trail, as the run's agent, under the call id the report names.
    audit = {e.call_id: e for e in net.gateway.guard.audit.list(run_id="run-loop")}
    for r in reads:
        assert r.call_id is not None
        event = audit[r.call_id]
        expected = EventType.EXECUTED if r.status == "read" else EventType.FAILED
        assert (event.tool, event.event_type, event.model) == (r.tool, expected, "scripted")
        assert "run-loop" in str(event.actor)
    # The model saw each result, as a tool message answering its call.
    answered = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
    assert len(answered) == 1
    assert '"nodes"' in str(answered[0].content)
    # The write ran once, after the approval.
    writes = [e for e in audit.values() if e.tool == "reroute_orders" and e.event_type == EventType.EXECUTED]
    assert len(writes) == 1


def test_json_in_content_read_requests_are_parsed_by_the_same_layer(sqlite_congested: Congested) -> None:
    """A server with no native tool calls: the scripted model writes its reads as JSON in the content."""
    net, node, target = sqlite_congested
    tool, args = reroute(net, node, target)
    script = ScriptedChat(
        responses=[
            AIMessage(
                content='```json\n{"calls": [{"tool": "get_node_load", "arguments": {}}], "summary": "look"}\n```'
            ),
            AIMessage(content=json.dumps({"calls": [{"tool": tool, "arguments": args}], "summary": "move 3"})),
        ]
    )
    model = StructuredModel(script, mode="json", attempts=1, retry_wait_s=0)
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(model).plan_reading(triage(net, node), net.gateway.env, max_tokens=None, reads=reads)
    assert [r["tool"] for r in plan.reads] == ["get_node_load"]
    assert [s.tool for s in plan.steps] == ["reroute_orders"]
    told = script.seen[1][-1]
    assert isinstance(told, HumanMessage)
    assert "get_node_load" in str(told.content)
    assert '"nodes"' in str(told.content)
    system = script.seen[0][0]
    assert isinstance(system, SystemMessage)
    assert "Reading first" in str(system.content)


def test_when_the_read_steps_are_spent_it_must_propose_or_say_it_cannot(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    script = ScriptedChat(
        responses=[
            *[calls(("get_node_load", {})) for _ in range(2)],
            AIMessage(content="I cannot move these orders: every other node is as loaded.", usage_metadata=TOKENS),
        ]
    )
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script, max_read_steps=2).plan_reading(
        triage(net, node), net.gateway.env, max_tokens=None, reads=reads
    )
    assert len(script.seen) == 3, "two read steps, then one last call for the proposal"
    assert [r["step"] for r in plan.reads] == [1, 2]
    last = script.seen[2][-1]
    assert isinstance(last, HumanMessage)
    assert "read budget spent: 2 read steps of 2" in str(last.content)
    assert plan.fallback_reason is None
    assert plan.steps == []
    assert "I cannot move these orders" in plan.summary
    assert "read budget spent" in plan.summary


def test_the_read_token_budget_ends_the_reads(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    script = ScriptedChat(
        responses=[calls(("get_node_load", {})) for _ in range(2)] + [calls(reroute(net, node, target))]
    )
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script, max_read_steps=10, max_read_tokens=60).plan_reading(
        triage(net, node), net.gateway.env, max_tokens=None, reads=reads
    )
    assert len(plan.reads) == 2, "40 tokens after one read (under 60), 80 after two: stop"
    assert "read budget spent: 80 tokens of 60" in plan.summary
    assert [s.tool for s in plan.steps] == ["reroute_orders"]


def test_unknown_tools_and_bad_arguments_are_told_to_the_model_and_bounded(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    bad = calls(("search_orders", {"limit": -5}), ("frobnicate", {"x": 1}))
    script = ScriptedChat(responses=[bad] * 3 + [AIMessage(content="nothing to propose", usage_metadata=TOKENS)])
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script, max_read_steps=3).plan_reading(
        triage(net, node), net.gateway.env, max_tokens=None, reads=reads
    )
    assert len(script.seen) == 4, "three read steps of nonsense, then the last call: never more"
    assert [(r["tool"], r["status"]) for r in plan.reads] == [("search_orders", "denied"), ("frobnicate", "denied")] * 3
    told = [str(m.content) for m in script.seen[1] if isinstance(m, ToolMessage)]
    assert any("limit" in t and t.startswith("denied") for t in told)
    assert any("unknown read tool 'frobnicate'" in t for t in told)
    assert plan.steps == []
    assert plan.fallback_reason is None
    denied = net.gateway.guard.audit.list(run_id="run-loop", event_type=EventType.DENIED)
    assert len(denied) == 6, "every refused read is audited too"


def test_a_write_asked_for_as_a_read_is_refused_and_nothing_changes(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    victims = [o.id for o in net.movable(node)][:3]
    script = ScriptedChat(
        responses=[
            calls(("get_node_load", {}), ("hold_orders", {"order_ids": victims, "reason": "sneaky"})),
            AIMessage(content="no change needed", usage_metadata=TOKENS),
        ]
    )
    before = net.snapshot()
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script).plan_reading(triage(net, node), net.gateway.env, max_tokens=None, reads=reads)
    assert net.snapshot() == before
    assert net.adapters.oms.count_orders(OrderFilter(order_ids=victims, statuses=[OrderStatus.HELD])) == 0
    assert [(r["tool"], r["status"]) for r in plan.reads] == [("get_node_load", "read"), ("hold_orders", "denied")]
    told = next(str(m.content) for m in script.seen[1] if isinstance(m, ToolMessage) and m.tool_call_id == "c1")
    assert "unknown read tool 'hold_orders'" in told
    assert "a write is not run here" in told
    executed = net.gateway.guard.audit.list(run_id="run-loop", event_type=EventType.EXECUTED)
    assert {e.tool for e in executed} == {"get_node_load"}


def test_without_a_gateway_or_with_zero_steps_it_plans_in_one_call(sqlite_congested: Congested) -> None:
    net, node, target = sqlite_congested
    script = ScriptedChat(responses=[calls(reroute(net, node, target))])
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script, max_read_steps=0).plan_reading(
        triage(net, node), net.gateway.env, max_tokens=None, reads=reads
    )
    assert len(script.seen) == 1
    assert plan.reads == []
    assert plan.prompt_version is not None
    assert "+" not in plan.prompt_version
    assert "Reading first" not in str(script.seen[0][0].content)


def test_settings_bound_the_loop() -> None:
    settings = Settings(llm_max_read_steps=3, llm_max_read_tokens=5000)
    built = make_planner(settings, fallback=PlaybookPlanner())
    assert (built.max_read_steps, built.max_read_tokens) == (3, 5000)
    assert (Settings().llm_max_read_steps, Settings().llm_max_read_tokens) == (4, 16000)


def test_each_incident_kind_is_shown_an_example_of_its_own_remedy() -> None:
    """One reroute example for every kind had the small model reroute outages, stockouts and
    hazmat alike; each kind's example now names a tool that kind may use (or none: neutral)."""
    tools = {}
    for kind in ExceptionKind:
        example = json.loads(example_for(kind).split(" (or ")[0])
        tools[kind] = example["calls"][0]["tool"]
        if tools[kind].startswith("<"):
            continue  # the neutral example names no tool
        assert tools[kind] in allowed_tools(kind), kind
    assert tools[ExceptionKind.CARRIER_OUTAGE] == "change_carrier"
    assert tools[ExceptionKind.PROMISE_RISK] == "expedite_orders"
    assert tools[ExceptionKind.COMPLIANCE] == "change_carrier"
    assert tools[ExceptionKind.UNKNOWN].startswith("<")


def test_more_reads_in_one_reply_than_a_step_runs_are_told_not_run(sqlite_congested: Congested) -> None:
    net, node, _ = sqlite_congested
    five = calls(*[("get_node_load", {"node_ids": [node]})] * 5)
    script = ScriptedChat(responses=[five, AIMessage(content="nothing to do", usage_metadata=TOKENS)])
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(script).plan_reading(triage(net, node), net.gateway.env, max_tokens=None, reads=reads)
    assert len(plan.reads) == READS_PER_STEP
    told = [str(m.content) for m in script.seen[1] if isinstance(m, ToolMessage)]
    assert sum(t.startswith("not run: at most") for t in told) == 5 - READS_PER_STEP


def test_reading_stops_before_the_proposal_call_would_pass_the_per_call_prompt_budget(
    sqlite_congested: Congested,
) -> None:
    """A model that would read forever under a per-call prompt budget: reading stops while the
    proposal call still fits, so it proposes from what it read instead of falling back."""
    net, node, target = sqlite_congested
    wide = ("search_orders", {"node_ids": [node], "limit": 50})
    script = ScriptedChat(responses=[calls(wide)] * 6 + [calls(reroute(net, node, target))])
    model = StructuredModel(script, mode="tools", attempts=1, retry_wait_s=0, max_prompt_tokens=BUDGET)
    reads = GatewayReads(net.gateway, AGENT, net.run("run-loop"))
    plan = planner(model, max_read_steps=6).plan_reading(
        triage(net, node), net.gateway.env, max_tokens=None, reads=reads
    )
    assert plan.fallback_reason is None
    assert 1 <= len(plan.reads) < 6
    assert "nears the per-call prompt budget" in plan.summary
    assert [s.tool for s in plan.steps] == ["reroute_orders"]
    assert max(c["prompt_tokens_est"] for c in plan.model_calls) <= BUDGET
