"""The network generator: deterministic from its seed, and the network it writes is consistent."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from core.db import Database, make_database, migrate
from core.db.tables import (
    AddressRow,
    CustomerRow,
    InventoryRow,
    MetaRow,
    NodeRow,
    OrderLineRow,
    OrderRow,
    ProductRow,
    ShipmentRow,
)
from core.domain import RESERVING_STATUSES, NodeType, OrderStatus
from core.errors import Conflict, ValidationFailed
from core.netgen import NETWORK_TABLES, NetworkSpec, generate_network, network_exists, reset_network
from tests.conftest import drop_postgres, fresh_postgres_url

SMALL = NetworkSpec(seed=7, nodes=4, skus=40, customers=5, orders=300)


def _norm(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(("[", "{")):
        return json.loads(value)  # JSON columns come back as text on some paths
    return value


def digest(db: Database) -> str:
    """A hash of every network row, read back through SQLAlchemy types (backend-neutral)."""
    h = hashlib.sha256()
    with db.engine.connect() as conn:
        for table in NETWORK_TABLES:
            pk = list(table.primary_key.columns)
            for row in conn.execute(select(table).order_by(*pk)):
                h.update(json.dumps([table.name, *map(_norm, row)], default=str).encode())
    return h.hexdigest()


def count(db: Database, row: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(row.__table__)).scalar_one())


def test_same_seed_same_network_and_different_seed_differs(db: Database) -> None:
    summary = generate_network(db, SMALL)
    first = digest(db)
    assert (summary.orders, summary.nodes, summary.skus, summary.customers) == (300, 4, 40, 5)
    assert summary.rows > summary.orders + summary.order_lines

    reset_network(db)
    generate_network(db, SMALL)
    assert digest(db) == first

    reset_network(db)
    generate_network(db, NetworkSpec(seed=8, nodes=4, skus=40, customers=5, orders=300))
    assert digest(db) != first


@pytest.mark.postgres
def test_sqlite_and_postgres_get_identical_rows(sqlite_db: Database) -> None:
    url = fresh_postgres_url()
    pg = make_database(url=url)
    try:
        migrate(pg)
        generate_network(pg, SMALL)
        generate_network(sqlite_db, SMALL)
        assert digest(pg) == digest(sqlite_db)
    finally:
        pg.dispose()
        drop_postgres(url)


def test_invariants_hold(db: Database) -> None:
    summary = generate_network(db, SMALL)
    with db.engine.connect() as conn:
        orders = conn.execute(select(OrderRow.__table__)).all()
        lines = conn.execute(select(OrderLineRow.__table__)).all()
        inventory = {(r.node_id, r.sku): r for r in conn.execute(select(InventoryRow.__table__))}
        owner = {r.id: r.customer_id for r in conn.execute(select(AddressRow.__table__))}
        nodes = {r.id: r for r in conn.execute(select(NodeRow.__table__))}
        shipments = {r.order_id: r for r in conn.execute(select(ShipmentRow.__table__))}
        meta = {r.key: r.value for r in conn.execute(select(MetaRow.__table__))}

    assert len(orders) == len({o.id for o in orders}) == 300
    assert len(lines) == len({(ln.order_id, ln.line_no) for ln in lines}) == summary.order_lines
    assert {o.status for o in orders} <= {s.value for s in OrderStatus}
    assert len({o.status for o in orders}) >= 6  # a real mix, not one status
    by_order: dict[str, list[Any]] = defaultdict(list)
    for ln in lines:
        by_order[ln.order_id].append(ln)

    expected_reserved: Counter[tuple[str, str]] = Counter()
    queued: Counter[str] = Counter()
    for o in orders:
        assert owner[o.ship_to_id] == o.customer_id
        assert 1 <= len(by_order[o.id]) <= 4
        assert o.total_units == sum(ln.quantity for ln in by_order[o.id])
        assert o.total_value == sum(ln.quantity * ln.unit_price for ln in by_order[o.id])
        status = OrderStatus(o.status)
        held_from = OrderStatus(o.held_from) if o.held_from else None
        assert (status is OrderStatus.HELD) == (held_from is not None)
        for ln in by_order[o.id]:
            assert (o.node_id, ln.sku) in inventory, "orders go only to nodes that stock every line"
        if status in RESERVING_STATUSES or held_from in RESERVING_STATUSES:
            for ln in by_order[o.id]:
                expected_reserved[(o.node_id, ln.sku)] += ln.quantity
            queued[o.node_id] += 1  # backlog = orders holding stock at the node, as the OMS keeps it
        assert (o.id in shipments) == (status in (OrderStatus.SHIPPED, OrderStatus.DELIVERED))
        if status is not OrderStatus.CREATED and held_from is not OrderStatus.CREATED:
            assert o.carrier_service_id is not None

    for key, inv in inventory.items():
        assert inv.reserved == expected_reserved.get(key, 0)
        assert 0 <= inv.reserved <= inv.on_hand
    assert sum(expected_reserved.values()) > 0
    for node_id, node in nodes.items():
        assert node.backlog == queued[node_id]
        assert node.status == "open"
    assert {NodeType(n.type) for n in nodes.values()} == {NodeType.DC, NodeType.STORE, NodeType.DROPSHIP}
    assert (meta["seed"], meta["business_date"]) == ("7", "2026-11-23")
    assert json.loads(meta["spec"])["orders"] == 300


def test_master_data_looks_real(db: Database) -> None:
    generate_network(db, NetworkSpec(seed=3, nodes=8, skus=60, customers=6, orders=50))
    with db.engine.connect() as conn:
        node_ids = [r.id for r in conn.execute(select(NodeRow.__table__).order_by(text("id")))]
        customers = conn.execute(select(CustomerRow.__table__)).all()
        products = conn.execute(select(ProductRow.__table__)).all()
    assert {"DC-NEWARK", "STORE-COLUMBUS", "DS-MEMPHIS"} <= set(node_ids)
    assert sorted(c.id for c in customers)[:2] == ["CUST-0001", "CUST-0002"]
    assert len({c.account_number for c in customers}) == len({c.email_domain for c in customers}) == 6
    for c in customers:
        assert c.email.endswith("@" + c.email_domain)
        if c.gln is not None:
            digits = [int(d) for d in c.gln]
            assert len(digits) == 13
            assert (sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12])) + digits[12]) % 10 == 0
    assert products[0].sku == "SKU-00001"
    assert all(p.name and p.description and p.list_price > 0 and p.weight_kg > 0 for p in products)


def test_refuses_second_generation_and_bad_spec_without_writing(db: Database) -> None:
    with pytest.raises(ValidationFailed):
        generate_network(db, NetworkSpec(nodes=99, orders=10))
    assert not network_exists(db)

    generate_network(db, SMALL)
    before = count(db, OrderRow)
    with pytest.raises(Conflict):
        generate_network(db, SMALL)
    assert count(db, OrderRow) == before


def test_reset_empties_every_network_table(db: Database) -> None:
    generate_network(db, SMALL)
    assert network_exists(db)
    reset_network(db)
    assert not network_exists(db)
    with db.engine.connect() as conn:
        for table in NETWORK_TABLES:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0, table.name


def test_progress_reports_each_step_and_zero_orders_work(sqlite_db: Database) -> None:
    seen: list[tuple[str, int, int]] = []
    summary = generate_network(
        sqlite_db, NetworkSpec(nodes=2, skus=5, customers=1, orders=0), progress=lambda *a: seen.append(a)
    )
    assert summary.orders == 0
    assert summary.inventory_rows > 0
    steps = [s for s, _, _ in seen]
    for step in ("nodes", "catalogue", "customers", "carriers", "orders", "inventory"):
        assert step in steps
    assert all(done <= total for _, done, total in seen)
