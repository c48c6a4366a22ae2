"""`orderops audit ...` and `orderops approvals ...`: the trail and the approval queue from a terminal.

Approving from the CLI goes through the same gateway checks as Slack or the API: the approver's
roles are given explicitly and checked; nobody approves their own request.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from guardrails.audit import AuditRecord
from guardrails.calls import Actor

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
approvals_app = typer.Typer(help="Approval requests waiting for a person.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _cli() -> Any:
    # imported late: api.cli imports this module to mount the sub-apps
    from api import cli

    return cli


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

    cli = _cli()
    with cli._context(cli._settings(ctx)) as actx:
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

    cli = _cli()
    with cli._context(cli._settings(ctx)) as actx:
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
    cli = _cli()
    with cli._context(cli._settings(ctx)) as actx:
        n = actx.guard.audit.export_jsonl(out if out else sys.stdout, run_id=run)
    if out:
        cli.err_console.print(f"wrote {n} events to {out}")


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option(help="Only this run's events.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The latest events of the trail."""
    cli = _cli()
    with cli._context(cli._settings(ctx)) as actx:
        records = actx.guard.audit.list(run_id=run)[-limit:]
    if as_json:
        cli.print_json(records)
    else:
        cli.console.print(audit_table(records))


@approvals_app.command("list")
def approvals_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Pending approval requests, oldest first."""
    cli = _cli()
    with cli._context(cli._settings(ctx)) as actx:
        pending = actx.guard.approvals.list_pending()
    if as_json:
        cli.print_json(pending)
        return
    table = Table(title=f"Pending approvals ({len(pending)})")
    for col in ("id", "tool", "items", "requested by", "roles", "expires", "summary"):
        table.add_column(col, overflow="fold")
    for r in pending:
        summary = r.preview.get("summary", "") if isinstance(r.preview, dict) else ""
        table.add_row(
            r.id,
            r.tool,
            str(len(r.items)),
            r.requester_id,
            ", ".join(r.required_roles),
            r.expires_at.strftime("%Y-%m-%d %H:%M"),
            str(summary),
        )
    cli.console.print(table)


def _decide(
    ctx: typer.Context,
    approval_id: str,
    decision: str,
    user: str,
    roles: list[str],
    reason: str | None,
    subset: list[str] | None,
) -> None:
    cli = _cli()
    approver = Actor(kind="user", id=user, roles=frozenset(roles))
    with cli._context(cli._settings(ctx)) as actx:
        req = actx.gateway.decide(
            approval_id,
            approver=approver,
            decision=decision,  # type: ignore[arg-type]
            reason=reason,
            subset=subset,
        )
    cli.console.print(f"{approval_id}: {req.status.value}")


@approvals_app.command("approve")
def approvals_approve(
    ctx: typer.Context,
    approval_id: str,
    user: Annotated[str, typer.Option("--as", help="Your user id.")],
    role: Annotated[list[str], typer.Option(help="Your roles (repeatable).")],
    only: Annotated[list[str] | None, typer.Option(help="Approve only these items (repeatable).")] = None,
) -> None:
    """Approve a request (optionally only a subset of its orders)."""
    _decide(ctx, approval_id, "approve", user, role, None, only or None)


@approvals_app.command("reject")
def approvals_reject(
    ctx: typer.Context,
    approval_id: str,
    user: Annotated[str, typer.Option("--as", help="Your user id.")],
    role: Annotated[list[str], typer.Option(help="Your roles (repeatable).")],
    reason: Annotated[str, typer.Option(help="Why (required).")],
) -> None:
    """Reject a request with a reason."""
    _decide(ctx, approval_id, "reject", user, role, reason, None)
