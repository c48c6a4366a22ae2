"""`orderops intake ...` and `orderops review ...`: purchase-order intake from a terminal.

``orderops intake FILE...`` stores each file (channel ``cli``) and runs it through the durable
intake graph (:mod:`graphs.intake`), then shows per document each order found, its findings and
the decision. ``orderops intake watch DIR`` does the same for files dropped into a folder (channel
``folder``): each is stored once (by content hash), then moved to ``DIR/processed/`` or, with a
``.reason.txt`` beside it, to ``DIR/quarantine/``. ``orderops review ...`` works the review queue
(:class:`intake.review.ReviewQueue`), which creates orders only through the tool gateway.

Mounted by :mod:`api.cli` (``app.add_typer(intake_app, name="intake")`` and
``app.add_typer(review_app, name="review")``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from api.auth import Role
from api.bootstrap import AppContext, make_document_store, open_context
from api.cli_keys import KeyOpt, principal_for
from api.folder_watch import WatchState, scan_folder
from core.errors import ValidationFailed
from core.settings import Settings
from guardrails.calls import Actor
from intake.classify import sniff
from intake.documents import StoredDocument
from intake.pipeline import IntakeDeps, IntakeResult, ParsedDocument
from intake.review import ReviewItem, ReviewStatus
from intake.sandbox import preload_for, warm_up
from intake.validate import ValidatedOrder

if TYPE_CHECKING:
    from graphs.intake import IntakeGraph

__all__ = [
    "IntakeSession",
    "document_report",
    "intake_app",
    "intake_deps",
    "intake_session",
    "render_document",
    "review_app",
    "watch_once",
]

console = Console(width=None if sys.stdout.isatty() else 160)

_SNIFF_BYTES = 1 << 16
"""What the format is told from before the session opens (the store sniffs the whole file again)."""

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class _FilesByDefault(TyperGroup):
    """``orderops intake FILE...`` runs the ``files`` command; ``orderops intake watch DIR`` the watcher."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["files", *args]
        return super().parse_args(ctx, args)


intake_app = typer.Typer(
    cls=_FilesByDefault,
    help="Purchase-order intake: `orderops intake FILE...` or `orderops intake watch DIR`.",
    no_args_is_help=True,
)
review_app = typer.Typer(help="The intake review queue: list, show, correct, approve, reject.", no_args_is_help=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


# --- wiring -----------------------------------------------------------------------------------------


def intake_deps(actx: AppContext) -> IntakeDeps:
    """The pipeline's dependencies for ``actx``: documents under ``<home>/documents``, its gateway."""
    store = make_document_store(actx)
    return IntakeDeps(db=actx.db, clock=actx.clock, documents=store, gateway=actx.gateway,
                      risk_hold=actx.settings.order_risk_hold)  # fmt: skip


@dataclass(frozen=True)
class IntakeSession:
    actx: AppContext
    deps: IntakeDeps
    graph: IntakeGraph

    def ingest(self, data: bytes, *, channel: str, filename: str | None = None,
               sender: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Store ``data`` (before anything parses it), run the graph, and report what became of it."""
        doc = self.deps.documents.receive(data, channel=channel, filename=filename, sender=sender)
        result = self.graph.run(doc.id)
        state = self.graph.state(doc.id)
        return document_report(doc, result, state.get("parsed"), state.get("validated"))


@contextmanager
def intake_session(settings: Settings) -> Iterator[IntakeSession]:
    # LangGraph is imported here, not with this module, so `orderops intake FILE` can start the
    # parse sandbox's fork server first and let it start up while these imports run.
    from graphs.intake import open_intake_graph

    actx = open_context(settings)
    try:
        deps = intake_deps(actx)
        with open_intake_graph(deps) as graph:
            yield IntakeSession(actx=actx, deps=deps, graph=graph)
    finally:
        actx.close()


# --- what is shown ----------------------------------------------------------------------------------


def _source(src: Any) -> dict[str, Any] | None:
    if src is None:
        return None
    out = src.model_dump(mode="json", exclude_none=True)
    return out if isinstance(out, dict) else None


def _order_view(v: ValidatedOrder) -> dict[str, Any]:
    po = v.purchase_order
    st = po.ship_to
    lines = []
    for k, (stated, vl) in enumerate(zip(po.lines, v.lines, strict=False)):
        lines.append({
            "line": stated.line_number or str(k + 1),
            "product_ids": [{"qualifier": p.qualifier, "value": p.value} for p in stated.product_ids],
            "description": stated.description,
            "quantity": None if stated.quantity is None else str(stated.quantity),
            "unit": stated.unit,
            "unit_price": None if stated.unit_price is None else str(stated.unit_price),
            "sku": vl.sku,
            "base_quantity": vl.quantity,
            "uom": vl.uom,
            "order_unit_price": None if vl.unit_price is None else str(vl.unit_price),
            "contract_price": None if vl.contract_price is None else str(vl.contract_price),
        })  # fmt: skip
    return {
        "po_index": v.po_index,
        "po_number": v.po_number or po.po_number,
        "po_date": None if po.po_date is None else po.po_date.isoformat(),
        "customer_id": v.customer_id,
        "customer_name": v.customer_name,
        "ship_to_id": v.ship_to_id,
        "ship_to": None if st is None else st.model_dump(mode="json", exclude_none=True),
        "lines": lines,
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "message": f.message,
                "field": f.field,
                "blocking": f.blocking,
                "source": _source(f.source),
            }
            for f in v.findings
        ],
    }


def document_report(
    doc: StoredDocument,
    result: IntakeResult,
    parsed: dict[str, Any] | None = None,
    validated: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One document as ``orderops intake --json`` prints it: its orders, findings and decisions."""
    orders: list[dict[str, Any]] = []
    vs = [ValidatedOrder.model_validate(v) for v in validated or []]
    by_index = {o.po_index: o for o in result.outcomes}
    for v in vs:
        view = _order_view(v)
        out = by_index.get(v.po_index)
        if out is not None:
            view["decision"] = {"kind": out.decision, "status": out.status, "order_id": out.order_id,
                                "review_item_id": out.review_item_id, "approval_id": out.approval_id,
                                "duplicate_of": out.duplicate_of, "revision_of": out.revision_of,
                                "reasons": out.reasons}  # fmt: skip
        orders.append(view)
    if not vs:  # no graph state (processed elsewhere): the outcomes are what there is
        orders = [{"po_index": o.po_index, "po_number": o.po_number, "customer_id": o.customer_id, "lines": [],
                   "findings": [], "decision": {"kind": o.decision, "status": o.status, "order_id": o.order_id,
                                                "review_item_id": o.review_item_id, "reasons": o.reasons}}
                  for o in result.outcomes]  # fmt: skip
    pd = ParsedDocument.model_validate(parsed) if parsed else None
    return {
        "document_id": doc.id,
        "file": doc.filename,
        "format": result.format,
        "channel": result.channel,
        "sha256": doc.sha256,
        "received_before": doc.duplicate,
        "status": result.status,
        "reason": result.reason,
        "findings": [
            {"code": f.code, "severity": str(f.severity), "message": f.message, "source": _source(f.source)}
            for f in (pd.findings if pd else result.findings)
        ],
        "orders": orders,
        "acks": [{"kind": a.kind, "recipient": a.recipient, "subject": a.subject, "body": a.body} for a in result.acks],
    }


def decision_text(order: dict[str, Any]) -> str:
    d = order.get("decision") or {}
    status = d.get("status")
    if status == "created":
        return f"[green]auto-created[/] order {d.get('order_id')}"
    if status == "duplicate":
        return f"[yellow]duplicate[/] of document {d.get('duplicate_of')}"
    if status in ("queued", "awaiting_approval"):
        why = "; ".join(d.get("reasons") or [])
        return f"[yellow]{status}[/] review item {d.get('review_item_id')}: {why}"
    return str(status)


def render_document(report: dict[str, Any], out: Console) -> None:
    name = report.get("file") or report["document_id"]
    out.print(f"[bold]{name}[/] ({report['format']}, {report['channel']}) -> {report['status']}"
              + (" [dim](received before)[/]" if report.get("received_before") else ""))  # fmt: skip
    if report["status"] != "processed":
        out.print(f"  [red]{report['status']}[/]: {report.get('reason')}")
        return
    for o in report["orders"]:
        ship = o.get("ship_to") or {}
        out.print(f"  PO {o.get('po_number')}  customer {o.get('customer_id')} ({o.get('customer_name') or '?'})  "
                  f"ship-to {o.get('ship_to_id') or ship.get('name') or '?'}")  # fmt: skip
        if o["lines"]:
            table = Table(show_edge=False)
            for col in ("line", "product ids", "qty", "unit", "price", "sku", "base qty", "order price"):
                table.add_column(col)
            for ln in o["lines"]:
                ids = ", ".join(f"{p['qualifier']}:{p['value']}" for p in ln["product_ids"])
                table.add_row(ln["line"], ids, str(ln["quantity"]), str(ln["unit"] or ""), str(ln["unit_price"] or ""),
                              str(ln["sku"] or "?"), str(ln["base_quantity"] or ""),
                              str(ln["order_unit_price"] or ""))  # fmt: skip
            out.print(table)
        for f in o["findings"]:
            src = f.get("source") or {}
            where = src.get("path") or (f"page {src['page']}" if src.get("page") else None) or src.get("span")
            out.print(f"    [{'red' if f['blocking'] else 'dim'}]{f['severity']}[/] {f['code']}: {f['message']}"
                      + (f" [dim]@ {where}[/]" if where else ""))  # fmt: skip
        out.print(f"  -> {decision_text(o)}")


# --- commands ---------------------------------------------------------------------------------------


@intake_app.command("files")
def intake_files(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Documents to ingest (X12, EDIFACT, PDF, e-mail, CSV, XLSX).")],
    channel: Annotated[str, typer.Option(help="The channel the documents are recorded under.")] = "cli",
    sender: Annotated[
        str | None, typer.Option(help="Who sent them (an e-mail address identifies the customer).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ingest documents and show each order found, its findings and the decision."""
    for f in files:
        if not f.is_file():
            raise ValidationFailed(f"{f} is not a readable file", path=str(f))
    # The parse sandbox's fork server preloads only the parsers these files need (not the PDF and
    # spreadsheet libraries for an X12 file); the parsing itself stays in its capped child.
    preload_for(sniff(f.read_bytes()[:_SNIFF_BYTES], filename=f.name) for f in files)
    settings = _settings(ctx)
    if settings.intake_parse_isolated:
        warm_up()  # starts now, beside the graph's imports, instead of after them
    reports = []
    with intake_session(settings) as sess:
        for f in files:
            report = sess.ingest(f.read_bytes(), channel=channel, filename=f.name, sender=sender)
            reports.append(report)
            if not as_json:
                render_document(report, console)
    if as_json:
        _print_json(reports)


def watch_once(sess: IntakeSession, folder: Path, state: WatchState | None = None) -> list[dict[str, Any]]:
    """Ingest every regular file in ``folder`` (channel ``folder``), then move it to ``processed/`` or
    to ``quarantine/`` with a ``.reason.txt``. A file seen before (same bytes) is not processed twice;
    links are never followed and one failing file never stops the others (:mod:`api.folder_watch`)."""

    def ingest(data: bytes, name: str) -> dict[str, Any]:
        return sess.ingest(data, channel="folder", filename=name)

    return scan_folder(folder, ingest, max_bytes=sess.deps.documents.limits.max_bytes, state=state)


def _render_watched(r: dict[str, Any]) -> None:
    if "document_id" in r:
        render_document(r, console)
    else:  # not ingested: a link, not a regular file, oversized, unreadable, or intake failed
        console.print(f"[bold]{r['file']}[/] -> {r['status']}: {r.get('reason')}")
    if r.get("moved_to"):
        console.print(f"  moved to {r['moved_to']}")
    else:
        console.print(f"  [red]left in the folder[/]: {r.get('move_error')} (reported once)")


@intake_app.command("watch")
def intake_watch(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The folder to watch.")],
    once: Annotated[bool, typer.Option("--once", help="Process what is there now, then stop.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between scans.")] = 2.0,
    as_json: JsonFlag = False,
) -> None:
    """Watch a folder: new files are ingested once, then moved to processed/ or quarantine/."""
    if not folder.is_dir():
        raise ValidationFailed(f"{folder} is not a directory", path=str(folder))
    if interval <= 0:
        raise ValidationFailed("--interval must be positive")
    state = WatchState()
    with intake_session(_settings(ctx)) as sess:
        try:
            while True:
                reports = watch_once(sess, folder, state)
                for r in reports:
                    if as_json:
                        sys.stdout.write(json.dumps(r, default=str) + "\n")
                    else:
                        _render_watched(r)
                if once:
                    return
                time.sleep(interval)
        except KeyboardInterrupt:
            return


# --- review -----------------------------------------------------------------------------------------


def _reviewer(ctx: typer.Context, key: str | None, doing: str) -> Actor:
    """The reviewer is the person behind an operator's API key (`--key` or ORDEROPS_API_KEY), never
    a name typed on the command line: corrections and approvals are audited under it."""
    return principal_for(_settings(ctx), key, role=Role.OPERATOR, doing=doing).actor()


def _item_json(item: ReviewItem) -> dict[str, Any]:
    return item.model_dump(mode="json")


def _render_item(item: ReviewItem) -> None:
    console.print(f"[bold]Review item {item.id}[/] ({item.kind}, {item.status}) document {item.document_id} "
                  f"PO {item.po_number} customer {item.customer_id}")  # fmt: skip
    for r in item.reasons:
        console.print(f"  reason: {r}")
    view = _order_view(item.validated)
    view["decision"] = {"status": item.status, "order_id": item.order_id, "review_item_id": item.id,
                        "reasons": item.reasons}  # fmt: skip
    render_document({"document_id": item.document_id, "file": None, "format": item.extracted.document_type,
                     "channel": item.facts.channel, "status": "processed", "orders": [view]}, console)  # fmt: skip
    if item.corrections:
        console.print(f"  corrections: {item.corrections}")
    p = item.validated.new_customer
    if p is not None and item.validated.customer_id is None:
        console.print(f"[bold]New customer[/] {p.customer_id}: {p.name or '(no name)'}, account {p.account_number}, "
                      f"EDI id {p.edi_id or '-'}, GLN {p.gln or '-'}, e-mail {p.email or '-'} "
                      f"(domain {p.email_domain or '-'})")  # fmt: skip
        if p.ship_to is not None:
            s = p.ship_to
            console.print(f"  ship-to {s.street}, {s.city}, {s.state} {s.postal_code} ({s.located})")
        for x in p.parts:
            console.print(f"  part {x.customer_part} -> {x.sku} ({x.method}, score {x.score:.2f})")
        for line in [*p.evidence, *(f"[yellow]{w}[/]" for w in p.warnings)]:
            console.print(f"  {line}")
        if p.missing:
            console.print(f"  [red]still needed:[/] {', '.join(p.missing)}")
        console.print(f"  create it: orderops review customer {item.id} [FIELD=VALUE ...]")


@contextmanager
def _queue(ctx: typer.Context) -> Iterator[IntakeDeps]:
    actx = open_context(_settings(ctx))
    try:
        yield intake_deps(actx)
    finally:
        actx.close()


@review_app.command("list")
def review_list(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, awaiting_approval, approved, rejected")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Review items, oldest first."""
    wanted = review_status(status)
    with _queue(ctx) as deps:
        items = deps.review_queue().list(wanted)
    if as_json:
        _print_json([_item_json(i) for i in items])
        return
    table = Table(title="Review queue")
    for col in ("id", "kind", "status", "customer", "PO", "reasons"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(i.id, i.kind, i.status, i.customer_id or "?", i.po_number or "?", "; ".join(i.reasons))
    console.print(table)


@review_app.command("show")
def review_show(ctx: typer.Context, item_id: str, as_json: JsonFlag = False) -> None:
    """One review item: the order as extracted, its findings with source pointers, the reasons."""
    with _queue(ctx) as deps:
        item = deps.review_queue().get(item_id)
    if as_json:
        _print_json(_item_json(item))
    else:
        _render_item(item)


def _parse_assignments(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(f"{p!r}: corrections are FIELD=VALUE, e.g. lines[0].sku=SKU-00012")
        out[key.strip()] = value
    return out


@review_app.command("correct")
def review_correct(
    ctx: typer.Context,
    item_id: str,
    corrections: Annotated[list[str], typer.Argument(help="FIELD=VALUE, e.g. lines[0].sku=SKU-00012")],
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Correct fields of an item; the order is validated again and part/unit mappings are learned."""
    values = _parse_assignments(corrections)
    reviewer = _reviewer(ctx, key, "correcting review items")
    with _queue(ctx) as deps:
        item = deps.review_queue().correct(item_id, reviewer, values)
    if as_json:
        _print_json(_item_json(item))
    else:
        _render_item(item)


@review_app.command("approve")
def review_approve(ctx: typer.Context, item_id: str, key: KeyOpt = None, as_json: JsonFlag = False) -> None:
    """Create the item's order through the gateway, as you (policy, approvals and audit apply)."""
    reviewer = _reviewer(ctx, key, "approving review items")
    with _queue(ctx) as deps:
        item = deps.review_queue().approve(item_id, reviewer)
    if as_json:
        _print_json(_item_json(item))
    elif item.status == "approved":
        console.print(f"[green]approved[/]: order {item.order_id} created")
    else:
        console.print(f"[yellow]{item.status}[/]: policy wants another approver (approval {item.approval_id})")


@review_app.command("customer")
def review_customer(
    ctx: typer.Context,
    item_id: str,
    edits: Annotated[
        list[str] | None,
        typer.Argument(help="FIELD=VALUE changes first, e.g. name=Acme, ship_to.state=TX, parts.THEIR-1=SKU-00012"),
    ] = None,
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a new buyer's customer, ship-to and part cross-references (one approved step through the
    gateway), then validate its PO again: a clean PO becomes an order."""
    values = _parse_assignments(edits or [])
    reviewer = _reviewer(ctx, key, "creating customers from review items")
    with _queue(ctx) as deps:
        item = deps.review_queue().create_customer(item_id, reviewer, edits=values)
    if as_json:
        _print_json(_item_json(item))
    elif item.status == "awaiting_approval":
        console.print(f"[yellow]awaiting_approval[/]: an approver must confirm (approval {item.approval_id})")
    elif item.status == "approved":
        console.print(f"[green]customer {item.customer_id} created[/]; order {item.order_id} created")
    else:
        console.print(f"[green]customer {item.customer_id} created[/]; the PO still needs review: "
                      + "; ".join(item.reasons))  # fmt: skip


@review_app.command("reject")
def review_reject(
    ctx: typer.Context,
    item_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (goes to the customer's acknowledgment).")],
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Close the item without an order."""
    reviewer = _reviewer(ctx, key, "rejecting review items")
    with _queue(ctx) as deps:
        item = deps.review_queue().reject(item_id, reviewer, reason)
    if as_json:
        _print_json(_item_json(item))
    else:
        console.print(f"[red]rejected[/]: {item.id} ({reason})")


def review_status(value: str | None) -> ReviewStatus | None:
    """``--status`` checked against the queue's statuses."""
    if value is None:
        return None
    if value not in ("open", "awaiting_approval", "approved", "rejected"):
        raise ValidationFailed(f"unknown status {value!r}")
    return value  # type: ignore[return-value]
