"""Approvals by e-mail: signed single-use links, reminders, escalation, expiry — and SMTP delivery.

A request waiting for a person is mailed to the approver group (``approval_email_approvers``); each
mail carries an approve and a reject link per recipient. A link is a signed token (HMAC-SHA256 over
its claims: link id, approval, action, person, expiry) whose id is recorded when it is mailed:
opening it (``GET``) only shows a confirm page, because mail scanners fetch links; the page's
``POST`` decides, as the person the link was mailed to, through :func:`services.approvals.decide_step`
(the gateway's checks, then the run carried on). A link decides at most once (its row is marked used
in the same transaction that claims it); a forged, altered, unknown, used or expired link changes
nothing and says why.

The chase is driven by :func:`tick`, a plain function a scheduler calls (``orderops approvals
tick`` from cron, or a scheduled workflow): new requests are mailed, a request still unanswered
``approval_remind_after_minutes`` after it was mailed is reminded once, after
``approval_escalate_after_minutes`` it is mailed to the second group (``approval_email_escalation``),
and once past its expiry it is marked ``expired`` (:meth:`ApprovalStore.expire_due`), its run is
carried on without it, and the people mailed are told. Mail goes through the ``mail_outbox`` table:
delivered over SMTP with retries (backoff), then ``dead`` after ``mail_max_attempts``.

Times are the injected clock's (the wall clock in a real process; tests pass a fixed one).

What this module must never do: decide on a GET, decide twice with one link, trust a link it did not
sign and record, or decide as anyone but the person the link was mailed to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import smtplib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field
from sqlalchemy import select, update

from core.clock import Clock
from core.db import Database
from core.db.tables_mail import ApprovalLinkRow, ApprovalMailRow, MailOutboxRow
from core.db.tables_notify import NotificationRow
from core.errors import Conflict, NotFound, ValidationFailed
from core.settings import Settings, SlackPerson
from guardrails.approvals import ApprovalRequest, ApprovalStatus
from guardrails.calls import Actor
from services.approvals import carry_on, decide_step
from tools.gateway import ToolGateway

Action = Literal["approve", "reject"]
KEY_FILE = "approval-links.key"
LINK_PATH = "/approvals/mail/"
RETRY_BASE_S = 30.0
NOTIFICATION = "customer_notification"
"""Outbox kind of a customer notification taken from the notifier's outbox."""
SMTP_POLICY = email_policy.SMTP.clone(max_line_length=200)
"""CRLF line ends; a subject naming a request id stays on one line (78 would fold it after the colon)."""


# --- signed links -----------------------------------------------------------------------------------


class LinkRefused(ValidationFailed):
    """A link that decides nothing: forged or altered, unknown, already used, expired, or its request
    was decided already. The message says which, for the person who clicked."""

    code = "link_refused"

    @property
    def gone(self) -> bool:
        """A genuine link that can no longer decide (used, expired, its request decided), as opposed
        to one OrderOps did not send."""
        return bool(self.details.get("gone"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LinkSigner:
    """Signs and checks link tokens ``<claims>.<mac>`` (base64url JSON, HMAC-SHA256)."""

    key: bytes

    def sign(self, claims: Mapping[str, Any]) -> str:
        body = _b64(json.dumps(dict(claims), sort_keys=True, separators=(",", ":")).encode())
        return f"{body}.{_b64(self._mac(body))}"

    def verify(self, token: str) -> dict[str, Any]:
        body, _, mac = token.partition(".")
        try:
            good = hmac.compare_digest(_unb64(mac), self._mac(body))
            claims = json.loads(_unb64(body)) if good else None
        except (ValueError, UnicodeDecodeError):
            claims = None
        if not isinstance(claims, dict):
            raise LinkRefused("this link is not one OrderOps sent (its signature does not match); nothing was decided")
        return claims

    def _mac(self, body: str) -> bytes:
        return hmac.new(self.key, body.encode(), hashlib.sha256).digest()


def link_key(settings: Settings) -> bytes:
    """``approval_link_key``, else a random key kept in ``<home>/approval-links.key`` (0600)."""
    if settings.approval_link_key is not None:
        return settings.approval_link_key.get_secret_value().encode()
    path = Path(settings.home) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


# --- delivery ---------------------------------------------------------------------------------------


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """Sends over SMTP with :mod:`smtplib` (STARTTLS and login when configured)."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 15.0

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def smtp_mailer(settings: Settings) -> SmtpMailer | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpMailer(
        settings.smtp_host, settings.smtp_port, settings.smtp_user, password, starttls=settings.smtp_starttls
    )


# --- results ----------------------------------------------------------------------------------------


class TickReport(BaseModel):
    """What one tick did (counts of requests and of e-mails)."""

    mailed: list[str] = Field(default_factory=list, description="Requests mailed for the first time.")
    reminded: list[str] = Field(default_factory=list)
    escalated: list[str] = Field(default_factory=list)
    expired: list[str] = Field(default_factory=list)
    closed: list[str] = Field(default_factory=list, description="Decided elsewhere since they were mailed.")
    sent: int = 0
    failed: int = 0
    dead: int = 0
    queued: int = Field(default=0, description="E-mails still waiting (no SMTP configured, or a retry later).")
    notifications: int = Field(default=0, description="Customer notifications taken into the mail outbox.")


class LinkView(BaseModel):
    """What the confirm page shows (a GET changes nothing)."""

    approval_id: str
    action: Action
    person: str
    tool: str
    summary: str
    orders: int
    status: str
    usable: bool
    problem: str | None = None


class LinkResult(BaseModel):
    approval_id: str
    action: Action
    person: str
    status: str = Field(description="The request's status after the decision.")
    carried_on: str | None = None


# --- the service ------------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Recipient:
    address: str
    person: str
    roles: frozenset[str]


def _group(entries: Mapping[str, SlackPerson]) -> list[Recipient]:
    return [Recipient(addr, p.person, frozenset(p.roles)) for addr, p in sorted(entries.items())]


@dataclass
class ApprovalMail:
    """Mailing, chasing and deciding approval requests by e-mail, on one database and gateway."""

    db: Database
    gateway: ToolGateway
    settings: Settings
    clock: Clock
    signer: LinkSigner
    mailer: Mailer | None = None
    approvers: list[Recipient] = field(default_factory=list)
    escalation: list[Recipient] = field(default_factory=list)

    @classmethod
    def of(cls, db: Database, gateway: ToolGateway, settings: Settings, clock: Clock) -> ApprovalMail:
        """The service as settings describe it (SMTP, groups, link key)."""
        return cls(
            db=db,
            gateway=gateway,
            settings=settings,
            clock=clock,
            signer=LinkSigner(link_key(settings)),
            mailer=smtp_mailer(settings),
            approvers=_group(settings.approval_email_approvers),
            escalation=_group(settings.approval_email_escalation),
        )

    @property
    def base_url(self) -> str:
        return (self.settings.approval_link_base_url or self.settings.slack_link_base_url).rstrip("/")

    def now(self) -> datetime:
        return _utc(self.clock.now())

    # --- the scheduled tick ------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Everything due now: expire, close, mail, remind, escalate, then deliver the outbox."""
        report = TickReport()
        self._expire(report)
        self._chase(report)
        report.notifications = self.adopt_notifications()
        self.deliver(report)
        return report

    def adopt_notifications(self) -> int:
        """Take the customer notifications the ``notify_customer`` tool queued (the notifier's outbox)
        into the mail outbox, once each (the mail keeps the notification's id): delivered over SMTP
        with the same retries and dead letters, and the notification's status follows (sent, dead).
        Only where SMTP is configured: otherwise they stay queued for another connector."""
        if self.mailer is None:
            return 0
        now = self.now()
        with self.db.begin() as session:
            queued = NotificationRow.status == "queued"
            rows = list(session.scalars(select(NotificationRow).where(queued, NotificationRow.channel == "email")))
            for r in rows:
                if session.get(MailOutboxRow, r.id) is None:
                    session.add(
                        MailOutboxRow(
                            id=r.id, kind=NOTIFICATION, approval_id=None, to_address=r.to_address,
                            subject=r.subject[:300], body=r.body, status="queued", attempts=0,
                            next_attempt_at=now, created_at=now,
                        )
                    )  # fmt: skip
                r.status = "outboxed"
        return len(rows)

    def _expire(self, report: TickReport) -> None:
        for req in self.gateway.guard.approvals.expire_due():
            report.expired.append(req.id)
            mailed = self._stage(req.id)
            if mailed is not None and self._move(req.id, mailed.stage, "expired"):
                for who in self._mailed_to(req.id):
                    self._queue(
                        who.address,
                        req,
                        "expired",
                        f"Expired: approval {req.id} ({req.tool})",
                        f"Nobody decided approval request {req.id} before it expired at "
                        f"{_utc(req.expires_at):%Y-%m-%d %H:%M} UTC, so it will not be carried out. Its run "
                        "carries on without it.\n",
                    )
            carry_on(self.gateway, self.db, req)  # its run goes on without the step

    def _chase(self, report: TickReport) -> None:
        now = self.now()
        pending = {r.id: r for r in self.gateway.guard.approvals.list_pending()}
        with self.db.sessions() as session:
            open_rows = list(
                session.scalars(select(ApprovalMailRow).where(ApprovalMailRow.stage.in_(("mailed", "reminded"))))
            )
            known = set(session.scalars(select(ApprovalMailRow.approval_id)))
        for row in open_rows:
            req = pending.get(row.approval_id)
            if req is None:  # decided (console, CLI, API, Slack, a link) since it was mailed
                if self._move(row.approval_id, row.stage, "closed"):
                    report.closed.append(row.approval_id)
                continue
            waited = now - _utc(row.mailed_at)
            escalate = bool(self.escalation) and waited >= timedelta(
                minutes=self.settings.approval_escalate_after_minutes
            )
            remind = row.stage == "mailed" and waited >= timedelta(minutes=self.settings.approval_remind_after_minutes)
            if escalate and self._move(req.id, row.stage, "escalated"):
                self._mail_request(req, self._eligible(req, self.escalation), "escalation")
                report.escalated.append(req.id)
            elif not escalate and remind and self._move(req.id, "mailed", "reminded"):
                self._mail_request(req, self._eligible(req, self.approvers), "reminder")
                report.reminded.append(req.id)
        for req in pending.values():
            if req.id in known:
                continue
            recipients = self._eligible(req, self.approvers)
            if not recipients:
                continue
            if self._start(req.id):
                self._mail_request(req, recipients, "request")
                report.mailed.append(req.id)

    @staticmethod
    def _after(minutes: float) -> timedelta:
        return timedelta(minutes=minutes)

    @staticmethod
    def _eligible(req: ApprovalRequest, group: Sequence[Recipient]) -> list[Recipient]:
        """Who in ``group`` may decide ``req``: holds its roles, and did not ask for it."""
        need = set(req.required_roles)
        return [r for r in group if need <= r.roles | ({"approver"} if "admin" in r.roles else set())
                and r.person != req.requester_id]  # fmt: skip

    # --- stages (compare-and-set, so a tick run twice sends nothing twice) ---------------------------

    def _stage(self, approval_id: str) -> ApprovalMailRow | None:
        with self.db.sessions() as session:
            return session.get(ApprovalMailRow, approval_id)

    def _start(self, approval_id: str) -> bool:
        with self.db.begin() as session:
            if session.get(ApprovalMailRow, approval_id) is not None:
                return False
            session.add(ApprovalMailRow(approval_id=approval_id, stage="mailed", mailed_at=self.now()))
        return True

    def _move(self, approval_id: str, old: str, new: str) -> bool:
        stamp = {"reminded": "reminded_at", "escalated": "escalated_at"}.get(new, "closed_at")
        with self.db.begin() as session:
            res = session.execute(
                update(ApprovalMailRow)
                .where(ApprovalMailRow.approval_id == approval_id, ApprovalMailRow.stage == old)
                .values(stage=new, **{stamp: self.now()})
                .execution_options(synchronize_session=False)
            )
            return getattr(res, "rowcount", 0) == 1

    def _mailed_to(self, approval_id: str) -> list[Recipient]:
        with self.db.sessions() as session:
            rows = session.scalars(select(ApprovalLinkRow).where(ApprovalLinkRow.approval_id == approval_id))
            seen = {(r.address, r.person) for r in rows}
        return [Recipient(address, person, frozenset()) for address, person in sorted(seen)]

    # --- composing ---------------------------------------------------------------------------------

    def _mail_request(self, req: ApprovalRequest, recipients: Sequence[Recipient], kind: str) -> None:
        preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
        lead = {
            "request": "An OrderOps change waits for your approval.",
            "reminder": "Reminder: this OrderOps change still waits for an approval.",
            "escalation": "Escalated to you: nobody has approved or rejected this OrderOps change yet.",
        }[kind]
        subject = {"request": "Approval needed", "reminder": "Reminder", "escalation": "Escalated"}[kind]
        for who in recipients:
            approve, reject = (self._link(req, who, a) for a in ("approve", "reject"))
            body = (
                f"{lead}\n\n"
                f"Request: {req.id}\nRun: {req.run_id or '-'}\nTool: {req.tool}\n"
                f"What: {preview.get('summary', '')}\nOrders: {len(req.items)}\n"
                f"Cost change (USD): {preview.get('cost_delta', '-')}\n"
                f"Late orders before -> after: {preview.get('late_before', '-')} -> {preview.get('late_after', '-')}\n"
                f"Expires: {_utc(req.expires_at):%Y-%m-%d %H:%M} UTC\n\n"
                f"Approve: {approve}\nReject (asks for a reason): {reject}\n\n"
                "Each link works once, only for you, until the request expires. Opening it shows a page to "
                "confirm; nothing is decided until you press the button there.\n"
            )
            self._queue(who.address, req, kind, f"{subject}: {req.tool} ({req.id})", body)

    def _link(self, req: ApprovalRequest, who: Recipient, action: Action) -> str:
        link_id = uuid.uuid4().hex
        expires = _utc(req.expires_at)
        with self.db.begin() as session:
            session.add(
                ApprovalLinkRow(
                    id=link_id,
                    approval_id=req.id,
                    action=action,
                    person=who.person,
                    address=who.address,
                    created_at=self.now(),
                    expires_at=expires,
                )
            )
        claims = {"l": link_id, "a": req.id, "d": action, "p": who.person, "e": int(expires.timestamp())}
        return f"{self.base_url}{LINK_PATH}{self.signer.sign(claims)}"

    def _queue(self, to: str, req: ApprovalRequest, kind: str, subject: str, body: str) -> None:
        now = self.now()
        with self.db.begin() as session:
            session.add(
                MailOutboxRow(
                    id=uuid.uuid4().hex,
                    kind=f"approval_{kind}",
                    approval_id=req.id,
                    to_address=to,
                    subject=subject[:300],
                    body=body,
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    # --- the outbox ----------------------------------------------------------------------------------

    def deliver(self, report: TickReport | None = None) -> TickReport:
        """Send what is due over SMTP; a failure is retried with backoff, then dead-lettered."""
        report = report or TickReport()
        now = self.now()
        with self.db.sessions() as session:
            due = [
                (r.id, r.attempts, r.kind)
                for r in session.scalars(select(MailOutboxRow).where(MailOutboxRow.status == "queued"))
                if _utc(r.next_attempt_at) <= now
            ]
        if self.mailer is None:
            report.queued += len(due)
            return report
        for row_id, attempts, kind in due:
            if not self._claim(row_id, attempts):  # another tick took it
                continue
            with self.db.sessions() as session:
                row = session.get(MailOutboxRow, row_id)
                assert row is not None
                message = self._message(row)
            try:
                self.mailer.send(message)
            except (OSError, smtplib.SMTPException) as exc:
                dead = attempts + 1 >= self.settings.mail_max_attempts
                retry = now + timedelta(seconds=RETRY_BASE_S * 2**attempts)
                self._set(row_id, status="dead" if dead else "queued", last_error=f"{type(exc).__name__}: {exc}"[:500],
                          next_attempt_at=retry)  # fmt: skip
                report.failed += 1
                report.dead += int(dead)
                if dead and kind == NOTIFICATION:
                    self._notification(row_id, "dead")
                continue
            self._set(row_id, status="sent", sent_at=self.now(), last_error=None)
            if kind == NOTIFICATION:
                self._notification(row_id, "sent")
            report.sent += 1
        return report

    def _notification(self, row_id: str, status: str) -> None:
        with self.db.begin() as session:
            session.execute(update(NotificationRow).where(NotificationRow.id == row_id).values(status=status))

    def _claim(self, row_id: str, attempts: int) -> bool:
        with self.db.begin() as session:
            res = session.execute(
                update(MailOutboxRow)
                .where(MailOutboxRow.id == row_id, MailOutboxRow.status == "queued", MailOutboxRow.attempts == attempts)
                .values(attempts=attempts + 1)
                .execution_options(synchronize_session=False)
            )
            return getattr(res, "rowcount", 0) == 1

    def _set(self, row_id: str, **values: Any) -> None:
        with self.db.begin() as session:
            session.execute(update(MailOutboxRow).where(MailOutboxRow.id == row_id).values(**values))

    def _message(self, row: MailOutboxRow) -> EmailMessage:
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = self.settings.mail_from
        message["To"] = row.to_address
        message["Subject"] = row.subject
        message["Message-ID"] = f"<{row.id}@orderops>"
        message.set_content(row.body)
        return message

    def outbox(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """The outbox (``status="dead"``: the dead letters), newest first, without bodies."""
        with self.db.sessions() as session:
            stmt = select(MailOutboxRow).order_by(MailOutboxRow.created_at.desc())
            if status is not None:
                stmt = stmt.where(MailOutboxRow.status == status)
            return [
                {"id": r.id, "kind": r.kind, "approval_id": r.approval_id, "to": r.to_address, "subject": r.subject,
                 "status": r.status, "attempts": r.attempts, "last_error": r.last_error}
                for r in session.scalars(stmt)
            ]  # fmt: skip

    # --- clicking a link -----------------------------------------------------------------------------

    def _check(self, token: str) -> tuple[dict[str, Any], ApprovalLinkRow, ApprovalRequest]:
        claims = self.signer.verify(token)
        with self.db.sessions() as session:
            link = session.get(ApprovalLinkRow, str(claims.get("l", "")))
        if link is None or link.approval_id != claims.get("a") or link.action != claims.get("d"):
            raise LinkRefused("this link is not one OrderOps sent; nothing was decided")
        try:
            req = self.gateway.guard.approvals.get(link.approval_id)
        except NotFound as exc:
            raise LinkRefused("the request this link was for no longer exists; nothing was decided") from exc
        return claims, link, req

    def _problem(self, link: ApprovalLinkRow, req: ApprovalRequest) -> str | None:
        if link.used_at is not None:
            return "this link was used already; it works once"
        if self.now() >= _utc(link.expires_at):
            return "this link has expired; nothing was decided"
        if req.status != ApprovalStatus.PENDING:
            return f"this request is {req.status.value} already; nothing more to decide"
        return None

    def view(self, token: str) -> LinkView:
        """What the link would do, for the confirm page. Changes nothing (mail scanners prefetch GETs)."""
        _, link, req = self._check(token)
        preview: dict[str, Any] = req.preview if isinstance(req.preview, dict) else {}
        problem = self._problem(link, req)
        return LinkView(
            approval_id=req.id,
            action="reject" if link.action == "reject" else "approve",
            person=link.person,
            tool=req.tool,
            summary=str(preview.get("summary", "")),
            orders=len(req.items),
            status=req.status.value,
            usable=problem is None,
            problem=problem,
        )

    def use(self, token: str, *, reason: str | None = None) -> LinkResult:
        """Decide as the link says, once: the link is claimed (marked used) first, so a second click,
        a replay or two clicks at once find it used; the decision then goes through the gateway's
        checks and carries the run on. A refused decision (say, the requester's own link) gives the
        link back unused."""
        _, link, req = self._check(token)
        problem = self._problem(link, req)
        if problem is not None:
            raise LinkRefused(problem, gone=True)
        action: Action = "reject" if link.action == "reject" else "approve"
        if action == "reject" and not (reason and reason.strip()):
            raise ValidationFailed("a rejection needs a reason")
        approver = Actor(kind="user", id=link.person, roles=self._roles_of(link))
        if not self._claim_link(link.id):
            raise LinkRefused("this link was used already; it works once", gone=True)
        try:
            decided = decide_step(
                self.gateway, self.db, req.id, approver=approver, decision=action, reason=reason, enqueue=False
            ).request
        except (Conflict, ValidationFailed, NotFound) as exc:
            self._release_link(link.id)
            raise LinkRefused(f"{exc.message}; nothing was decided", gone=isinstance(exc, Conflict)) from exc
        except Exception:
            self._release_link(link.id)
            raise
        carried = carry_on(self.gateway, self.db, decided) if decided.status != ApprovalStatus.PENDING else None
        return LinkResult(
            approval_id=req.id, action=action, person=link.person, status=decided.status.value, carried_on=carried
        )

    def _roles_of(self, link: ApprovalLinkRow) -> frozenset[str]:
        """The person's roles as configured now (a person removed from the groups decides nothing)."""
        for who in (*self.approvers, *self.escalation):
            if who.address == link.address and who.person == link.person:
                return who.roles | ({"approver"} if "admin" in who.roles else frozenset())
        raise LinkRefused(f"{link.address} is no longer an approver here; nothing was decided")

    def _claim_link(self, link_id: str) -> bool:
        with self.db.begin() as session:
            res = session.execute(
                update(ApprovalLinkRow)
                .where(ApprovalLinkRow.id == link_id, ApprovalLinkRow.used_at.is_(None))
                .values(used_at=self.now())
                .execution_options(synchronize_session=False)
            )
            return getattr(res, "rowcount", 0) == 1

    def _release_link(self, link_id: str) -> None:
        with self.db.begin() as session:
            session.execute(update(ApprovalLinkRow).where(ApprovalLinkRow.id == link_id).values(used_at=None))


def tick(db: Database, gateway: ToolGateway, settings: Settings, clock: Clock) -> TickReport:
    """One scheduled tick (what ``orderops approvals tick`` and a scheduled workflow call)."""
    return ApprovalMail.of(db, gateway, settings, clock).tick()
