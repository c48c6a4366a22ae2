"""Orders read in bulk: rows as the plain records :class:`core.domain.Order` validates from.

A listing of many orders (a congestion plan's affected orders, the A/B replay's whole history)
reads the orders in one query and their lines in one query per :data:`CHUNK` orders, and validates
every order in ONE call of :data:`ORDER_LIST` (pydantic's core loops over the list). The records
are plain dicts, so a caller that rewrites fields before validating (the replay resets orders to
"just arrived") validates once, not twice.

Where the time goes (50k orders, ~87k lines, SQLite, collector paused as the congestion plan
pauses it): ~1.0 s CPU, against ~1.1 s building each order and line from its row; about half is
SQLAlchemy turning rows into Python values (dates, Decimals), a third pydantic. The OMS listing
builds its models with :func:`build_orders` (no validation: the columns already give every value
its type, see there): 100k orders 0.62-0.95 -> 0.39-0.50 s CPU for that step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Connection, select

from core.domain import Order, OrderLine, OrderStatus, ServiceLevel
from core.trusted import trusted_model
from tools.adapters.embedded._common import chunks, from_db_time, in_values, lines_t, orders_t

ORDER_LIST: TypeAdapter[list[Order]] = TypeAdapter(list[Order])
"""Validates a list of order records (lines included) in one call."""

_ORDER_COLUMNS = tuple(orders_t.c[name] for name in Order.model_fields if name != "lines")


def order_records(
    conn: Connection, where: Sequence[ColumnElement[bool]], *, limit: int, offset: int, with_lines: bool
) -> list[dict[str, Any]]:
    """The orders matching ``where``, oldest first (by id), as records of Order's fields (times
    aware, in UTC); with ``with_lines`` each carries its ``lines`` (in line order, ``[]`` when it
    has none), else ``lines`` is left out (the model's default, no lines)."""
    stmt = select(*_ORDER_COLUMNS).where(*where).order_by(orders_t.c.id).limit(limit).offset(offset)
    result = conn.execute(stmt)
    keys = tuple(result.keys())
    records = [dict(zip(keys, row, strict=True)) for row in result.all()]
    for rec in records:
        rec["created_at"] = from_db_time(rec["created_at"])
    if with_lines:
        lines = line_records(conn, [rec["id"] for rec in records])
        for rec in records:
            rec["lines"] = lines[rec["id"]]
    return records


def line_records(conn: Connection, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Lines of the given orders as records, by order id, in line order (``[]`` for an order
    without lines); one query per CHUNK ids, only the columns a line has."""
    out: dict[str, list[dict[str, Any]]] = {oid: [] for oid in order_ids}
    c = lines_t.c
    for part in chunks(order_ids):
        stmt = (
            select(c.order_id, c.line_no, c.sku, c.quantity, c.unit_price)
            .where(in_values(conn, c.order_id, part))
            .order_by(c.order_id, c.line_no)
        )
        for order_id, line_no, sku, quantity, unit_price in conn.execute(stmt).all():
            out[order_id].append({"line_no": line_no, "sku": sku, "quantity": quantity, "unit_price": unit_price})
    return out


def validate_orders(records: list[dict[str, Any]]) -> list[Order]:
    """The records as :class:`Order` models, validated in one call."""
    return ORDER_LIST.validate_python(records)


_STATUS: dict[str, OrderStatus] = {s.value: s for s in OrderStatus}
_LEVEL: dict[str, ServiceLevel] = {s.value: s for s in ServiceLevel}
_ORDER_FIELDS = frozenset(Order.model_fields)
_ORDER_FIELDS_BARE = _ORDER_FIELDS - {"lines"}
_LINE_FIELDS = frozenset(OrderLine.model_fields)


def build_orders(records: list[dict[str, Any]]) -> list[Order]:
    """:func:`validate_orders` for records exactly as :func:`order_records` reads them (takes
    them over: they become the models' fields), without validating them again.

    Each column's type already gives each value the type validation would leave (str, int,
    Decimal from Numeric, float, date, aware datetime after :func:`from_db_time`, ``None`` only
    where the column is nullable); only the status and service level are text, mapped to their
    enums here. Validation cost ~6-9 us an order (100k orders: 0.62-0.95 s CPU, this 0.39-0.50 s).
    A status or level the enums do not know falls back to validation (which raises as before).
    tests/adapters/test_trusted_orders.py holds the result equal to validation's, field by
    field (types, fields set, reprs) on SQLite and PostgreSQL."""
    status, level = _STATUS, _LEVEL
    out: list[Order] = []
    try:
        for rec in records:
            rec["status"] = status[rec["status"]]
            rec["service_level"] = level[rec["service_level"]]
            held = rec["held_from"]
            if held is not None:
                rec["held_from"] = status[held]
            lines = rec.get("lines")
            if lines is None:
                rec["lines"] = ()
                fields = _ORDER_FIELDS_BARE
            else:
                rec["lines"] = tuple(trusted_model(OrderLine, ln, _LINE_FIELDS) for ln in lines)
                fields = _ORDER_FIELDS
            out.append(trusted_model(Order, rec, fields))
    except KeyError:
        # Not what the columns give (an unknown status or level): validation says what is wrong.
        return validate_orders(records)
    return out
