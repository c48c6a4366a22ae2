"""Alerts in: ``POST /v1/alerts`` turns a monitoring alert into an exception run, started by a worker.

Who may post: an operator (API key), or a monitoring system signing its deliveries with the
shared webhook secret (:mod:`api.webhooks`; the signature is checked on the raw body before
anything is parsed or written). Bodies: our ``Alert``, a Prometheus Alertmanager webhook or a
Datadog webhook (detected, or named with ``?source=``).

Noise control, decided in one transaction per delivery so concurrent deliveries agree:

* a replayed delivery (same ``webhook-id``) gets its first answer again and changes nothing;
* an alert whose fingerprint was seen within ``alert_dedup_window_s`` is a *duplicate* of that run;
* an alert about a node (else carrier) that already has an open run is *coalesced* into it: a storm
  of alerts about one node is one incident, one run, one approval to ask for.

Only an alert that survives both starts a run: the run id is answered at once (202) and a
``exception_run.start`` job does the work (queued by :func:`services.runs.queue_run`, in the same
transaction as the alert's row).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import insert, literal, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from agents.plan import Alert, ExceptionKind
from api import webhooks
from api.auth import Role
from api.deps import Ctx, Keys, api_key_header, bearer, current_user
from api.inputs import document_no_nul
from api.problems import Forbidden, problem_responses
from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables import RunRow
from core.db.tables_jobs import AlertRow, JobRow, WebhookDeliveryRow
from core.errors import ValidationFailed
from core.outbox import start_dedup_key
from graphs.runs import FINAL_STATUSES
from services.runs import StartRun, queue_run

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

WEBHOOK_PRINCIPAL = "webhook"
Outcome = Literal["started", "duplicate", "coalesced"]


class AlertResult(BaseModel):
    alert_id: str = Field(description="The sender's alert id (as mapped onto our `Alert`).")
    fingerprint: str
    outcome: Outcome = Field(
        description="`started`: it opened a run; `duplicate`: same fingerprint within the dedup window; "
        "`coalesced`: attached to the open run about the same node (or carrier)."
    )
    run_id: str


class AlertsAccepted(BaseModel):
    """What became of the delivery's alerts."""

    source: webhooks.Source
    run_id: str | None = Field(description="The run of the first alert (null when nothing fired).")
    run_ids: list[str] = Field(description="Every run the alerts started or joined, in order.")
    replayed: bool = Field(default=False, description="True when this delivery was handled before (same webhook-id).")
    results: list[AlertResult]


def storm_key(alert: Alert) -> str:
    """What a storm is about: the node(s), else the carrier(s), else the alert's fingerprint."""
    labels = {k.lower(): v for k, v in alert.labels.items()}
    for key in ("node", "nodes", "carrier", "carriers"):
        if labels.get(key):
            values = sorted({v.strip().upper() for v in labels[key].split(",") if v.strip()})
            name = key.rstrip("s")
            return _short(f"{name}:{','.join(values)}")
    return _short("fp:" + alert.fingerprint())


def _short(key: str) -> str:
    return key if len(key) <= 500 else key[:430] + "#" + hashlib.sha256(key.encode()).hexdigest()


class AlertInbox:
    """Dedup, storm coalescing and run creation for received alerts (one transaction per delivery)."""

    def __init__(self, db: Database, *, dedup_window_s: float = 900.0, clock: Clock | None = None) -> None:
        self.db = db
        self.window = timedelta(seconds=dedup_window_s)
        self.clock: Clock = clock or SystemClock()

    def ingest(
        self,
        alerts: list[Alert],
        *,
        source: webhooks.Source = "generic",
        webhook_id: str | None = None,
        requested_by: str = WEBHOOK_PRINCIPAL,
    ) -> AlertsAccepted:
        try:
            return self._ingest(alerts, source, webhook_id, requested_by)
        except IntegrityError:
            # A concurrent delivery with the same webhook id won the insert: answer as it did.
            if webhook_id is None:
                raise
            return self._ingest(alerts, source, webhook_id, requested_by)

    def _ingest(
        self, alerts: list[Alert], source: webhooks.Source, webhook_id: str | None, requested_by: str
    ) -> AlertsAccepted:
        # Columns and Core inserts, not ORM rows: this runs per delivery, and the identity map and
        # unit of work cost more CPU than the statements (see evals/bench/bench_api.py).
        with self.db.write_transaction() as s:
            if self.db.is_postgres:
                _lock_storms(s, alerts)
            if webhook_id is not None:
                seen = s.execute(
                    select(WebhookDeliveryRow.response).where(WebhookDeliveryRow.webhook_id == webhook_id)
                ).scalar()
                if seen is not None:
                    return AlertsAccepted.model_validate({**seen, "replayed": True})
            now = self._now()
            results = [self._one(s, a, source, webhook_id, requested_by, now) for a in alerts]
            out = AlertsAccepted(
                source=source,
                run_id=results[0].run_id if results else None,
                run_ids=list(dict.fromkeys(r.run_id for r in results)),
                results=results,
            )
            if webhook_id is not None:
                response = out.model_dump(mode="json")
                s.execute(insert(WebhookDeliveryRow).values(webhook_id=webhook_id, received_at=now, response=response))
            return out

    def _one(
        self, s: Session, alert: Alert, source: str, webhook_id: str | None, requested_by: str, now: datetime
    ) -> AlertResult:
        fingerprint = _short(alert.fingerprint())
        storm = storm_key(alert)
        outcome: Outcome
        dup, open_run = self._seen(s, fingerprint, storm, now)
        if dup is not None:
            outcome, run_id = "duplicate", dup
        elif open_run is not None:
            outcome, run_id = "coalesced", open_run
        else:
            cmd = StartRun(alert=alert, requested_by=requested_by)
            outcome, run_id = "started", cmd.run_id
            queue_run(self.db, cmd, clock=self.clock, session=s)
        s.execute(
            insert(AlertRow).values(
                id=f"alr_{uuid.uuid4().hex[:20]}",
                external_id=alert.id,
                source=source,
                fingerprint=fingerprint,
                storm_key=storm,
                outcome=outcome,
                run_id=run_id,
                webhook_id=webhook_id,
                alert=alert.model_dump(mode="json"),
                received_at=now,
            )
        )
        return AlertResult(alert_id=alert.id, fingerprint=fingerprint, outcome=outcome, run_id=run_id)

    def _seen(self, s: Session, fingerprint: str, storm: str, now: datetime) -> tuple[str | None, str | None]:
        """In one round trip: the run of the last alert with this fingerprint within the window (a
        duplicate), and the storm's open run: the run its last storm-opening alert started, if that
        run has not finished (its run row's status, else, not started yet, its start job's)."""
        dup = (
            select(AlertRow.run_id)
            .where(AlertRow.fingerprint == fingerprint, AlertRow.received_at >= now - self.window)
            .order_by(AlertRow.received_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        last = (
            select(AlertRow.run_id)
            .where(AlertRow.storm_key == storm, AlertRow.outcome == "started")
            .order_by(AlertRow.received_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        run_status = select(RunRow.status).where(RunRow.id == last).scalar_subquery()
        start_key = literal(start_dedup_key("")) + last
        job_status = select(JobRow.status).where(JobRow.dedup_key == start_key).limit(1).scalar_subquery()
        row = s.execute(
            select(dup.label("dup"), last.label("last"), run_status.label("run"), job_status.label("job"))
        ).one()
        if row.last is None or row.dup is not None:
            return row.dup, None
        if row.run is not None:
            return None, None if row.run in FINAL_STATUSES else row.last
        return None, row.last if row.job in ("queued", "running") else None

    def _now(self) -> datetime:
        now = self.clock.now().astimezone(UTC)
        return now.replace(tzinfo=None) if self.db.is_sqlite else now


def _lock_storms(s: Session, alerts: list[Alert]) -> None:
    """Serialize this delivery with every other delivery about the same storms, and only those.

    Each decision (duplicate? coalesced? start a run?) reads what earlier alerts about its storm
    wrote; alerts with the same fingerprint share a storm key (both come from the labels), so a lock
    per storm key covers dedup and coalescing. One global lock made every ingest wait for every
    other (39 alerts/s on PostgreSQL). Keys are taken in sorted order (no deadlock). A delivery about
    more than :data:`_MAX_STORM_LOCKS` storms takes the global lock exclusively instead, and every
    other delivery takes it shared, so a big batch costs one lock-table slot, not one per storm.
    A replayed webhook id needs no lock: its row's primary key makes the loser retry (see ``ingest``).
    """
    keys = sorted({_lock_id(storm_key(a)) for a in alerts})
    if len(keys) > _MAX_STORM_LOCKS:
        s.execute(text("SELECT pg_advisory_xact_lock(:g)"), {"g": _GLOBAL_LOCK})
        return
    # One round trip; PostgreSQL evaluates a select list left to right: global (shared) first.
    # A delivery with no alerts (an empty batch) still takes the shared lock: the list starts with it.
    select = ["pg_advisory_xact_lock_shared(:g)", *(f"pg_advisory_xact_lock(:k{i})" for i in range(len(keys)))]
    params: dict[str, int] = {"g": _GLOBAL_LOCK, **{f"k{i}": k for i, k in enumerate(keys)}}
    s.execute(text(f"SELECT {', '.join(select)}"), params)


_MAX_STORM_LOCKS = 32


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory lock id for ``key`` (a collision only makes two storms wait in turn)."""
    digest = hashlib.blake2b(f"orderops:alerts:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_GLOBAL_LOCK = _lock_id("*global*")


def alerts_of_run(db: Database, run_id: str) -> list[AlertResult]:
    """The alerts that started or joined ``run_id`` (duplicates included), oldest first."""
    with db.sessions() as s:
        rows = s.scalars(select(AlertRow).where(AlertRow.run_id == run_id).order_by(AlertRow.received_at, AlertRow.id))
        return [
            AlertResult(alert_id=r.external_id, fingerprint=r.fingerprint, outcome=r.outcome, run_id=r.run_id)  # type: ignore[arg-type]
            for r in rows
        ]


_STR_MAP = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 200}}
_GENERIC: dict[str, Any] = {
    "title": "Alert",
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "kind": {"type": "string", "enum": [k.value for k in ExceptionKind if k is not ExceptionKind.UNDO]},
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "labels": _STR_MAP,
        "summary": {"type": "string", "maxLength": 500},
        "text": {"type": "string", "maxLength": 20_000},
        "fired_at": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}
_ALERTMANAGER: dict[str, Any] = {
    "title": "Alertmanager webhook",
    "type": "object",
    "required": ["version", "alerts"],
    "properties": {
        "version": {"type": "string"},
        "receiver": {"type": "string"},
        "groupKey": {"type": "string"},
        "alerts": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "labels": _STR_MAP,
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "startsAt": {"type": "string"},
                    "fingerprint": {"type": "string"},
                },
            },
        },
    },
}
_DATADOG: dict[str, Any] = {
    "title": "Datadog webhook",
    "type": "object",
    "required": ["title", "tags"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "body": {"type": "string"},
        "tags": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "alert_type": {"type": "string"},
        "alert_transition": {"type": "string"},
        "date": {"type": "integer"},
    },
}

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "Our `Alert` (id, kind, severity, labels, summary, text), an Alertmanager webhook "
        '(`{"version": "4", "alerts": [...]}`) or a Datadog webhook (`{"title", "body", "tags"}`).',
        "content": {
            "application/json": {
                "schema": document_no_nul({"anyOf": [_GENERIC, _ALERTMANAGER, _DATADOG]}),
                "example": {
                    "id": "dc-reno-backlog-1",
                    "kind": "node_congestion",
                    "severity": "critical",
                    "labels": {"node": "DC-RENO"},
                    "summary": "DC-RENO backlog at 3 days of capacity",
                },
            }
        },
    },
    "parameters": [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}, "description": d}
        for h, d in (
            (webhooks.ID_HEADER, "Signed deliveries: the delivery id (replays are answered, not redone)."),
            (webhooks.TIMESTAMP_HEADER, "Signed deliveries: seconds since the epoch."),
            (webhooks.SIGNATURE_HEADER, "Signed deliveries: `v1,<base64 HMAC-SHA256>` of `id.timestamp.body`."),
        )
    ],
}


@router.post(
    "",
    status_code=202,
    response_model=AlertsAccepted,
    summary="Receive an alert (ours, Alertmanager or Datadog)",
    responses={
        200: {"model": AlertsAccepted, "description": "Nothing new started (duplicate, coalesced or replayed)"},
        **problem_responses(401, 403, 422),
    },
    openapi_extra=_BODY_DOC,
)
async def post_alert(
    request: Request,
    ctx: Ctx,
    keys: Keys,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(api_key_header)],
    source: Annotated[
        Literal["generic", "alertmanager", "datadog"] | None,
        Query(description="The body's format; detected when not given."),
    ] = None,
) -> JSONResponse:
    """A signed delivery is checked against the webhook secret; anything else needs an operator key.
    202 when a run was started (its id in `run_id`), 200 when nothing new was (see `results`)."""
    settings = ctx.settings
    webhook_id: str | None = None
    # Everything that can be checked without the body is checked before it is read (the body is
    # bounded by settings.max_body_bytes in api.http_guard either way).
    if webhooks.has_signature(request.headers):
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret is not None else None
        webhooks.check_headers(secret, request.headers, tolerance_s=settings.webhook_tolerance_s)
        body = await request.body()
        webhook_id = webhooks.verify(secret, request.headers, body, tolerance_s=settings.webhook_tolerance_s)
        requested_by = WEBHOOK_PRINCIPAL
    else:
        user = current_user(keys, credentials, api_key)
        if not user.has(Role.OPERATOR):
            raise Forbidden(f"{user.id} needs the role operator to post alerts", reasons=["missing role (operator)"])
        requested_by = user.id
        body = await request.body()
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationFailed("the body is not JSON (or nests too deeply)") from exc
    detected, alerts = webhooks.to_alerts(payload, source)
    inbox = AlertInbox(ctx.db, dedup_window_s=settings.alert_dedup_window_s)
    out = await run_in_threadpool(
        inbox.ingest, alerts, source=detected, webhook_id=webhook_id, requested_by=requested_by
    )
    started = any(r.outcome == "started" for r in out.results) and not out.replayed
    return JSONResponse(out.model_dump(mode="json"), status_code=202 if started else 200)
