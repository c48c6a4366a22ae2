"""What workers run on a schedule, and the small object a worker's idle loop calls.

The tasks come from settings (``schedule_watch_minutes``, ``schedule_approvals_minutes``; unset means
not scheduled, except that the approval-mail tick runs every minute once SMTP is configured): the
watch (:func:`api.cli_watch.watch_once`: findings become alerts in the inbox, which dedups,
coalesces and opens runs) and the approval-mail tick (:func:`services.approval_mail.tick`). When
each runs is :mod:`services.schedule`'s: once per
interval across every worker on the database.

What this module must never do: run a task itself outside :func:`services.schedule.run_due`, or let a
scheduled task's failure reach the worker's claim loop.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from api.bootstrap import AppContext
from core.settings import Settings
from services.schedule import ScheduledTask, run_due

__all__ = ["WorkerSchedule", "worker_tasks"]

log = logging.getLogger(__name__)
CHECK_S = 5.0
DEFAULT_APPROVALS_MINUTES = 1.0
"""The approval-mail tick's interval when an SMTP server is configured and no interval is set."""
"""How often an idle worker asks the database whether a task is due (a due task waits at most this)."""


def worker_tasks(actx: AppContext) -> list[ScheduledTask]:
    """The scheduled tasks the settings ask for, bound to ``actx``."""
    s = actx.settings
    tasks: list[ScheduledTask] = []
    if s.schedule_watch_minutes:

        def watch() -> None:
            from api.cli_watch import watch_once  # the CLI module: imported only when the task runs

            watch_once(actx)

        tasks.append(ScheduledTask("watch", timedelta(minutes=s.schedule_watch_minutes), watch))
    approvals_every = approvals_minutes(s)
    if approvals_every:

        def approvals_tick() -> None:
            from services.approval_mail import tick

            tick(actx.db, actx.gateway, actx.settings, actx.clock)

        tasks.append(ScheduledTask("approvals_tick", timedelta(minutes=approvals_every), approvals_tick))
    return tasks


def approvals_minutes(s: Settings) -> float | None:
    """How often workers run the approval-mail tick: the setting, or every minute once an SMTP server
    is configured (the tick mails, reminds, escalates and expires approvals and delivers the outbox,
    customer notifications included), so nothing waits on someone setting up cron; None: not
    scheduled."""
    if s.schedule_approvals_minutes:
        return s.schedule_approvals_minutes
    return DEFAULT_APPROVALS_MINUTES if s.smtp_host else None


class WorkerSchedule:
    """Called from a worker's idle loop: at most every :data:`CHECK_S` seconds, run what is due."""

    def __init__(self, actx: AppContext, worker_id: str, *, check_s: float = CHECK_S) -> None:
        self.actx = actx
        self.worker_id = worker_id
        self.check_s = check_s
        self.tasks = worker_tasks(actx)
        self._last = float("-inf")

    def run_due(self) -> list[str]:
        """The tasks run now (none when nothing is scheduled, or checked less than ``check_s`` ago)."""
        now = time.monotonic()
        if not self.tasks or now - self._last < self.check_s:
            return []
        self._last = now
        try:
            return run_due(self.actx.db, self.tasks, self.actx.clock.now(), by=self.worker_id)
        except Exception:  # a database hiccup: the next idle turn asks again
            log.exception("worker %s: the schedule could not be read", self.worker_id)
            return []
