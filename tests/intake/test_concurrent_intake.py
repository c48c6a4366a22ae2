"""Concurrent intake: many workers taking in one document (or one PO) at once.

Twelve parallel intakes of one document must never raise, must count every receipt
(``times_received`` is incremented in the database, not read-modify-written) and must create the
order once; two documents of one PO processed at once must not both create it (the idempotency key
of ``create_order`` comes from the PO's fingerprint, not from the document).
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TypeVar

import pytest

from core.clock import FixedClock
from core.db import Database, make_database
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from intake.documents import DocumentStore
from intake.pipeline import IntakeDeps, IntakeResult, process_document
from intake.review import intake_idempotency_key
from intake.sandbox import SandboxLimits
from intake.validate import ValidatedOrder, fingerprint
from tests.intake.test_pipeline import Intake, Line, build_intake, csv_po, x12_850
from tests.tools.conftest import SPEC
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import OrderFilter
from tools.base import ToolEnv
from tools.gateway import Guard, ToolGateway

T = TypeVar("T")
WORKERS = 12


def _all_at_once(n: int, fn: Callable[[int], T]) -> tuple[list[T], list[BaseException]]:
    """Run ``fn(i)`` in ``n`` threads released together; returns results and whatever they raised."""
    barrier = threading.Barrier(n)
    results: list[T | None] = [None] * n
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as exc:  # collected and reported by the test, with its traceback
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return [r for r in results if r is not None], errors


@pytest.fixture
def intake(db: Database, tmp_path: Path) -> Intake:
    return build_intake(db, tmp_path)


def test_twelve_parallel_intakes_of_one_document(intake: Intake, tmp_path: Path) -> None:
    c = intake.customer()
    assert c.edi_id is not None
    a, b = intake.skus(2)
    lines: list[Line] = [(3, "EA", intake.price(c, a), "VN", a, ""), (1, "EA", intake.price(c, b), "VN", b, "")]
    data = x12_850(c.edi_id, "PO-PAR-12", intake.address(c), lines)
    # Each worker has its own store object, as separate processes would.
    stores = [DocumentStore(intake.net.db, intake.net.clock, tmp_path / "docs") for _ in range(WORKERS)]

    def one(i: int) -> IntakeResult:
        doc = stores[i].receive(data, channel="api", filename="po.x12")
        return process_document(doc.id, intake.deps)

    results, errors = _all_at_once(WORKERS, one)
    assert errors == [], [repr(e) for e in errors]
    assert len(results) == WORKERS
    assert len({r.document_id for r in results}) == 1
    doc = intake.store.get(results[0].document_id)
    assert doc.times_received == WORKERS  # no receipt lost
    created = {o.order_id for r in results for o in r.outcomes if o.status == "created"}
    assert len(created) == 1, [r.outcomes for r in results]
    assert intake.orders_for(c.id, "PO-PAR-12") == list(created)


def _process_deps(url: str, docs_dir: Path) -> IntakeDeps:
    """What one worker process builds for itself: its own engine and pool, the same database."""
    db = make_database(url=url)
    clock = FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC))
    guard = Guard(policy=PolicyEngine.from_path(None), audit=AuditTrail(db, Redactor(key=b"k" * 32), clock),
                  approvals=ApprovalStore(db, clock), idempotency=IdempotencyStore(db, clock, wait_s=60))  # fmt: skip
    gateway = ToolGateway(ToolEnv(embedded_adapters(db, clock), clock), guard)
    # Parsed in-process: a fresh process's first sandboxed parse starts a fork server (seconds, and a
    # minute or more with twelve starting at once on two cores), which is not what this test is about.
    store = DocumentStore(db, clock, docs_dir, sandbox=SandboxLimits(enabled=False))
    return IntakeDeps(db=db, clock=clock, documents=store, gateway=gateway)


def _intake_process(url: str, docs_dir: Path, data: bytes, barrier: Any, results: Any) -> None:
    try:
        deps = _process_deps(url, docs_dir)
        barrier.wait(timeout=120)
        doc = deps.documents.receive(data, channel="api", filename="po.x12")
        results.put(("ok", process_document(doc.id, deps).model_dump(mode="json")))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_twelve_parallel_intake_processes_of_one_document(intake: Intake, tmp_path: Path) -> None:
    c = intake.customer()
    assert c.edi_id is not None
    (a,) = intake.skus(1)
    data = x12_850(c.edi_id, "PO-PROC-12", intake.address(c), [(2, "EA", intake.price(c, a), "VN", a, "")])
    url = intake.net.db.engine.url.render_as_string(hide_password=False)
    intake.net.db.engine.dispose()  # no pooled connection may be shared with the children
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_intake_process, args=(url, tmp_path / "docs", data, barrier, results))
             for _ in range(WORKERS)]  # fmt: skip
    for p in procs:
        p.start()
    got = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    errors = [detail for status, detail in got if status == "error"]
    assert errors == [], errors[0] if errors else None
    outcomes = [IntakeResult.model_validate(detail) for _status, detail in got]
    assert len({r.document_id for r in outcomes}) == 1
    assert intake.store.get(outcomes[0].document_id).times_received == WORKERS
    created = {o.order_id for r in outcomes for o in r.outcomes if o.status == "created"}
    assert len(created) == 1, [(r.status, r.reason, r.findings) for r in outcomes][:2]
    assert intake.orders_for(c.id, "PO-PROC-12") == list(created)


def test_two_documents_of_one_po_at_once_create_one_order(intake: Intake) -> None:
    c = intake.customer()
    assert c.edi_id is not None
    (a,) = intake.skus(1)
    lines: list[Line] = [(4, "EA", intake.price(c, a), "VN", a, "")]
    docs = [
        intake.receive(x12_850(c.edi_id, "PO-TWO-1", intake.address(c), lines), filename="a.x12"),
        intake.receive(csv_po("po-two-1", intake.address(c), lines), filename="a.csv", sender=c.email),
    ]
    results, errors = _all_at_once(2, lambda i: process_document(docs[i], intake.deps))
    assert errors == [], [repr(e) for e in errors]
    outcomes = [o for r in results for o in r.outcomes]
    created = {o.order_id for o in outcomes if o.status == "created"}
    assert len(created) == 1, outcomes
    (order_id,) = created
    order = intake.net.adapters.oms.get_order(order_id or "")
    assert order.customer_id == c.id
    orders = intake.net.adapters.oms.list_orders(OrderFilter(customer_ids=[c.id]), limit=10_000)
    assert [o.id for o in orders if (o.external_ref or "").upper() == "PO-TWO-1"] == [order_id]
    # The other document either replayed the same creation, was seen as a duplicate, or (when it
    # states the PO differently) waits for a person; it never failed on "order already exists".
    for o in outcomes:
        assert o.status in ("created", "duplicate", "queued"), o
        assert not any("already exists" in r for r in o.reasons), o.reasons


def test_create_order_key_is_the_po_fingerprint_not_the_document() -> None:
    from intake.model import PurchaseOrder

    po = PurchaseOrder.model_validate({"document_type": "x12-850", "lines": []})
    fp = fingerprint("CUST-1", "PO-9")
    one = ValidatedOrder(document_id="doc-a", po_index=0, purchase_order=po, fingerprint=fp)
    other = ValidatedOrder(document_id="doc-b", po_index=3, purchase_order=po, fingerprint=fp)
    assert intake_idempotency_key(one) == intake_idempotency_key(other)
    assert "doc-a" not in intake_idempotency_key(one)
    unknown = ValidatedOrder(document_id="doc-a", po_index=0, purchase_order=po)
    assert intake_idempotency_key(unknown) != intake_idempotency_key(unknown.model_copy(update={"po_index": 1}))


def test_twelve_parallel_graph_runs_of_one_document(intake: Intake) -> None:
    from graphs.intake import open_intake_graph

    c = intake.customer()
    assert c.edi_id is not None
    (a,) = intake.skus(1)
    data = x12_850(c.edi_id, "PO-GRAPH-12", intake.address(c), [(2, "EA", intake.price(c, a), "VN", a, "")])
    with open_intake_graph(intake.deps) as graph:

        def one(_i: int) -> IntakeResult:
            doc = intake.store.receive(data, channel="api", filename="po.x12")
            return graph.run(doc.id)

        results, errors = _all_at_once(WORKERS, one)
    assert errors == [], [repr(e) for e in errors]
    created = {o.order_id for r in results for o in r.outcomes if o.status == "created"}
    assert len(created) == 1, [r.outcomes for r in results]
    assert intake.orders_for(c.id, "PO-GRAPH-12") == list(created)
