"""A small generated network with the full tool gateway (default policy, audit, approvals)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.clock import FixedClock
from core.db import Database
from core.domain import REROUTABLE_STATUSES, CustomerTier, NodeStatus, Order
from core.netgen import NetworkSpec, generate_network
from guardrails.approvals import ApprovalStore
from guardrails.audit import AuditTrail
from guardrails.calls import Actor
from guardrails.idempotency import IdempotencyStore
from guardrails.policy import PolicyEngine
from guardrails.redaction import Redactor
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters, OrderFilter
from tools.base import ToolEnv
from tools.gateway import Guard, RunLedger, ToolGateway

SPEC = NetworkSpec(seed=7, nodes=5, skus=40, customers=6, orders=400)
AGENT = Actor(kind="agent", id="run-1", roles=frozenset(), on_behalf_of="olivia")
APPROVER = Actor(kind="user", id="amir", roles=frozenset({"approver"}))
APPROVER_2 = Actor(kind="user", id="bea", roles=frozenset({"approver"}))
VIEWER = Actor(kind="user", id="vic", roles=frozenset({"viewer"}))


@dataclass
class Net:
    db: Database
    clock: FixedClock
    adapters: Adapters
    gateway: ToolGateway

    def run(self, run_id: str = "run-1") -> RunLedger:
        return RunLedger(run_id=run_id)

    def tiers(self) -> dict[str, CustomerTier]:
        return {c.id: c.tier for c in self.adapters.oms.list_customers()}

    def movable(self, node_id: str) -> list[Order]:
        return self.adapters.oms.list_orders(
            OrderFilter(node_ids=[node_id], statuses=sorted(REROUTABLE_STATUSES)), limit=10_000, with_lines=True
        )

    def busiest_dc(self) -> str:
        loads = [ld for ld in self.adapters.wms.node_load() if ld.node_id.startswith("DC-")]
        return max(loads, key=lambda ld: ld.unreleased_orders).node_id

    def other_dc(self, not_this: str) -> str:
        return next(
            n.id
            for n in self.adapters.wms.list_nodes(statuses=[NodeStatus.OPEN])
            if n.id.startswith("DC-") and n.id != not_this
        )

    def small_safe_orders(self, n: int) -> list[Order]:
        """Created orders of standard/silver customers, cheap enough for the policy to allow."""
        tiers = self.tiers()
        found = self.adapters.oms.list_orders(
            OrderFilter(statuses=["created"], max_value=Decimal(2000)),  # type: ignore[list-item]
            limit=1000,
        )
        ok = [o for o in found if tiers[o.customer_id] in (CustomerTier.STANDARD, CustomerTier.SILVER)]
        assert len(ok) >= n, "the generated network should hold enough small orders"
        return ok[:n]

    def snapshot(self) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with self.db.engine.connect() as conn:
            orders = conn.execute(
                text("select id, status, node_id, carrier_service_id, version from orders order by id")
            ).all()
            inv = conn.execute(
                text("select node_id, sku, on_hand, reserved from inventory order by node_id, sku")
            ).all()
        return [tuple(r) for r in orders], [tuple(r) for r in inv]


def build_net(db: Database, policy: PolicyEngine | None = None) -> Net:
    generate_network(db, SPEC)
    return net_on(db, FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC)), policy)


def net_on(db: Database, clock: FixedClock, policy: PolicyEngine | None = None) -> Net:
    """A :class:`Net` (adapters and a gateway) over a network already in ``db``."""
    adapters = embedded_adapters(db, clock)
    guard = Guard(
        policy=policy or PolicyEngine.from_path(None),
        audit=AuditTrail(db, Redactor(key=b"k" * 32), clock),
        approvals=ApprovalStore(db, clock),
        idempotency=IdempotencyStore(db, clock, wait_s=10),
    )
    return Net(db=db, clock=clock, adapters=adapters, gateway=ToolGateway(ToolEnv(adapters, clock), guard))


@pytest.fixture
def net(db: Database) -> Net:
    return build_net(db)


@pytest.fixture
def sqlite_net(sqlite_db: Database) -> Net:
    return build_net(sqlite_db)
