"""The OMS's bulk order listing (records validated in one call) gives the orders that
``get_orders`` builds row by row, on SQLite and PostgreSQL: same orders, same order, same fields
(reprs included: they name enums, Decimals and aware times)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from core.clock import FixedClock
from core.db import Database
from core.domain import OrderStatus
from core.netgen import NetworkSpec, generate_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.embedded._common import CHUNK
from tools.adapters.protocols import OrderFilter


def test_listing_is_the_row_by_row_orders(db: Database) -> None:
    spec = NetworkSpec(seed=5, nodes=4, skus=40, customers=6, orders=300)
    generate_network(db, spec)
    clock = FixedClock(datetime.combine(spec.business_date, time(9, 0), tzinfo=UTC))
    oms = embedded_adapters(db, clock).oms
    everything = oms.list_orders(OrderFilter(), limit=10_000, with_lines=True)
    ids = [o.id for o in everything]
    assert len(ids) == 300
    assert ids == sorted(ids)
    held = [o.id for o in everything if o.status in (OrderStatus.CREATED, OrderStatus.ALLOCATED)][:3]
    assert oms.transition(held, OrderStatus.HELD).done == held  # held_from set on some
    row_by_row = oms.get_orders(ids)
    listed = oms.list_orders(OrderFilter(), limit=10_000, with_lines=True)
    assert listed == row_by_row
    assert [repr(o) for o in listed] == [repr(o) for o in row_by_row]
    assert any(o.held_from is not None for o in listed)
    assert all(o.lines for o in listed)
    assert all(o.created_at.tzinfo is UTC for o in listed)
    bare = oms.list_orders(OrderFilter(), limit=10_000)
    assert [repr(o) for o in bare] == [repr(o.model_copy(update={"lines": ()})) for o in row_by_row]
    assert all(o.lines == () for o in bare)
    page = oms.list_orders(OrderFilter(), limit=37, offset=101, with_lines=True)
    assert [repr(o) for o in page] == [repr(o) for o in row_by_row[101:138]]
    statuses = [OrderStatus.HELD, OrderStatus.ALLOCATED]
    some = oms.list_orders(OrderFilter(statuses=statuses), limit=10_000, with_lines=True)
    assert some == [o for o in row_by_row if o.status in statuses]
    assert len(some) < len(row_by_row)


def test_lines_load_across_chunks(db: Database) -> None:
    """More orders than one lines query takes: every order still gets its own lines."""
    spec = NetworkSpec(seed=6, nodes=3, skus=20, customers=4, orders=CHUNK + 40)
    generate_network(db, spec)
    clock = FixedClock(datetime.combine(spec.business_date, time(9, 0), tzinfo=UTC))
    oms = embedded_adapters(db, clock).oms
    listed = oms.list_orders(OrderFilter(), limit=CHUNK + 100, with_lines=True)
    assert len(listed) == CHUNK + 40
    tail = [o.id for o in listed[CHUNK - 5 :]]
    assert listed[CHUNK - 5 :] == oms.get_orders(tail)
