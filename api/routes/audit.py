"""The audit trail over HTTP, for approvers and admins: events in chain order, and verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Auditor, Ctx
from api.inputs import MAX_INT32, Text
from api.problems import PROBLEM_RESPONSES
from guardrails.audit import AuditRecord, VerifyReport

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)


class AuditPage(BaseModel):
    records: list[AuditRecord]
    next_after_seq: int | None = Field(description="Pass as `after_seq` for the next page; null on the last page.")


@router.get("", response_model=AuditPage, summary="Audit events in chain order")
def list_events(
    ctx: Ctx,
    _user: Auditor,
    run_id: Annotated[Text | None, Query(max_length=200)] = None,
    call_id: Annotated[Text | None, Query(max_length=200)] = None,
    after_seq: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Events (personal data already redacted), filtered by run or call, paged by sequence number."""
    records = ctx.guard.audit.list(run_id=run_id, call_id=call_id, after_seq=after_seq, limit=limit)
    return AuditPage(records=records, next_after_seq=records[-1].seq if len(records) == limit else None)


@router.get("/verify", response_model=VerifyReport, summary="Check the trail's hash chain and signed checkpoints")
def verify(ctx: Ctx, _user: Auditor) -> VerifyReport:
    """``ok: false`` names the first edited, deleted, inserted or reordered row, or (against the signed
    checkpoints outside the database) a truncated, re-hashed or wiped trail or a forged checkpoint."""
    return ctx.guard.audit.verify()
