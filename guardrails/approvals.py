"""Approval requests: a person approves one exact tool call, once.

A request binds the exact arguments (``args_hash``) and the simulated preview (``preview_hash``)
a person looked at, so that what runs afterwards is provably what was approved
(:func:`verify_binding`). Decisions follow fixed rules: a rejection needs a reason, a subset must
be within the covered items, expired requests cannot be approved, requesters do not approve their
own requests unless allowed, approvers need one of the required roles, and ``approvers_required``
distinct people must approve. Editing the arguments never approves them: it supersedes the request
with a new pending one (the tool layer re-runs policy and simulation on the edited arguments).

What this module must never do: let a request be decided twice. Every decision is a conditional
``UPDATE ... WHERE status = 'pending' AND version = :seen``; when it changes no row, someone else
decided first and the caller gets :class:`Conflict`. That holds between processes on PostgreSQL,
not just between threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables import ApprovalDecisionRow, ApprovalRequestRow
from core.errors import Conflict, NotFound, PolicyDenied, ValidationFailed
from guardrails._store import JsonValue, as_utc, json_hash, to_jsonable, write_transaction

DEFAULT_TTL = timedelta(hours=4)
_RETRIES = 5


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class DecisionKind(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    approver_id: str
    roles: list[str]
    decision: DecisionKind
    reason: str | None
    subset: list[str] | None
    edited_args: JsonValue
    at: datetime


class ApprovalRequest(BaseModel):
    """A request as read. ``status`` already reads ``expired`` once ``expires_at`` has passed."""

    model_config = ConfigDict(frozen=True)

    id: str
    run_id: str | None
    call_id: str | None
    tool: str
    arguments: JsonValue
    args_hash: str
    preview: JsonValue
    preview_hash: str
    items: list[str]
    """What the call covers (order ids...); an approver may approve a subset of them."""
    required_roles: list[str]
    approvers_required: int
    requester_may_approve: bool
    requester_id: str
    edited_by: str | None
    created_at: datetime
    expires_at: datetime
    status: ApprovalStatus
    version: int
    decided_at: datetime | None
    approved_items: list[str] | None
    """Items approved by every approver (all items unless someone approved a subset)."""
    supersedes_id: str | None
    superseded_by_id: str | None
    decisions: list[ApprovalDecision]

    @property
    def approvals(self) -> list[ApprovalDecision]:
        return [d for d in self.decisions if d.decision == DecisionKind.APPROVE]


def args_hash(arguments: Any) -> str:
    """sha256 of the canonical JSON of the arguments (equals ``digest_arguments`` for JSON values)."""
    return json_hash(arguments)


def preview_hash(preview: Any) -> str:
    return json_hash(preview)


def verify_binding(request: ApprovalRequest, arguments: Any, preview: Any) -> bool:
    """True only if ``request`` is approved and ``arguments``/``preview`` are exactly what it bound.

    Call it right before executing. A subset approval still binds the full arguments; the tool
    layer restricts execution to ``request.approved_items``.
    """
    return (
        request.status == ApprovalStatus.APPROVED
        and args_hash(arguments) == request.args_hash
        and preview_hash(preview) == request.preview_hash
    )


class ApprovalStore:
    """Approval requests and their decisions, on the database."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock if clock is not None else SystemClock()

    # --- create / read --------------------------------------------------------------------------

    def create(
        self,
        *,
        tool: str,
        arguments: Any,
        preview: Any,
        requester_id: str,
        run_id: str | None = None,
        call_id: str | None = None,
        items: Sequence[str] = (),
        required_roles: Iterable[str] = (),
        approvers_required: int = 1,
        requester_may_approve: bool = False,
        ttl: timedelta = DEFAULT_TTL,
    ) -> ApprovalRequest:
        """Open a pending request for one exact call; it expires ``ttl`` from now."""
        if not tool or not requester_id:
            raise ValidationFailed("an approval request needs a tool and a requester")
        if approvers_required < 1:
            raise ValidationFailed("approvers_required must be at least 1")
        if ttl <= timedelta(0):
            raise ValidationFailed("ttl must be positive")
        item_list = [str(i) for i in items]
        if len(set(item_list)) != len(item_list):
            raise ValidationFailed("covered items must be unique")
        with write_transaction(self.db) as session:
            row = self._new_row(
                tool=tool,
                arguments=arguments,
                preview=preview,
                requester_id=requester_id,
                run_id=run_id,
                call_id=call_id,
                items=item_list,
                required_roles=sorted(set(required_roles)),
                approvers_required=approvers_required,
                requester_may_approve=requester_may_approve,
                ttl=ttl,
            )
            session.add(row)
            session.flush()
            return self._read(session, row)

    def get(self, request_id: str) -> ApprovalRequest:
        with self.db.sessions() as session:
            return self._read(session, self._row(session, request_id))

    def list_pending(self, *, run_id: str | None = None) -> list[ApprovalRequest]:
        """Requests still waiting for a decision (not expired), oldest first."""
        now = self._stored_now()
        with self.db.sessions() as session:
            stmt = select(ApprovalRequestRow).where(
                ApprovalRequestRow.status == ApprovalStatus.PENDING.value, ApprovalRequestRow.expires_at > now
            )
            if run_id is not None:
                stmt = stmt.where(ApprovalRequestRow.run_id == run_id)
            rows = session.scalars(stmt.order_by(ApprovalRequestRow.created_at, ApprovalRequestRow.id))
            return [self._read(session, r) for r in rows]

    def expire_due(self) -> list[ApprovalRequest]:
        """Mark every pending request past its expiry ``expired`` and return them: the scheduled
        tick enforces expiry (a request nobody reads again still ends), instead of only reading it."""
        now = self._stored_now()
        out: list[ApprovalRequest] = []
        with write_transaction(self.db) as session:
            stmt = select(ApprovalRequestRow).where(
                ApprovalRequestRow.status == ApprovalStatus.PENDING.value, ApprovalRequestRow.expires_at <= now
            )
            for row in list(session.scalars(stmt)):
                if self._transition(session, row, row.version, status=ApprovalStatus.EXPIRED.value):
                    out.append(self._read(session, self._row(session, row.id)))
        return out

    # --- decide ---------------------------------------------------------------------------------

    def decide(
        self,
        request_id: str,
        approver_id: str,
        roles: Iterable[str],
        decision: DecisionKind | str,
        *,
        reason: str | None = None,
        subset: Sequence[str] | None = None,
        edited_args: Any = None,
        edited_preview: Any = None,
        edited_items: Sequence[str] | None = None,
        expected_args_hash: str | None = None,
    ) -> ApprovalRequest:
        """Record one person's decision; returns the request as it now stands.

        ``approve`` moves the request to ``approved`` once enough distinct approvers agreed;
        ``reject`` (needs ``reason``) ends it; ``edit`` (needs ``edited_args``) supersedes it and
        returns the *new* pending request, covering ``edited_items`` (the orders the edited call
        will actually change). An edit that reaches orders the original did not cover is a new
        request *by the editor*: they may not approve their own widening. ``expected_args_hash`` is
        the hash the person saw: if the request no longer binds it, the decision is refused.
        Raises :class:`ValidationFailed` (bad input), :class:`PolicyDenied` (this person may not
        decide), :class:`Conflict` (already decided, expired, decided concurrently), :class:`NotFound`.
        """
        try:
            kind = DecisionKind(decision)
        except ValueError as exc:
            raise ValidationFailed(f"decision must be one of {[d.value for d in DecisionKind]}") from exc
        role_set = sorted(set(roles))
        if not approver_id:
            raise ValidationFailed("approver_id is required")
        if kind == DecisionKind.REJECT and not (reason and reason.strip()):
            raise ValidationFailed("a rejection needs a reason")
        if kind == DecisionKind.EDIT and edited_args is None:
            raise ValidationFailed("an edit needs edited_args")
        if subset is not None and kind != DecisionKind.APPROVE:
            raise ValidationFailed("a subset can only be approved")
        for _ in range(_RETRIES):
            expired = False
            with write_transaction(self.db) as session:
                row = self._row(session, request_id)
                seen_version = row.version
                now = as_utc(self.clock.now())
                if row.status == ApprovalStatus.PENDING and as_utc(row.expires_at) <= now:
                    expired = self._transition(session, row, seen_version, status=ApprovalStatus.EXPIRED.value)
                else:
                    self._check(row, approver_id, role_set, kind, subset, expected_args_hash)
                    written = self._apply(
                        session,
                        row,
                        seen_version,
                        approver_id,
                        role_set,
                        kind,
                        reason,
                        subset,
                        edited_args,
                        edited_preview,
                        edited_items,
                    )
                    if written:
                        result_id = row.superseded_by_id if kind == DecisionKind.EDIT else row.id
                        return self._read(session, self._row(session, result_id or row.id))
            if expired:
                raise Conflict(f"approval request {request_id} expired; it can no longer be decided", id=request_id)
            # Someone changed the request between our read and our update: re-read and re-check.
        raise Conflict(f"approval request {request_id} keeps changing; try again", id=request_id)

    def _check(
        self,
        row: ApprovalRequestRow,
        approver_id: str,
        roles: list[str],
        kind: DecisionKind,
        subset: Sequence[str] | None,
        expected_args_hash: str | None,
    ) -> None:
        if row.status != ApprovalStatus.PENDING:
            raise Conflict(f"approval request {row.id} is already {row.status}", id=row.id, status=row.status)
        if expected_args_hash is not None and expected_args_hash != row.args_hash:
            raise Conflict(
                f"approval request {row.id} binds other arguments than the ones you reviewed; reload it", id=row.id
            )
        if row.required_roles and not set(roles) & set(row.required_roles):
            raise PolicyDenied(
                f"{approver_id} needs one of the roles {', '.join(row.required_roles)} to decide this request",
                reasons=[f"approver lacks required role (one of {row.required_roles})"],
            )
        if kind == DecisionKind.APPROVE and not row.requester_may_approve:
            if approver_id == row.requester_id:
                raise PolicyDenied(
                    f"{approver_id} requested this call and may not approve it",
                    reasons=["requester may not approve their own request"],
                )
            if approver_id == row.edited_by:
                raise PolicyDenied(
                    f"{approver_id} edited these arguments and may not approve them",
                    reasons=["editor may not approve their own edit"],
                )
        if subset is not None:
            chosen = [str(s) for s in subset]
            if not chosen:
                raise ValidationFailed("an empty subset approves nothing; reject instead")
            outside = sorted(set(chosen) - set(row.items))
            if outside:
                raise ValidationFailed(f"subset items {outside} are not covered by this request", outside=outside)

    def _apply(
        self,
        session: Session,
        row: ApprovalRequestRow,
        seen_version: int,
        approver_id: str,
        roles: list[str],
        kind: DecisionKind,
        reason: str | None,
        subset: Sequence[str] | None,
        edited_args: Any,
        edited_preview: Any,
        edited_items: Sequence[str] | None,
    ) -> bool:
        """Write the decision; False if the request changed since ``seen_version`` (nothing written)."""
        now = self._stored_now()
        decisions = self._decisions(session, row.id)
        if any(d.approver_id == approver_id for d in decisions):
            raise Conflict(f"{approver_id} has already decided on approval request {row.id}", id=row.id)
        chosen = [str(s) for s in subset] if subset is not None else None
        values: dict[str, Any] = {}
        new_row: ApprovalRequestRow | None = None
        if kind == DecisionKind.REJECT:
            values = {"status": ApprovalStatus.REJECTED.value, "decided_at": now}
        elif kind == DecisionKind.EDIT:
            items = [str(i) for i in edited_items] if edited_items is not None else list(row.items)
            # Widening (orders the original did not cover) makes the editor the one asking for them.
            widened = bool(row.items) and bool(set(items) - set(row.items))
            new_row = self._new_row(
                tool=row.tool,
                arguments=edited_args,
                preview=edited_preview,
                requester_id=approver_id if widened else row.requester_id,
                run_id=row.run_id,
                call_id=row.call_id,
                items=items,
                required_roles=list(row.required_roles),
                approvers_required=row.approvers_required,
                requester_may_approve=False if widened else row.requester_may_approve,
                ttl=as_utc(row.expires_at) - as_utc(row.created_at),
            )
            new_row.supersedes_id = row.id
            new_row.edited_by = approver_id
            values = {"status": ApprovalStatus.SUPERSEDED.value, "decided_at": now, "superseded_by_id": new_row.id}
        else:
            approvals = [d for d in decisions if d.decision == DecisionKind.APPROVE.value]
            if len(approvals) + 1 >= row.approvers_required:
                approved = set(row.items)
                for s in [*(d.subset for d in approvals), chosen]:
                    if s is not None:
                        approved &= set(s)
                values = {
                    "status": ApprovalStatus.APPROVED.value,
                    "decided_at": now,
                    "approved_items": [i for i in row.items if i in approved],
                }
        if not self._transition(session, row, seen_version, **values):
            return False
        if new_row is not None:
            session.add(new_row)
        session.add(
            ApprovalDecisionRow(
                request_id=row.id,
                approver_id=approver_id,
                roles=roles,
                decision=kind.value,
                reason=reason,
                subset=chosen,
                edited_args=to_jsonable(edited_args) if kind == DecisionKind.EDIT else None,
                at=now,
            )
        )
        session.flush()
        return True

    def _transition(self, session: Session, row: ApprovalRequestRow, seen_version: int, **values: Any) -> bool:
        """The one conditional UPDATE every change goes through (bumps ``version``)."""
        res = session.execute(
            update(ApprovalRequestRow)
            .where(
                ApprovalRequestRow.id == row.id,
                ApprovalRequestRow.version == seen_version,
                ApprovalRequestRow.status == ApprovalStatus.PENDING.value,
            )
            .values(version=seen_version + 1, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(res, "rowcount", 0) != 1:
            return False
        session.expire(row)
        return True

    # --- helpers --------------------------------------------------------------------------------

    def _stored_now(self) -> datetime:
        now = as_utc(self.clock.now())
        return now.replace(tzinfo=None) if self.db.is_sqlite else now

    def _new_row(
        self,
        *,
        tool: str,
        arguments: Any,
        preview: Any,
        requester_id: str,
        run_id: str | None,
        call_id: str | None,
        items: list[str],
        required_roles: list[str],
        approvers_required: int,
        requester_may_approve: bool,
        ttl: timedelta,
    ) -> ApprovalRequestRow:
        args_json, preview_json = to_jsonable(arguments), to_jsonable(preview)
        now = self._stored_now()
        return ApprovalRequestRow(
            id=str(uuid.uuid4()),
            run_id=run_id,
            call_id=call_id,
            tool=tool,
            arguments=args_json,
            args_hash=args_hash(args_json),
            preview=preview_json,
            preview_hash=preview_hash(preview_json),
            items=items,
            required_roles=required_roles,
            approvers_required=approvers_required,
            requester_may_approve=requester_may_approve,
            requester_id=requester_id,
            created_at=now,
            expires_at=now + ttl,
            status=ApprovalStatus.PENDING.value,
            version=1,
        )

    def _row(self, session: Session, request_id: str) -> ApprovalRequestRow:
        row = session.get(ApprovalRequestRow, request_id, populate_existing=True)
        if row is None:
            raise NotFound("approval request", request_id)
        return row

    def _decisions(self, session: Session, request_id: str) -> list[ApprovalDecisionRow]:
        stmt = select(ApprovalDecisionRow).where(ApprovalDecisionRow.request_id == request_id)
        return list(session.scalars(stmt.order_by(ApprovalDecisionRow.id)))

    def _read(self, session: Session, row: ApprovalRequestRow) -> ApprovalRequest:
        status = ApprovalStatus(row.status)
        if status == ApprovalStatus.PENDING and as_utc(row.expires_at) <= as_utc(self.clock.now()):
            status = ApprovalStatus.EXPIRED
        return ApprovalRequest(
            id=row.id,
            run_id=row.run_id,
            call_id=row.call_id,
            tool=row.tool,
            arguments=row.arguments,
            args_hash=row.args_hash,
            preview=row.preview,
            preview_hash=row.preview_hash,
            items=list(row.items),
            required_roles=list(row.required_roles),
            approvers_required=row.approvers_required,
            requester_may_approve=row.requester_may_approve,
            requester_id=row.requester_id,
            edited_by=row.edited_by,
            created_at=as_utc(row.created_at),
            expires_at=as_utc(row.expires_at),
            status=status,
            version=row.version,
            decided_at=as_utc(row.decided_at) if row.decided_at is not None else None,
            approved_items=list(row.approved_items) if row.approved_items is not None else None,
            supersedes_id=row.supersedes_id,
            superseded_by_id=row.superseded_by_id,
            decisions=[
                ApprovalDecision(
                    approver_id=d.approver_id,
                    roles=list(d.roles),
                    decision=DecisionKind(d.decision),
                    reason=d.reason,
                    subset=list(d.subset) if d.subset is not None else None,
                    edited_args=d.edited_args,
                    at=as_utc(d.at),
                )
                for d in self._decisions(session, row.id)
            ],
        )
