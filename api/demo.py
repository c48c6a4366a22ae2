"""The demo scenario, step by step, on the seeded twin: a DC congests, the agent proposes a reroute,
the simulation shows its effect, a person approves, the gateway executes once, the trail records it.

Kept out of cli.py so the CLI stays a thin shell; the steps use only public pieces (gateway, tools,
adapters), exactly as an agent run would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from api.bootstrap import AppContext
from api.cli_guard import audit_table
from core import geo
from core.domain import REROUTABLE_STATUSES, NodeStatus
from guardrails.calls import Actor
from tools.base import Preview
from tools.gateway import Outcome, RunLedger

DEMO_APPROVER = Actor(kind="user", id="demo-approver", roles=frozenset({"approver"}))


def preview_table(preview: Preview, limit: int = 8) -> Table:
    table = Table(title=f"Simulated effect: {preview.summary}")
    for col in ("order", "ok", "from", "to", "cost before", "cost after", "ETA before", "ETA after", "late?"):
        table.add_column(col)
    for item in preview.items[:limit]:
        b, a = item.before, item.after
        late = ("late" if item.late_before else "on time") + " -> " + ("late" if item.late_after else "on time")
        table.add_row(
            item.id,
            "yes" if item.ok else f"no: {item.reason}",
            str(b.get("node_id", "")),
            str(a.get("node_id", "")),
            str(b.get("cost", "")),
            str(a.get("cost", "")),
            str(b.get("eta", "")),
            str(a.get("eta", "")),
            late if item.ok else "",
        )
    if len(preview.items) > limit:
        table.caption = f"... and {len(preview.items) - limit} more orders"
    return table


def congestion_scenario(
    actx: AppContext,
    console: Console | None,
    *,
    approve: Callable[[Outcome], bool],
) -> dict[str, Any]:
    """Congest the busiest DC, reroute its unreleased orders through an approval, return a summary."""
    wms = actx.adapters.wms
    gw = actx.gateway
    loads = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-") and ld.status is NodeStatus.OPEN]
    node_id = max(loads, key=lambda ld: ld.unreleased_orders).node_id
    node = wms.get_node(node_id)
    # The "alert": a surge leaves three days of work queued at the node.
    wms.set_node_status(node_id, NodeStatus.CONGESTED)
    wms.set_backlog(node_id, node.daily_capacity * 3)
    say = console.print if console else (lambda *_a, **_k: None)
    say(f"[bold yellow]Alert[/]: {node_id} ({node.city}, {node.state}) is congested: backlog 3.0 days of capacity")

    run = RunLedger(run_id="demo-run-1")
    agent = Actor(kind="agent", id=run.run_id, on_behalf_of="ops-demo")
    found = gw.read(
        "search_orders",
        {"node_ids": [node_id], "statuses": sorted(REROUTABLE_STATUSES), "limit": 100_000},
        actor=agent,
        run=run,
    )
    assert found.result is not None
    order_ids = [o["id"] for o in found.result["orders"]]
    others = [n for n in wms.list_nodes(statuses=[NodeStatus.OPEN]) if n.id.startswith("DC-") and n.id != node_id]
    target = min(others, key=lambda n: geo.distance_miles(node.lat, node.lon, n.lat, n.lon))
    say(
        f"The agent found {len(order_ids)} unreleased orders at {node_id} and proposes moving them to the nearest "
        f"open DC, {target.id} ({target.city}, {target.state})."
    )

    proposal = gw.propose(
        "reroute_orders",
        {"order_ids": order_ids, "to_node_id": target.id, "reason": f"{node_id} congested"},
        actor=agent,
        run=run,
        idempotency_key=f"{run.run_id}:reroute:{node_id}:{target.id}",
    )
    summary: dict[str, Any] = {
        "node": node_id,
        "target": target.id,
        "orders": len(order_ids),
        "proposal": proposal.status,
        "reasons": proposal.reasons,
    }
    if proposal.preview is not None:
        p = proposal.preview
        summary["preview"] = {
            "summary": p.summary,
            "cost_delta": str(p.cost_delta),
            "late_before": p.late_before,
            "late_after": p.late_after,
            "units_moved": sum(p.inventory_moved.values()),
        }
        say(preview_table(p))
        say(
            f"Cost change {p.cost_delta:+,.2f} USD; late orders {p.late_before} -> {p.late_after}; "
            f"{sum(p.inventory_moved.values()):,} reserved units move."
        )
    say(f"Policy: [bold]{proposal.status}[/] — " + "; ".join(proposal.reasons))

    outcome = proposal
    if proposal.status == "awaiting_approval" and proposal.approval_id:
        if approve(proposal):
            gw.decide(proposal.approval_id, approver=DEMO_APPROVER, decision="approve")
            say(f"Approved by {DEMO_APPROVER.id} (role approver).")
            outcome = gw.execute_approved(proposal.approval_id, actor=agent, run=run)
        else:
            gw.decide(proposal.approval_id, approver=DEMO_APPROVER, decision="reject", reason="declined in the demo")
            say("Rejected; nothing was changed.")
    summary["outcome"] = outcome.status
    if outcome.result:
        summary["moved"] = len(outcome.result.get("done", []))
        summary["skipped"] = len(outcome.result.get("skipped", {}))
        say(f"[green]{outcome.status}[/]: moved {summary['moved']} orders, {summary['skipped']} skipped.")
    records = actx.guard.audit.list(run_id=run.run_id)
    say(audit_table(records, title=f"Audit trail of {run.run_id}"))
    report = actx.guard.audit.verify()
    summary["audit"] = {"events": len(records), "chain_ok": report.ok, "head": report.head_hash}
    say(f"Audit chain verified: {report.ok} ({report.rows_checked} rows)")
    return summary
