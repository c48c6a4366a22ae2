"""tools.executed: the one reader of what a run executed, shared by undo and eval capture."""

from __future__ import annotations

from typing import Any

from core.db import Database
from guardrails.audit import AuditEvent, AuditTrail, EventType
from tools.executed import ExecutedCall, executed_calls


def _executed(trail: AuditTrail, call_id: str | None, tool: str, result: Any, run_id: str = "run_1") -> None:
    trail.append(
        AuditEvent(
            event_type=EventType.EXECUTED,
            run_id=run_id,
            call_id=call_id,
            tool=tool,
            arguments={"order_ids": ["o1"]},
            result=result,
        )
    )


def test_each_executed_call_counts_once_and_only_when_it_did_something(sqlite_db: Database) -> None:
    trail = AuditTrail(sqlite_db)
    _executed(trail, "c1", "reroute_orders", {"done": ["o1", "o2"], "skipped": []})
    _executed(trail, "c1", "reroute_orders", {"done": ["o1", "o2"], "replayed": True})  # a replay: no new effect
    _executed(trail, "c1", "reroute_orders", {"done": ["o1", "o2"]})  # the same call recorded again
    _executed(trail, "c2", "hold_orders", {"done": [], "skipped": ["o3"]})  # did nothing
    _executed(trail, "c3", "hold_orders", {"skipped": ["o3"]})  # no done at all
    _executed(trail, "c4", "notify_customer", "not a write result")
    _executed(trail, "c5", "expedite_orders", {"done": ["o9"], "replayed": False})
    _executed(trail, "c6", "hold_orders", {"done": ["o4"]}, run_id="run_2")  # another run
    trail.append(AuditEvent(event_type=EventType.PROPOSED, run_id="run_1", call_id="c7", tool="hold_orders"))

    calls = executed_calls(trail, "run_1")

    assert calls == [
        ExecutedCall("c1", "reroute_orders", {"order_ids": ["o1"]}, {"done": ["o1", "o2"], "skipped": []}),
        ExecutedCall("c5", "expedite_orders", {"order_ids": ["o1"]}, {"done": ["o9"]}),
    ]


def test_tools_keeps_only_the_named_writes_and_a_row_without_call_id_counts_by_its_event(
    sqlite_db: Database,
) -> None:
    trail = AuditTrail(sqlite_db)
    _executed(trail, None, "reroute_orders", {"done": ["o1"]})
    _executed(trail, None, "reroute_orders", {"done": ["o1"]})
    _executed(trail, "c2", "legacy_tool", {"done": ["o2"]})

    every = executed_calls(trail, "run_1")
    named = executed_calls(trail, "run_1", tools={"reroute_orders": object()})

    assert [c.tool for c in every] == ["reroute_orders", "reroute_orders", "legacy_tool"]
    assert [c.tool for c in named] == ["reroute_orders", "reroute_orders"]
    assert len({c.call_id for c in named}) == 2  # each keyed by its own event id
