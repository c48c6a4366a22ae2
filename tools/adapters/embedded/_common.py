"""Helpers shared by the embedded adapters: large ``IN`` lists, row -> schema conversion, time.

Everything here is Core SQL on a :class:`sqlalchemy.Connection`; the adapters never use ORM
identity maps, so a batch of 10,000 orders costs a few statements, not 10,000 objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, String, Table, any_, func, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from core.db.tables import (
    AddressRow,
    CarrierRow,
    CarrierServiceRow,
    CustomerRow,
    InventoryRow,
    NodeRow,
    OrderLineRow,
    OrderRow,
    ProductRow,
    ShipmentRow,
    TrackingEventRow,
)
from core.domain import (
    Address,
    Carrier,
    CarrierService,
    Customer,
    InventoryPosition,
    Node,
    Order,
    OrderLine,
    Product,
    Shipment,
    TrackingEvent,
)
from core.errors import ValidationFailed

T = TypeVar("T")

orders_t = cast(Table, OrderRow.__table__)
lines_t = cast(Table, OrderLineRow.__table__)
inventory_t = cast(Table, InventoryRow.__table__)
nodes_t = cast(Table, NodeRow.__table__)
products_t = cast(Table, ProductRow.__table__)
customers_t = cast(Table, CustomerRow.__table__)
addresses_t = cast(Table, AddressRow.__table__)
carriers_t = cast(Table, CarrierRow.__table__)
services_t = cast(Table, CarrierServiceRow.__table__)
shipments_t = cast(Table, ShipmentRow.__table__)
tracking_t = cast(Table, TrackingEventRow.__table__)

# Up to this many values go into a plain ``IN (?, ?, ...)``; longer lists travel as ONE parameter
# (a PostgreSQL array or a JSON text SQLite unpacks with json_each), so no list can hit a driver's
# bound-parameter limit (SQLite: 32,766; PostgreSQL: 65,535) and the SQL text stays small.
SMALL_IN = 500
# Loads of many orders are cut in chunks of this size to keep memory flat on huge batches.
CHUNK = 5000

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def in_values(conn: Connection, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN values`` that works for any length on SQLite and PostgreSQL."""
    if len(values) <= SMALL_IN:
        return column.in_(list(values))  # type: ignore[no-any-return]
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(values), type_=postgresql.ARRAY(String)))  # type: ignore[no-any-return]
    each = func.json_each(literal(json.dumps(list(values)))).table_valued("value")
    return column.in_(select(each.c.value))  # type: ignore[no-any-return]


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def unique_ids(ids: Iterable[str], what: str = "order ids") -> list[str]:
    """The ids in first-seen order without repeats; an empty batch is a caller error."""
    if isinstance(ids, str):
        raise ValidationFailed(f"{what} must be a list, not a single string")
    out = list(dict.fromkeys(ids))
    if not out:
        raise ValidationFailed(f"no {what} given: a batch needs at least one")
    return out


# --- time ---------------------------------------------------------------------------------------
# Timestamps are stored as naive UTC (the columns are ``timestamp without time zone``) and handed
# out aware, so both backends return the same instant.


def to_db_time(at: datetime) -> datetime:
    if at.tzinfo is None:
        return at
    return at.astimezone(UTC).replace(tzinfo=None)


def from_db_time(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def add_business_days(start: date, days: int) -> date:
    """``start`` plus ``days`` weekdays (Saturdays and Sundays do not count)."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


# --- rows -> schemas ----------------------------------------------------------------------------


def order_from_row(row: Any, lines: Sequence[OrderLine] = ()) -> Order:
    m = row._mapping
    return Order(
        id=m["id"],
        customer_id=m["customer_id"],
        external_ref=m["external_ref"],
        ship_to_id=m["ship_to_id"],
        status=m["status"],
        held_from=m["held_from"],
        node_id=m["node_id"],
        carrier_service_id=m["carrier_service_id"],
        service_level=m["service_level"],
        promised_date=m["promised_date"],
        created_at=from_db_time(m["created_at"]),
        total_value=m["total_value"],
        total_units=m["total_units"],
        weight_kg=m["weight_kg"],
        version=m["version"],
        lines=tuple(lines),
    )


def line_from_row(row: Any) -> OrderLine:
    m = row._mapping
    return OrderLine(line_no=m["line_no"], sku=m["sku"], quantity=m["quantity"], unit_price=m["unit_price"])


def node_from_row(row: Any) -> Node:
    return Node.model_validate(dict(row._mapping))


def product_from_row(row: Any) -> Product:
    return Product.model_validate(dict(row._mapping))


def customer_from_row(row: Any) -> Customer:
    return Customer.model_validate(dict(row._mapping))


def address_from_row(row: Any) -> Address:
    return Address.model_validate(dict(row._mapping))


def position_from_row(row: Any) -> InventoryPosition:
    return InventoryPosition.model_validate(dict(row._mapping))


def carrier_from_row(row: Any) -> Carrier:
    m = dict(row._mapping)
    m["outage_states"] = tuple(m.get("outage_states") or ())
    return Carrier.model_validate(m)


def service_from_row(row: Any) -> CarrierService:
    m = dict(row._mapping)
    m["transit_days_by_zone"] = tuple(m["transit_days_by_zone"])
    return CarrierService.model_validate(m)


def shipment_from_row(row: Any) -> Shipment:
    return Shipment.model_validate(dict(row._mapping))


def tracking_from_row(row: Any) -> TrackingEvent:
    m = row._mapping
    return TrackingEvent(
        shipment_id=m["shipment_id"],
        at=from_db_time(m["at"]),
        status=m["status"],
        location=m["location"],
        note=m["note"],
    )
