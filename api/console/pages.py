"""What every console page shares: the templates, the signed-in person, rendering with the
security headers, and CSRF-checked forms.

Its own module so that the page modules (``routes``, ``intake``, ``evals``) import it and not each
other. What it must never do: render a page without the CSRF cookie and the no-store/frame headers.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth import ApiKeyStore, Principal, Role
from api.bootstrap import AppContext
from api.console import session
from core.errors import PolicyDenied

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
templates.env.filters["when"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if d else ""


class LoginRequired(Exception):
    """No valid console session: send the browser to the sign-in page."""


def actx_of(request: Request) -> AppContext:
    actx = request.app.state.actx
    assert isinstance(actx, AppContext)
    return actx


def keys_of(request: Request) -> ApiKeyStore:
    keys = request.app.state.keys
    assert isinstance(keys, ApiKeyStore)
    return keys


def signer_of(request: Request) -> session.SessionSigner:
    signer = request.app.state.console_signer
    assert isinstance(signer, session.SessionSigner)
    return signer


def user_of(request: Request) -> Principal:
    user = signer_of(request).principal(request.cookies.get(session.SESSION_COOKIE), keys_of(request))
    if user is None:
        raise LoginRequired
    return user


def can_decide(user: Principal) -> bool:
    return user.has(Role.APPROVER)


def can_audit(user: Principal) -> bool:
    return user.has(Role.APPROVER) or user.has(Role.ADMIN)


def render(request: Request, name: str, ctx: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    user = ctx.get("user")
    base = {
        "csrf": session.csrf_token(request),
        "user": user,
        "can_decide": isinstance(user, Principal) and can_decide(user),
        "can_audit": isinstance(user, Principal) and can_audit(user),
        "extras": getattr(request.app.state, "console_extras", {}),
    }
    response = templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
    session.ensure_csrf(request, response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    )
    return response


async def post_form(request: Request) -> dict[str, list[str]]:
    form = await session.read_form(request)
    if not session.csrf_ok(request, form):
        raise PolicyDenied("the form's CSRF token is missing or does not match; reload the page and try again")
    return form


def one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()
