"""`orderops run` and `orderops runs ...`: exception runs from a terminal.

A run is the exception graph (:mod:`graphs.exception`) on durable checkpoints: one that stops for
approval can be resumed later, from another process, with ``orderops runs resume RUN_ID``.
``--approve auto`` approves as the built-in demo approver (``demo-approver``, role ``approver``)
and says so; ``prompt`` asks on the terminal, one approval at a time; ``deny`` rejects everything
with a reason. Mounted by :mod:`api.cli` (``app.command("run")(run_command)`` and
``app.add_typer(runs_app, name="runs")``).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agents.llm_planner import make_planner
from agents.plan import Alert, Planner
from agents.playbooks import PlaybookPlanner
from api.bootstrap import AppContext, open_context
from core.errors import ConfigurationError, ValidationFailed
from core.settings import Settings
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunDeps, RunResult
from graphs.runs import RunStore

runs_app = typer.Typer(help="Exception runs: list, show, resume.", no_args_is_help=True)

DEMO_APPROVER: dict[str, Any] = {"id": "demo-approver", "roles": ["approver"]}
REQUESTED_BY = "cli-operator"

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the final report as JSON.")]
ApproveMode = Literal["auto", "prompt", "deny"]
ApproveOpt = Annotated[
    str,
    typer.Option(
        "--approve",
        help="auto: the built-in demo approver (demo-approver, role approver) approves; "
        "prompt: you decide y/n per approval; deny: reject with a reason.",
    ),
]
PlannerOpt = Annotated[
    str,
    typer.Option(
        "--planner", help="auto: the LLM if one is configured, else the playbooks; playbook; llm (must be configured)."
    ),
]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        settings = Settings()
    return settings


def _mode(value: str) -> ApproveMode:
    if value not in ("auto", "prompt", "deny"):
        raise typer.BadParameter("auto, prompt or deny", param_hint="--approve")
    return value  # type: ignore[return-value]


def choose_planner(actx: AppContext, which: str) -> Planner:
    playbooks = PlaybookPlanner()
    if which == "playbook":
        return playbooks
    if which == "llm" and not actx.settings.llm_configured:
        raise ConfigurationError("--planner llm needs ORDEROPS_LLM_BASE_URL and ORDEROPS_LLM_MODEL")
    if which not in ("auto", "llm"):
        raise typer.BadParameter("auto, playbook or llm", param_hint="--planner")
    return make_planner(actx.settings, fallback=playbooks, policy=actx.guard.policy, requested_by=REQUESTED_BY)


@dataclass
class Session:
    actx: AppContext
    runs: ExceptionRuns
    store: RunStore


@contextmanager
def session(settings: Settings, planner: str = "auto") -> Iterator[Session]:
    """The app context, a checkpointer on its database and the runs driver; all closed on exit."""
    actx = open_context(settings)
    try:
        store = RunStore(actx.db, actx.clock)
        deps = RunDeps(
            gateway=actx.gateway, planner=choose_planner(actx, planner), runs=store, requested_by=REQUESTED_BY
        )
        with open_checkpointer(actx.db) as saver:
            yield Session(actx=actx, runs=ExceptionRuns(deps, saver), store=store)
    finally:
        actx.close()


# --- deciding approvals -----------------------------------------------------------------------------


Decisions = tuple[list[dict[str, Any]], dict[str, Any]]


def decisions_for(approvals: list[dict[str, Any]], mode: ApproveMode, out: Console) -> Decisions:
    """The decisions and approver identity for one approval gate, per ``--approve``."""
    if mode == "auto":
        out.print(
            f"Approving as the built-in demo approver [bold]{DEMO_APPROVER['id']}[/] (role approver), "
            "because --approve auto was given."
        )
        return [{"approval_id": a["approval_id"], "decision": "approve"} for a in approvals], DEMO_APPROVER
    if mode == "deny":
        reason = "rejected from the command line (--approve deny)"
        return [
            {"approval_id": a["approval_id"], "decision": "reject", "reason": reason} for a in approvals
        ], DEMO_APPROVER
    user = getpass.getuser() or "terminal-user"
    out.print(f"Deciding as [bold]{user}[/] with role approver (the person at this terminal).")
    decisions = []
    for a in approvals:
        preview = a.get("preview") or {}
        question = f"Approve step {a.get('step')} {a.get('tool')}: {preview.get('summary', '')}?"
        yes = typer.confirm(question, default=False)
        decisions.append(
            {"approval_id": a["approval_id"], "decision": "approve"}
            if yes
            else {"approval_id": a["approval_id"], "decision": "reject", "reason": f"rejected by {user} at the prompt"}
        )
    return decisions, {"id": user, "roles": ["approver"]}


def drive(runs: ExceptionRuns, result: RunResult, mode: ApproveMode, out: Console) -> RunResult:
    """Answer approval gates until the run finishes, or stop if the same gate comes back unanswered
    (e.g. the approver lacks a role): the run then stays waiting for someone who may decide."""
    seen: set[tuple[str, ...]] = set()
    while result.waiting:
        out.print(approvals_table(result.approvals))
        gate = tuple(sorted(a["approval_id"] for a in result.approvals))
        if gate in seen:
            out.print("[yellow]These approvals are still pending after a decision; the run stays waiting.[/]")
            break
        seen.add(gate)
        decisions, approver = decisions_for(result.approvals, mode, out)
        result = runs.resume(result.run_id, decisions=decisions, approver=approver)
    return result


# --- rendering --------------------------------------------------------------------------------------


def approvals_table(approvals: list[dict[str, Any]]) -> Table:
    table = Table(title="Waiting for approval")
    for col in ("approval", "step", "tool", "effect", "cost change", "late before -> after", "orders", "why"):
        table.add_column(col, overflow="fold")
    for a in approvals:
        p = a.get("preview") or {}
        table.add_row(
            str(a.get("approval_id")),
            str(a.get("step")),
            str(a.get("tool")),
            str(p.get("summary", "")),
            str(p.get("cost_delta", "")),
            f"{p.get('late_before', '')} -> {p.get('late_after', '')}",
            str(p.get("affected", "")),
            "; ".join(a.get("reasons", []))[:120],
        )
    return table


def render_report(report: dict[str, Any], out: Console) -> None:
    plan = report.get("plan") or {}
    style = {"completed": "green", "partially_completed": "yellow", "nothing_to_do": "cyan"}.get(
        str(report.get("status")), "red"
    )
    out.print(f"Run [bold]{report.get('run_id')}[/]: [{style}]{report.get('status')}[/]")
    if report.get("stop"):
        out.print(f"Stopped: {report['stop']}")
    out.print(f"Plan ({plan.get('planner')}): {plan.get('summary')}")
    table = Table(title="Steps")
    for col in ("step", "tool", "status", "effect", "done", "skipped", "reasons"):
        table.add_column(col, overflow="fold")
    for s in report.get("steps", []):
        p = s.get("preview") or {}
        table.add_row(
            str(s.get("index")),
            str(s.get("tool")),
            str(s.get("status")),
            str(p.get("summary", "")),
            str(s.get("done")),
            str(s.get("skipped")),
            "; ".join(s.get("reasons", []))[:120],
        )
    out.print(table)
    for d in report.get("decisions", []):
        out.print(f"Decision: {d.get('decision')} {d.get('approval_id')} by {d.get('approver')}")
    v = report.get("verification")
    if v is not None:
        verdict = "[green]passed[/]" if v.get("passed") else "[red]failed[/]"
        out.print(f"Verification {verdict}: {v.get('orders_checked')} orders checked")
        for r in v.get("reasons", [])[:5]:
            out.print(f"  - {r}")
    for n in report.get("notes", []):
        out.print(f"Note: {n}")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _finish(result: RunResult, as_json: bool) -> None:
    if as_json:
        _print_json(result.report or result.model_dump(mode="json"))
    elif result.report is not None:
        render_report(result.report, console)
    else:
        console.print(
            f"Run [bold]{result.run_id}[/] is {result.status}; resume it with `orderops runs resume {result.run_id}`."
        )


def load_alert(path: Path) -> Alert:
    try:
        return Alert.model_validate_json(path.read_text())
    except OSError as exc:
        raise ValidationFailed(f"cannot read alert file {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "alert"
        raise ValidationFailed(f"alert file {path} is not a valid alert ({where}: {first['msg']})") from exc


# --- commands ---------------------------------------------------------------------------------------


def run_command(
    ctx: typer.Context,
    goal: Annotated[str | None, typer.Argument(help="What to do, e.g. 'DC-RENO is congested'.")] = None,
    alert: Annotated[Path | None, typer.Option("--alert", help="An alert as JSON (instead of a goal).")] = None,
    approve: ApproveOpt = "auto",
    planner: PlannerOpt = "auto",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Choose the run id (default: generated).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Handle one exception end to end: triage, plan, simulate, policy, approval, execute, verify."""
    mode = _mode(approve)
    if (goal is None) == (alert is None):
        raise typer.BadParameter("give either a GOAL or --alert ALERT.json")
    the_alert = load_alert(alert) if alert is not None else None
    out = err_console if as_json else console
    with session(_settings(ctx), planner) as s:
        result = s.runs.start(alert=the_alert, goal=goal, run_id=run_id)
        out.print(f"Run [bold]{result.run_id}[/] started.")
        result = drive(s.runs, result, mode, out)
    _finish(result, as_json)


@runs_app.command("list")
def runs_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Runs, newest first (from the runs index, not the checkpoints)."""
    actx = open_context(_settings(ctx))
    try:
        found = RunStore(actx.db, actx.clock).list(status=status, limit=limit)
    finally:
        actx.close()
    if as_json:
        _print_json([r.model_dump(mode="json", exclude={"report"}) for r in found])
        return
    table = Table(title=f"Runs ({len(found)})")
    for col in ("run", "kind", "status", "planner", "started", "updated", "what"):
        table.add_column(col, overflow="fold")
    for r in found:
        what = r.goal or (r.alert or {}).get("summary") or (r.alert or {}).get("id") or ""
        table.add_row(
            r.id,
            r.kind,
            r.status,
            r.planner or "",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.updated_at.strftime("%H:%M:%S"),
            str(what)[:60],
        )
    console.print(table)


@runs_app.command("show")
def runs_show(ctx: typer.Context, run_id: str, as_json: JsonFlag = False) -> None:
    """One run: its final report, or the approvals it is waiting for."""
    with session(_settings(ctx), "playbook") as s:
        summary = s.store.get(run_id=run_id)
        result = s.runs.result(run_id)
    if as_json:
        _print_json({**summary.model_dump(mode="json"), "approvals": result.approvals})
        return
    if result.report is not None:
        render_report(result.report, console)
    else:
        console.print(f"Run [bold]{run_id}[/] is {result.status}.")
        if result.approvals:
            console.print(approvals_table(result.approvals))


@runs_app.command("resume")
def runs_resume(
    ctx: typer.Context,
    run_id: str,
    approve: ApproveOpt = "prompt",
    planner: PlannerOpt = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Carry on a run: decide its pending approvals, or finish one whose process stopped mid-way."""
    mode = _mode(approve)
    out = err_console if as_json else console
    with session(_settings(ctx), planner) as s:
        result = s.runs.result(run_id)
        if result.status == "running":
            out.print(f"Run {run_id} stopped mid-way; carrying on from its last checkpoint.")
            result = s.runs.proceed(run_id)
        result = drive(s.runs, result, mode, out)
    _finish(result, as_json)
