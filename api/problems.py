"""The one place where errors become HTTP: RFC 9457 ``application/problem+json`` bodies.

Every :class:`core.errors.OrderOpsError` maps to a status here, by class, most specific first; the
body carries the RFC's members (``type``, ``title``, ``status``, ``detail``, ``instance``) plus the
error's stable ``code`` and its ``details``, so clients match on ``code`` and never parse
``detail``. Framework errors (unknown route, bad method, request validation) get the same shape.

What this module must never do: leak an unexpected exception's message or traceback to a client.
Those become a bare 500 problem; the traceback goes to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    ConfigurationError,
    Conflict,
    ControlFlow,
    DomainError,
    InsufficientInventory,
    InvalidTransition,
    NotFound,
    OrderOpsError,
    PolicyDenied,
    SchemaTooNew,
    ValidationFailed,
)

log = logging.getLogger("orderops.api")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:orderops:problem:"
"""A URN rather than a URL: the type is an identifier, and we host no documentation at any URL."""


class Unauthenticated(OrderOpsError):
    """No API key, or one that matches no active key (HTTP only: nothing below ``api/`` has callers
    without an identity)."""

    code = "unauthenticated"


class Forbidden(PolicyDenied):
    """The caller is known but their roles do not allow this route."""

    code = "forbidden"


class NotImplementedYet(OrderOpsError):
    """A route whose backing capability is not installed in this build."""

    code = "not_implemented"


# Most specific first: the first class an error is an instance of decides its status.
STATUS_BY_ERROR: tuple[tuple[type[OrderOpsError], int, str], ...] = (
    (Unauthenticated, 401, "Authentication required"),
    (Forbidden, 403, "Forbidden"),
    (PolicyDenied, 403, "Denied by policy"),
    (NotFound, 404, "Not found"),
    (ValidationFailed, 422, "Invalid request"),
    (InvalidTransition, 409, "Invalid status transition"),
    (InsufficientInventory, 409, "Insufficient inventory"),
    (Conflict, 409, "Conflict"),
    (DomainError, 422, "Request does not fit the current state"),
    (ControlFlow, 409, "Action required"),
    (NotImplementedYet, 501, "Not implemented"),
    (SchemaTooNew, 503, "Database schema is newer than this service"),
    (ConfigurationError, 503, "Service misconfigured"),
    (OrderOpsError, 500, "Internal error"),
)


class Problem(BaseModel):
    """An RFC 9457 problem detail, with OrderOps's stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI identifying the problem type (`urn:orderops:problem:<code>`).")
    title: str = Field(description="Short summary of the problem type; the same for every occurrence.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in words a person can act on.")
    code: str = Field(description="Stable machine-readable error code.")
    instance: str | None = Field(default=None, description="The request path.")
    details: dict[str, Any] = Field(default_factory=dict, description="Structured context (ids, reasons).")


_DESCRIPTIONS = {
    401: "Missing or invalid API key",
    403: "The caller's roles or the policy do not allow this",
    404: "No such resource",
    409: "Conflicts with the current state (already decided, expired, changed)",
    422: "Invalid request",
    501: "Not implemented in this build",
    503: "Not ready: database unreachable or at another schema",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting ``statuses`` as problem+json bodies."""
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


PROBLEM_RESPONSES = problem_responses(401, 403, 422)
"""Declared on every authenticated router so the OpenAPI schema documents the problem shape."""


def status_of(err: OrderOpsError) -> tuple[int, str]:
    for cls, status, title in STATUS_BY_ERROR:
        if isinstance(err, cls):
            return status, title
    return 500, "Internal error"  # pragma: no cover - OrderOpsError is the last row


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    instance: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=TYPE_PREFIX + code,
        title=title,
        status=status,
        detail=detail,
        code=code,
        instance=instance,
        details=details or {},
    )
    return JSONResponse(
        jsonable_encoder(body.model_dump(exclude_none=True)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def error_response(err: OrderOpsError, instance: str | None = None) -> JSONResponse:
    status, title = status_of(err)
    headers = {"WWW-Authenticate": 'Bearer realm="orderops"'} if status == 401 else None
    if status >= 500 and not isinstance(err, ConfigurationError | NotImplementedYet):
        log.error("unexpected %s at %s: %s", type(err).__name__, instance, err.message)
        return problem_response(500, "Internal error", "the server failed to handle this request", "internal_error")
    return problem_response(
        status, title, err.message, err.code, instance=instance, details=dict(err.details), headers=headers
    )


HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Content too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def _where(loc: Sequence[str]) -> str:
    """``["body", "decision"]`` -> ``decision``; a bare ``["body"]`` stays ``body``."""
    return ".".join(loc[1:]) if len(loc) > 1 else (loc[0] if loc else "request")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem response."""

    async def on_orderops_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrderOpsError)
        return error_response(exc, request.url.path)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:20]
        ]
        detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors[:3]) or "invalid request"
        return problem_response(
            422, "Invalid request", detail, ValidationFailed.code, instance=request.url.path, details={"errors": errors}
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code, title = HTTP_PROBLEMS.get(exc.status_code, (f"http_{exc.status_code}", str(exc.detail)))
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail),
            code,
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_data_error(request: Request, exc: Exception) -> JSONResponse:
        # The database refused a value (PostgreSQL: a NUL byte in text, an integer past its column's
        # range). Routes bound their inputs so this should not happen; when one slips through it is
        # still the request's fault, not the server's: a 422, never a 500. The driver's message may
        # quote the value, so it goes to the log only.
        log.warning("database refused a value at %s: %s", request.url.path, exc)
        return problem_response(
            422,
            "Invalid request",
            "the request holds a value the database cannot store (a NUL byte, or a number out of range)",
            ValidationFailed.code,
            instance=request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error at %s", request.url.path, exc_info=exc)
        return problem_response(500, "Internal error", "the server failed to handle this request", "internal_error")

    app.add_exception_handler(OrderOpsError, on_orderops_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DataError, on_data_error)
    app.add_exception_handler(Exception, on_unexpected)
