"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: the installation's secrets.

* ``installation_secrets`` holds one row per secret the installation makes for itself (the
  redaction key, the console's session secret): encrypted with the key from the environment
  (see :mod:`core.secrets`), so every machine that reaches the database shares them, and a copy of
  the database alone does not give them away.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base

__all__ = ["Base", "InstallationSecretRow"]


class InstallationSecretRow(Base):
    """One secret, encrypted (Fernet: AES-128-CBC with HMAC-SHA256, so tampering is detected)."""

    __tablename__ = "installation_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    """The Fernet token of the secret's bytes."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
