"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: API keys.

* ``api_keys`` holds one row per API key: its public id, the sha256 of the key (never the key),
  the person it stands for, its roles, a note naming where it is used, and when it was made,
  expires and was revoked. In the database (not in a file under ``settings.home``) so that every
  API server, worker and CLI that reaches the same database accepts the same keys (issue 12).

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["ApiKeyRow", "Base"]


class ApiKeyRow(Base):
    """One API key, hashed: a 256-bit random key needs no salt (there is nothing to guess)."""

    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    """Hex sha256 of the whole key."""
    principal: Mapped[str] = mapped_column(String(200))
    roles: Mapped[Any] = mapped_column(JSON)
    """Role names as given (``viewer``, ``operator``, ``approver``, ``admin``); implied roles are
    added when the key is read, so changing what a role implies needs no data migration."""
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
