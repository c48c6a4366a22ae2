"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Slack: retried-event dedup, approval messages posted (channel, ts) to update in place.

* ``slack_seen`` remembers every verified Slack request handled, by event id (Events API) or by the
  hash of its signed body (commands, interactions), so a retry or a replay does nothing twice.
* ``slack_cards`` says where the approval card of each request was posted (channel + ts), so a
  decision taken anywhere (Slack, API, console) updates that message in place.
* ``slack_threads`` links a run started from a Slack conversation to its thread, for updates.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "SlackCardRow", "SlackSeenRow", "SlackThreadRow"]


class SlackSeenRow(Base):
    """One handled Slack delivery; a second one with the same key is acknowledged and ignored."""

    __tablename__ = "slack_seen"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    """``event:<event_id>`` or ``body:<sha256 of the raw body>``."""
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SlackCardRow(Base):
    """The Slack message showing one approval request."""

    __tablename__ = "slack_cards"
    __table_args__ = (Index("ix_slack_cards_run", "run_id"),)
    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    """The request's status the message last showed (``pending`` until a decision is shown)."""
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SlackThreadRow(Base):
    """A run started from a Slack message, and the thread its updates go to."""

    __tablename__ = "slack_threads"
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
