"""Approvals by e-mail, through a real SMTP server on loopback (aiosmtpd) and the app's link pages.

A parked run's approval requests are mailed to the approver group by the scheduled tick; a link
approves exactly once (opening it decides nothing; a second click, a forged or an altered link, and
an expired one change nothing); an unanswered request is reminded, then escalated to the second
group, then expired by the tick, which carries its run on and tells the people mailed. Mail that
cannot be delivered is retried, then dead-lettered. The clock is injected (a fixed clock, moved)."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.bootstrap import AppContext
from core.clock import FixedClock
from core.db import Database
from core.db.tables import ApprovalRequestRow
from core.outbox import CONTINUE_RUN, Outbox
from core.settings import Settings
from guardrails.approvals import ApprovalStatus
from services.approval_mail import ApprovalMail, LinkSigner, TickReport
from tests.api.conftest import Api, build_api
from tests.console.conftest import start_parked_run

BASE = "http://testserver"
APPROVERS = {
    "amir@example.com": {"person": "amir", "roles": ["approver"]},
    "olivia@example.com": {"person": "olivia", "roles": ["approver"]},  # the runs' requester: never mailed
}
ESCALATION = {"ada@example.com": {"person": "ada", "roles": ["admin"]}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps every message delivered to it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if str(m["To"]) == address]


@dataclass
class Env:
    api: Api
    actx: AppContext
    clock: FixedClock
    inbox: Inbox
    client: TestClient
    approvals: list[str]

    def service(self) -> ApprovalMail:
        return ApprovalMail.of(self.actx.db, self.actx.gateway, self.actx.settings, self.clock)

    def tick(self) -> TickReport:
        return self.service().tick()

    def status(self, approval_id: str) -> ApprovalStatus:
        return self.actx.guard.approvals.get(approval_id).status

    def stored_status(self, approval_id: str) -> str:
        """The status as stored (``get`` would read an overdue request as expired by itself)."""
        with self.actx.db.sessions() as s:
            return str(s.scalar(select(ApprovalRequestRow.status).where(ApprovalRequestRow.id == approval_id)))


def settings_for(api: Api, home: Path, port: int, **kw: Any) -> Settings:
    return Settings(
        home=home,
        database_url=api.net.db.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        approval_email_approvers=APPROVERS,
        approval_email_escalation=ESCALATION,
        approval_link_base_url=BASE,
        approval_link_key="test-link-key-" + "x" * 20,
        **kw,
    )


@pytest.fixture
def env(sqlite_db: Database, tmp_path: Path) -> Iterator[Env]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        api = build_api(sqlite_db, tmp_path / "home")
        run, _ = start_parked_run(api)
        actx = dataclasses.replace(api.actx, settings=settings_for(api, tmp_path / "home", port))
        assert isinstance(actx.clock, FixedClock)
        with TestClient(create_app(actx, keys=api.keys)) as client:
            ids = [str(a["approval_id"]) for a in run.approvals]
            yield Env(api=api, actx=actx, clock=actx.clock, inbox=inbox, client=client, approvals=ids)
    finally:
        controller.stop()


def links(message: Message, approval_id: str) -> dict[str, str]:
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode().replace("\r\n", "\n")
    assert f"Request: {approval_id}" in text
    found = {
        "approve": re.search(r"^Approve: (\S+)$", text, re.M),
        "reject": re.search(r"^Reject \(asks for a reason\): (\S+)$", text, re.M),
    }
    out = {k: m.group(1).removeprefix(BASE) for k, m in found.items() if m}
    assert set(out) == {"approve", "reject"}
    return out


def mail_for(env: Env, address: str, approval_id: str, subject: str) -> Message:
    found = [
        m for m in env.inbox.to(address) if approval_id in str(m["Subject"]) and str(m["Subject"]).startswith(subject)
    ]
    assert found, f"no {subject!r} mail to {address} for {approval_id}"
    return found[-1]


def test_a_mailed_link_approves_exactly_once(env: Env) -> None:
    report = env.tick()
    assert sorted(report.mailed) == sorted(env.approvals)
    assert report.sent == len(env.approvals)  # one mail per request, to amir only
    assert env.inbox.to("olivia@example.com") == [], "the requester is never asked to approve her own run"
    first = env.approvals[0]
    mail = mail_for(env, "amir@example.com", first, "Approval needed")
    link = links(mail, first)

    # Opening the link (a mail scanner's prefetch, or the person) only shows what it would do.
    page = env.client.get(link["approve"])
    assert page.status_code == 200
    assert "Approve this change?" in page.text
    assert env.status(first) == ApprovalStatus.PENDING

    done = env.client.post(link["approve"])
    assert done.status_code == 200, done.text
    assert "Approved" in done.text
    req = env.actx.guard.approvals.get(first)
    assert req.status == ApprovalStatus.APPROVED
    assert [(d.approver_id, d.decision.value) for d in req.decisions] == [("amir", "approve")]
    job = Outbox(env.actx.db).get_by_dedup_key(f"{CONTINUE_RUN}:{first}:1")
    assert job is not None, "the approval carried the run on (its continue job is queued)"

    # A second click, and the same request's reject link, change nothing.
    again = env.client.post(link["approve"])
    assert again.status_code == 409
    assert "used already" in again.text
    assert env.client.get(link["approve"]).status_code == 409
    late = env.client.post(link["reject"], data={"reason": "changed my mind"})
    assert late.status_code == 409
    assert len(env.actx.guard.approvals.get(first).decisions) == 1

    # Another tick notices the decision and mails nothing more about it.
    assert first in env.tick().closed


def test_forged_and_altered_links_change_nothing(env: Env) -> None:
    env.tick()
    if len(env.approvals) < 2:
        pytest.skip("the parked run has one approval")
    target = env.approvals[1]
    link = links(mail_for(env, "amir@example.com", target, "Approval needed"), target)
    token = link["approve"].rsplit("/", 1)[1]
    body, mac = token.split(".")
    tampered_mac = f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    forged = LinkSigner(b"not the installation's key").sign({"l": "x", "a": target, "d": "approve", "p": "amir"})
    # claims re-signed with the right key but naming a link id never mailed
    unknown = LinkSigner(b"test-link-key-" + b"x" * 20).sign({"l": "f" * 32, "a": target, "d": "approve", "p": "amir"})
    for bad in (tampered_mac, forged, unknown, "garbage", "a.b"):
        for method in (env.client.get, env.client.post):
            r = method(f"/approvals/mail/{bad}")
            assert r.status_code == 400, (bad, r.text)
            assert "not one OrderOps sent" in r.text
    assert env.status(target) == ApprovalStatus.PENDING
    # A reject link needs a reason; without one nothing is decided and the link stays usable.
    no_reason = env.client.post(link["reject"])
    assert no_reason.status_code == 400
    assert "needs a reason" in no_reason.text
    assert env.status(target) == ApprovalStatus.PENDING
    rejected = env.client.post(link["reject"], data={"reason": "too costly"})
    assert rejected.status_code == 200
    assert env.status(target) == ApprovalStatus.REJECTED


def test_an_unanswered_request_is_reminded_then_escalated_then_expired(env: Env) -> None:
    aid = env.approvals[0]
    env.tick()
    first_link = links(mail_for(env, "amir@example.com", aid, "Approval needed"), aid)
    sent = len(env.inbox.messages)

    env.clock.advance(timedelta(minutes=30))
    assert env.tick().reminded == [], "not due yet"
    env.clock.advance(timedelta(minutes=31))
    report = env.tick()
    assert aid in report.reminded
    reminder = mail_for(env, "amir@example.com", aid, "Reminder")
    assert links(reminder, aid)
    assert env.tick().reminded == [], "reminded once"
    assert env.inbox.to("ada@example.com") == []

    env.clock.advance(timedelta(minutes=60))
    report = env.tick()
    assert aid in report.escalated
    escalated = mail_for(env, "ada@example.com", aid, "Escalated")
    ada_link = links(escalated, aid)
    assert env.tick().escalated == [], "escalated once"
    assert len(env.inbox.messages) > sent

    expires = env.actx.guard.approvals.get(aid).expires_at
    now = env.clock.now()
    env.clock.advance(expires.replace(tzinfo=now.tzinfo) - now + timedelta(seconds=1))
    assert env.stored_status(aid) == "pending", "until the tick runs, only reads say expired"
    report = env.tick()
    assert aid in report.expired
    assert env.stored_status(aid) == "expired"
    assert mail_for(env, "amir@example.com", aid, "Expired")
    assert mail_for(env, "ada@example.com", aid, "Expired")
    assert Outbox(env.actx.db).get_by_dedup_key(f"{CONTINUE_RUN}:{aid}:0") is not None, "its run carries on"

    # Every link mailed for it is now dead: nothing is decided.
    for path in (first_link["approve"], ada_link["approve"]):
        r = env.client.post(path)
        assert r.status_code == 409
        assert "expired" in r.text
    assert env.actx.guard.approvals.get(aid).decisions == []
    assert env.tick().expired == [], "expired once"


def test_undeliverable_mail_is_retried_then_dead_lettered(env: Env) -> None:
    closed = _free_port()  # nothing listens here
    settings = dataclasses.replace(env.actx, settings=settings_for(env.api, env.actx.settings.home, closed,
                                                                   mail_max_attempts=2)).settings  # fmt: skip
    service = ApprovalMail.of(env.actx.db, env.actx.gateway, settings, env.clock)
    first = service.tick()
    assert first.failed == len(env.approvals)
    assert first.dead == 0
    assert service.tick().failed == 0, "not retried before its backoff"
    env.clock.advance(timedelta(seconds=31))
    second = service.tick()
    assert second.dead == len(env.approvals)
    dead = service.outbox(status="dead")
    assert len(dead) == len(env.approvals)
    assert all(d["attempts"] == 2 and "ConnectionRefusedError" in (d["last_error"] or "") for d in dead)
    assert env.inbox.messages == []


def test_the_notifier_outbox_is_delivered_once(env: Env) -> None:
    from tools.adapters.protocols import Notification

    notifier = env.api.net.adapters.notifier
    customer = env.api.net.adapters.oms.list_customers()[0]
    [nid] = notifier.queue(
        [Notification(customer_id=customer.id, order_ids=["ORD-1"], subject="Your order ships from Reno", body="Hi")],
        key="test-notify",
    )
    report = env.tick()
    assert report.notifications == 1
    [sent] = env.inbox.to(customer.email)
    assert str(sent["Subject"]) == "Your order ships from Reno"
    assert next(n for n in notifier.queued() if n["id"] == nid)["status"] == "sent"
    assert env.tick().notifications == 0
    assert len(env.inbox.to(customer.email)) == 1
