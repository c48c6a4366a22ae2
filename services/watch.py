"""Watch the live twin once: what its nodes and carriers show now, against the baselines of the
network's history, becomes findings with their evidence, and findings become alerts.

A scenario staged with ``orderops twin apply`` (a node closed, its capacity cut, a carrier down) is
exactly what this sees: the twin's state, not a sender's alert. Each finding says the signal, the
value, the baseline and the threshold it crossed; :func:`finding_alert` makes it the alert the
existing path dedups, coalesces into an open run or starts a run from (the caller, in ``api/``,
hands it to the alert inbox).

The checks, per node and carrier:

* a node marked ``closed`` -> ``node_closure``; marked ``congested`` -> ``node_congestion``
* daily capacity below :data:`CAPACITY_DROP` of its median over the history's last four weeks ->
  ``node_congestion`` (the node cannot keep up with its usual work)
* backlog days above the history's median plus :data:`BACKLOG_MADS` robust deviations (and at
  least :data:`MIN_BACKLOG_DAYS`) -> ``node_congestion``
* a carrier in ``outage`` or ``degraded`` -> ``carrier_outage`` with its states

What this module must never do: act. It reads the twin and returns findings; the run an alert
starts plans, and a person approves.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import date

import numpy as np
from pydantic import BaseModel, Field

from agents.plan import Alert, ExceptionKind
from core.domain import CarrierStatus, NodeStatus
from core.history import History, generate_history
from core.netgen import NetworkSpec
from tools.adapters.protocols import Adapters

__all__ = ["WatchFinding", "finding_alert", "history_for", "watch_twin"]

CAPACITY_DROP = 0.8
"""A node picking less than this share of its usual daily capacity is flagged."""
BACKLOG_MADS = 5.0
MIN_BACKLOG_DAYS = 1.0
BASELINE_DAYS = 28


class WatchFinding(BaseModel):
    """One thing the twin shows that its history says is not normal, with the evidence."""

    kind: ExceptionKind
    labels: dict[str, str] = Field(description="What it is about: node, or carrier and states.")
    signal: str = Field(description="node_status, node_capacity, backlog_days or carrier_status.")
    value: float | str
    baseline: float | str | None = None
    threshold: float | str | None = None
    summary: str


def history_for(spec_json: str | None, *, days: int = 180) -> History | None:
    """The generated history of the twin whose spec (netgen's ``meta.spec``) is given; None when
    the twin carries no spec (its nodes are then judged by their status alone)."""
    if not spec_json:
        return None
    try:
        raw = json.loads(spec_json)
        raw["business_date"] = date.fromisoformat(raw["business_date"])
        known = {f.name for f in dataclasses.fields(NetworkSpec)}
        spec = NetworkSpec(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError, KeyError):
        return None  # a spec this version cannot read: judge the nodes by their status alone
    return generate_history(spec.seed, days, spec, incidents=False, risky_orders=False)


def _node_findings(adapters: Adapters, history: History | None) -> list[WatchFinding]:
    out: list[WatchFinding] = []
    for node in adapters.wms.list_nodes():
        labels = {"node": node.id}
        if node.status is NodeStatus.CLOSED:
            out.append(
                WatchFinding(
                    kind=ExceptionKind.NODE_CLOSURE,
                    labels=labels,
                    signal="node_status",
                    value="closed",
                    baseline="open",
                    summary=f"{node.id} is closed: its open orders cannot ship from there",
                )
            )
            continue
        if node.status is NodeStatus.CONGESTED:
            out.append(
                WatchFinding(
                    kind=ExceptionKind.NODE_CONGESTION,
                    labels=labels,
                    signal="node_status",
                    value="congested",
                    baseline="open",
                    summary=f"{node.id} is marked congested ({node.backlog_days:.2f} days of backlog)",
                )
            )
            continue
        if history is None or node.id not in history.nodes:
            continue
        i = history.node_index(node.id)
        usual = float(np.median(history.node_capacity[-BASELINE_DAYS:, i]))
        if usual > 0 and node.daily_capacity < CAPACITY_DROP * usual:
            out.append(
                WatchFinding(
                    kind=ExceptionKind.NODE_CONGESTION,
                    labels=labels,
                    signal="node_capacity",
                    value=node.daily_capacity,
                    baseline=round(usual, 1),
                    threshold=round(CAPACITY_DROP * usual, 1),
                    summary=(
                        f"{node.id} can pick {node.daily_capacity} orders a day, "
                        f"{node.daily_capacity / usual:.0%} of its usual {usual:.0f}"
                    ),
                )
            )
            continue
        days = history.node_backlog_days[-2 * BASELINE_DAYS :, i]
        med = float(np.median(days))
        mad = float(np.median(np.abs(days - med))) * 1.4826
        limit = max(med + BACKLOG_MADS * mad, MIN_BACKLOG_DAYS)
        if node.backlog_days > limit:
            out.append(
                WatchFinding(
                    kind=ExceptionKind.NODE_CONGESTION,
                    labels=labels,
                    signal="backlog_days",
                    value=round(node.backlog_days, 2),
                    baseline=round(med, 2),
                    threshold=round(limit, 2),
                    summary=f"{node.id} holds {node.backlog_days:.2f} days of backlog (usual {med:.2f})",
                )
            )
    return out


def _carrier_findings(adapters: Adapters) -> list[WatchFinding]:
    out: list[WatchFinding] = []
    for c in adapters.carriers.list_carriers():
        if c.status is CarrierStatus.OPERATIONAL:
            continue
        labels = {"carrier": c.id}
        where = ""
        if c.outage_states:
            labels["states"] = ",".join(c.outage_states)
            where = " in " + ", ".join(c.outage_states)
        out.append(
            WatchFinding(
                kind=ExceptionKind.CARRIER_OUTAGE,
                labels=labels,
                signal="carrier_status",
                value=c.status.value,
                baseline="operational",
                summary=f"carrier {c.id} is {c.status.value}{where}",
            )
        )
    return out


def watch_twin(adapters: Adapters, history: History | None) -> list[WatchFinding]:
    """Every finding the twin shows now, nodes first, then carriers."""
    return _node_findings(adapters, history) + _carrier_findings(adapters)


def finding_alert(finding: WatchFinding, *, today: date) -> Alert:
    """The alert a finding raises: one id per scope, signal and day, so watching again the same day
    is a duplicate the inbox drops, not a second run."""
    scope = ",".join(f"{k}={v}" for k, v in sorted(finding.labels.items()))
    evidence = f"value {finding.value}" + (f", baseline {finding.baseline}" if finding.baseline is not None else "")
    if finding.threshold is not None:
        evidence += f", threshold {finding.threshold}"
    return Alert(
        id=f"watch:{finding.signal}:{scope}:{today.isoformat()}"[:200],
        kind=finding.kind,
        severity="critical" if finding.kind is ExceptionKind.NODE_CLOSURE else "warning",
        labels=dict(finding.labels),
        summary=f"{finding.summary} ({evidence})"[:500],
    )


def finding_alerts(findings: Sequence[WatchFinding], *, today: date) -> list[Alert]:
    return [finding_alert(f, today=today) for f in findings]
