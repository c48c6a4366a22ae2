"""The model-call layer (tools.llm) with scripted chat models: JSON found wherever a model writes it,
validated, repaired with the validation error, tool calls read natively or from the content, the
endpoint's abilities probed once and remembered. Real-server answers are replayed in
``test_llm_recorded.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from tools.llm import (
    Capabilities,
    CapabilityCache,
    StructuredModel,
    StructuredOutputError,
    ToolSpec,
    json_values,
    normalize_proposals,
    proposals_schema,
)


class ScriptedChat(FakeMessagesListChatModel):
    """Answers with the scripted messages in turn and remembers what it was sent (and how)."""

    seen: list[list[BaseMessage]] = []  # noqa: RUF012 - a pydantic field, copied per instance
    kwargs_seen: list[dict[str, Any]] = []  # noqa: RUF012

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        self.kwargs_seen.append(dict(kwargs))
        return super()._generate(messages, *args, **kwargs)


class Line(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class Order(BaseModel):
    po_number: str
    lines: list[Line]


GOOD = {"po_number": "PO-1", "lines": [{"sku": "A-1", "quantity": 2}]}
REROUTE = ToolSpec(
    "reroute_orders",
    "Move orders to another node.",
    {
        "type": "object",
        "properties": {"order_ids": {"type": "array", "items": {"type": "string"}}, "to_node_id": {"type": "string"}},
        "required": ["order_ids", "to_node_id"],
    },
)


def chat(*contents: str) -> ScriptedChat:
    return ScriptedChat(responses=[AIMessage(content=c) for c in contents], seen=[], kwargs_seen=[])


def test_json_is_found_bare_fenced_after_prose_and_in_tool_call_tags() -> None:
    assert json_values('{"a": 1}') == [{"a": 1}]
    assert json_values('Sure! Here it is:\n```json\n{"a": 1}\n```\nAnything else?') == [{"a": 1}]
    assert json_values('I propose {"a": 1} and then [2, 3].') == [{"a": 1}, [2, 3]]
    assert json_values('<tool_call>\n{"name": "x", "arguments": {}}\n</tool_call>') == [{"name": "x", "arguments": {}}]
    assert json_values("no JSON at all {not json}") == []


def test_tool_calls_written_any_usual_way_become_proposals() -> None:
    want = {"calls": [{"tool": "reroute_orders", "arguments": {"order_ids": ["o1"], "to_node_id": "DC-B"}}]}
    args = {"order_ids": ["o1"], "to_node_id": "DC-B"}
    assert normalize_proposals({"name": "reroute_orders", "arguments": args}) == want
    assert normalize_proposals([{"tool": "reroute_orders", "args": args}]) == want
    openai_shaped = {"function": {"name": "reroute_orders", "arguments": json.dumps(args)}}
    assert normalize_proposals({"tool_calls": [openai_shaped]}) == {"summary": "", **want}
    assert normalize_proposals("prose") == "prose"


def test_json_mode_reads_fenced_json_and_puts_the_schema_in_the_prompt() -> None:
    model = chat("Here you go:\n```json\n" + json.dumps(GOOD) + "\n```")
    caller = StructuredModel(model, mode="json")
    answer = caller.ask([SystemMessage("sys"), HumanMessage("doc")], Order)
    assert answer == Order.model_validate(GOOD)
    system = model.seen[0][0]
    assert isinstance(system, SystemMessage)
    assert str(system.content).startswith("sys")
    assert '"po_number"' in str(system.content), "without a schema API the schema goes in the prompt"
    assert [c.ok for c in caller.calls] == [True]


def test_an_invalid_answer_is_repaired_with_the_validation_error() -> None:
    bad = {"po_number": "PO-1", "lines": [{"sku": "A-1", "quantity": 0}]}
    model = chat(json.dumps(bad), json.dumps(GOOD))
    caller = StructuredModel(model, mode="json_schema", max_repairs=2)
    assert caller.ask([HumanMessage("doc")], Order).lines[0].quantity == 2
    repair = model.seen[1][-1]
    assert isinstance(repair, HumanMessage)
    assert "lines.0.quantity" in str(repair.content)
    assert "greater than 0" in str(repair.content)
    assert [c.ok for c in caller.calls] == [False, True]
    rf = model.kwargs_seen[0]["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["schema"]["required"] == ["po_number", "lines"]


def test_an_answer_never_repaired_raises_with_the_last_problem() -> None:
    model = chat("I cannot do that.", "Still prose.", '{"po_number": "x"}')
    caller = StructuredModel(model, mode="json", max_repairs=2)
    with pytest.raises(StructuredOutputError, match="lines: Field required"):
        caller.ask([HumanMessage("doc")], Order)
    assert len(model.seen) == 3


def test_tools_mode_reads_a_tool_call_the_server_left_in_the_content() -> None:
    # What llama.cpp returns for this model: tool_calls [] and the call as JSON in the text.
    content = '```json\n{"name": "reroute_orders", "arguments": {"order_ids": ["o1"], "to_node_id": "DC-B"}}\n```'
    caller = StructuredModel(chat(content), mode="tools")
    proposal = caller.propose([HumanMessage("congested")], [REROUTE])
    assert [(c.name, c.args) for c in proposal.calls] == [
        ("reroute_orders", {"order_ids": ["o1"], "to_node_id": "DC-B"})
    ]
    assert not proposal.native


def test_tools_mode_takes_native_tool_calls_and_prose_as_no_proposal() -> None:
    native = AIMessage(content="", tool_calls=[{"name": "reroute_orders", "args": {"order_ids": []}, "id": "c9"}])
    model = ScriptedChat(responses=[native, AIMessage(content="Nothing to do: the backlog is fine.")])
    caller = StructuredModel(model, mode="tools")
    first = caller.propose([HumanMessage("x")], [REROUTE])
    assert first.native
    assert [c.id for c in first.calls] == ["c9"]
    second = caller.propose([HumanMessage("x")], [REROUTE])
    assert second.calls == []
    assert "backlog is fine" in second.text


def test_json_schema_proposals_follow_up_in_plain_messages() -> None:
    answer = {"summary": "move two", "calls": [{"tool": "reroute_orders", "arguments": {"order_ids": ["o1"]}}]}
    model = chat(json.dumps(answer))
    caller = StructuredModel(model, mode="json_schema")
    proposal = caller.propose([SystemMessage("plan"), HumanMessage("facts")], [REROUTE])
    assert proposal.text == "move two"
    assert [c.name for c in proposal.calls] == ["reroute_orders"]
    system = str(model.seen[0][0].content)
    assert "reroute_orders(order_ids, to_node_id)" in system, "the server holds the schema; the prompt names the tools"
    follow = caller.follow_up(proposal, {"call-0": "refused: to_node_id missing"}, "Try again.")
    assert isinstance(follow[-1], HumanMessage)
    assert "1. reroute_orders: refused: to_node_id missing" in str(follow[-1].content)


def test_json_mode_without_json_is_repaired_then_refused() -> None:
    model = chat("Reroute the orders please.", "Still no JSON.")
    caller = StructuredModel(model, mode="json", max_repairs=1)
    with pytest.raises(StructuredOutputError, match="no JSON object"):
        caller.propose([HumanMessage("x")], [REROUTE])


def test_proposals_schema_ties_arguments_to_each_tool_and_hoists_defs() -> None:
    with_defs = ToolSpec(
        "hold",
        "Hold.",
        {"type": "object", "properties": {"r": {"$ref": "#/$defs/Reason"}}, "$defs": {"Reason": {"type": "string"}}},
    )
    schema = proposals_schema([REROUTE, with_defs])
    variants = schema["properties"]["calls"]["items"]["anyOf"]
    assert [v["properties"]["tool"]["enum"] for v in variants] == [["reroute_orders"], ["hold"]]
    assert schema["$defs"] == {"Reason": {"type": "string"}}
    assert "$defs" not in variants[1]["properties"]["arguments"]


def test_auto_mode_uses_the_stored_probe_per_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "llm-capabilities.json"
    caps = Capabilities(
        base_url="http://127.0.0.1:1/v1", model="m", native_tools=False, json_schema=True, probed_at="2026-12-06"
    )
    CapabilityCache(path).put(caps)
    CapabilityCache._memory.clear()  # a new process: only the file remains
    stored = CapabilityCache(path).get("http://127.0.0.1:1/v1/", "m")
    assert stored == caps
    assert CapabilityCache(path).get("http://127.0.0.1:1/v1", "other") is None
    model = chat(json.dumps(GOOD))
    caller = StructuredModel(model, mode="auto", endpoint=("http://127.0.0.1:1/v1", "m"), cache=CapabilityCache(path))
    assert caller.mode() == "json_schema"
    caller.ask([HumanMessage("doc")], Order)
    assert len(model.seen) == 1, "no probe: the stored result is used"
    CapabilityCache._memory.clear()


def test_without_an_endpoint_auto_means_tools() -> None:
    assert StructuredModel(chat("{}"), mode="auto").mode() == "tools"
    assert Capabilities("u", "m", native_tools=True, json_schema=True, probed_at="").best_mode() == "tools"
    assert Capabilities("u", "m", native_tools=False, json_schema=False, probed_at="").best_mode() == "json"
