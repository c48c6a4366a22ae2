"""The demo scenario on the seeded twin: a DC congests, an alert starts an exception run, the
playbook plans reroutes with reasons, the twin simulates them, policy parks them for approval, a
person (or the demo approver) decides, the run executes once, verifies and reports, and the audit
trail shows every step.

Kept out of cli.py so the CLI stays a thin shell. It drives the same graph `orderops run` does.
"""

from __future__ import annotations

from pathlib import Path
from string import Template
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.plan import Alert, ExceptionKind, Plan
from api.cli_guard import audit_table
from api.cli_runs import ApproveMode, drive, render_report, session
from core.domain import NodeStatus
from core.errors import ValidationFailed
from core.settings import Settings
from services.scenarios import NodeBacklogEvent, parse_scenario, stage_directly
from tools.base import Preview

SCENARIO_FILE = Path(__file__).with_name("demo_congestion.yaml")
"""The demo's congestion as a scenario file (``$node``: the DC it picks)."""


def preview_table(preview: Preview, limit: int = 8) -> Table:
    table = Table(title=f"Simulated effect: {preview.summary}")
    for col in ("order", "ok", "from", "to", "cost before", "cost after", "ETA before", "ETA after", "promise"):
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


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"Plan ({plan.planner}): {plan.summary}")
    for col in ("step", "tool", "orders", "to", "why", "alternatives weighed"):
        table.add_column(col, overflow="fold")
    for i, step in enumerate(plan.steps):
        alts = ", ".join(
            f"{a.node_id} ({a.score:.1f}{f', {a.co2e_kg:.1f} kg CO2e' if a.co2e_kg is not None else ''}"
            f"{': ' + a.reasons[0] if a.reasons else ''})"
            for a in step.alternatives[:3]
        )
        table.add_row(
            str(i),
            step.tool,
            str(len(step.args.get("order_ids", []))),
            str(step.args.get("to_node_id") or step.args.get("carrier_service_id") or ""),
            step.reason,
            alts,
        )
    table.caption = optimizer_line(plan.optimizer)
    return table


def optimizer_line(record: dict[str, Any] | None) -> str | None:
    """How a batch plan was made, in one line: which method, how far from the best possible (its
    gap to the LP bound) and what it gained over greedy; None for plans no optimiser looked at."""
    if not record:
        return None
    method = str(record.get("method", "?"))
    gap = record.get("gap")
    parts = [f"optimiser: {method}"]
    if gap is not None:
        parts.append(f"gap {float(gap):.2%} to the bound")
    greedy, best = record.get("greedy") or {}, record.get("optimizer") or {}
    if method == "highs" and greedy and best:
        parts.append(
            f"score {greedy.get('score')} -> {best.get('score')}, late {greedy.get('late')} -> {best.get('late')}"
            f" (greedy -> optimiser)"
        )
    if record.get("reason"):
        parts.append(f"greedy kept: {record['reason']}")
    parts.append(f"{float(record.get('solve_s', 0.0)):.2f} s")
    return "; ".join(parts)


def congestion_scenario(settings: Settings, console: Console | None, *, mode: ApproveMode) -> dict[str, Any]:
    """Congest the busiest DC by staging :data:`SCENARIO_FILE` on the demo's twin, and run the
    exception agent on the alert; return a summary."""
    out = console or Console(file=open("/dev/null", "w"))  # noqa: SIM115 - quiet under --json
    with session(settings, planner="playbook") as sess:
        actx = sess.actx
        wms = actx.adapters.wms
        loads = [ld for ld in wms.node_load() if ld.node_id.startswith("DC-") and ld.status is NodeStatus.OPEN]
        node_id = max(loads, key=lambda ld: ld.unreleased_orders).node_id
        parsed = parse_scenario(Template(SCENARIO_FILE.read_text()).substitute(node=node_id))
        # What the monitoring system saw, staged as a scenario on the demo's own twin.
        findings = stage_directly(parsed, actx.tool_env)
        if parsed.scenario is None or any(f.severity == "error" for f in findings):
            raise ValidationFailed(f"{SCENARIO_FILE.name} does not stage: {[f.message for f in findings]}")
        days = next(e.node_backlog.days for e in parsed.scenario.events if isinstance(e, NodeBacklogEvent))
        node = wms.get_node(node_id)
        alert = Alert(
            id=f"demo-congestion-{node_id}",
            kind=ExceptionKind.NODE_CONGESTION,
            severity="critical",
            labels={"node": node_id},
            summary=f"{node_id} backlog at {days:g} days of capacity",
            text=f"Pick rate at {node.city} dropped; {node.backlog:,} orders queued.",
        )
        out.print(f"[bold yellow]Alert[/] {alert.id}: {alert.summary} ({node.city}, {node.state})")
        result = sess.runs.start(alert=alert)
        state = sess.runs.state(result.run_id)
        plan = Plan.model_validate(state["plan"]) if state.get("plan") else None
        if plan is not None:
            out.print(plan_table(plan))
        for a in result.approvals[:1]:
            req = actx.guard.approvals.get(a["approval_id"])
            out.print(preview_table(Preview.model_validate(req.preview)))
        result = drive(sess.runs, result, mode, out)
        if result.report is not None:
            render_report(result.report, out)
        records = actx.guard.audit.list(run_id=result.run_id)
        out.print(audit_table(records, title=f"Audit trail of {result.run_id}"))
        chain = actx.guard.audit.verify()
        out.print(f"Audit chain verified: {chain.ok} ({chain.rows_checked} rows)")
        report = result.report or {}
        verification = report.get("verification") or {}
        return {
            "node": node_id,
            "run_id": result.run_id,
            "status": result.status,
            "plan": {
                "planner": plan.planner,
                "summary": plan.summary,
                "steps": len(plan.steps),
                "optimizer": plan.optimizer,
            }
            if plan
            else None,
            "steps": [{k: s.get(k) for k in ("tool", "status", "done", "skipped")} for s in report.get("steps", [])],
            "verified": verification.get("passed"),
            "audit": {"events": len(records), "chain_ok": chain.ok, "head": chain.head_hash},
        }
