"""Workers' scheduled tasks (issue 18 item 3): with ``schedule_watch_minutes`` set, a worker's idle
turn runs the watch, which raises the alert about a closed node; a second worker on the same
database at the same moment runs nothing (the watch ran this interval); unset, nothing is scheduled."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from api.bootstrap import open_context
from api.cli_network import seed_network
from api.scheduled import WorkerSchedule, worker_tasks
from core.db.tables_jobs import AlertRow
from core.netgen import NetworkSpec
from core.settings import Settings, SlackPerson


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("scheduled")
    seed_network(
        Settings(home=home, clock="network"), NetworkSpec(orders=300, skus=80), reset=False, show_progress=False
    )
    return home


@pytest.fixture
def home(seeded_home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(seeded_home, target)
    return target


def test_an_idle_worker_runs_the_watch_once_per_interval_across_workers(home: Path) -> None:
    settings = Settings(home=home, clock="network", schedule_watch_minutes=5)
    ctx = open_context(settings)
    try:
        with ctx.db.engine.begin() as conn:
            conn.execute(text("update nodes set status = 'closed' where id = 'DC-DALLAS'"))
        first, second = WorkerSchedule(ctx, "w1", check_s=0), WorkerSchedule(ctx, "w2", check_s=0)
        assert first.run_due() == ["watch"]
        assert second.run_due() == []
        assert first.run_due() == []
        with ctx.db.sessions() as s:
            assert s.scalar(select(func.count()).select_from(AlertRow)) == 1
    finally:
        ctx.close()


def test_nothing_is_scheduled_unless_settings_ask(home: Path) -> None:
    ctx = open_context(Settings(home=home, clock="network"))
    try:
        assert worker_tasks(ctx) == []
        assert WorkerSchedule(ctx, "w1", check_s=0).run_due() == []
    finally:
        ctx.close()
    ctx = open_context(Settings(home=home, clock="network", schedule_approvals_minutes=1, schedule_watch_minutes=5))
    try:
        assert [t.name for t in worker_tasks(ctx)] == ["watch", "approvals_tick"]
        assert WorkerSchedule(ctx, "w1", check_s=0).run_due() == ["watch", "approvals_tick"]
    finally:
        ctx.close()


def test_with_smtp_configured_the_mail_tick_runs_every_minute_without_a_schedule_setting(home: Path) -> None:
    approvers = {"amir@example.com": SlackPerson(person="amir", roles=["approver"])}
    ctx = open_context(Settings(home=home, clock="network", smtp_host="127.0.0.1", approval_email_approvers=approvers))
    try:
        [task] = worker_tasks(ctx)
        assert (task.name, task.every) == ("approvals_tick", timedelta(minutes=1))
    finally:
        ctx.close()
    # an explicit interval wins; no SMTP server and no interval: nothing to deliver, nothing scheduled
    ctx = open_context(Settings(home=home, clock="network", smtp_host="127.0.0.1", schedule_approvals_minutes=3))
    try:
        assert [t.every for t in worker_tasks(ctx)] == [timedelta(minutes=3)]
    finally:
        ctx.close()
