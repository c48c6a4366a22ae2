"""FastAPI dependencies: the request's :class:`AppContext`, the caller, and role gates.

Routes declare what they need with the ``Annotated`` aliases (``ctx: Ctx``, ``user: CurrentUser``)
or a gate (``dependencies=[require(Role.APPROVER)]``); nothing here is global — the context and the
key store hang off ``app.state``, set by :func:`api.app.create_app`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ApiKeyStore, Principal, Role
from api.bootstrap import AppContext
from api.problems import Forbidden, Unauthenticated

# auto_error=False: a missing key must become our 401 problem, not FastAPI's own 403 body.
bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key itself.")


def get_ctx(request: Request) -> AppContext:
    actx = request.app.state.actx
    assert isinstance(actx, AppContext)
    return actx


def get_keys(request: Request) -> ApiKeyStore:
    keys = request.app.state.keys
    assert isinstance(keys, ApiKeyStore)
    return keys


Ctx = Annotated[AppContext, Depends(get_ctx)]
Keys = Annotated[ApiKeyStore, Depends(get_keys)]


def current_user(
    keys: Keys,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    """The principal behind the presented key; 401 when there is none or it matches no active key."""
    presented = credentials.credentials if credentials is not None else api_key
    if not presented:
        raise Unauthenticated("an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    principal = keys.authenticate(presented)
    if principal is None:
        # Never echo the key: it may be a real key of another system pasted by mistake.
        raise Unauthenticated("the API key is not valid (unknown, malformed or revoked)")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def admit(user: Principal, *any_of: Role) -> Principal:
    """``user`` if they hold at least one of ``any_of`` (admins hold all); else 403."""
    if not any(user.has(r) for r in any_of):
        names = ", ".join(r.value for r in any_of)
        raise Forbidden(
            f"{user.id} needs the role {names} for this request",
            reasons=[f"missing role (one of {[r.value for r in any_of]})"],
        )
    return user


def require(*any_of: Role) -> Any:
    """A dependency admitting callers holding at least one of ``any_of`` (admins hold all)."""

    def gate(user: CurrentUser) -> Principal:
        return admit(user, *any_of)

    return Depends(gate)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Approver = Annotated[Principal, require(Role.APPROVER)]
Auditor = Annotated[Principal, require(Role.APPROVER, Role.ADMIN)]
