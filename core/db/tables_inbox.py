"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Email inbox: IMAP UIDs seen per mailbox, Message-IDs ingested.

* ``inbox_cursors`` remembers, per mailbox and UIDVALIDITY, the highest UID the poller has
  finished with (stored, dispatched, moved), so a poll asks the server only for newer messages.
  A new UIDVALIDITY (the server renumbered the mailbox) starts a new cursor at 0.
* ``inbox_messages`` holds one row per Message-ID ever ingested, from any source (IMAP, Maildir,
  folder): the document it became and how far it got. The unique Message-ID is what makes a
  re-delivered mail (moved back, sent twice) create nothing a second time.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "InboxCursorRow", "InboxMessageRow"]


class InboxCursorRow(Base):
    """The last UID handled in one IMAP mailbox under one UIDVALIDITY."""

    __tablename__ = "inbox_cursors"
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    """``imap://user@host:port/FOLDER``."""
    uidvalidity: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_uid: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InboxMessageRow(Base):
    """One ingested e-mail: stored -> dispatched -> moved (``error`` if dispatching raised)."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_messages_document", "document_id"),)
    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    """The Message-ID header, or ``<sha256:...@orderops>`` of the bytes when a mail has none."""
    source: Mapped[str] = mapped_column(String(16))
    """``imap``, ``maildir`` or ``folder``."""
    mailbox: Mapped[str] = mapped_column(String(500))
    locator: Mapped[str] = mapped_column(String(500))
    """Where it was first seen: the IMAP UID, or the file name."""
    document_id: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
