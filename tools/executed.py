"""The write calls a run executed, as its audit trail recorded them.

Two readers must count the same calls: undo (``services.undo``) plans their compensating calls, and
eval capture (``evals.capture``) records them as a case's expected writes and undoes them on the
replay copy. Both read them here, so an undo and a captured case never disagree on what a run did.

A call counts once, by its call id, and only from the EXECUTED row written with its effect (the
gateway commits that row in the effect's own transaction). The caller that lost a race for the same
idempotency key writes one more EXECUTED row marked ``replayed``, and a step resumed after its
effect committed only notes the replay: neither is a new effect. A call counts only when it did
something (a non-empty ``done`` in its result).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Any

from guardrails.audit import AuditTrail, EventType


@dataclass(frozen=True)
class ExecutedCall:
    """One write an earlier run executed, as its audit row recorded it."""

    call_id: str
    tool: str
    arguments: Mapping[str, Any]
    result: Mapping[str, Any]
    """The write's result without the ``replayed`` flag."""


def executed_calls(audit: AuditTrail, run_id: str, tools: Container[str] | None = None) -> list[ExecutedCall]:
    """The write calls ``run_id`` executed, oldest first, each once; only those of ``tools`` when given."""
    seen: set[str] = set()
    out: list[ExecutedCall] = []
    for row in audit.list(run_id=run_id, event_type=EventType.EXECUTED):
        if tools is not None and row.tool not in tools:
            continue
        if not isinstance(row.result, dict) or row.result.get("replayed") or not row.result.get("done"):
            continue
        key = row.call_id or row.event_id
        if key in seen:
            continue
        seen.add(key)
        result = {k: v for k, v in row.result.items() if k != "replayed"}
        out.append(ExecutedCall(call_id=key, tool=str(row.tool), arguments=dict(row.arguments or {}), result=result))
    return out
