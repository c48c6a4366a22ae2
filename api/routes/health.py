"""Liveness, readiness and metrics: what an orchestrator and a Prometheus scraper call.

None of these needs an API key: they reveal no business data (the pending-approvals count is the
one business number, and it is deliberately only a count).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from api.deps import Ctx
from api.problems import problem_responses
from core.db import check_schema
from core.db.migrate import SCHEMA_HEAD
from core.errors import ConfigurationError

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    schema_revision: str


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    """Answers as long as the process serves requests; checks nothing else (restart only if this fails)."""
    return Health()


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The database is reachable and at this code's schema",
    responses=problem_responses(503),
)
def readyz(ctx: Ctx) -> Ready:
    """Ready when the database answers and its schema is exactly this code's head; otherwise a 503
    problem (``schema_too_new``, ``configuration_error``) so traffic goes elsewhere."""
    try:
        check_schema(ctx.db)
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"database {ctx.db.url} is unreachable: {type(exc).__name__}") from exc
    return Ready(schema_revision=SCHEMA_HEAD)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies by route and status, and the pending approvals gauge."""
    return request.app.state.metrics.render()  # type: ignore[no-any-return]
