"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: the operations console's sign-in sessions.

* ``console_sessions`` holds one row per console sign-in. The session cookie names its row (signed,
  see :mod:`api.console.session`); a cookie whose row is missing, ended (sign-out) or past its
  expiry is refused, so signing out ends the session on the server, not only in the browser.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "ConsoleSessionRow"]


class ConsoleSessionRow(Base):
    """One console sign-in, from sign-in to sign-out or expiry."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires_at", "expires_at"),)
    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Random session id (the cookie carries it, signed)."""
    key_id: Mapped[str] = mapped_column(String(64))
    """The public id of the API key the person signed in with."""
    principal: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the person signed out (None while the session lasts)."""
