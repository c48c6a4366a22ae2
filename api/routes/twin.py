"""Scenarios on the twin over HTTP: ``POST /v1/twin/whatif`` plays one on a copy, ``POST
/v1/twin/apply`` stages one on the live twin through the gateway.

Both need the operator role: a what-if reads the whole network and plans (work a viewer should not
be able to start at will), and staging proposes writes (each parks for an approver under the
default policy, who is never the operator that staged it). A bad scenario is a 422 (a 404 when it
names a node, carrier or SKU the twin lacks) whose details list the findings with their line and
field; nothing is staged or played.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Ctx
from api.inputs import Text
from api.problems import PROBLEM_RESPONSES, problem_responses
from api.routes.runs import Operator
from core.errors import ConfigurationError, Conflict, NotFound, OrderOpsError, ValidationFailed
from services.scenarios import (
    ApplyReport,
    ParsedScenario,
    Scenario,
    ScenarioFinding,
    WhatIfReport,
    apply_scenario,
    whatif,
)
from services.wiring import choose_planner

router = APIRouter(prefix="/v1/twin", tags=["twin"], responses=PROBLEM_RESPONSES)


class ScenarioBody(BaseModel):
    scenario: Scenario = Field(description="The scenario, as its file's structure in JSON.")


class WhatIfBody(ScenarioBody):
    goal: Text | None = Field(
        default=None, max_length=2000, description="What to plan for (default: the scenario's alert)."
    )
    planner: Literal["auto", "playbook", "llm"] = "auto"


def _bad(findings: list[ScenarioFinding]) -> OrderOpsError:
    errors = [f for f in findings if f.severity == "error"]
    first = errors[0] if errors else None
    message = f"the scenario cannot be staged: {first.message if first else 'no detail'}"
    details = {"findings": [f.model_dump() for f in findings]}
    if first is not None and first.code.startswith("unknown_"):
        err: OrderOpsError = NotFound(first.field, first.message, message)
        err.details.update(details)
        return err
    return ValidationFailed(message, **details)


def _parsed(body: ScenarioBody) -> ParsedScenario:
    return ParsedScenario(body.scenario, [], ())


@router.post(
    "/whatif",
    response_model=WhatIfReport,
    summary="Play a scenario on a copy of the twin",
    responses=problem_responses(404, 409),
)
def post_whatif(ctx: Ctx, _user: Operator, body: WhatIfBody) -> WhatIfReport:
    if body.planner == "llm" and not ctx.settings.llm_configured:
        raise Conflict("planner llm: no model is configured on this server")
    try:
        report = whatif(_parsed(body), ctx.db, ctx.twin_clock, choose_planner(ctx, body.planner), goal=body.goal)
    except ConfigurationError as exc:  # a server database cannot be copied: the request cannot be served here
        raise Conflict(exc.message) from exc
    if not report.ok:
        raise _bad(report.findings)
    return report


@router.post(
    "/apply",
    response_model=ApplyReport,
    summary="Stage a scenario on the live twin (gateway)",
    responses=problem_responses(404, 409),
)
def post_apply(ctx: Ctx, user: Operator, body: ScenarioBody) -> ApplyReport:
    report = apply_scenario(_parsed(body), ctx.gateway, actor=user.actor())
    if not report.ok:
        raise _bad(report.findings)
    return report
