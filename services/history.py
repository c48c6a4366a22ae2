"""An order's history: every change a run made to it, with the run, the approval and the reason.

Read from the audit trail, the one record of every executed call, so the answer to "why is this
order here?" is the tamper-evident one, not a second log that could disagree with it.

What this module must never do: write anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from guardrails.audit import AuditTrail, EventType


class OrderChange(BaseModel):
    """One executed call that changed the order."""

    at: datetime
    seq: int
    run_id: str | None
    call_id: str | None
    tool: str
    change: str
    """What happened to this order, in words (e.g. ``DC-A -> DC-B``)."""
    reason: str | None
    actor: str | None
    approver: str | None


class OrderHistory(BaseModel):
    order_id: str
    changes: list[OrderChange]
    skipped: list[OrderChange]
    """Calls that named the order but left it as it was (with the tool's reason)."""


def _change(tool: str, order_id: str, args: dict[str, Any], result: dict[str, Any]) -> str:
    details = result.get("details") or {}
    if tool == "reroute_orders":
        origin = (details.get("from") or {}).get(order_id, "?")
        return f"{origin} -> {args.get('to_node_id', '?')}"
    if tool == "change_carrier":
        return f"carrier service -> {args.get('carrier_service_id', '?')}"
    if tool == "expedite_orders":
        return f"expedited ({args.get('level', '?')})"
    return tool.replace("_", " ")


def order_history(audit: AuditTrail, order_id: str) -> OrderHistory:
    """Every executed change of ``order_id``, oldest first (replayed executions are not new changes)."""
    changes: list[OrderChange] = []
    skipped: list[OrderChange] = []
    for row in audit.list(event_type=EventType.EXECUTED, mentioning=order_id):
        result = row.result if isinstance(row.result, dict) else {}
        if row.tool is None or result.get("replayed") or "done" not in result:
            continue  # reads and replays
        args = row.arguments if isinstance(row.arguments, dict) else {}
        done = [str(i) for i in result.get("done") or []]
        why_skipped = (result.get("skipped") or {}).get(order_id)
        if order_id not in done and why_skipped is None:
            continue
        entry = OrderChange(
            at=row.at,
            seq=row.seq,
            run_id=row.run_id,
            call_id=row.call_id,
            tool=row.tool,
            change=_change(row.tool, order_id, args, result) if why_skipped is None else f"left as is: {why_skipped}",
            reason=str(args["reason"]) if args.get("reason") else None,
            actor=row.actor,
            approver=row.approver,
        )
        (changes if why_skipped is None else skipped).append(entry)
    return OrderHistory(order_id=order_id, changes=changes, skipped=skipped)
