"""Idempotency keys: a side-effecting tool call runs at most once per key.

An agent that retries after a timeout, or a graph resumed from a checkpoint, repeats calls. With a
key, the repeat gets the first call's stored result instead of a second refund or label.

How: the claim (the key's row), ``fn``'s writes and the key's completion are one transaction
(:meth:`Database.one_transaction`: every ``db.begin()`` / ``db.connect()`` the embedded adapters
make inside ``fn`` joins it). The primary key makes exactly one claimant win, on SQLite and
PostgreSQL alike: a second caller's insert waits for the first transaction and then finds the key
``done`` and replays its result.

Why one transaction rather than a pending claim committed before ``fn`` (the earlier design): a
process killed after ``fn``'s effect committed but before the key was marked done left the key
``pending`` for ever, and whoever resumed the run could not tell whether the effect happened -
re-running it risks a second effect, and a re-run on changed state stores another result (a hold
of orders already held "does nothing"); waiting on the claim blocks the run until an operator
looks. With one transaction a kill leaves nothing: no effect, no claim, and the resumed call runs
it once. A reconcile step (asking each tool whether its effect happened) was the alternative; it
needs a per-tool check that can be wrong and the claimant's liveness, which a committed claim
cannot tell. The price: ``fn`` holds its write locks (on SQLite the database's write lock) for
the call, and an adapter outside this database (none today) would have to take the key itself.

A ``pending`` row is never committed now; one left by an older version still makes callers wait,
then :class:`Conflict` (nobody can know whether its effect happened): an operator checks and calls
:meth:`IdempotencyStore.release`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.clock import Clock, SystemClock
from core.db.engine import Database
from core.db.tables import IdempotencyKeyRow
from core.errors import Conflict, ValidationFailed
from guardrails._store import JsonValue, as_utc, to_jsonable

PENDING = "pending"
DONE = "done"


class IdempotencyStore:
    """``run_once(key, tool, args_hash, fn)``: the first call runs ``fn``, repeats replay it."""

    def __init__(
        self,
        db: Database,
        clock: Clock | None = None,
        *,
        wait_s: float = 30.0,
        poll_s: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.wait_s = wait_s
        self.poll_s = poll_s
        self._sleep = sleep

    def run_once(self, key: str, tool: str, args_hash: str, fn: Callable[[], Any]) -> tuple[JsonValue, bool]:
        """Run ``fn`` once for ``key``; returns ``(result, replayed)``.

        The result is returned as stored (JSON values), on the first call too, so callers see
        the same shape either way. The same key with another tool or ``args_hash`` raises
        :class:`Conflict` (a reused key is a bug, not a retry). If ``fn`` raises, the claim and
        whatever ``fn`` wrote roll back and the error propagates: nothing happened, so a retry may
        run it again.
        """
        if not key or len(key) > 200:
            raise ValidationFailed("idempotency key must be 1-200 characters")
        deadline = time.monotonic() + self.wait_s
        while True:
            with self.db.one_transaction():
                if self._claim(key, tool, args_hash):
                    return self._run(key, fn), False
            found, value = self._peek(key, tool, args_hash)
            if found == DONE:
                return value, True
            if found == PENDING:
                if time.monotonic() >= deadline:
                    raise Conflict(
                        f"idempotency key {key!r} has been in progress since {value}; if its process died, "
                        "check whether the effect happened, then release the key",
                        key=key,
                    )
                self._sleep(self.poll_s)
            # else: the claimant's transaction rolled back (its call failed); try to claim it again.

    @staticmethod
    def stored_form(value: Any) -> JsonValue:
        """``value`` as :meth:`run_once` stores and returns it (JSON values; a value already in
        this form is stored as is), for a caller that records ``fn``'s result elsewhere inside
        ``fn`` and must record exactly what a replay will return."""
        return to_jsonable(value)

    def completed(self, key: str, tool: str, args_hash: str) -> tuple[bool, JsonValue]:
        """``(True, result)`` if ``key`` already completed this exact call, else ``(False, None)``.

        Lets a caller answer a repeat without redoing the work that precedes ``run_once`` (a
        repeated tool call must not be re-simulated and re-judged: its first outcome stands).
        The same key used for another call raises :class:`Conflict`.
        """
        found, value = self._peek(key, tool, args_hash)
        return (True, value) if found == DONE else (False, None)

    def _run(self, key: str, fn: Callable[[], Any]) -> JsonValue:
        """``fn`` and the key's completion, inside the claim's transaction: if ``fn`` raises, the
        transaction (claim and any partial effect) rolls back and the error propagates."""
        result = to_jsonable(fn())
        with self.db.begin() as session:
            session.execute(
                update(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.key == key, IdempotencyKeyRow.status == PENDING)
                .values(status=DONE, result=result, completed_at=self._now())
            )
        return result

    def release(self, key: str) -> bool:
        """Drop a *pending* claim (after a failure, or by an operator after a crash)."""
        with self.db.begin() as session:
            res = session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.key == key, IdempotencyKeyRow.status == PENDING)
            )
            return bool(getattr(res, "rowcount", 0))

    def _now(self) -> datetime:
        now = as_utc(self.clock.now())
        return now.replace(tzinfo=None) if self.db.is_sqlite else now

    def _claim(self, key: str, tool: str, args_hash: str) -> bool:
        insert = pg_insert if self.db.is_postgres else sqlite_insert
        stmt = (
            insert(IdempotencyKeyRow)
            .values(key=key, tool=tool, args_hash=args_hash, status=PENDING, result=None, created_at=self._now())
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(IdempotencyKeyRow.key)
        )
        # RETURNING, not rowcount: drivers disagree on rowcount for INSERT ... ON CONFLICT.
        with self.db.begin() as session:
            return session.execute(stmt).first() is not None

    def _peek(self, key: str, tool: str, args_hash: str) -> tuple[str | None, JsonValue]:
        """(``done``, result) / (``pending``, since when) / (None, None) if the key is free again."""
        with self.db.sessions() as session:
            row = session.get(IdempotencyKeyRow, key)
            if row is None:
                return None, None
            if row.tool != tool or row.args_hash != args_hash:
                raise Conflict(
                    f"idempotency key {key!r} was already used for another call ({row.tool}, other arguments); "
                    "use a new key",
                    key=key,
                    tool=row.tool,
                )
            if row.status == DONE:
                return DONE, row.result
            return PENDING, as_utc(row.created_at).isoformat()
