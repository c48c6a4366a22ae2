"""The decision API's per-request reads (``oms.get_order``: one query, order and lines joined;
``wms.atp``: statements built once, each list bound as one parameter) give what the general
paths give, on SQLite and PostgreSQL: ``get_order`` the order ``get_orders`` builds (reprs
included), ``atp`` the on-hand minus reserved of every inventory row the listing shows."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from core.clock import FixedClock
from core.db import Database
from core.errors import NotFound
from core.netgen import NetworkSpec, generate_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.embedded._common import SMALL_IN, lines_t
from tools.adapters.protocols import Adapters, OrderFilter

SPEC = NetworkSpec(seed=7, nodes=5, skus=40, customers=6, orders=200)


def _adapters(db: Database) -> Adapters:
    generate_network(db, SPEC)
    return embedded_adapters(db, FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC)))


def _expected_atp(ad: Adapters, skus: list[str], nodes: list[str] | None) -> dict[str, dict[str, int]]:
    """ATP from the inventory listing: per SKU asked (first-seen order), each node with a row."""
    out: dict[str, dict[str, int]] = {sku: {} for sku in dict.fromkeys(skus)}
    for p in ad.wms.inventory():
        if p.sku in out and (nodes is None or p.node_id in nodes):
            out[p.sku][p.node_id] = p.on_hand - p.reserved
    return {sku: dict(sorted(by_node.items())) for sku, by_node in out.items()}


def test_get_order_is_the_row_by_row_order(db: Database) -> None:
    ad = _adapters(db)
    ids = [o.id for o in ad.oms.list_orders(OrderFilter(), limit=1000)]
    bare = ids[7]
    with db.engine.begin() as conn:  # an order without lines: the join's one row, no line
        conn.execute(lines_t.delete().where(lines_t.c.order_id == bare))
    row_by_row = ad.oms.get_orders(ids)
    one_by_one = [ad.oms.get_order(i) for i in ids]
    assert one_by_one == row_by_row
    assert [repr(o) for o in one_by_one] == [repr(o) for o in row_by_row]
    assert ad.oms.get_order(bare).lines == ()
    assert sum(len(o.lines) > 1 for o in one_by_one) > 10  # lines in line order, several per order
    with pytest.raises(NotFound):
        ad.oms.get_order("ORD-NOPE")


def test_atp_is_the_inventory_listing(db: Database) -> None:
    ad = _adapters(db)
    nodes = sorted(n.id for n in ad.wms.list_nodes())
    skus = sorted({p.sku for p in ad.wms.inventory()})
    asked = [skus[5], skus[1], skus[5], skus[30]]  # repeats and any order: keys in first-seen order
    got = ad.wms.atp(asked)
    assert list(got) == [skus[5], skus[1], skus[30]]
    assert got == _expected_atp(ad, asked, None)
    assert all(list(v) == sorted(v) for v in got.values())
    some = [nodes[3], nodes[0]]
    assert ad.wms.atp(skus, some) == _expected_atp(ad, skus, some)
    assert ad.wms.atp(skus) == _expected_atp(ad, skus, None)
    assert any(len(v) > 1 for v in got.values())
    with pytest.raises(NotFound):
        ad.wms.atp([skus[0], "SKU-NOPE"])
    with pytest.raises(NotFound):
        ad.wms.atp([skus[0]], [nodes[0], "NODE-NOPE"])


def test_atp_takes_lists_longer_than_a_plain_in(db: Database) -> None:
    """One bound parameter per list: no length reaches a driver's parameter limit."""
    ad = _adapters(db)
    nodes = sorted(n.id for n in ad.wms.list_nodes())
    skus = sorted({p.sku for p in ad.wms.inventory()})
    many_nodes = nodes + [nodes[i % len(nodes)] for i in range(SMALL_IN + 10)]
    assert ad.wms.atp(skus, many_nodes) == _expected_atp(ad, skus, nodes)
