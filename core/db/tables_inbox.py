"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Email inbox: IMAP UIDs seen per mailbox, Message-IDs ingested.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from core.db.tables import Base

__all__ = ["Base"]
