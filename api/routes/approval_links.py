"""The pages behind approval e-mail links: ``GET`` shows what the link would do, ``POST`` does it.

Mail scanners and link previews fetch every URL in a message, so opening a link decides nothing: the
page names the request, the person and the action, and a button (with a reason field for a reject)
posts back to the same URL. The signed token in the path is the credential (no API key, no console
session); :mod:`services.approval_mail` checks it and decides at most once. Every refusal is a page
that says why, with a status code (400 forged or malformed, 409 used, expired or already decided).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from api.bootstrap import AppContext
from core.errors import OrderOpsError
from services.approval_mail import LINK_PATH as PATH
from services.approval_mail import ApprovalMail, LinkRefused

router = APIRouter(include_in_schema=False)
MAX_TOKEN = 2000
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
"""Never cached, and the token never leaks to another site through the Referer header."""


def _service(request: Request) -> ApprovalMail:
    actx: AppContext = request.app.state.actx
    return ApprovalMail.of(actx.db, actx.gateway, actx.settings, actx.clock)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=robots content=noindex>"
        f"<title>{escape(title)} · OrderOps</title></head><body><main><h1>{escape(title)}</h1>{body}</main>"
        "</body></html>"
    )
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _refused(exc: LinkRefused) -> HTMLResponse:
    return _page("Nothing was decided", f"<p>{escape(exc.message)}</p>", status=409 if exc.gone else 400)


@router.get(PATH + "{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: str) -> HTMLResponse:
    """What the link would do, with the button that does it. Decides nothing."""
    if len(token) > MAX_TOKEN:
        return _page("Nothing was decided", "<p>this link is not one OrderOps sent</p>", status=400)
    try:
        view = _service(request).view(token)
    except LinkRefused as exc:
        return _refused(exc)
    facts = (
        f"<p>Request <code>{escape(view.approval_id)}</code>: {escape(view.tool)}, {view.orders} order(s).</p>"
        f"<p>{escape(view.summary)}</p><p>You: {escape(view.person)}</p>"
    )
    if not view.usable:
        return _page("Nothing to decide", facts + f"<p>{escape(view.problem or '')}</p>", status=409)
    reason = (
        "<p><label>Reason (required) <textarea name=reason required maxlength=1000></textarea></label></p>"
        if view.action == "reject"
        else ""
    )
    button = f"<button type=submit name=confirm value=1>{escape(view.action.title())}</button>"
    form = f"<form method=post>{reason}{button}</form>"
    return _page(f"{view.action.title()} this change?", facts + form)


@router.post(PATH + "{token}", response_class=HTMLResponse)
def decide_by_link(
    request: Request, token: str, reason: str | None = Form(default=None, max_length=1000)
) -> HTMLResponse:
    """Decide as the link says, once."""
    if len(token) > MAX_TOKEN:
        return _page("Nothing was decided", "<p>this link is not one OrderOps sent</p>", status=400)
    try:
        done = _service(request).use(token, reason=reason)
    except LinkRefused as exc:
        return _refused(exc)
    except OrderOpsError as exc:  # a rejection without a reason and the like: say so, decide nothing
        return _page("Nothing was decided", f"<p>{escape(exc.message)}</p>", status=400)
    now = f"is now {escape(done.status)} (by {escape(done.person)})"
    after = f"<p>{escape(done.carried_on)}</p>" if done.carried_on else ""
    title = "Approved" if done.action == "approve" else "Rejected"
    return _page(title, f"<p>Request <code>{escape(done.approval_id)}</code> {now}.</p>{after}")
