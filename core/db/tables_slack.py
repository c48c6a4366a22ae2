"""Tables of one area, kept in their own module so that areas built in parallel do not edit one
file: Slack: retried-event dedup, approval messages posted (channel, ts) to update in place.

Imported at the end of :mod:`core.db.tables` so that ``Base.metadata`` (and Alembic) see them.
"""

from __future__ import annotations

from core.db.tables import Base

__all__ = ["Base"]
