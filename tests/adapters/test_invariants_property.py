"""Property-based conformance: random sequences of order operations never break the stock rules.

After every step: inventory is never negative, reserved fits within on hand, and the units reserved
at each (node, SKU) are exactly the line quantities of the orders holding a reservation there.
Moves conserve reserved units network-wide; a call that raises changes nothing. SQLite only, for
speed: the conformance tests already cover both backends.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.clock import FixedClock
from core.db import Database, make_database, migrate
from core.domain import OrderCreate, OrderLineIn, OrderStatus
from core.errors import InsufficientInventory, InvalidTransition, ValidationFailed
from tests.adapters.support import assert_invariants, snapshot, total_reserved
from tests.factories import PRODUCTS, build_small_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter

NODES = ["DC-NJ", "DC-GA", "DC-CA", "DC-TX"]
SKUS = [p[0] for p in PRODUCTS]
TARGETS = list(OrderStatus)

_template: Path | None = None


def _template_db() -> Path:
    """Build the small network once; every example starts from a copy of that file."""
    global _template
    if _template is None:
        path = Path(tempfile.mkdtemp(prefix="orderops-prop-")) / "template.db"
        db = make_database(url=f"sqlite:///{path}")
        migrate(db)
        build_small_network(db, FixedClock())
        db.dispose()  # the last connection closing checkpoints the WAL into the file
        _template = path
    return _template


class OrderOperations(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="orderops-run-"))
        shutil.copy(_template_db(), self.dir / "net.db")
        self.db: Database = make_database(url=f"sqlite:///{self.dir / 'net.db'}")
        self.adapters: Adapters = embedded_adapters(self.db, FixedClock())
        self.order_ids: list[str] = []

    @initialize()
    def load_orders(self) -> None:
        self.order_ids = [o.id for o in self.adapters.oms.list_orders(OrderFilter())]

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pick(self, data: st.DataObject) -> list[str]:
        return data.draw(st.lists(st.sampled_from(self.order_ids), min_size=1, max_size=5))

    @rule(
        customer=st.sampled_from(["CUST-A", "CUST-B"]),
        lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 8)), min_size=1, max_size=3),
    )
    def create(self, customer: str, lines: list[tuple[str, int]]) -> None:
        order = OrderCreate(customer_id=customer, lines=[OrderLineIn(sku=s, quantity=q) for s, q in lines])
        self.order_ids.append(self.adapters.oms.create_order(order).id)

    @rule(data=st.data(), node=st.sampled_from(NODES))
    def allocate(self, data: st.DataObject, node: str) -> None:
        ids = self._pick(data)
        before = snapshot(self.adapters)
        try:
            result = self.adapters.oms.allocate(ids, node)
        except InvalidTransition:
            assert snapshot(self.adapters) == before
            return
        assert set(result.done) | set(result.skipped) == set(ids)

    @rule(data=st.data(), node=st.sampled_from(NODES))
    def move(self, data: st.DataObject, node: str) -> None:
        ids = self._pick(data)
        before = snapshot(self.adapters)
        reserved = total_reserved(self.adapters)
        try:
            result = self.adapters.oms.move_orders(ids, node)
        except ValidationFailed:
            assert node == "DC-TX"
            assert snapshot(self.adapters) == before
            return
        assert total_reserved(self.adapters) == reserved
        for oid in result.moved:
            assert self.adapters.oms.get_order(oid).node_id == node

    @rule(data=st.data(), status=st.sampled_from(TARGETS))
    def transition(self, data: st.DataObject, status: OrderStatus) -> None:
        target = status
        ids = self._pick(data)
        before = snapshot(self.adapters)
        try:
            result = self.adapters.oms.transition(ids, target)
        except InvalidTransition:
            assert snapshot(self.adapters) == before
            return
        for oid in result.done:
            if target is not OrderStatus.ALLOCATED:
                assert self.adapters.oms.get_order(oid).status is target

    @rule(node=st.sampled_from(NODES), sku=st.sampled_from(SKUS), delta=st.integers(-40, 40).filter(bool))
    def adjust(self, node: str, sku: str, delta: int) -> None:
        before = snapshot(self.adapters)
        try:
            self.adapters.wms.adjust_on_hand(node, sku, delta)
        except InsufficientInventory:
            assert delta < 0
            assert snapshot(self.adapters) == before

    @invariant()
    def stock_rules_hold(self) -> None:
        assert_invariants(self.adapters)


OrderOperations.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrderOperations = OrderOperations.TestCase
