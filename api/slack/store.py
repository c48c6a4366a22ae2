"""Slack bookkeeping on the project database: handled deliveries, approval cards, run threads.

What this module must never do: report a delivery as new twice (the insert of its key is the test,
so two servers racing on one retry agree on which of them handles it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.db.engine import Database
from core.db.tables_slack import SlackCardRow, SlackSeenRow, SlackThreadRow


class SlackStore:
    """Keyword-light repository over the ``slack_*`` tables (wall-clock times: bookkeeping, not business)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def first_time(self, key: str, kind: str) -> bool:
        """Record delivery ``key``; False when it was recorded before (a retry or a replay)."""
        try:
            with self.db.begin() as s:
                if s.get(SlackSeenRow, key) is not None:
                    return False
                s.add(SlackSeenRow(key=key, kind=kind, received_at=datetime.now(UTC)))
        except IntegrityError:  # another process recorded it between our read and our insert
            return False
        return True

    def seen_count(self) -> int:
        with self.db.sessions() as s:
            return len(s.scalars(select(SlackSeenRow.key)).all())

    # --- approval cards ---------------------------------------------------------------------------

    def card(self, approval_id: str) -> SlackCardRow | None:
        with self.db.sessions() as s:
            return s.get(SlackCardRow, approval_id)

    def cards_of_run(self, run_id: str) -> list[SlackCardRow]:
        with self.db.sessions() as s:
            return list(s.scalars(select(SlackCardRow).where(SlackCardRow.run_id == run_id)))

    def add_card(self, *, approval_id: str, run_id: str | None, channel: str, ts: str, status: str) -> None:
        now = datetime.now(UTC)
        with self.db.begin() as s:
            s.add(
                SlackCardRow(
                    approval_id=approval_id,
                    run_id=run_id,
                    channel=channel,
                    ts=ts,
                    status=status,
                    posted_at=now,
                    updated_at=now,
                )
            )

    def set_card_status(self, approval_id: str, status: str) -> None:
        with self.db.begin() as s:
            row = s.get(SlackCardRow, approval_id)
            if row is not None:
                row.status, row.updated_at = status, datetime.now(UTC)

    # --- run threads ------------------------------------------------------------------------------

    def add_thread(self, *, run_id: str, channel: str, thread_ts: str, user_id: str) -> None:
        with self.db.begin() as s:
            s.add(
                SlackThreadRow(
                    run_id=run_id, channel=channel, thread_ts=thread_ts, user_id=user_id, created_at=datetime.now(UTC)
                )
            )

    def thread(self, run_id: str) -> SlackThreadRow | None:
        with self.db.sessions() as s:
            return s.get(SlackThreadRow, run_id)
