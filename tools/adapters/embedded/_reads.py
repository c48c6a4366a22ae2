"""Statements for the per-request reads of the fast decision API, built once per dialect.

``POST /v1/decide/route`` reads one order with its lines and the ATP of its SKUs on every request.
Built per call, those statements cost more CPU than the database work: SQLAlchemy coerced a new
``IN`` list, generated a cache key over a fresh tree and expanded the list's parameters into new
SQL text on every execute (a py-spy profile put the two reads at about half a decision's CPU).
Here each statement is built once per dialect and any list travels as ONE bound parameter (a JSON
text SQLite unpacks with ``json_each``; a PostgreSQL array with ``= ANY``), the form
:func:`._common.in_values` already uses for long lists: the SQL text never changes, so the
compiled form (SQLAlchemy's cache) and the driver's prepared statement are reused as they are,
whatever the list's length. The order comes with its lines in one query (a LEFT JOIN, one row per
line), not two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, String, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql

from tools.adapters.embedded._common import inventory_t, lines_t, nodes_t, orders_t, products_t


def _in_param(dialect: str, column: Any, name: str) -> ColumnElement[bool]:
    """``column IN`` the list bound as the one parameter ``name`` (see :func:`list_param`)."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String)))  # type: ignore[no-any-return]
    each = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def list_param(dialect: str, values: Sequence[str]) -> Any:
    """``values`` as the one parameter an ``_in_param`` term binds."""
    return list(values) if dialect == "postgresql" else json.dumps(list(values))


ORDER_WITH_LINES: Select[Any] = (
    select(
        orders_t,
        lines_t.c.line_no.label("line_no"),
        lines_t.c.sku.label("sku"),
        lines_t.c.quantity.label("quantity"),
        lines_t.c.unit_price.label("unit_price"),
    )
    .select_from(orders_t.outerjoin(lines_t, lines_t.c.order_id == orders_t.c.id))
    .where(orders_t.c.id == bindparam("order_id"))
    .order_by(lines_t.c.line_no)
)
"""One order (``order_id``) and its lines in line order: one row per line, or one row with
``line_no`` NULL for an order without lines; no row for an unknown order."""


@cache
def known_nodes(dialect: str) -> Select[Any]:
    """Which of the node ids bound as ``nodes`` exist."""
    return select(nodes_t.c.id).where(_in_param(dialect, nodes_t.c.id, "nodes"))


@cache
def atp(dialect: str, *, at_nodes: bool) -> Select[Any]:
    """(sku, node_id, on_hand - reserved) for the SKUs bound as ``skus`` (products LEFT JOIN
    inventory: a known SKU nobody stocks gives one row with node_id NULL, an unknown SKU none);
    with ``at_nodes`` only the inventory at the node ids bound as ``nodes``."""
    join_on = inventory_t.c.sku == products_t.c.sku
    if at_nodes:
        join_on = join_on & _in_param(dialect, inventory_t.c.node_id, "nodes")
    return (
        select(products_t.c.sku, inventory_t.c.node_id, inventory_t.c.on_hand - inventory_t.c.reserved)
        .select_from(products_t.outerjoin(inventory_t, join_on))
        .where(_in_param(dialect, products_t.c.sku, "skus"))
        .order_by(products_t.c.sku, inventory_t.c.node_id)
    )
