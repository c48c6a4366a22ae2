"""Real time for records, the seeded date only for the twin where asked (issue 15, problem 4).

The clock used to be frozen at the seeded business date: every run, approval and audit row read
09:00:00, approvals that had expired weeks ago could be approved, and a dead worker's claim was
timed on a clock that never moved."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from api.bootstrap import open_context
from api.cli import run as cli
from core.clock import FixedClock, SystemClock
from core.netgen import NetworkSpec
from core.settings import Settings
from guardrails.audit import AuditEvent, EventType


def seeded(tmp_path: Path, clock: str) -> Settings:
    settings = Settings(home=tmp_path, clock=clock)  # type: ignore[arg-type]
    env = {"ORDEROPS_HOME": str(tmp_path), "ORDEROPS_CLOCK": clock, "ORDEROPS_ORDERS": "300"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert cli(["init", "--json"]) == 0
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return settings


def test_the_default_clock_is_the_wall_clock_and_init_seeds_today() -> None:
    assert Settings.model_fields["clock"].default == "system"


def test_records_are_stamped_with_real_time_even_on_the_seeded_business_date(tmp_path: Path) -> None:
    actx = open_context(seeded(tmp_path, "network"))
    try:
        assert isinstance(actx.twin_clock, FixedClock)
        assert actx.twin_clock.today() == NetworkSpec().business_date
        assert isinstance(actx.clock, SystemClock)
        before = datetime.now(UTC)
        row = actx.guard.audit.append(AuditEvent(event_type=EventType.NOTE, actor="tester"))
        req = actx.guard.approvals.create(
            tool="hold_orders", arguments={"order_ids": ["X"]}, preview={}, requester_id="o"
        )
        after = datetime.now(UTC)
        stamp = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)
        assert before - timedelta(seconds=1) <= req.created_at <= after + timedelta(seconds=1)
        assert req.expires_at > after  # four hours from now, not from the seeded 09:00
    finally:
        actx.close()


def test_a_real_installation_is_seeded_as_of_today(tmp_path: Path) -> None:
    actx = open_context(seeded(tmp_path, "system"))
    try:
        assert isinstance(actx.twin_clock, SystemClock)
        from api.bootstrap import network_meta

        seeded_on = date.fromisoformat(network_meta(actx.db)["business_date"])
        today = datetime.now(UTC).date()
        assert seeded_on in (today, today - timedelta(days=1))  # a run across midnight UTC
    finally:
        actx.close()
