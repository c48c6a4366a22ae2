"""The embedded notifier: an outbox table. Nothing leaves the process; a delivery connector (or a
person) reads the outbox. Addresses come from the customer record, never from the caller, so a
tool call cannot send a message to an address of its choosing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import insert, select

from core.clock import Clock
from core.db import Database
from core.db.tables import CustomerRow
from core.db.tables_notify import NotificationRow
from core.errors import NotFound, ValidationFailed
from tools.adapters.protocols import Notification


class EmbeddedNotifier:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def queue(self, notifications: Sequence[Notification], *, key: str) -> list[str]:
        if not key:
            raise ValidationFailed("a notification batch needs a key")
        ids = [f"NTF-{hashlib.sha256(f'{key}:{i}'.encode()).hexdigest()[:16]}" for i in range(len(notifications))]
        with self.db.begin() as session:
            existing = set(session.scalars(select(NotificationRow.id).where(NotificationRow.id.in_(ids))))
            if existing:
                return ids  # this batch was queued before: queue nothing twice
            found = session.execute(
                select(CustomerRow.id, CustomerRow.email).where(
                    CustomerRow.id.in_({n.customer_id for n in notifications})
                )
            )
            emails: dict[str, str] = {row[0]: row[1] for row in found}
            rows = []
            for nid, n in zip(ids, notifications, strict=True):
                if n.customer_id not in emails:
                    raise NotFound("customer", n.customer_id)
                rows.append(
                    {
                        "id": nid,
                        "customer_id": n.customer_id,
                        "order_ids": n.order_ids,
                        "channel": n.channel,
                        "to_address": emails[n.customer_id],
                        "subject": n.subject,
                        "body": n.body,
                        "status": "queued",
                        "created_at": self.clock.now(),
                    }
                )
            if rows:
                session.execute(insert(NotificationRow), rows)
        return ids

    def queued(self, *, customer_id: str | None = None, limit: int = 100) -> list[dict[str, object]]:
        with self.db.sessions() as session:
            stmt = select(NotificationRow).order_by(NotificationRow.created_at, NotificationRow.id).limit(limit)
            if customer_id is not None:
                stmt = stmt.where(NotificationRow.customer_id == customer_id)
            return [
                {
                    "id": r.id,
                    "customer_id": r.customer_id,
                    "order_ids": r.order_ids,
                    "channel": r.channel,
                    "subject": r.subject,
                    "body": r.body,
                    "status": r.status,
                }
                for r in session.scalars(stmt)
            ]
