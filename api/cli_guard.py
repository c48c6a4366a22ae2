"""`orderops audit ...` and `orderops approvals ...`: the trail and the approval queue from a terminal.

Approving from the CLI goes through the same gateway checks as Slack or the API, as the principal
of an API key (``--key`` or ``ORDEROPS_API_KEY``), never as a user id typed on the command line:
the key's roles are checked, and nobody approves their own request. Deciding carries the run on at
once (the continuation ``orderops runs resume`` uses).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api import cli_common as cli
from api.auth import Role
from api.cli_keys import KeyOpt, principal_for
from core.errors import NotFound, ValidationFailed
from core.settings import Settings
from guardrails.approvals import ApprovalRequest
from guardrails.audit import AuditRecord
from services.approvals import carry_on, decide_step, is_direct

if TYPE_CHECKING:
    from graphs.report import RunReport

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
approvals_app = typer.Typer(help="Approval requests waiting for a person.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def audit_table(records: list[AuditRecord], title: str = "Audit trail") -> Table:
    table = Table(title=title)
    for col in ("seq", "at", "event", "tool", "actor", "approver", "detail", "hash"):
        table.add_column(col, overflow="fold")
    for r in records:
        detail = "; ".join(r.reasons)[:90]
        if not detail and isinstance(r.result, dict):
            res = r.result
            if isinstance(res.get("done"), list):
                detail = f"done {len(res['done'])}, skipped {len(res.get('skipped') or {})}"
                detail += " (replayed)" if res.get("replayed") else ""
            else:
                detail = ", ".join(f"{k}={v}" for k, v in list(res.items())[:3] if not isinstance(v, list | dict))
        table.add_row(
            str(r.seq),
            r.at.strftime("%H:%M:%S"),
            r.event_type,
            r.tool or "",
            r.actor or "",
            r.approver or "",
            detail,
            r.row_hash[:10],
        )
    return table


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check the hash chain and the signed checkpoints: an edited, deleted, inserted or reordered row, a
    cut-off tail, a re-hashed chain, a wiped trail or a forged checkpoint is reported (exit 1)."""
    from guardrails.anchor import AuditAnchor  # local: this file's imports belong to the whole CLI

    with cli.app_context(cli.settings_of(ctx)) as actx:
        audit = actx.guard.audit
        report = audit.verify(anchor=audit.anchor or AuditAnchor.from_settings(actx.settings))
    if as_json:
        cli.print_json(report)
    elif report.ok:
        cli.console.print(
            f"[green]audit trail intact[/]: {report.rows_checked} rows, head {report.head_seq} "
            f"{report.head_hash[:16]}; {report.anchors_checked} signed checkpoints, "
            f"last at seq {report.last_anchored_seq} ({report.anchor_sink})"
        )
    else:
        cli.console.print(
            f"[red]audit trail TAMPERED[/] at seq {report.first_bad_seq} ({report.kind}): {report.problem}"
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Verify the trail, then sign its head into the anchor log outside the database (run it after
    enabling anchoring, and from a schedule)."""
    from guardrails.anchor import AuditAnchor

    with cli.app_context(cli.settings_of(ctx)) as actx:
        audit = actx.guard.audit
        anchor = audit.anchor or AuditAnchor.from_settings(actx.settings)
        checkpoint = audit.checkpoint(anchor=anchor)
    if as_json:
        cli.print_json(checkpoint)
    else:
        cli.console.print(
            f"[green]anchored[/] trail {checkpoint.trail} at seq {checkpoint.seq} {checkpoint.head_hash[:16]} "
            f"(key {checkpoint.key_id}) in {anchor.sink.name}"
        )


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
    run: Annotated[str | None, typer.Option(help="Only this run's events.")] = None,
) -> None:
    """Write the trail as JSON lines (personal data already redacted; hashes included)."""
    settings = cli.settings_of(ctx)
    if out is None:
        with cli.app_context(settings) as actx:
            actx.guard.audit.export_jsonl(sys.stdout, run_id=run)
        return
    try:  # before reading anything: a path that cannot be written is the caller's to fix
        fh = out.open("w", encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"cannot write {out}: {exc.strerror}", path=str(out)) from exc
    with fh, cli.app_context(settings) as actx:
        n = actx.guard.audit.export_jsonl(fh, run_id=run)
    cli.err_console.print(f"wrote {n} events to {out}")


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option(help="Only this run's events.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The latest events of the trail."""
    with cli.app_context(cli.settings_of(ctx)) as actx:
        records = actx.guard.audit.list(run_id=run)[-limit:]
    if as_json:
        cli.print_json(records)
    else:
        cli.console.print(audit_table(records))


def preview_numbers(req: ApprovalRequest) -> dict[str, Any]:
    """What an approver weighs, from the request's stored preview: orders that change, the cost
    change and late orders before and after."""
    p = req.preview if isinstance(req.preview, dict) else {}
    raw = p.get("items")
    items: list[Any] = raw if isinstance(raw, list) else []
    changed = len([i for i in items if isinstance(i, dict) and i.get("ok")])
    return {
        "summary": p.get("summary", ""),
        "orders": changed if items else len(req.items),
        "left_out": len(items) - changed,
        "cost_delta": p.get("cost_delta"),
        "late_before": p.get("late_before"),
        "late_after": p.get("late_after"),
    }


@approvals_app.command("list")
def approvals_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Pending approval requests, oldest first, with the numbers of their previews."""
    with cli.app_context(cli.settings_of(ctx)) as actx:
        pending = actx.guard.approvals.list_pending()
    if as_json:
        cli.print_json([{**cli.to_jsonable(r), "numbers": preview_numbers(r)} for r in pending])
        return
    table = Table(title=f"Pending approvals ({len(pending)})")
    for col in (
        "id",
        "run",
        "tool",
        "orders",
        "cost change",
        "late before -> after",
        "requested by",
        "roles",
        "expires",
    ):
        table.add_column(col, overflow="fold")
    for r in pending:
        n = preview_numbers(r)
        table.add_row(
            r.id,
            r.run_id or "",
            r.tool,
            str(n["orders"]),
            str(n["cost_delta"] if n["cost_delta"] is not None else ""),
            f"{n['late_before']} -> {n['late_after']}" if n["late_before"] is not None else "",
            r.requester_id,
            ", ".join(r.required_roles),
            r.expires_at.strftime("%Y-%m-%d %H:%M"),
        )
    cli.console.print(table)
    for r in pending:
        summary = preview_numbers(r)["summary"]
        if summary:
            cli.console.print(f"{r.id}: {summary}", highlight=False, markup=False)


def _decide(
    ctx: typer.Context,
    approval_id: str,
    decision: str,
    key: str | None,
    reason: str | None,
    subset: list[str] | None,
    as_json: bool,
) -> None:
    from api.cli_runs import render_parked, render_report

    settings = cli.settings_of(ctx)
    who = principal_for(settings, key, role=Role.APPROVER, doing=f"{decision} approval {approval_id}")
    with cli.app_context(settings) as actx:
        req = decide_step(
            actx.gateway,
            actx.db,
            approval_id,
            approver=who.actor(),
            decision="reject" if decision == "reject" else "approve",
            reason=reason,
            subset=subset,
            enqueue=False,  # carried on here and now, below
        ).request
        # An MCP client's call has no run to carry it on: carried out here, once, through the gateway.
        direct = carry_on(actx.gateway, actx.db, req) if is_direct(req) else None
    out: dict[str, Any] = {"approval_id": approval_id, "status": req.status.value, "approver": who.id}
    parked: dict[str, Any] | None = None
    report: RunReport | None = None
    if direct is not None:
        out["executed"] = direct
        if as_json:
            cli.print_json(out)
        else:
            cli.console.print(f"{approval_id}: {req.status.value} by {who.id}; {direct}")
        return
    if req.run_id is not None and req.status.value != "pending":  # its run carries on, here and now
        parked, report = _carry_run_on(settings, req.run_id, out)
    if as_json:
        carried = parked or (report.as_dict() if report is not None else None) or out.get("run_result")
        cli.print_json({**{k: v for k, v in out.items() if k != "run_result"}, "run_report": carried})
        return
    cli.console.print(f"{approval_id}: {req.status.value} by {who.id}")
    if "run" not in out:
        if req.status.value == "pending":
            cli.console.print("Still pending: it needs another approver's decision.")
        return
    if parked is not None:
        render_parked(parked, cli.console)
    elif report is not None:
        render_report(report, cli.console)
    else:
        cli.console.print(f"Run {out['run']['run_id']} is {out['run']['status']}.")


def _carry_run_on(
    settings: Settings, run_id: str, out: dict[str, Any]
) -> tuple[dict[str, Any] | None, RunReport | None]:
    """Carry the decided request's run on here and now: where it parked (the parked view) or its
    typed report, with the run's id and status in ``out`` (and, for a run neither parked nor
    finished, its raw result in ``out["run_result"]``). Nothing when the call was proposed outside
    an exception run (e.g. straight through the API)."""
    from api.cli_runs import continue_after_decision

    try:
        result, parked = continue_after_decision(settings, run_id)
    except NotFound:
        return None, None
    if result is None:
        return None, None
    out["run"] = {"run_id": result.run_id, "status": result.status}
    report = None if parked else result.typed_report
    if not parked and report is None:
        out["run_result"] = result.model_dump(mode="json")
    return parked or None, report


@approvals_app.command("approve")
def approvals_approve(
    ctx: typer.Context,
    approval_id: str,
    key: KeyOpt = None,
    only: Annotated[list[str] | None, typer.Option(help="Approve only these items (repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Approve a request as your key's principal (optionally only a subset of its orders); its run
    carries on at once and the command prints what ran."""
    _decide(ctx, approval_id, "approve", key, None, only or None, as_json)


@approvals_app.command("reject")
def approvals_reject(
    ctx: typer.Context,
    approval_id: str,
    reason: Annotated[str, typer.Option(help="Why (required).")],
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject a request with a reason, as your key's principal; its run carries on without it."""
    _decide(ctx, approval_id, "reject", key, reason, None, as_json)


@approvals_app.command("tick")
def approvals_tick(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Chase approvals by e-mail once (run it every minute from cron or a scheduler): mail new
    requests, remind, escalate, expire overdue requests (their runs carry on), deliver the outbox."""
    from services.approval_mail import tick

    settings = cli.settings_of(ctx)
    with cli.app_context(settings) as actx:
        report = tick(actx.db, actx.gateway, settings, actx.clock)
    if as_json:
        cli.print_json(report)
        return
    for what in ("mailed", "reminded", "escalated", "expired", "closed"):
        ids: list[str] = getattr(report, what)
        if ids:
            cli.console.print(f"{what}: {', '.join(ids)}", highlight=False)
    cli.console.print(
        f"e-mails: {report.sent} sent, {report.failed} failed ({report.dead} now dead), {report.queued} waiting"
        + ("" if settings.smtp_host else " (no SMTP server configured: set ORDEROPS_SMTP_HOST)"),
        highlight=False,
    )


@approvals_app.command("outbox")
def approvals_outbox(
    ctx: typer.Context,
    dead: Annotated[bool, typer.Option("--dead", help="Only the dead letters (gave up after retries).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Approval e-mails and their delivery: status, attempts, the last error."""
    from services.approval_mail import ApprovalMail

    settings = cli.settings_of(ctx)
    with cli.app_context(settings) as actx:
        rows = ApprovalMail.of(actx.db, actx.gateway, settings, actx.clock).outbox(status="dead" if dead else None)
    if as_json:
        cli.print_json(rows)
        return
    table = Table("to", "subject", "status", "attempts", "last error")
    for r in rows:
        table.add_row(r["to"], r["subject"], r["status"], str(r["attempts"]), (r["last_error"] or "")[:60])
    cli.console.print(table)
