"""The durable intake graph: a crash part-way and a resume by a new graph create each order once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime

from core.db import Database
from graphs.checkpoints import open_checkpointer
from graphs.intake import IntakeGraph, IntakeState, NodeFn, NodeWrapper
from intake.pipeline import IntakeDeps, load_result
from tests.intake.test_pipeline import Intake, Line, build_intake, csv_po, x12_850


@pytest.fixture
def intake(db: Database, tmp_path: Path) -> Intake:
    return build_intake(db, tmp_path)


@pytest.fixture
def sqlite_intake(sqlite_db: Database, tmp_path: Path) -> Intake:
    return build_intake(sqlite_db, tmp_path)


class Crash(RuntimeError):
    """The simulated death of the process."""


def crash_at(target: str, seen: list[str]) -> NodeWrapper:
    """Record nodes as they start; raise when ``target`` starts (after the previous checkpoint)."""

    def wrap(name: str, fn: NodeFn) -> NodeFn:
        def node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
            seen.append(name)
            if name == target:
                raise Crash(name)
            return fn(state, runtime=runtime)

        return node

    return wrap


def counting(seen: list[str]) -> NodeWrapper:
    def wrap(name: str, fn: NodeFn) -> NodeFn:
        def node(state: IntakeState, *, runtime: Runtime[IntakeDeps]) -> dict[str, Any]:
            seen.append(name)
            return fn(state, runtime=runtime)

        return node

    return wrap


def test_crash_after_validate_then_resume_creates_each_order_once(intake: Intake) -> None:
    c = intake.customer()
    assert c.edi_id is not None
    a, b = intake.skus(2)
    lines: list[Line] = [(3, "EA", intake.price(c, a), "VN", a, ""), (1, "EA", intake.price(c, b), "VN", b, "")]
    doc = intake.receive(x12_850(c.edi_id, "PO-GRAPH-1", intake.address(c), lines), filename="po.x12")
    first: list[str] = []
    with open_checkpointer(intake.net.db) as saver:
        with pytest.raises(Crash):
            IntakeGraph(intake.deps, saver, wrap=crash_at("decide", first)).run(doc)
        assert first == ["parse", "validate", "decide"]
        assert load_result(doc, intake.deps) is None
        assert intake.orders_for(c.id, "PO-GRAPH-1") == []
    second: list[str] = []
    with open_checkpointer(intake.net.db) as saver:  # a new process: new graph, same checkpoints
        result = IntakeGraph(intake.deps, saver, wrap=counting(second)).run(doc)
    assert second == ["decide", "act", "acknowledge", "finish"]  # parse and validate were not run again
    assert result.status == "processed"
    (out,) = result.outcomes
    assert (out.decision, out.status) == ("auto_create", "created"), out.reasons
    assert intake.orders_for(c.id, "PO-GRAPH-1") == [out.order_id]
    assert [d.kind for d in result.acks] == ["x12-997", "x12-855"]
    assert load_result(doc, intake.deps) == result


def test_crash_after_the_create_replays_it_instead_of_creating_again(intake: Intake) -> None:
    c = intake.customer()
    (a,) = intake.skus(1)
    lines: list[Line] = [(4, "EA", intake.price(c, a), "VN", a, "")]
    doc = intake.receive(csv_po("PO-GRAPH-2", intake.address(c), lines), filename="po.csv", channel="email",
                         sender=c.email)  # fmt: skip
    with open_checkpointer(intake.net.db) as saver:
        with pytest.raises(Crash):  # act ran (the order exists) but its checkpoint was never written
            IntakeGraph(intake.deps, saver, wrap=crash_at("acknowledge", [])).run(doc)
        made = intake.orders_for(c.id, "PO-GRAPH-2")
        assert len(made) == 1
    with open_checkpointer(intake.net.db) as saver:
        graph = IntakeGraph(intake.deps, saver)
        result = graph.run(doc)
        assert graph.run(doc) == result  # finished: the stored result
    (out,) = result.outcomes
    assert out.status == "created"
    assert intake.orders_for(c.id, "PO-GRAPH-2") == made == [out.order_id]


def test_quarantined_document_skips_to_the_result(sqlite_db: Database, sqlite_intake: Intake) -> None:
    doc = sqlite_intake.receive(b"%PDF-1.4\n garbage, not a pdf body", filename="broken.pdf")
    seen: list[str] = []
    with open_checkpointer(sqlite_db) as saver:
        result = IntakeGraph(sqlite_intake.deps, saver, wrap=counting(seen)).run(doc)
    assert seen == ["parse", "finish"]
    assert result.status == "quarantined"
    assert result.reason
