"""Decision endpoints: what the sourcing scorer would do, without doing it.

``POST /v1/decide/route`` asks :func:`agents.sourcing.decide_route` for the best node and carrier
service of one order right now; it reads only, so viewers may call it.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from agents.sourcing import RouteDecision, decide_route
from api.deps import Ctx, Viewer
from api.problems import PROBLEM_RESPONSES, problem_responses

router = APIRouter(prefix="/v1/decide", tags=["decide"], responses=PROBLEM_RESPONSES)


class RouteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


@router.post(
    "/route",
    response_model=RouteDecision,
    summary="Best node and carrier service for one order",
    responses=problem_responses(404),
)
def route(ctx: Ctx, _user: Viewer, body: RouteQuery) -> RouteDecision:
    """The scorer's choice with its reasons and the alternatives it beat (nothing is changed)."""
    return decide_route(body.order_id, ctx.tool_env)
