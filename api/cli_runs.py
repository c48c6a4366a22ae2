"""`orderops run` and `orderops runs ...`: exception runs from a terminal.

A run is the exception graph (:mod:`graphs.exception`) on durable checkpoints: one that stops for
approval can be carried on later, from another process, with ``orderops runs resume RUN_ID`` (or at
once by ``orderops approvals approve``).

By default a run that needs approval **parks** and says how to approve it: nothing changes until a
person holding the approver role decides. ``--approve auto|prompt|deny`` decide from this terminal,
and only as a named principal: the API key given with ``--key`` (or ``ORDEROPS_API_KEY``). The one
exception is the demo's own database (:func:`api.bootstrap.is_demo_database`), where nothing belongs
to anyone and the built-in ``demo-approver`` may decide. ``--dry-run`` plans and previews without
starting a run. Mounted by :mod:`api.cli` (``run`` and the ``runs`` group in ``MOUNTS``),
imported only when one of them runs.

What this module must never do: decide an approval in the name of a user id or role nobody
authenticated, or decide one whose run the caller did not ask to decide (``park`` decides nothing).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from langgraph.checkpoint.base import BaseCheckpointSaver
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from agents.plan import Alert, ExceptionKind, Planner, Triage
from api.auth import Role
from api.bootstrap import AppContext, is_demo_database, open_context
from api.cli_keys import KeyOpt, principal_for
from core.errors import NotFound, ValidationFailed
from core.settings import Settings
from graphs.checkpoints import open_checkpointer
from graphs.exception import (
    ExceptionRuns,
    RunDeps,
    RunResult,
    fallback_notice,
    make_plan,
    preview_numbers,
    simulate_call,
)
from graphs.report import RunReport
from graphs.runs import RunStore
from guardrails.approvals import ApprovalStatus
from guardrails.calls import Actor, ProposedCall
from services import wiring
from services.approvals import decide_incident, incident_card
from services.runs import StartRun, queued_requester, start_now
from tools.gateway import RunLedger, args_hash

runs_app = typer.Typer(help="Exception runs: list, show, resume.", no_args_is_help=True)

DEMO_APPROVER: dict[str, Any] = {"id": "demo-approver", "roles": ["approver"]}
"""Decides only on the demo's own database (see the module docs)."""
REQUESTED_BY = wiring.OPERATOR

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the final report as JSON.")]
ApproveMode = Literal["park", "auto", "prompt", "deny"]
APPROVE_MODES: tuple[str, ...] = ("park", "auto", "prompt", "deny")
ApproveOpt = Annotated[
    str,
    typer.Option(
        "--approve",
        help="park (default): stop and say how to approve; auto: approve every step as the --key's principal; "
        "prompt: decide y/n per approval as the --key's principal; deny: reject with a reason. "
        "auto, prompt and deny need an approver's API key (on the demo's own database: the demo approver).",
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
    if value not in APPROVE_MODES:
        raise typer.BadParameter(", ".join(APPROVE_MODES), param_hint="--approve")
    return value  # type: ignore[return-value]


def choose_planner(actx: AppContext, which: str) -> Planner:
    """``--planner``, chosen by the rule every way in shares (:func:`services.wiring.choose_planner`)."""
    if which not in wiring.PLANNER_CHOICES:
        raise typer.BadParameter("auto, playbook or llm", param_hint="--planner")
    return wiring.choose_planner(actx, which)


@dataclass
class Session:
    actx: AppContext
    runs: ExceptionRuns
    store: RunStore
    saver: BaseCheckpointSaver[str]

    def acting_for(self, requested_by: str) -> ExceptionRuns:
        """The runs driver acting for ``requested_by`` (the person a run was started for: the
        trail records execution on their behalf, and they may not approve its calls)."""
        if requested_by == self.runs.deps.requested_by:
            return self.runs
        return ExceptionRuns(dataclasses.replace(self.runs.deps, requested_by=requested_by), self.saver)


@contextmanager
def session(settings: Settings, planner: str = "auto") -> Iterator[Session]:
    """The app context, a checkpointer on its database and the runs driver; all closed on exit."""
    actx = open_context(settings)
    try:
        store = RunStore(actx.db, actx.clock)
        deps = wiring.run_deps(actx, choose_planner(actx, planner), runs=store, requested_by=REQUESTED_BY)
        with open_checkpointer(actx.db) as saver:
            yield Session(actx=actx, runs=ExceptionRuns(deps, saver), store=store, saver=saver)
    finally:
        actx.close()


def run_requester(actx: AppContext, run_id: str, cards: list[dict[str, Any]]) -> str:
    """Who a run acts for: the requester its approval requests name, else the one its start job
    named (runs started over HTTP, Slack or an alert), else the terminal operator."""
    for card in cards:
        try:
            return actx.guard.approvals.get(str(card.get("approval_id"))).requester_id
        except NotFound:
            continue
    return queued_requester(actx.db, run_id) or REQUESTED_BY


def carry_on_here(
    s: Session,
    run_id: str,
    mode: ApproveMode,
    out: Console,
    approver: Mapping[str, Any] | None = None,
    *,
    announce: bool = False,
) -> tuple[ExceptionRuns, RunResult]:
    """Carry a run on in this process, acting for the person it was started for: finish one whose
    process stopped mid-way, then :func:`drive` it per ``mode``. Returns the driver and where the
    run stands (``runs resume``, and after a decision made from this terminal)."""
    current = s.runs.result(run_id)
    runs = s.acting_for(run_requester(s.actx, run_id, current.approvals))
    if current.status == "running":
        if announce:
            out.print(f"Run {run_id} stopped mid-way; carrying on from its last checkpoint.")
        current = runs.proceed(run_id)
    return runs, drive(runs, current, mode, out, approver)


# --- who decides ------------------------------------------------------------------------------------


def approver_for(actx: AppContext, mode: ApproveMode, key: str | None) -> dict[str, Any] | None:
    """The identity ``--approve`` decides as: the principal of ``key`` (who must hold the approver
    role), or on the demo's own database without a key, the demo approver. ``park`` decides nothing."""
    if mode == "park":
        return None
    if key is None and is_demo_database(actx.db):
        return DEMO_APPROVER
    who = principal_for(actx.settings, key, role=Role.APPROVER, doing=f"deciding approvals with --approve {mode}")
    return {"id": who.id, "roles": sorted(r.value for r in who.roles)}


def pending_cards(runs: ExceptionRuns, result: RunResult) -> list[dict[str, Any]]:
    """The run's approval cards still waiting for a decision in the approval store (a card decided
    elsewhere and not yet carried on is not waiting for anyone)."""
    approvals = runs.deps.gateway.guard.approvals
    out = []
    for card in result.approvals:
        try:
            if approvals.get(str(card.get("approval_id"))).status == ApprovalStatus.PENDING:
                out.append(card)
        except NotFound:
            continue
    return out


Decisions = tuple[list[dict[str, Any]], dict[str, Any]]


def decisions_for(
    approvals: list[dict[str, Any]],
    mode: ApproveMode,
    out: Console,
    approver: Mapping[str, Any] | None = None,
    *,
    run_id: str = "",
) -> Decisions:
    """The decisions for one approval gate, per ``--approve``, made as ``approver``.

    ``approver`` None is the demo's own way in (:mod:`api.demo`): the demo approver for ``auto`` and
    ``deny``, the person at the terminal for ``prompt``. Every other caller passes a principal."""
    if mode == "auto":
        who = dict(approver or DEMO_APPROVER)
        out.print(f"Approving as [bold]{who['id']}[/] ({', '.join(who['roles'])}), because --approve auto was given.")
        return [{"approval_id": a["approval_id"], "decision": "approve"} for a in approvals], who
    if mode == "deny":
        who = dict(approver or DEMO_APPROVER)
        reason = "rejected from the command line (--approve deny)"
        return [{"approval_id": a["approval_id"], "decision": "reject", "reason": reason} for a in approvals], who
    if mode != "prompt":
        raise ValidationFailed(f"--approve {mode} decides nothing")
    who = (
        dict(approver) if approver is not None else {"id": getpass.getuser() or "terminal-user", "roles": ["approver"]}
    )
    out.print(f"Deciding as [bold]{who['id']}[/] ({', '.join(who['roles'])}).")
    decisions = []
    for a in approvals:
        preview = a.get("preview") or {}
        question = f"Approve step {a.get('step')} {a.get('tool')}: {preview.get('summary', '')}?"
        try:
            yes = typer.confirm(question, default=False)
        except typer.Abort as exc:  # end of input (or ^C) at the prompt: decide nothing
            where = f"run {run_id} stays waiting for approval" if run_id else "nothing was decided"
            raise ValidationFailed(
                f"no answer at the prompt (end of input): nothing was decided; {where}. "
                "Decide later with `orderops approvals approve ID --key KEY` or `orderops runs resume RUN_ID`."
            ) from exc
        decisions.append(
            {"approval_id": a["approval_id"], "decision": "approve"}
            if yes
            else {
                "approval_id": a["approval_id"],
                "decision": "reject",
                "reason": f"rejected by {who['id']} at the prompt",
            }
        )
    return decisions, who


def drive(
    runs: ExceptionRuns,
    result: RunResult,
    mode: ApproveMode,
    out: Console,
    approver: Mapping[str, Any] | None = None,
) -> RunResult:
    """Carry a run through its approval gates until it finishes or parks.

    Decisions recorded elsewhere (API, Slack, another terminal) are carried on first; then the
    cards still pending are decided per ``mode`` as ``approver``. ``park`` decides nothing. Stops if
    the same gate comes back unanswered (e.g. the approver lacks a role): the run then stays
    waiting for someone who may decide."""
    seen: set[tuple[str, ...]] = set()
    while result.waiting:
        result = runs.continue_run(result.run_id)
        cards = pending_cards(runs, result) if result.waiting else []
        if mode == "park" or not cards:
            break
        out.print(approvals_table(cards))
        gate = tuple(sorted(str(a["approval_id"]) for a in cards))
        if gate in seen:
            out.print("[yellow]These approvals are still pending after a decision; the run stays waiting.[/]")
            break
        seen.add(gate)
        decisions, who = decisions_for(cards, mode, out, approver, run_id=result.run_id)
        result = runs.resume(result.run_id, decisions=decisions, approver=who)
    return result


# --- rendering --------------------------------------------------------------------------------------


def approvals_table(approvals: list[dict[str, Any]], title: str = "Waiting for approval") -> Table:
    table = Table(title=title)
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


def how_to_approve(run_id: str, cards: list[dict[str, Any]]) -> list[str]:
    """The commands (and the HTTP call) that decide a parked run's approvals, one line each."""
    steps = [f"orderops approvals approve {c.get('approval_id')} --key $ORDEROPS_API_KEY" for c in cards]
    return [
        f"orderops runs approve {run_id} --key $ORDEROPS_API_KEY",
        f"orderops runs reject {run_id} --key $ORDEROPS_API_KEY --reason TEXT",
        f'POST /v1/runs/{run_id}/approval {{"decision": "approve"}} with header X-API-Key: <an approver\'s key>',
        *steps,
        "no approver key yet? orderops keys create --name NAME --role approver",
    ]


def step_progress(runs: ExceptionRuns, run_id: str) -> list[dict[str, Any]]:
    """Each step of a run as it stands: what ran, what waits, what was refused."""
    steps = runs.state(run_id).get("steps") or []
    return [
        {
            "index": st.get("index"),
            "tool": st.get("tool"),
            "status": st.get("status"),
            "done": len(done) if isinstance(done := st.get("done"), list | dict) else done,
        }
        for st in steps
    ]


def parked_view(runs: ExceptionRuns, result: RunResult) -> dict[str, Any]:
    cards = pending_cards(runs, result)
    totals = None
    if cards:
        card = incident_card(runs.deps.gateway, result.run_id)
        totals = {k: getattr(card, k) for k in ("orders", "cost_delta", "late_before", "late_after", "required_roles")}
    return {
        "fallback": fallback_notice(runs.state(result.run_id).get("plan")),
        "run_id": result.run_id,
        "status": result.status,
        "incident": totals,
        "approvals": cards,
        "steps": step_progress(runs, result.run_id),
        "how_to_approve": how_to_approve(result.run_id, cards),
    }


def render_fallback(notice: str | None, out: Console) -> None:
    """The first line of every run view when the model did not plan: a fallback is never silent."""
    if notice:
        out.print(f"[bold red]{notice}[/]", highlight=False)


def render_parked(view: dict[str, Any], out: Console) -> None:
    render_fallback(view.get("fallback"), out)
    cards = view["approvals"]
    out.print(
        f"Run [bold]{view['run_id']}[/] is [yellow]waiting for approval[/] of {len(cards)} step(s); "
        "they change nothing until a person approves them."
    )
    moved = [s for s in view.get("steps", []) if s.get("status") not in ("awaiting_approval", "planned")]
    for s in moved:
        done = f" ({s['done']} done)" if s.get("done") is not None else ""
        out.print(f"  step {s['index']} {s['tool']}: {s['status']}{done}", highlight=False)
    if not cards:
        out.print(f"Its approvals are decided; carry it on with `orderops runs resume {view['run_id']}`.")
        return
    out.print(approvals_table(cards))
    if totals := view.get("incident"):
        out.print(
            f"In all: {totals['orders']} orders, cost change {totals['cost_delta']}, "
            f"late {totals['late_before']} -> {totals['late_after']}; needs {', '.join(totals['required_roles'])}.",
            highlight=False,
        )
    out.print(
        "A person holding the approver role decides with their API key, the whole run at once (or step by step); "
        "deciding carries the run on:"
    )
    for line in view["how_to_approve"]:
        out.print(f"  {line}", highlight=False, markup=False)


def render_report(report: RunReport | dict[str, Any], out: Console) -> None:
    """A finished run's report. A dict (a reader not moved to :class:`RunReport` yet) is parsed."""
    r = report if isinstance(report, RunReport) else RunReport.of(report)
    style = {"completed": "green", "partially_completed": "yellow", "nothing_to_do": "cyan"}.get(r.status, "red")
    render_fallback(r.fallback, out)
    out.print(f"Run [bold]{r.run_id}[/]: [{style}]{r.status}[/]")
    if r.stop:
        out.print(f"Stopped: {r.stop}")
    out.print(f"Plan ({r.plan.planner}): {r.plan.summary}")
    table = Table(title="Steps")
    for col in ("step", "tool", "status", "effect", "done", "skipped", "reasons"):
        table.add_column(col, overflow="fold")
    for s in r.steps:
        p = s.preview or {}
        table.add_row(
            str(s.index),
            s.tool,
            s.status,
            str(p.get("summary", "")),
            str(s.done),
            str(s.skipped),
            "; ".join(s.reasons)[:120],
        )
    out.print(table)
    for d in r.decisions:
        out.print(f"Decision: {d.decision} {d.approval_id} by {d.approver}")
    if (v := r.verification) is not None:
        verdict = "[green]passed[/]" if v.passed else "[red]failed[/]"
        out.print(f"Verification {verdict}: {v.orders_checked} orders checked")
        for reason in v.reasons[:5]:
            out.print(f"  - {reason}")
    for n in r.notes:
        out.print(f"Note: {n}")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def finish(runs: ExceptionRuns, result: RunResult, as_json: bool, out: Console = console) -> None:
    """Print where a run stands: its report, how to approve it, or how to carry it on."""
    if result.waiting:
        view = parked_view(runs, result)
        if as_json:
            _print_json(view)
        else:
            render_parked(view, out)
    elif as_json:
        _print_json(result.report or result.model_dump(mode="json"))
    elif (report := result.typed_report) is not None:
        render_report(report, out)
    else:
        out.print(
            f"Run [bold]{result.run_id}[/] is {result.status}; carry it on with `orderops runs resume {result.run_id}`."
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


# --- triage and dry run -----------------------------------------------------------------------------


def triage_or_refuse(deps: RunDeps, alert: Alert | None, goal: str | None) -> Triage:
    """Triage the input before anything is started; a goal neither the grammar nor the model (when
    one is configured) understands is bad input (the error says what the grammar understands), not
    a run with nothing to do, and a vague one ("the congested DC") is answered with the concrete
    goals it could mean (:func:`agents.triage_llm.vague_refusal`)."""
    if alert is not None:
        return deps.triage_alert(alert, deps.env)
    if goal is None or not goal.strip():
        raise ValidationFailed("the goal is empty")
    triage = deps.triage_goal(goal, deps.env)
    from agents.triage_llm import vague_refusal

    by_model = any(f.startswith("triaged by the model") for f in triage.findings)
    if triage.kind is ExceptionKind.UNKNOWN or by_model:  # the model's kind without the node it needs: vague too
        refusal = vague_refusal(goal, deps.env, triage)
        if refusal is not None:
            raise ValidationFailed(refusal)
    return triage


def dry_run(deps: RunDeps, triage: Triage) -> dict[str, Any]:
    """Plan and preview without starting a run: each step simulated on the twin and judged by the
    policy, nothing proposed, parked, executed or recorded."""
    plan, notes = make_plan(deps, triage)  # as a run plans: allow-list, incident on each call
    ledger = RunLedger(run_id="dry-run")
    agent = Actor(kind="agent", id="dry-run", on_behalf_of=deps.requested_by)
    steps: list[dict[str, Any]] = []
    for i, call in enumerate(plan.steps):
        step: dict[str, Any] = {"index": i, "tool": call.tool, "reason": call.reason, "preview": None}
        steps.append(step)
        simulated = simulate_call(deps, call)
        if isinstance(simulated, str):
            step.update(policy="refused", reasons=[simulated])
            continue
        tool, args, preview = simulated
        decision = deps.gateway.guard.policy.decide(
            ProposedCall(
                tool=tool.name,
                risk=tool.risk,
                actor=agent,
                args_digest=args_hash(args),
                facts=preview.facts,
                run=ledger.totals(),
            )
        )
        ledger.charge(preview)
        step.update(
            policy=decision.effect.value,
            required_roles=decision.required_roles,
            reasons=decision.reasons,
            preview=preview_numbers(preview),
        )
    return {
        "fallback": fallback_notice(plan.model_dump(mode="json")),
        "dry_run": True,
        "status": "dry_run",
        "triage": {"kind": triage.kind.value, "summary": triage.summary, "findings": triage.findings},
        "plan": {
            "planner": plan.planner,
            "summary": plan.summary,
            "steps": len(plan.steps),
            "optimizer": plan.optimizer,
        },
        "steps": steps,
        "notes": notes,
        "not_planned": plan.not_planned,
    }


def render_dry_run(report: dict[str, Any], out: Console) -> None:
    render_fallback(report.get("fallback"), out)
    out.print(f"[bold]Dry run[/] (nothing started, parked or changed): {report['triage']['summary']}")
    out.print(f"Plan ({report['plan']['planner']}): {report['plan']['summary']}")
    table = Table(title="What the run would do")
    for col in ("step", "tool", "policy", "effect", "cost change", "late before -> after", "orders", "why"):
        table.add_column(col, overflow="fold")
    for s in report["steps"]:
        p = s.get("preview") or {}
        policy = str(s.get("policy"))
        if s.get("required_roles"):
            policy += f" ({', '.join(s['required_roles'])})"
        table.add_row(
            str(s["index"]),
            str(s["tool"]),
            policy,
            str(p.get("summary", "")),
            str(p.get("cost_delta", "")),
            f"{p.get('late_before', '')} -> {p.get('late_after', '')}" if p else "",
            str(p.get("affected", "")),
            "; ".join([s.get("reason") or "", *s.get("reasons", [])])[:160],
        )
    out.print(table)


# --- commands ---------------------------------------------------------------------------------------


def run_command(
    ctx: typer.Context,
    goal: Annotated[str | None, typer.Argument(help="What to do, e.g. 'DC-RENO is congested'.")] = None,
    alert: Annotated[Path | None, typer.Option("--alert", help="An alert as JSON (instead of a goal).")] = None,
    approve: ApproveOpt = "park",
    key: KeyOpt = None,
    dry_run_: Annotated[
        bool, typer.Option("--dry-run", help="Plan and preview only: start nothing, park nothing, change nothing.")
    ] = False,
    planner: PlannerOpt = "auto",
    run_id: Annotated[str | None, typer.Option("--run-id", help="Choose the run id (default: generated).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Handle one exception: triage, plan, simulate, policy, approval, execute, verify.

    Steps that need approval park the run (it says how to approve) unless --approve decides them as
    the principal of --key."""
    mode = _mode(approve)
    if (goal is None) == (alert is None):
        raise typer.BadParameter("give either a GOAL or --alert ALERT.json")
    the_alert = load_alert(alert) if alert is not None else None
    out = err_console if as_json else console
    with session(_settings(ctx), planner) as s:
        triage = triage_or_refuse(s.runs.deps, the_alert, goal)
        if dry_run_:
            report = dry_run(s.runs.deps, triage)
            if as_json:
                _print_json(report)
            else:
                render_dry_run(report, console)
            return
        approver = approver_for(s.actx, mode, key)  # before anything starts: a bad key changes nothing
        cmd = StartRun(goal=goal, alert=the_alert, requested_by=s.runs.deps.requested_by)
        result = start_now(s.runs, cmd.model_copy(update={"run_id": run_id}) if run_id else cmd)
        out.print(f"Run [bold]{result.run_id}[/] started.")
        result = drive(s.runs, result, mode, out, approver)
        finish(s.runs, result, as_json)


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
    """One run: its final report, or the approvals it is still waiting for."""
    with session(_settings(ctx), "playbook") as s:
        summary = s.store.get(run_id=run_id)
        result = s.runs.result(run_id)
        waiting = pending_cards(s.runs, result)
    decided = [c["approval_id"] for c in result.approvals if c not in waiting]
    if as_json:
        _print_json({**summary.model_dump(mode="json"), "approvals": waiting, "decided_not_carried_on": decided})
        return
    if (report := result.typed_report) is not None:
        render_report(report, console)
        return
    console.print(f"Run [bold]{run_id}[/] is {result.status}.")
    if waiting:
        console.print(approvals_table(waiting))
    if decided:
        console.print(
            f"{len(decided)} approval(s) decided and not yet carried on ({', '.join(decided)}): "
            f"`orderops runs resume {run_id}` carries the run on."
        )


@runs_app.command("resume")
def runs_resume(
    ctx: typer.Context,
    run_id: str,
    approve: ApproveOpt = "park",
    key: KeyOpt = None,
    planner: PlannerOpt = "auto",
    as_json: JsonFlag = False,
) -> None:
    """Carry on a run: execute what was decided (anywhere), finish one whose process stopped mid-way,
    and with --approve decide the approvals still pending."""
    mode = _mode(approve)
    out = err_console if as_json else console
    with session(_settings(ctx), planner) as s:
        approver = approver_for(s.actx, mode, key)
        runs, result = carry_on_here(s, run_id, mode, out, approver, announce=True)
        finish(runs, result, as_json)


def continue_after_decision(settings: Settings, run_id: str) -> tuple[RunResult, dict[str, Any] | None]:
    """Carry a run on after one of its approvals was decided (what ``orderops approvals approve``
    calls): the same continuation ``runs resume`` uses. Returns the result and, for a run that
    parks again, the view with the approvals still waiting."""
    with session(settings, "playbook") as s:
        runs, result = carry_on_here(s, run_id, "park", err_console)
        return result, parked_view(runs, result) if result.waiting else None


def _only(values: list[str]) -> dict[str, list[str]]:
    """``APPROVAL_ID=ORDER_ID`` pairs (repeatable) as approval id -> the orders to approve of it."""
    out: dict[str, list[str]] = {}
    for v in values:
        step, sep, order = v.partition("=")
        if not sep or not step.strip() or not order.strip():
            raise typer.BadParameter(f"{v!r} is not APPROVAL_ID=ORDER_ID", param_hint="--only")
        out.setdefault(step.strip(), []).append(order.strip())
    return out


def _decide_run(
    ctx: typer.Context,
    run_id: str,
    decision: Literal["approve", "reject"],
    key: str | None,
    *,
    reason: str | None = None,
    only: list[str] | None = None,
    leave_out: list[str] | None = None,
    as_json: bool = False,
) -> None:
    settings = _settings(ctx)
    who = principal_for(settings, key, role=Role.APPROVER, doing=f"deciding run {run_id}")
    out = err_console if as_json else console
    with session(settings, "playbook") as s:
        s.store.get(run_id=run_id)
        decided = decide_incident(
            s.actx.gateway,
            s.actx.db,
            run_id,
            approver=who.actor(),
            decision=decision,
            reason=reason,
            only=_only(only or []),
            leave_out=leave_out or [],
            enqueue=False,  # carried on here and now, below
        )
        out.print(
            f"Run [bold]{run_id}[/]: {decision} by {who.id} — "
            + ", ".join(f"{d['tool']} {d['status']} ({d['orders']} orders)" for d in decided.decided),
            highlight=False,
        )
        runs, result = carry_on_here(s, run_id, "park", out)
        if as_json:
            view = parked_view(runs, result) if result.waiting else (result.report or result.model_dump(mode="json"))
            _print_json({"decision": decided.model_dump(mode="json"), "run": view})
        else:
            finish(runs, result, False)


@runs_app.command("approve")
def runs_approve(
    ctx: typer.Context,
    run_id: str,
    key: KeyOpt = None,
    leave_out: Annotated[
        list[str] | None, typer.Option("--leave-out", help="Reject this step (approval id) and approve the rest.")
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="APPROVAL_ID=ORDER_ID: approve only these orders of that step (repeatable)."),
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (recorded for the steps left out).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve every pending step of a run at once (one decision per incident), as your key's
    principal; the run carries on at once and the command prints what ran."""
    _decide_run(ctx, run_id, "approve", key, reason=reason, only=only, leave_out=leave_out, as_json=as_json)


@runs_app.command("reject")
def runs_reject(
    ctx: typer.Context,
    run_id: str,
    reason: Annotated[str, typer.Option(help="Why (required).")],
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject every pending step of a run with a reason, as your key's principal; the run ends
    without them."""
    _decide_run(ctx, run_id, "reject", key, reason=reason, as_json=as_json)
