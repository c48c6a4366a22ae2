"""Reservation bookkeeping shared by the OMS writes: the few statements that touch stock and backlog.

Every change is computed in Python first and then applied as ONE executemany per table, so a move
of 10,000 orders costs a handful of round trips. The CHECK constraints on ``inventory`` stay the
last line of defence: if a bug computed a negative stock, the statement fails and the whole
transaction rolls back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, bindparam, case, select, update

from core.domain import OrderLine
from tools.adapters.embedded._common import (
    chunks,
    in_values,
    inventory_t,
    line_from_row,
    lines_t,
    nodes_t,
)

Key = tuple[str, str]  # (node_id, sku)


def load_lines(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    """Lines of the given orders, by order id, in line order (one query per CHUNK ids)."""
    out: dict[str, list[OrderLine]] = {oid: [] for oid in order_ids}
    for part in chunks(order_ids):
        stmt = (
            select(lines_t)
            .where(in_values(conn, lines_t.c.order_id, part))
            .order_by(lines_t.c.order_id, lines_t.c.line_no)
        )
        for row in conn.execute(stmt):
            out[row.order_id].append(line_from_row(row))
    return out


def needs(lines: Iterable[OrderLine]) -> dict[str, int]:
    """Units per SKU of an order (a SKU may appear on several lines)."""
    total: dict[str, int] = defaultdict(int)
    for line in lines:
        total[line.sku] += line.quantity
    return dict(total)


def load_atp(conn: Connection, node_ids: Iterable[str], skus: Iterable[str], *, lock: bool) -> dict[Key, int]:
    """ATP per (node, sku) for the cross product asked; missing rows simply are not there (ATP 0).

    ``lock`` takes row locks on PostgreSQL so that two concurrent allocations cannot both spend
    the same units (SQLite serialises writers anyway).
    """
    nodes, sku_list = sorted(set(node_ids)), sorted(set(skus))
    if not nodes or not sku_list:
        return {}
    stmt = select(inventory_t.c.node_id, inventory_t.c.sku, inventory_t.c.on_hand, inventory_t.c.reserved).where(
        in_values(conn, inventory_t.c.node_id, nodes), in_values(conn, inventory_t.c.sku, sku_list)
    )
    if lock:
        stmt = stmt.with_for_update()
    return {(r.node_id, r.sku): r.on_hand - r.reserved for r in conn.execute(stmt)}


def shortfall(need: Mapping[str, int], atp: Mapping[Key, int], node_id: str) -> str | None:
    """Why ``node_id`` cannot serve ``need`` in full, or None if it can."""
    for sku in sorted(need):
        have = atp.get((node_id, sku), 0)
        if have < need[sku]:
            return f"SKU {sku} needs {need[sku]} at {node_id}, ATP {max(have, 0)}"
    return None


def take(need: Mapping[str, int], atp: dict[Key, int], node_id: str, deltas: dict[Key, int]) -> None:
    """Spend ``need`` from the running ATP and record the reservation delta."""
    for sku, qty in need.items():
        atp[(node_id, sku)] = atp.get((node_id, sku), 0) - qty
        deltas[(node_id, sku)] = deltas.get((node_id, sku), 0) + qty


def apply_reserved(conn: Connection, deltas: Mapping[Key, int]) -> None:
    """``reserved += delta`` per (node, sku)."""
    params = [{"b_node": n, "b_sku": s, "b_delta": d} for (n, s), d in sorted(deltas.items()) if d]
    if not params:
        return
    stmt = (
        update(inventory_t)
        .where(inventory_t.c.node_id == bindparam("b_node"), inventory_t.c.sku == bindparam("b_sku"))
        .values(reserved=inventory_t.c.reserved + bindparam("b_delta"))
    )
    conn.execute(stmt, params)


def apply_consumed(conn: Connection, consumed: Mapping[Key, int]) -> None:
    """Shipping: the reserved units leave the building (on hand and reserved both drop)."""
    params = [{"b_node": n, "b_sku": s, "b_qty": q} for (n, s), q in sorted(consumed.items()) if q]
    if not params:
        return
    stmt = (
        update(inventory_t)
        .where(inventory_t.c.node_id == bindparam("b_node"), inventory_t.c.sku == bindparam("b_sku"))
        .values(
            on_hand=inventory_t.c.on_hand - bindparam("b_qty"),
            reserved=inventory_t.c.reserved - bindparam("b_qty"),
        )
    )
    conn.execute(stmt, params)


def apply_backlog(conn: Connection, deltas: Mapping[str, int]) -> None:
    """``backlog += delta`` per node, floored at 0 (a seeded backlog may be below our count)."""
    params = [{"b_node": n, "b_delta": d} for n, d in sorted(deltas.items()) if d]
    if not params:
        return
    new = nodes_t.c.backlog + bindparam("b_delta")
    stmt = update(nodes_t).where(nodes_t.c.id == bindparam("b_node")).values(backlog=case((new < 0, 0), else_=new))
    conn.execute(stmt, params)
