"""Where is my order (issue 18, item 7, the CLI): by order id or PO number, with the status, node,
carrier, tracking, ETA against the promise and the runs that changed it."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.bootstrap import AppContext, open_context
from api.cli import run as cli
from api.cli_network import seed_network
from core.domain import OrderStatus
from core.errors import NotFound
from core.netgen import NetworkSpec
from core.settings import Settings
from guardrails.calls import Actor
from services.wismo import Whereabouts, where_is
from tools.adapters.protocols import OrderFilter
from tools.gateway import RunLedger


@pytest.fixture
def actx(tmp_path: Path) -> Iterator[AppContext]:
    seed_network(
        Settings(home=tmp_path, clock="network"), NetworkSpec(orders=200, skus=80), reset=False, show_progress=False
    )
    ctx = open_context(Settings(home=tmp_path, clock="network"))
    try:
        yield ctx
    finally:
        ctx.close()


def _where(actx: AppContext, ref: str) -> list[Whereabouts]:
    return where_is(ref, db=actx.db, adapters=actx.adapters, clock=actx.twin_clock, audit=actx.guard.audit)


def test_a_po_number_finds_its_order_with_the_twins_eta_against_the_promise(actx: AppContext) -> None:
    order = next(
        o
        for o in actx.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=200)
        if o.external_ref
    )
    assert order.external_ref is not None
    (found,) = [w for w in _where(actx, order.external_ref) if w.order_id == order.id]
    assert (found.status, found.node_id, found.carrier_service_id) == (
        "allocated",
        order.node_id,
        order.carrier_service_id,
    )
    assert found.eta_source == "twin"
    assert found.promised_date == order.promised_date
    assert found.on_time is (found.eta is not None and found.eta <= order.promised_date)


def test_a_shipped_order_answers_with_its_tracking(actx: AppContext) -> None:
    shipped = actx.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.SHIPPED]), limit=1)
    if not shipped:
        pytest.skip("the generated network has no shipped order")
    (found,) = _where(actx, shipped[0].id)
    assert found.eta_source == "shipment"
    assert found.tracking
    assert found.tracking[0].tracking_number


def test_the_runs_that_changed_an_order_are_listed(actx: AppContext) -> None:
    order = actx.adapters.oms.list_orders(OrderFilter(statuses=[OrderStatus.ALLOCATED]), limit=1)[0]
    agent = Actor(kind="agent", id="run-1", on_behalf_of="ops-1")
    ledger = RunLedger(run_id="run-1")
    out = actx.gateway.propose(
        "hold_orders", {"order_ids": [order.id], "reason": "check"}, actor=agent, run=ledger, idempotency_key="k1"
    )
    if out.status == "awaiting_approval":
        assert out.approval_id is not None
        approver = Actor(kind="user", id="boss", roles=frozenset({"approver"}))
        actx.gateway.decide(out.approval_id, approver=approver, decision="approve")
        out = actx.gateway.execute_approved(out.approval_id, actor=agent, run=ledger)
    assert out.status == "executed", out.reasons
    (found,) = _where(actx, order.id)
    assert found.status == "held"
    assert [(c.run_id, c.tool) for c in found.runs] == [("run-1", "hold_orders")]


def test_an_unknown_reference_is_not_found_and_the_cli_exits_2(actx: AppContext) -> None:
    with pytest.raises(NotFound):
        _where(actx, "NO-SUCH-PO")
    home = str(actx.settings.home)
    old = {k: os.environ.get(k) for k in ("ORDEROPS_HOME", "ORDEROPS_CLOCK")}
    os.environ.update({"ORDEROPS_HOME": home, "ORDEROPS_CLOCK": "network"})
    try:
        assert cli(["orders", "where", "NO-SUCH-PO"]) == 2
        order = actx.adapters.oms.list_orders(OrderFilter(), limit=1)[0]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli(["orders", "where", order.id, "--json"]) == 0
        assert json.loads(buf.getvalue())["orders"][0]["order_id"] == order.id
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
