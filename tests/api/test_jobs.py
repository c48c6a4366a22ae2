"""The job queue on both backends: idempotent enqueue, leases, retries, serial keys, racing claims."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.clock import FixedClock
from core.db import Database
from core.db.tables import Base
from core.errors import ValidationFailed
from core.jobs import JobQueue, backoff_s


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def queue(db: Database, clock: FixedClock) -> JobQueue:
    return JobQueue(db, clock)


def test_migration_matches_the_tables(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = {"jobs", "alerts", "webhook_deliveries"}
    assert [d for d in diff if any(t in repr(d) for t in mine)] == []


def test_enqueue_is_idempotent_by_dedup_key(queue: JobQueue) -> None:
    a = queue.enqueue("k", {"n": 1}, dedup_key="same")
    b = queue.enqueue("k", {"n": 2}, dedup_key="same")
    c = queue.enqueue("k", {"n": 3})
    assert a.id == b.id
    assert b.payload == {"n": 1}
    assert c.id != a.id
    assert queue.counts() == {"queued": 2}
    with pytest.raises(ValidationFailed):
        queue.enqueue("", {})


def test_claim_takes_due_jobs_oldest_first_and_only_of_its_kinds(queue: JobQueue, clock: FixedClock) -> None:
    first = queue.enqueue("a", {})
    clock.advance(timedelta(seconds=1))
    later = queue.enqueue("a", {}, run_after=clock.now() + timedelta(minutes=5))
    other = queue.enqueue("b", {})
    got = queue.claim("w1", ["a"], lease_s=3600)
    assert got is not None
    assert got.id == first.id
    assert got.status == "running"
    assert got.attempts == 1
    assert queue.claim("w1", ["a"]) is None  # the other "a" is not due yet
    clock.advance(timedelta(minutes=5))
    nxt = queue.claim("w1", ["a"])
    assert nxt is not None
    assert nxt.id == later.id
    b = queue.claim("w2")
    assert b is not None
    assert b.id == other.id


def test_complete_needs_the_lease_and_an_expired_lease_is_claimed_again(queue: JobQueue, clock: FixedClock) -> None:
    job = queue.enqueue("k", {})
    assert queue.claim("w1", lease_s=30) is not None
    assert queue.claim("w2", lease_s=30) is None
    clock.advance(timedelta(seconds=20))
    assert queue.heartbeat(job.id, "w1", lease_s=30)
    clock.advance(timedelta(seconds=20))
    assert queue.claim("w2", lease_s=30) is None  # the heartbeat kept it
    clock.advance(timedelta(seconds=31))  # w1 died
    taken = queue.claim("w2", lease_s=30)
    assert taken is not None
    assert taken.locked_by == "w2"
    assert taken.attempts == 2
    assert not queue.heartbeat(job.id, "w1")
    assert not queue.complete(job.id, "w1")
    assert queue.complete(job.id, "w2")
    assert queue.get(job.id).status == "done"


def test_failures_back_off_then_the_job_is_dead(queue: JobQueue, clock: FixedClock) -> None:
    job = queue.enqueue("k", {}, max_attempts=2)
    queue.claim("w")
    assert queue.fail(job.id, "w", "boom") == "queued"
    again = queue.get(job.id)
    assert again.last_error == "boom"
    assert again.run_after >= clock.now() + timedelta(seconds=backoff_s(1))
    assert queue.claim("w") is None
    clock.advance(timedelta(seconds=backoff_s(1)))
    assert queue.claim("w") is not None
    assert queue.fail(job.id, "w", "boom again") == "dead"
    assert queue.claim("w") is None
    assert queue.fail(job.id, "w", "not held") is None


def test_a_job_whose_worker_keeps_dying_ends_dead(queue: JobQueue, clock: FixedClock) -> None:
    job = queue.enqueue("k", {}, max_attempts=1)
    queue.claim("w1", lease_s=5)
    clock.advance(timedelta(seconds=6))
    assert queue.claim("w2") is None
    assert queue.get(job.id).status == "dead"


def test_release_gives_the_job_back_without_counting_the_attempt(queue: JobQueue) -> None:
    job = queue.enqueue("k", {})
    queue.claim("w1")
    assert queue.release(job.id, "w1")
    back = queue.get(job.id)
    assert back.status == "queued"
    assert back.attempts == 0
    assert back.locked_by is None
    assert queue.claim("w2") is not None


def test_jobs_of_one_serial_key_never_run_together(queue: JobQueue) -> None:
    a = queue.enqueue("k", {}, serial_key="run-1")
    b = queue.enqueue("k", {}, serial_key="run-1")
    c = queue.enqueue("k", {}, serial_key="run-2")
    first = queue.claim("w1")
    second = queue.claim("w2")
    assert first is not None
    assert first.id == a.id
    assert second is not None
    assert second.id == c.id
    assert queue.claim("w3") is None
    queue.complete(a.id, "w1")
    third = queue.claim("w3")
    assert third is not None
    assert third.id == b.id


def test_racing_claimers_get_each_job_exactly_once(db: Database) -> None:
    queue = JobQueue(db)
    ids = {queue.enqueue("k", {"i": i}, serial_key=f"s{i % 10}").id for i in range(40)}
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        q = JobQueue(db)
        while True:
            job = q.claim(name)
            if job is None:
                if q.counts().get("queued", 0) == 0:
                    return
                continue
            with lock:
                taken.append(job.id)
            assert q.complete(job.id, name)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == sorted(ids)
    assert queue.counts() == {"done": 40}
