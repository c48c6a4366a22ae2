"""The operations console's pages and actions, under ``/console``.

Server-rendered (Jinja2) with htmx for in-place swaps. A person signs in with an API key
(:mod:`api.console.session`); every page checks the same roles as the HTTP API, and every decision
goes through :class:`tools.gateway.ToolGateway` exactly as the API's and Slack's do — so the console
cannot do what the person's role does not allow (a viewer cannot decide, nobody approves their own
request, a stale card is refused).

What this module must never do: change anything except through the gateway, or accept a POST
without a valid CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response as StarletteResponse

from api.auth import Principal
from api.bootstrap import AppContext
from api.console import charts, session, views
from api.console import evals as eval_pages
from api.console import intake as intake_pages
from api.console import pictures as picture_pages
from api.console.pages import (
    HERE,
    LoginRequired,
    actx_of,
    can_audit,
    can_decide,
    keys_of,
    one,
    post_form,
    render,
    signer_of,
    user_of,
)
from api.inputs import MAX_INT32
from core.errors import NotFound, OrderOpsError, PolicyDenied, ValidationFailed
from graphs.runs import RUN_STATUSES
from guardrails.approvals import ApprovalRequest, ApprovalStatus
from guardrails.audit import EventType
from services.approvals import carry_on, decide_incident, decide_step, incident_card
from tools.gateway import RunLedger

ContinueRun = Callable[[AppContext, ApprovalRequest], str]
"""Carry a run on after one of its approvals was decided; returns a line for the person."""


def enqueue_continue_job(actx: AppContext, req: ApprovalRequest) -> str:
    """The default: queue the runs worker's ``exception_run.continue`` job, as the HTTP API and
    Slack do (keyed by the decision, so a repeated click adds no second job); a call an MCP client
    proposed outside any run is carried out now (:func:`services.approvals.carry_on`)."""
    return carry_on(actx.gateway, actx.db, req)


router = APIRouter(prefix="/console", include_in_schema=False)


def install(app: FastAPI, *, continue_run: ContinueRun = enqueue_continue_job) -> None:
    """Mount the console (pages, static files, the sign-in redirect) on ``app``.

    ``continue_run`` is called when a decision ends an approval of a run (default: queue the runs
    worker's continue job). The intake review pages reach the intake stores through
    ``app.state.console_intake`` (see :mod:`api.console.intake`); tests point it elsewhere."""
    actx = app.state.actx
    app.state.console_signer = session.SessionSigner(
        session.console_secret(actx.settings, actx.db), session.SessionStore(actx.db)
    )
    app.state.console_continue = continue_run
    app.state.console_extras = extras = {}
    app.include_router(router)
    app.state.console_intake = intake_pages.default_intake
    app.include_router(intake_pages.router)
    app.include_router(eval_pages.router)
    app.include_router(picture_pages.router)
    extras["intake"] = extras["evals"] = True
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")

    async def to_login(request: Request, exc: Exception) -> StarletteResponse:
        target = "/console/login?next=" + quote(request.url.path)
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    app.add_exception_handler(LoginRequired, to_login)


# --- sign-in ----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(request: Request) -> Response:
    user_of(request)
    return RedirectResponse("/console/approvals", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/console/approvals") -> HTMLResponse:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await session.read_form(request)
    target = _safe_next(one(form, "next"))
    if not session.csrf_ok(request, form):
        return render(
            request, "login.html", {"next": target, "error": "The form expired; please try again."}, status=400
        )
    principal = keys_of(request).authenticate(one(form, "api_key"))
    if principal is None:
        # Never echo the key back, even into the form.
        return render(request, "login.html", {"next": target, "error": "That API key is not valid."}, status=401)
    response = RedirectResponse(target, status_code=303)
    session.set_cookie(
        request, response, session.SESSION_COOKIE, signer_of(request).sign(principal), max_age=session.SESSION_TTL_S
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await post_form(request)
    # Ended on the server, not only forgotten by this browser: a copy of the cookie is refused too.
    signer_of(request).end(request.cookies.get(session.SESSION_COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(session.SESSION_COOKIE, path="/console")
    return response


def _safe_next(value: str) -> str:
    """Only console paths: a sign-in must never redirect to another site."""
    return value if value.startswith("/console/") and not value.startswith("/console//") else "/console/approvals"


# --- approvals --------------------------------------------------------------------------------------


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    cards = [_card(actx, r) for r in actx.guard.approvals.list_pending()]
    return render(request, "approvals.html", {"user": user, "cards": cards, "nodes": _node_ids(actx)})


@router.get("/approvals/{approval_id}", response_class=HTMLResponse)
def approval_page(request: Request, approval_id: str) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    try:
        req = actx.guard.approvals.get(approval_id)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return render(request, "approval.html", {"user": user, "card": _card(actx, req), "nodes": _node_ids(actx)})


@router.post("/approvals/{approval_id}/match", response_class=HTMLResponse)
async def approval_match(request: Request, approval_id: str) -> HTMLResponse:
    """How many covered orders a subset filter picks (nothing is decided)."""
    user = user_of(request)
    actx = actx_of(request)
    try:
        form = await post_form(request)
        card = _card(actx, actx.guard.approvals.get(approval_id))
        chosen = card.subset(views.SubsetFilter.from_form(form))
        text = f"{len(chosen)} of {len(card.req.items)} orders match"
        ok = True
    except OrderOpsError as exc:
        text, ok = exc.message, False
    return render(request, "_match.html", {"user": user, "text": text, "ok": ok})


@router.post("/approvals/{approval_id}/decide", response_class=HTMLResponse)
async def approval_decide(request: Request, approval_id: str) -> HTMLResponse:
    """Approve (all or a filtered subset) or reject, through the gateway; answers the updated card."""
    user = user_of(request)
    actx = actx_of(request)
    message, ok = "", False
    try:
        form = await post_form(request)
        if not can_decide(user):
            raise PolicyDenied(f"{user.id} has no approver role and may not decide approval requests")
        req = actx.guard.approvals.get(approval_id)
        action = one(form, "action")
        reason = one(form, "reason") or None
        expected = one(form, "args_hash") or None
        subset: list[str] | None = None
        if action == "approve_subset":
            flt = views.SubsetFilter.from_form(form)
            if flt.empty:
                raise ValidationFailed("choose at least one filter, or approve all orders")
            subset = _card(actx, req).subset(flt)
            if not subset:
                raise ValidationFailed("no covered order matches this filter; nothing was approved")
        elif action not in ("approve", "reject"):
            raise ValidationFailed("unknown action")
        decision: Literal["approve", "reject"] = "reject" if action == "reject" else "approve"
        if decision == "reject" and not reason:
            raise ValidationFailed("a rejection needs a reason")
        decided = decide_step(
            actx.gateway,
            actx.db,
            approval_id,
            approver=user.actor(),
            decision=decision,
            reason=reason,
            subset=subset,
            expected_args_hash=expected,
            enqueue=False,  # the console's continuation hook carries the run on (_card_response)
        ).request
        ok = True
        message = _decided_message(decided, subset)
        req = decided
    except OrderOpsError as exc:
        message = exc.message
        found = _maybe_get(actx, approval_id)
        if found is None:
            return render(request, "error.html", {"user": user, "message": message}, status=404)
        req = found
    return _card_response(request, user, actx, req, message, ok)


@router.post("/approvals/{approval_id}/edit", response_class=HTMLResponse)
async def approval_edit(request: Request, approval_id: str) -> HTMLResponse:
    """Replace the call's editable arguments: re-simulated and re-judged; answers the new card."""
    user = user_of(request)
    actx = actx_of(request)
    message, ok = "", False
    req = _maybe_get(actx, approval_id)
    if req is None:
        return render(
            request, "error.html", {"user": user, "message": f"no approval request {approval_id}"}, status=404
        )
    try:
        form = await post_form(request)
        if not can_decide(user):
            raise PolicyDenied(f"{user.id} has no approver role and may not edit approval requests")
        expected = one(form, "args_hash")
        if expected and expected != req.args_hash:
            raise ValidationFailed("this request changed since you loaded it; reload the page")
        args = dict(req.arguments) if isinstance(req.arguments, dict) else {}
        for key, old in list(args.items()):
            field = f"arg_{key}"
            if key == "order_ids" or field not in form:
                continue
            args[key] = _coerce(one(form, field), old)
        out = actx.gateway.edit(
            approval_id, args, editor=user.actor(), run=RunLedger(run_id=req.run_id or f"console:{user.id}")
        )
        if out.status == "awaiting_approval" and out.approval_id:
            req = actx.guard.approvals.get(out.approval_id)
            ok = True
            message = (
                f"arguments edited: new request {req.id} awaits another approver (you may not approve your own edit)"
            )
        else:
            message = "edit refused: " + "; ".join(out.reasons or [out.status])
    except OrderOpsError as exc:
        message = exc.message
    return _card_response(request, user, actx, req, message, ok)


def _decided_message(req: ApprovalRequest, subset: list[str] | None) -> str:
    if req.status == ApprovalStatus.REJECTED:
        return "rejected"
    if req.status == ApprovalStatus.PENDING:
        return f"approval recorded; {req.approvers_required - len(req.approvals)} more approver(s) needed"
    chosen = f" {len(subset)} of {len(req.items)} orders" if subset is not None else ""
    return f"approved{chosen}"


def _card_response(
    request: Request, user: Principal, actx: AppContext, req: ApprovalRequest, message: str, ok: bool
) -> HTMLResponse:
    decided = req.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    if ok and decided and req.run_id:
        hook: ContinueRun = request.app.state.console_continue
        try:
            message = f"{message}; {hook(actx, req)}"
        except OrderOpsError as exc:
            message = f"{message}; the run could not be queued to continue: {exc.message}"
    card = _card(actx, req)
    ctx = {"user": user, "card": card, "message": message, "ok": ok, "nodes": _node_ids(actx)}
    if request.headers.get("HX-Request"):
        return render(request, "_card.html", ctx)
    return render(request, "approval.html", ctx)


def _maybe_get(actx: AppContext, approval_id: str) -> ApprovalRequest | None:
    try:
        return actx.guard.approvals.get(approval_id)
    except NotFound:
        return None


def _card(actx: AppContext, req: ApprovalRequest) -> views.ApprovalCard:
    card = views.approval_card(actx, req)
    if req.call_id:
        parked = actx.guard.audit.list(call_id=req.call_id, event_type=EventType.AWAITING_APPROVAL)
        card.reasons = parked[-1].reasons if parked else []
    return card


def _node_ids(actx: AppContext) -> list[str]:
    return [n.id for n in actx.adapters.wms.list_nodes()]


def _coerce(raw: str, old: Any) -> Any:
    if isinstance(old, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(old, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise ValidationFailed(f"{raw!r} is not a whole number") from exc
    if isinstance(old, float):
        try:
            return float(raw)
        except ValueError as exc:
            raise ValidationFailed(f"{raw!r} is not a number") from exc
    return raw


# --- runs -------------------------------------------------------------------------------------------


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, status: str = "", kind: str = "", q: str = "") -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    status_f = status if status in RUN_STATUSES else None
    kind_f = kind if kind in ("alert", "goal") else None
    found = views.runs(actx, status=status_f, kind=kind_f, text=q.strip()[:100] or None)
    return render(
        request,
        "runs.html",
        {
            "user": user,
            "runs": found,
            "statuses": RUN_STATUSES,
            "status": status_f or "",
            "kind": kind_f or "",
            "q": q[:100],
        },
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    try:
        run, events, state = views.timeline(actx, run_id)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return _run_response(request, user, actx, run_id, run, events, state)


def _run_response(
    request: Request,
    user: Principal,
    actx: AppContext,
    run_id: str,
    run: Any,
    events: Any,
    state: Any,
    message: str = "",
    ok: bool = False,
) -> HTMLResponse:
    pending = actx.guard.approvals.list_pending(run_id=run_id)
    card = incident_card(actx.gateway, run_id) if pending else None
    ctx = {
        "user": user,
        "run": run,
        "events": events,
        "state": state or {},
        "pending": pending,
        "incident": card,
        "message": message,
        "ok": ok,
    }
    return render(request, "run.html", ctx)


@router.post("/runs/{run_id}/approval", response_class=HTMLResponse)
async def run_decide(request: Request, run_id: str) -> HTMLResponse:
    """One decision on every pending step of the run (the incident's card), as the API and CLI make it."""
    user = user_of(request)
    actx = actx_of(request)
    message, ok = "", False
    try:
        form = await post_form(request)
        if not can_decide(user):
            raise PolicyDenied(f"{user.id} has no approver role and may not decide approval requests")
        action = one(form, "action")
        if action not in ("approve", "reject"):
            raise ValidationFailed("unknown action")
        decision: Literal["approve", "reject"] = "reject" if action == "reject" else "approve"
        out = decide_incident(
            actx.gateway,
            actx.db,
            run_id,
            approver=user.actor(),
            decision=decision,
            reason=one(form, "reason") or None,
            enqueue=False,
        )
        ok = True
        message = f"{decision}d {len(out.decided)} step(s)"
        last = actx.guard.approvals.get(out.decided[-1]["approval_id"])
        if last.status != ApprovalStatus.PENDING:
            hook: ContinueRun = request.app.state.console_continue
            message = f"{message}; {hook(actx, last)}"
    except OrderOpsError as exc:
        message = exc.message
    try:
        run, events, state = views.timeline(actx, run_id)
    except NotFound as exc:
        return render(request, "error.html", {"user": user, "message": exc.message}, status=404)
    return _run_response(request, user, actx, run_id, run, events, state, message, ok)


# --- network ----------------------------------------------------------------------------------------


@router.get("/network", response_class=HTMLResponse)
def network_page(request: Request) -> HTMLResponse:
    user = user_of(request)
    actx = actx_of(request)
    wms = actx.adapters.wms
    nodes = wms.list_nodes()
    loads = {ld.node_id: ld for ld in wms.node_load([n.id for n in nodes])} if nodes else {}
    carriers = actx.adapters.carriers.list_carriers()
    outages: dict[str, list[str]] = {}
    for c in carriers:
        for st in c.outage_states:
            outages.setdefault(st, []).append(c.id)
    pins = [
        charts.MapNode(n.id, n.lat, n.lon, n.status.value, loads[n.id].utilisation if n.id in loads else 0.0)
        for n in nodes
    ]
    waiting = views.runs(actx, status="awaiting_approval", kind=None, text=None)
    return render(
        request,
        "network.html",
        {
            "user": user,
            "nodes": nodes,
            "loads": loads,
            "map_svg": charts.network_map(pins, outages),
            "carriers": carriers,
            "pending": actx.guard.approvals.list_pending(),
            "waiting": waiting,
        },
    )


# --- audit ------------------------------------------------------------------------------------------


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, run_id: str = "", event_type: str = "", after_seq: int = 0, verify: int = 0
) -> HTMLResponse:
    user = user_of(request)
    if not can_audit(user):
        return render(
            request,
            "error.html",
            {"user": user, "message": f"{user.id} needs the approver or admin role to read the audit trail"},
            status=403,
        )
    actx = actx_of(request)
    etype = event_type if event_type in {e.value for e in EventType} else None
    limit = 100
    records = actx.guard.audit.list(
        run_id=run_id.strip() or None, event_type=etype, after_seq=min(max(after_seq, 0), MAX_INT32), limit=limit
    )
    report = actx.guard.audit.verify() if verify else None
    return render(
        request,
        "audit.html",
        {
            "user": user,
            "records": records,
            "run_id": run_id.strip(),
            "event_type": etype or "",
            "event_types": [e.value for e in EventType],
            "next_after": records[-1].seq if len(records) == limit else None,
            "report": report,
            "now": datetime.now(UTC),
        },
    )
