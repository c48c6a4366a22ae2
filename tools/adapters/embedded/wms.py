"""The embedded WMS: fulfillment nodes, their load and their inventory, on the project's database.

Reference implementation of :class:`tools.adapters.protocols.WMS`. Reservations are owned by the
OMS (they follow order status); this adapter only receives and writes off stock, and it never lets
on-hand drop below what open orders have reserved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, func, insert, select, update

from core.clock import Clock
from core.db import Database
from core.domain import OPEN_STATUSES, InventoryPosition, Node, NodeLoad, NodeStatus, OrderStatus
from core.errors import InsufficientInventory, NotFound, ValidationFailed
from tools.adapters.embedded import _reads
from tools.adapters.embedded._common import (
    in_values,
    inventory_t,
    node_from_row,
    nodes_t,
    orders_t,
    position_from_row,
    products_t,
)

UNRELEASED: frozenset[OrderStatus] = frozenset({OrderStatus.CREATED, OrderStatus.ALLOCATED})


class EmbeddedWMS:
    """WMS on :class:`core.db.Database`."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def get_node(self, node_id: str) -> Node:
        with self.db.connect() as conn:
            return node_from_row(self._node_row(conn, node_id))

    def list_nodes(self, *, statuses: Sequence[NodeStatus] | None = None) -> list[Node]:
        stmt = select(nodes_t).order_by(nodes_t.c.id)
        if statuses is not None:
            stmt = stmt.where(nodes_t.c.status.in_([NodeStatus(s).value for s in statuses]))
        with self.db.connect() as conn:
            return [node_from_row(r) for r in conn.execute(stmt)]

    def node_load(self, node_ids: Sequence[str] | None = None) -> list[NodeLoad]:
        """Load per node (all nodes if ``node_ids`` is None), from two grouped queries."""
        with self.db.connect() as conn:
            stmt = select(nodes_t).order_by(nodes_t.c.id)
            if node_ids is not None:
                stmt = stmt.where(in_values(conn, nodes_t.c.id, list(node_ids)))
            nodes = conn.execute(stmt).all()
            if node_ids is not None:
                self._all_known(node_ids, {n.id for n in nodes})
            counts: dict[str, dict[str, int]] = defaultdict(dict)
            count_stmt = (
                select(orders_t.c.node_id, orders_t.c.status, func.count())
                .where(orders_t.c.status.in_([s.value for s in OPEN_STATUSES]), orders_t.c.node_id.is_not(None))
                .group_by(orders_t.c.node_id, orders_t.c.status)
            )
            if node_ids is not None:
                count_stmt = count_stmt.where(in_values(conn, orders_t.c.node_id, [n.id for n in nodes]))
            for node_id, status, n in conn.execute(count_stmt):
                counts[node_id][status] = int(n)
        loads = []
        for n in nodes:
            by_status = counts.get(n.id, {})
            days = n.backlog / n.daily_capacity
            loads.append(
                NodeLoad(
                    node_id=n.id,
                    status=n.status,
                    daily_capacity=n.daily_capacity,
                    backlog=n.backlog,
                    open_orders=sum(by_status.values()),
                    unreleased_orders=sum(by_status.get(s.value, 0) for s in UNRELEASED),
                    backlog_days=days,
                    utilisation=days,
                )
            )
        return loads

    def set_node_status(self, node_id: str, status: NodeStatus) -> Node:
        try:
            status = NodeStatus(status)
        except ValueError:
            raise ValidationFailed(f"unknown node status {status!r}") from None
        with self.db.begin() as session:
            conn = session.connection()
            self._node_row(conn, node_id)
            conn.execute(update(nodes_t).where(nodes_t.c.id == node_id).values(status=status.value))
            return node_from_row(self._node_row(conn, node_id))

    def set_backlog(self, node_id: str, backlog: int) -> Node:
        if backlog < 0:
            raise ValidationFailed(f"backlog must be >= 0 (got {backlog})", node_id=node_id)
        with self.db.begin() as session:
            conn = session.connection()
            self._node_row(conn, node_id)
            conn.execute(update(nodes_t).where(nodes_t.c.id == node_id).values(backlog=int(backlog)))
            return node_from_row(self._node_row(conn, node_id))

    def set_daily_capacity(self, node_id: str, daily_capacity: int) -> Node:
        """Orders a day the node can pick and ship (a staffing cut, a line down, extra shifts)."""
        if daily_capacity < 1:
            raise ValidationFailed(f"daily_capacity must be >= 1 (got {daily_capacity})", node_id=node_id)
        with self.db.begin() as session:
            conn = session.connection()
            self._node_row(conn, node_id)
            conn.execute(update(nodes_t).where(nodes_t.c.id == node_id).values(daily_capacity=int(daily_capacity)))
            return node_from_row(self._node_row(conn, node_id))

    def inventory(
        self, *, node_ids: Sequence[str] | None = None, skus: Sequence[str] | None = None
    ) -> list[InventoryPosition]:
        """Stock positions, ordered by node then SKU; unknown ids simply match nothing."""
        with self.db.connect() as conn:
            stmt = select(inventory_t).order_by(inventory_t.c.node_id, inventory_t.c.sku)
            if node_ids is not None:
                stmt = stmt.where(in_values(conn, inventory_t.c.node_id, list(node_ids)))
            if skus is not None:
                stmt = stmt.where(in_values(conn, inventory_t.c.sku, list(skus)))
            return [position_from_row(r) for r in conn.execute(stmt)]

    def atp(self, skus: Sequence[str], node_ids: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """Available to promise: ``{sku: {node_id: atp}}``, only nodes that stock the SKU.

        One query: products LEFT JOIN inventory, so an unknown SKU is noticed (NotFound) and a known
        SKU no node stocks comes back as ``{}``. Closed nodes are included: ATP is a stock fact;
        whether a node may ship is the node's status. The decision API reads this on every request:
        the statements are built once and bind each list as one parameter (:mod:`._reads`).
        """
        wanted = list(dict.fromkeys(skus))
        if not wanted:
            raise ValidationFailed("atp needs at least one SKU")
        with self.db.connect() as conn:
            dialect = conn.dialect.name
            params = {"skus": _reads.list_param(dialect, wanted)}
            if node_ids is not None:
                nodes = list(dict.fromkeys(node_ids))
                params["nodes"] = _reads.list_param(dialect, nodes)
                known = {r.id for r in conn.execute(_reads.known_nodes(dialect), {"nodes": params["nodes"]})}
                self._all_known(nodes, known)
            stmt = _reads.atp(dialect, at_nodes=node_ids is not None)
            out: dict[str, dict[str, int]] = {}
            for sku, node_id, atp in conn.execute(stmt, params):
                per_node = out.setdefault(sku, {})
                if node_id is not None:
                    per_node[node_id] = int(atp)
        for sku in wanted:
            if sku not in out:
                raise NotFound("product", sku)
        return {sku: out[sku] for sku in wanted}

    def adjust_on_hand(self, node_id: str, sku: str, delta: int) -> InventoryPosition:
        """Receive (delta > 0) or write off (delta < 0) stock; never below the reserved quantity."""
        if delta == 0:
            raise ValidationFailed("delta must not be 0: nothing to adjust")
        with self.db.begin() as session:
            conn = session.connection()
            self._node_row(conn, node_id)
            if conn.execute(select(products_t.c.sku).where(products_t.c.sku == sku)).first() is None:
                raise NotFound("product", sku)
            where = (inventory_t.c.node_id == node_id) & (inventory_t.c.sku == sku)
            row = conn.execute(select(inventory_t).where(where).with_for_update()).first()
            on_hand, reserved = (row.on_hand, row.reserved) if row is not None else (0, 0)
            if on_hand + delta < reserved:
                raise InsufficientInventory(
                    f"cannot take {-delta} of SKU {sku} at {node_id}: on hand {on_hand}, reserved {reserved}, "
                    f"so at most {on_hand - reserved} can be written off",
                    node_id=node_id,
                    sku=sku,
                    on_hand=on_hand,
                    reserved=reserved,
                )
            if row is None:
                conn.execute(insert(inventory_t).values(node_id=node_id, sku=sku, on_hand=delta, reserved=0))
            else:
                conn.execute(update(inventory_t).where(where).values(on_hand=inventory_t.c.on_hand + delta))
            return position_from_row(conn.execute(select(inventory_t).where(where)).one())

    def transfer_on_hand(self, from_node_id: str, to_node_id: str, sku: str, units: int) -> list[InventoryPosition]:
        """Move stock between nodes in one transaction: a failed leg leaves both as they were."""
        if units <= 0 or from_node_id == to_node_id:
            raise ValidationFailed("a transfer moves a positive number of units between two different nodes")
        with self.db.begin() as session:
            conn = session.connection()
            self._node_row(conn, from_node_id)
            self._node_row(conn, to_node_id)
            if conn.execute(select(products_t.c.sku).where(products_t.c.sku == sku)).first() is None:
                raise NotFound("product", sku)
            src = (inventory_t.c.node_id == from_node_id) & (inventory_t.c.sku == sku)
            dst = (inventory_t.c.node_id == to_node_id) & (inventory_t.c.sku == sku)
            row = conn.execute(select(inventory_t).where(src).with_for_update()).first()
            on_hand, reserved = (row.on_hand, row.reserved) if row is not None else (0, 0)
            if on_hand - units < reserved:
                raise InsufficientInventory(
                    f"cannot move {units} of SKU {sku} from {from_node_id}: on hand {on_hand}, reserved {reserved}",
                    node_id=from_node_id,
                    sku=sku,
                    on_hand=on_hand,
                    reserved=reserved,
                )
            conn.execute(update(inventory_t).where(src).values(on_hand=inventory_t.c.on_hand - units))
            if conn.execute(select(inventory_t.c.sku).where(dst).with_for_update()).first() is None:
                conn.execute(insert(inventory_t).values(node_id=to_node_id, sku=sku, on_hand=units, reserved=0))
            else:
                conn.execute(update(inventory_t).where(dst).values(on_hand=inventory_t.c.on_hand + units))
            return [position_from_row(conn.execute(select(inventory_t).where(w)).one()) for w in (src, dst)]

    # --- internals ------------------------------------------------------------------------------

    @staticmethod
    def _node_row(conn: Connection, node_id: str) -> object:
        row = conn.execute(select(nodes_t).where(nodes_t.c.id == node_id)).first()
        if row is None:
            raise NotFound("node", node_id)
        return row

    @staticmethod
    def _all_known(asked: Sequence[str], known: set[str]) -> None:
        for node_id in asked:
            if node_id not in known:
                raise NotFound("node", node_id)
