"""The embedded OMS: orders, customers, catalogue and prices on the project's own database.

This is the reference implementation of :class:`tools.adapters.protocols.OMS` and the order side
of the digital twin. It must behave like a real network: every status change goes through
:func:`core.domain.check_transition`, reserving statuses hold stock at the order's node, and a call
that raises leaves the database exactly as it was (one transaction per write).

Batch rules (the same for ``allocate`` and ``transition``): members that cannot make the change are
returned in ``skipped`` with a reason and the rest is applied; only when NO member is in a status
that allows the change does the call raise :class:`InvalidTransition`, so a one-order call fails
loudly. Batches are served with a few set-based statements, never one round trip per order.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Table, func, insert, or_, select, update

from core.clock import Clock
from core.db import Database
from core.db.tables import PriceListItemRow, PriceListRow, ProductUomRow
from core.db.tables_intake import IntakeMappingRow
from core.domain import (
    OPEN_STATUSES,
    REROUTABLE_STATUSES,
    RESERVING_STATUSES,
    Address,
    Customer,
    MoveResult,
    NodeStatus,
    Order,
    OrderCreate,
    OrderLine,
    OrderStatus,
    Product,
    ServiceLevel,
    check_transition,
)
from core.errors import Conflict, InsufficientInventory, InvalidTransition, NotFound, ValidationFailed
from tools.adapters.embedded import _reads, _stock
from tools.adapters.embedded._common import (
    add_business_days,
    address_from_row,
    addresses_t,
    chunks,
    customer_from_row,
    customers_t,
    in_values,
    line_from_row,
    lines_t,
    money,
    nodes_t,
    order_from_row,
    orders_t,
    product_from_row,
    products_t,
    services_t,
    to_db_time,
    unique_ids,
)
from tools.adapters.embedded._orders import build_orders, order_records
from tools.adapters.embedded._orders import validate_orders as validate_orders
from tools.adapters.protocols import BatchResult, NewCustomer, OrderFilter

price_items_t = cast(Table, PriceListItemRow.__table__)
uoms_t = cast(Table, ProductUomRow.__table__)
price_lists_t = cast(Table, PriceListRow.__table__)
mappings_t = cast(Table, IntakeMappingRow.__table__)

# Default promise when the order does not carry one: business days after today per service level.
PROMISE_DAYS: dict[ServiceLevel, int] = {ServiceLevel.GROUND: 5, ServiceLevel.TWO_DAY: 2, ServiceLevel.OVERNIGHT: 1}
# Statuses whose carrier service may still be changed (the parcel has not left).
CARRIER_CHANGEABLE: frozenset[OrderStatus] = OPEN_STATUSES


def list_order_records(
    db: Database, flt: OrderFilter, *, limit: int, offset: int = 0, with_lines: bool = False
) -> list[dict[str, Any]]:
    """What :meth:`EmbeddedOMS.list_orders` returns, as the records it validates (fields of
    :class:`Order`, times aware in UTC): a reader that rewrites orders before use (the A/B
    replay) changes the records and validates once (:func:`validate_orders`)."""
    if limit <= 0 or offset < 0:
        raise ValidationFailed(f"limit must be > 0 and offset >= 0 (got limit={limit}, offset={offset})")
    with db.connect() as conn:
        return order_records(conn, _where(conn, flt), limit=limit, offset=offset, with_lines=with_lines)


def _where(conn: Connection, flt: OrderFilter) -> list[ColumnElement[bool]]:
    """The filter as WHERE terms on ``orders``; each maps onto an indexed column where one exists."""
    c = orders_t.c
    terms: list[ColumnElement[bool]] = []
    try:
        statuses = None if flt.statuses is None else [OrderStatus(s).value for s in flt.statuses]
        levels = None if flt.service_levels is None else [ServiceLevel(s).value for s in flt.service_levels]
    except ValueError as err:
        raise ValidationFailed(f"bad order filter: {err}") from None
    for values, col in (
        (flt.order_ids, c.id),
        (flt.node_ids, c.node_id),
        (flt.customer_ids, c.customer_id),
        (flt.carrier_service_ids, c.carrier_service_id),
    ):
        if values is not None:
            terms.append(in_values(conn, col, list(values)))
    for chosen, col in ((statuses, c.status), (levels, c.service_level)):
        if chosen is not None:
            terms.append(col.in_(chosen))
    for bound, col, op in (
        (flt.promised_on_or_before, c.promised_date, operator.le),
        (flt.promised_on_or_after, c.promised_date, operator.ge),
        (flt.min_value, c.total_value, operator.ge),
        (flt.max_value, c.total_value, operator.le),
    ):
        if bound is not None:
            terms.append(op(col, bound))
    if flt.skus is not None:
        # Driven by ix_order_lines_sku: few SKUs select few orders out of millions.
        with_sku = select(lines_t.c.order_id).where(in_values(conn, lines_t.c.sku, list(flt.skus)))
        terms.append(c.id.in_(with_sku))
    return terms


def _reserving(status: OrderStatus, held_from: OrderStatus | None) -> bool:
    """Whether an order in this state holds a reservation (a hold keeps the one it had)."""
    return status in RESERVING_STATUSES or (status is OrderStatus.HELD and held_from in RESERVING_STATUSES)


def _status(row: Any) -> tuple[OrderStatus, OrderStatus | None]:
    return OrderStatus(row.status), OrderStatus(row.held_from) if row.held_from else None


class EmbeddedOMS:
    """OMS on :class:`core.db.Database`; ``clock`` decides what "today" is for promises."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # --- order reads ----------------------------------------------------------------------------

    def get_order(self, order_id: str) -> Order:
        """One order with its lines, in one query built once (:mod:`._reads`): the decision API
        reads one on every request. The same order as :meth:`get_orders` builds."""
        with self.db.connect() as conn:
            rows = conn.execute(_reads.ORDER_WITH_LINES, {"order_id": order_id}).all()
        if not rows:
            raise NotFound("order", order_id)
        lines = [line_from_row(r) for r in rows if r.line_no is not None]
        return order_from_row(rows[0], lines)

    def get_orders(self, order_ids: Sequence[str]) -> list[Order]:
        """Orders in the given order; raises NotFound naming the first unknown id."""
        ids = list(order_ids)
        if not ids:
            return []
        with self.db.connect() as conn:
            rows = self._load_orders(conn, list(dict.fromkeys(ids)))
            lines = _stock.load_lines(conn, list(rows))
        return [order_from_row(rows[i], lines[i]) for i in ids]

    def list_orders(
        self, flt: OrderFilter, *, limit: int = 1000, offset: int = 0, with_lines: bool = False
    ) -> list[Order]:
        """Orders matching ``flt``, oldest first (by id). ``with_lines`` loads the lines too.

        Read as records in two queries and built from them without validating again (:func:`._orders.build_orders`)."""
        return build_orders(list_order_records(self.db, flt, limit=limit, offset=offset, with_lines=with_lines))

    def count_orders(self, flt: OrderFilter) -> int:
        with self.db.connect() as conn:
            stmt = select(func.count()).select_from(orders_t).where(*_where(conn, flt))
            return int(conn.execute(stmt).scalar_one())

    def count_by_status(self, flt: OrderFilter) -> dict[OrderStatus, int]:
        """Counts for every status (0 where none), so callers can index without checking."""
        with self.db.connect() as conn:
            stmt = select(orders_t.c.status, func.count()).where(*_where(conn, flt)).group_by(orders_t.c.status)
            counts = {OrderStatus(s): int(n) for s, n in conn.execute(stmt)}
        return {s: counts.get(s, 0) for s in OrderStatus}

    # --- order writes ---------------------------------------------------------------------------

    def create_order(self, order: OrderCreate, *, order_id: str | None = None) -> Order:
        """Create an order in status ``created`` (not allocated). Prices default to the price list."""
        _check_new_order(order, order_id)
        with self.db.begin() as session:
            conn = session.connection()
            customer = conn.execute(select(customers_t).where(customers_t.c.id == order.customer_id)).first()
            if customer is None:
                raise NotFound("customer", order.customer_id)
            ship_to = self._ship_to(conn, order.customer_id, order.ship_to_id)
            skus = list(dict.fromkeys(line.sku for line in order.lines))
            products = {r.sku: r for r in conn.execute(select(products_t).where(products_t.c.sku.in_(skus)))}
            for sku in skus:
                if sku not in products:
                    raise NotFound("product", sku)
            contract = self._price_list(conn, customer.price_list_id, skus)
            if order_id is None:
                order_id = self._new_order_id(conn)
            elif conn.execute(select(orders_t.c.id).where(orders_t.c.id == order_id)).first() is not None:
                raise Conflict(f"order {order_id} already exists", order_id=order_id)
            line_rows, total_value, total_units, weight = _priced_lines(order, order_id, products, contract)
            promised = order.promised_date or add_business_days(
                self.clock.today(), PROMISE_DAYS[ServiceLevel(order.service_level)]
            )
            conn.execute(
                insert(orders_t).values(
                    id=order_id,
                    customer_id=order.customer_id,
                    external_ref=order.external_ref,
                    ship_to_id=ship_to,
                    status=OrderStatus.CREATED.value,
                    held_from=None,
                    node_id=None,
                    carrier_service_id=None,
                    service_level=ServiceLevel(order.service_level).value,
                    promised_date=promised,
                    created_at=to_db_time(self.clock.now()),
                    total_value=money(total_value),
                    total_units=total_units,
                    weight_kg=round(weight, 3),
                    version=1,
                )
            )
            conn.execute(insert(lines_t), line_rows)
            row = conn.execute(select(orders_t).where(orders_t.c.id == order_id)).one()
            lines = _stock.load_lines(conn, [order_id])[order_id]
        return order_from_row(row, lines)

    def allocate(self, order_ids: Sequence[str], node_id: str | None = None) -> BatchResult:
        """Reserve stock for ``created`` orders at ``node_id`` (or at their assigned node) -> ``allocated``."""
        ids = unique_ids(order_ids)
        with self.db.begin() as session:
            conn = session.connection()
            if node_id is not None:
                self._node_row(conn, node_id)
            rows = self._load_orders(conn, ids, lock=True)
            result = BatchResult()
            eligible: list[Any] = []
            first_error: InvalidTransition | None = None
            for oid in ids:
                status, _ = _status(rows[oid])
                if status is OrderStatus.CREATED:
                    eligible.append(rows[oid])
                else:
                    err = InvalidTransition(
                        f"order {oid} is {status.value}; only created orders can be allocated",
                        order_id=oid,
                        current=status.value,
                        target=OrderStatus.ALLOCATED.value,
                    )
                    first_error = first_error or err
                    result.skipped[oid] = err.message
            if not eligible and first_error is not None:
                raise first_error
            self._allocate_rows(conn, eligible, node_id, result)
        return _in_input_order(result, ids)

    def move_orders(self, order_ids: Sequence[str], to_node_id: str) -> MoveResult:
        """Reroute unreleased orders to another node: release their reservations where they were,
        reserve at the target. An order the target cannot serve in full is skipped with a reason."""
        ids = unique_ids(order_ids)
        with self.db.begin() as session:
            conn = session.connection()
            target = self._node_row(conn, to_node_id)
            if target.status == NodeStatus.CLOSED.value:
                raise ValidationFailed(f"node {to_node_id} is closed; orders cannot be moved there", node_id=to_node_id)
            rows = self._load_orders(conn, ids, lock=True)
            result = MoveResult()
            movable: list[Any] = []
            for oid in ids:
                row = rows[oid]
                if OrderStatus(row.status) not in REROUTABLE_STATUSES:
                    result.skipped[oid] = f"order {oid} is {row.status}; only created or allocated orders can move"
                elif row.node_id == to_node_id:
                    result.skipped[oid] = f"order {oid} is already at {to_node_id}"
                else:
                    movable.append(row)
            allocated = [r for r in movable if r.status == OrderStatus.ALLOCATED.value]
            lines = _stock.load_lines(conn, [r.id for r in allocated])
            order_needs = {r.id: _stock.needs(lines[r.id]) for r in allocated}
            skus = {sku for need in order_needs.values() for sku in need}
            atp = _stock.load_atp(conn, [to_node_id], skus, lock=True)
            deltas: dict[_stock.Key, int] = {}
            backlog: dict[str, int] = defaultdict(int)
            moved: list[Any] = []
            for row in movable:
                if row.status == OrderStatus.ALLOCATED.value:
                    need = order_needs[row.id]
                    why = _stock.shortfall(need, atp, to_node_id)
                    if why is not None:
                        result.skipped[row.id] = why
                        continue
                    _stock.take(need, atp, to_node_id, deltas)
                    for sku, qty in need.items():
                        deltas[(row.node_id, sku)] = deltas.get((row.node_id, sku), 0) - qty
                    backlog[row.node_id] -= 1
                    backlog[to_node_id] += 1
                moved.append(row)
            _stock.apply_reserved(conn, deltas)
            _stock.apply_backlog(conn, backlog)
            moved_ids = [r.id for r in moved]
            self._update_orders(conn, moved_ids, node_id=to_node_id)
            result.moved = moved_ids
            result.units_moved = sum(int(r.total_units) for r in moved)
        return result

    def split_order(self, order_id: str, line_nos: Sequence[int], to_node_id: str) -> Order:
        """Move some lines of an unreleased order into a new order shipped from another node.

        The new order (id ``<order>-S<n>``) copies the customer, ship-to, PO reference, service
        level and promise; an allocated order's moved lines release their stock at the old node and
        reserve it at the new one (all or nothing: InsufficientInventory changes nothing)."""
        wanted = list(dict.fromkeys(int(n) for n in line_nos))
        if not wanted:
            raise ValidationFailed("name at least one line to split off")
        with self.db.begin() as session:
            conn = session.connection()
            row = self._load_orders(conn, [order_id], lock=True)[order_id]
            if OrderStatus(row.status) not in REROUTABLE_STATUSES:
                raise InvalidTransition(
                    f"order {order_id} is {row.status}; only created or allocated orders can be split",
                    order_id=order_id,
                )
            if self._node_row(conn, to_node_id).status == NodeStatus.CLOSED.value:
                raise ValidationFailed(f"node {to_node_id} is closed; lines cannot be split to it", node_id=to_node_id)
            if row.node_id == to_node_id:
                raise ValidationFailed(f"order {order_id} is already at {to_node_id}", order_id=order_id)
            lines = _stock.load_lines(conn, [order_id])[order_id]
            moving = _lines_to_split(order_id, lines, wanted)
            staying = [ln for ln in lines if ln.line_no not in set(wanted)]
            allocated = row.status == OrderStatus.ALLOCATED.value
            if allocated:
                _move_reservations(conn, row, moving, to_node_id)
            n = 1 + int(
                conn.execute(
                    select(func.count()).select_from(orders_t).where(orders_t.c.id.like(f"{order_id}-S%"))
                ).scalar_one()
            )
            new_id = f"{order_id}-S{n}"
            weights = {
                r.sku: float(r.weight_kg)
                for r in conn.execute(
                    select(products_t.c.sku, products_t.c.weight_kg).where(
                        products_t.c.sku.in_({ln.sku for ln in lines})
                    )
                )
            }

            def totals(part: Sequence[OrderLine]) -> dict[str, Any]:
                return {
                    "total_value": money(sum((ln.unit_price * ln.quantity for ln in part), Decimal(0))),
                    "total_units": sum(ln.quantity for ln in part),
                    "weight_kg": round(sum(weights[ln.sku] * ln.quantity for ln in part), 3),
                }

            conn.execute(
                insert(orders_t).values(
                    id=new_id,
                    customer_id=row.customer_id,
                    external_ref=row.external_ref,
                    ship_to_id=row.ship_to_id,
                    status=row.status,
                    held_from=None,
                    node_id=to_node_id,
                    carrier_service_id=row.carrier_service_id,
                    service_level=row.service_level,
                    promised_date=row.promised_date,
                    created_at=to_db_time(self.clock.now()),
                    version=1,
                    **totals(moving),
                )
            )
            conn.execute(lines_t.delete().where(lines_t.c.order_id == order_id, lines_t.c.line_no.in_(wanted)))
            conn.execute(
                insert(lines_t),
                [
                    {
                        "order_id": new_id,
                        "line_no": i,
                        "sku": ln.sku,
                        "quantity": ln.quantity,
                        "unit_price": ln.unit_price,
                    }
                    for i, ln in enumerate(moving, start=1)
                ],
            )
            self._update_orders(conn, [order_id], **totals(staying))
        return self.get_order(new_id)

    def transition(self, order_ids: Sequence[str], target: OrderStatus) -> BatchResult:
        """Lifecycle changes (release, pick, ship, deliver, hold, unhold, cancel) on a batch.
        Cancelling frees reservations; shipping consumes them (on hand and reserved both drop)."""
        ids = unique_ids(order_ids)
        try:
            target = OrderStatus(target)
        except ValueError:
            raise ValidationFailed(f"unknown order status {target!r}") from None
        with self.db.begin() as session:
            conn = session.connection()
            rows = self._load_orders(conn, ids, lock=True)
            result = BatchResult()
            eligible: list[Any] = []
            first_error: InvalidTransition | None = None
            for oid in ids:
                status, held_from = _status(rows[oid])
                try:
                    check_transition(oid, status, target, held_from)
                except InvalidTransition as err:
                    first_error = first_error or err
                    result.skipped[oid] = err.message
                else:
                    eligible.append(rows[oid])
            if not eligible and first_error is not None:
                raise first_error
            # created -> allocated is an allocation: it must reserve stock, so it takes that path.
            to_allocate = [r for r in eligible if r.status == OrderStatus.CREATED.value]
            if target is OrderStatus.ALLOCATED and to_allocate:
                self._allocate_rows(conn, to_allocate, None, result)
                eligible = [r for r in eligible if r.status != OrderStatus.CREATED.value]
            self._apply_transition(conn, eligible, target)
            result.done.extend(r.id for r in eligible)
        return _in_input_order(result, ids)

    def set_carrier_service(self, order_ids: Sequence[str], carrier_service_id: str) -> BatchResult:
        ids = unique_ids(order_ids)
        with self.db.begin() as session:
            conn = session.connection()
            if conn.execute(select(services_t.c.id).where(services_t.c.id == carrier_service_id)).first() is None:
                raise NotFound("carrier service", carrier_service_id)
            rows = self._load_orders(conn, ids, lock=True)
            result = BatchResult()
            for oid in ids:
                if OrderStatus(rows[oid].status) in CARRIER_CHANGEABLE:
                    result.done.append(oid)
                else:
                    result.skipped[oid] = f"order {oid} is {rows[oid].status}; its carrier can no longer change"
            self._update_orders(conn, result.done, carrier_service_id=carrier_service_id)
        return result

    # --- customers, catalogue, prices -----------------------------------------------------------

    def get_customer(self, customer_id: str) -> Customer:
        with self.db.connect() as conn:
            row = conn.execute(select(customers_t).where(customers_t.c.id == customer_id)).first()
        if row is None:
            raise NotFound("customer", customer_id)
        return customer_from_row(row)

    def list_customers(self) -> list[Customer]:
        with self.db.connect() as conn:
            return [customer_from_row(r) for r in conn.execute(select(customers_t).order_by(customers_t.c.id))]

    def addresses(self, customer_id: str) -> list[Address]:
        self.get_customer(customer_id)
        with self.db.connect() as conn:
            stmt = select(addresses_t).where(addresses_t.c.customer_id == customer_id).order_by(addresses_t.c.id)
            return [address_from_row(r) for r in conn.execute(stmt)]

    def get_address(self, address_id: str) -> Address:
        with self.db.connect() as conn:
            row = conn.execute(select(addresses_t).where(addresses_t.c.id == address_id)).first()
        if row is None:
            raise NotFound("address", address_id)
        return address_from_row(row)

    def get_addresses(self, address_ids: Sequence[str]) -> list[Address]:
        """Addresses in the given order (batch read for simulations); NotFound on an unknown id."""
        wanted = list(address_ids)
        if not wanted:
            return []
        with self.db.connect() as conn:
            stmt = select(addresses_t).where(in_values(conn, addresses_t.c.id, list(dict.fromkeys(wanted))))
            found = {r.id: r for r in conn.execute(stmt)}
        for address_id in wanted:
            if address_id not in found:
                raise NotFound("address", address_id)
        return [address_from_row(found[a]) for a in wanted]

    def get_product(self, sku: str) -> Product:
        return self.get_products([sku])[0]

    def get_products(self, skus: Sequence[str]) -> list[Product]:
        """Products in the given order; NotFound naming the first unknown SKU."""
        wanted = list(skus)
        if not wanted:
            return []
        with self.db.connect() as conn:
            stmt = select(products_t).where(in_values(conn, products_t.c.sku, list(dict.fromkeys(wanted))))
            found = {r.sku: r for r in conn.execute(stmt)}
        for sku in wanted:
            if sku not in found:
                raise NotFound("product", sku)
        return [product_from_row(found[s]) for s in wanted]

    def search_products(self, text: str, *, limit: int = 10) -> list[Product]:
        """Products whose SKU, name or description contains ``text`` (case-insensitive); exact SKU first."""
        needle = text.strip().lower()
        if not needle:
            raise ValidationFailed("search text is empty")
        if limit <= 0:
            raise ValidationFailed("limit must be > 0")
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        cols = (products_t.c.sku, products_t.c.name, products_t.c.description)
        with self.db.connect() as conn:
            stmt = (
                select(products_t)
                .where(or_(*(func.lower(c).like(pattern, escape="\\") for c in cols)))
                .order_by((func.lower(products_t.c.sku) != needle), products_t.c.sku)
                .limit(limit)
            )
            return [product_from_row(r) for r in conn.execute(stmt)]

    def list_products(self, *, after: str | None = None, limit: int = 5000) -> list[Product]:
        """The catalogue by SKU, one page at a time (keyset paging on the SKU)."""
        if limit <= 0:
            raise ValidationFailed("limit must be > 0")
        stmt = select(products_t).order_by(products_t.c.sku).limit(limit)
        if after is not None:
            stmt = stmt.where(products_t.c.sku > after)
        with self.db.connect() as conn:
            return [product_from_row(r) for r in conn.execute(stmt)]

    def create_customer(self, new: NewCustomer, *, customer_id: str) -> Customer:
        """Customer, addresses and part numbers in one transaction. The part numbers go where intake
        reads a customer's cross-references (the ``intake_mappings`` table, kind ``part``)."""
        price_list = new.price_list_id or f"PL-{new.tier.value.upper()}"
        with self.db.begin() as session:
            conn = session.connection()
            if conn.execute(select(price_lists_t.c.id).where(price_lists_t.c.id == price_list)).first() is None:
                raise NotFound("price list", price_list)
            clashes = _customer_clashes(conn, new, customer_id)
            if clashes:
                raise Conflict("already in use: " + ", ".join(f"{w} {v}" for w, v in clashes), customer_id=customer_id)
            skus = sorted(set(new.part_numbers.values()))
            known = set(conn.execute(select(products_t.c.sku).where(in_values(conn, products_t.c.sku, skus))).scalars())
            for sku in skus:
                if sku not in known:
                    raise NotFound("product", sku)
            conn.execute(
                insert(customers_t).values(
                    id=customer_id, name=new.name, account_number=new.account_number, tier=new.tier.value,
                    email=new.email, email_domain=new.email_domain.lower(), edi_id=new.edi_id, gln=new.gln,
                    price_list_id=price_list,
                )
            )  # fmt: skip
            for a in new.addresses:
                conn.execute(insert(addresses_t).values(customer_id=customer_id, **a.model_dump()))
            now = self.clock.now()  # intake_mappings keeps aware timestamps
            for key, sku in sorted(_part_keys(new.part_numbers).items()):
                conn.execute(
                    insert(mappings_t).values(
                        customer_id=customer_id, kind="part", source_value=key, target_value=sku,
                        created_by=new.created_by or "create_customer", created_at=now, times_used=0,
                    )
                )  # fmt: skip
        return self.get_customer(customer_id)

    def prices(self, customer_id: str, skus: Sequence[str]) -> dict[str, Decimal]:
        """The customer's contract price per SKU (its price list, else the list price)."""
        customer = self.get_customer(customer_id)
        products = self.get_products(list(dict.fromkeys(skus)))
        with self.db.connect() as conn:
            contract = self._price_list(conn, customer.price_list_id, [p.sku for p in products])
        return {p.sku: contract.get(p.sku, p.list_price) for p in products}

    def uom_factor(self, sku: str, uom: str) -> int:
        """Base units in one ``uom`` of ``sku`` (1 for the base uom); NotFound if unknown."""
        product = self.get_product(sku)
        if uom.upper() == product.base_uom.upper():
            return 1
        with self.db.connect() as conn:
            stmt = select(uoms_t.c.qty_in_base).where(uoms_t.c.sku == sku, func.upper(uoms_t.c.uom) == uom.upper())
            factor = conn.execute(stmt).scalar()
        if factor is None:
            raise NotFound("unit of measure", f"{sku}/{uom}")
        return int(factor)

    # --- internals ------------------------------------------------------------------------------

    def _load_orders(self, conn: Connection, ids: Sequence[str], *, lock: bool = False) -> dict[str, Any]:
        """Order rows by id; NotFound naming the first unknown id (in the caller's order)."""
        found: dict[str, Any] = {}
        for part in chunks(ids):
            stmt = select(orders_t).where(in_values(conn, orders_t.c.id, part))
            if lock:
                stmt = stmt.with_for_update()
            found.update((r.id, r) for r in conn.execute(stmt))
        for oid in ids:
            if oid not in found:
                raise NotFound("order", oid)
        return found

    def _node_row(self, conn: Connection, node_id: str) -> Any:
        row = conn.execute(select(nodes_t).where(nodes_t.c.id == node_id)).first()
        if row is None:
            raise NotFound("node", node_id)
        return row

    def _update_orders(self, conn: Connection, ids: Sequence[str], **values: Any) -> None:
        """One UPDATE per chunk setting the same values on every order (and bumping its version)."""
        for part in chunks(ids):
            conn.execute(
                update(orders_t)
                .where(in_values(conn, orders_t.c.id, part))
                .values(version=orders_t.c.version + 1, **values)
            )

    def _allocate_rows(self, conn: Connection, rows: Sequence[Any], node_id: str | None, result: BatchResult) -> None:
        """Reserve all lines of each ``created`` order at its node, all or nothing per order.

        Orders are served in the caller's order from a running ATP, so two orders competing for
        the last units cannot both get them.
        """
        targets: dict[str, str] = {}
        for row in rows:
            target = node_id or row.node_id
            if target is None:
                result.skipped[row.id] = f"order {row.id} has no node; pass node_id to allocate it"
            else:
                targets[row.id] = target
        node_rows = {r.id: r for r in conn.execute(select(nodes_t).where(nodes_t.c.id.in_(set(targets.values()))))}
        lines = _stock.load_lines(conn, list(targets))
        order_needs = {oid: _stock.needs(lines[oid]) for oid in targets}
        skus = {sku for need in order_needs.values() for sku in need}
        atp = _stock.load_atp(conn, set(targets.values()), skus, lock=True)
        deltas: dict[_stock.Key, int] = {}
        backlog: dict[str, int] = defaultdict(int)
        by_node: dict[str, list[str]] = defaultdict(list)
        for oid, target in targets.items():
            if node_rows[target].status == NodeStatus.CLOSED.value:
                result.skipped[oid] = f"node {target} is closed"
                continue
            why = _stock.shortfall(order_needs[oid], atp, target)
            if why is not None:
                result.skipped[oid] = why
                continue
            _stock.take(order_needs[oid], atp, target, deltas)
            backlog[target] += 1
            by_node[target].append(oid)
            result.done.append(oid)
        _stock.apply_reserved(conn, deltas)
        _stock.apply_backlog(conn, backlog)
        for target, oids in by_node.items():
            self._update_orders(conn, oids, status=OrderStatus.ALLOCATED.value, held_from=None, node_id=target)

    def _apply_transition(self, conn: Connection, rows: Sequence[Any], target: OrderStatus) -> None:
        """Status change of already-checked orders plus its effect on stock and backlog."""
        release: list[Any] = []  # reservation freed (cancel, de-allocate)
        consume: list[Any] = []  # reservation leaves with the parcel (ship)
        groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for row in rows:
            status, held_from = _status(row)
            was = _reserving(status, held_from)
            new_held_from = status if target is OrderStatus.HELD else None
            stays = _reserving(target, new_held_from)
            if was and target is OrderStatus.SHIPPED:
                consume.append(row)
            elif was and not stays:
                release.append(row)
            groups[(target.value, new_held_from.value if new_held_from else None)].append(row.id)
        if release or consume:
            lines = _stock.load_lines(conn, [r.id for r in (*release, *consume)])
            reserved: dict[_stock.Key, int] = defaultdict(int)
            consumed: dict[_stock.Key, int] = defaultdict(int)
            backlog: dict[str, int] = defaultdict(int)
            for row in release:
                for sku, qty in _stock.needs(lines[row.id]).items():
                    reserved[(row.node_id, sku)] -= qty
                backlog[row.node_id] -= 1
            for row in consume:
                for sku, qty in _stock.needs(lines[row.id]).items():
                    consumed[(row.node_id, sku)] += qty
                backlog[row.node_id] -= 1
            _stock.apply_reserved(conn, reserved)
            _stock.apply_consumed(conn, consumed)
            _stock.apply_backlog(conn, backlog)
        for (status_value, held_value), oids in groups.items():
            self._update_orders(conn, oids, status=status_value, held_from=held_value)

    def _ship_to(self, conn: Connection, customer_id: str, ship_to_id: str | None) -> str:
        if ship_to_id is None:
            stmt = select(addresses_t.c.id).where(addresses_t.c.customer_id == customer_id).order_by(addresses_t.c.id)
            first = conn.execute(stmt.limit(1)).scalar()
            if first is None:
                raise ValidationFailed(
                    f"customer {customer_id} has no address; give ship_to_id", customer_id=customer_id
                )
            return str(first)
        owner = conn.execute(select(addresses_t.c.customer_id).where(addresses_t.c.id == ship_to_id)).first()
        if owner is None:
            raise NotFound("address", ship_to_id)
        if owner.customer_id != customer_id:
            raise ValidationFailed(
                f"address {ship_to_id} does not belong to customer {customer_id}",
                address_id=ship_to_id,
                customer_id=customer_id,
            )
        return ship_to_id

    def _price_list(self, conn: Connection, price_list_id: str, skus: Sequence[str]) -> dict[str, Decimal]:
        stmt = select(price_items_t.c.sku, price_items_t.c.unit_price).where(
            price_items_t.c.price_list_id == price_list_id, in_values(conn, price_items_t.c.sku, list(skus))
        )
        return {r.sku: Decimal(r.unit_price) for r in conn.execute(stmt)}

    def _new_order_id(self, conn: Connection) -> str:
        while True:
            candidate = "ORD-" + uuid.uuid4().hex[:10].upper()
            if conn.execute(select(orders_t.c.id).where(orders_t.c.id == candidate)).first() is None:
                return candidate


def _in_input_order(result: BatchResult, ids: Sequence[str]) -> BatchResult:
    """``done`` and ``skipped`` listed in the caller's order, whichever path decided them."""
    done = set(result.done)
    return BatchResult(
        done=[i for i in ids if i in done],
        skipped={i: result.skipped[i] for i in ids if i in result.skipped and i not in done},
    )


def promise_for(level: ServiceLevel, today: date) -> date:
    """The default promised date of a new order (exported for generators that seed history)."""
    return add_business_days(today, PROMISE_DAYS[level])


def _check_new_order(order: OrderCreate, order_id: str | None) -> None:
    """Refuse an order without lines, with a quantity not above zero or a negative price, or an id
    the orders table cannot hold."""
    if not order.lines:
        raise ValidationFailed("an order needs at least one line")
    for line in order.lines:
        if line.quantity <= 0:
            raise ValidationFailed(f"quantity of SKU {line.sku} must be > 0 (got {line.quantity})", sku=line.sku)
        if line.unit_price is not None and line.unit_price < 0:
            raise ValidationFailed(f"unit price of SKU {line.sku} must be >= 0", sku=line.sku)
    if order_id is not None and not (0 < len(order_id) <= 32):
        raise ValidationFailed("order_id must be 1 to 32 characters")


def _priced_lines(
    order: OrderCreate, order_id: str, products: dict[str, Any], contract: dict[str, Decimal]
) -> tuple[list[dict[str, Any]], Decimal, int, float]:
    """Line rows, each at its stated price, else the contract price, else the list price; and the
    order's value, units and weight."""
    line_rows: list[dict[str, Any]] = []
    total_value, total_units, weight = Decimal(0), 0, 0.0
    for no, line in enumerate(order.lines, start=1):
        product = products[line.sku]
        price = line.unit_price if line.unit_price is not None else contract.get(line.sku, product.list_price)
        price = money(Decimal(price))
        line_rows.append(
            {"order_id": order_id, "line_no": no, "sku": line.sku, "quantity": line.quantity} | {"unit_price": price}
        )
        total_value += price * line.quantity
        total_units += line.quantity
        weight += float(product.weight_kg) * line.quantity
    return line_rows, total_value, total_units, weight


def _lines_to_split(order_id: str, lines: Sequence[OrderLine], wanted: list[int]) -> list[OrderLine]:
    """The lines named to split off; every line named must exist, and some must stay (else it is a
    reroute)."""
    by_no = {ln.line_no: ln for ln in lines}
    unknown = [n for n in wanted if n not in by_no]
    if unknown:
        raise NotFound("order line", f"{order_id}/{unknown[0]}")
    if len(wanted) == len(lines):
        raise ValidationFailed(f"splitting every line of {order_id} is a reroute; use move_orders")
    return [by_no[n] for n in wanted]


def _move_reservations(conn: Connection, row: Any, moving: Sequence[OrderLine], to_node_id: str) -> None:
    """Reserve the moving lines at the new node and release them at the old one (all or nothing:
    InsufficientInventory changes nothing)."""
    need = _stock.needs(moving)
    atp = _stock.load_atp(conn, [to_node_id], need, lock=True)
    why = _stock.shortfall(need, atp, to_node_id)
    if why is not None:
        raise InsufficientInventory(why, order_id=row.id, node_id=to_node_id)
    deltas: dict[_stock.Key, int] = {}
    _stock.take(need, atp, to_node_id, deltas)
    for sku, qty in need.items():
        deltas[(row.node_id, sku)] = deltas.get((row.node_id, sku), 0) - qty
    _stock.apply_reserved(conn, deltas)
    _stock.apply_backlog(conn, {to_node_id: 1})


def _customer_clashes(conn: Connection, new: NewCustomer, customer_id: str) -> list[tuple[str, str]]:
    """Ids of the new customer that another customer or address holds already (address ids that
    repeat within the request are refused outright)."""
    clashes = [
        (what, value)
        for what, col, value in (
            ("customer id", customers_t.c.id, customer_id),
            ("account number", customers_t.c.account_number, new.account_number),
            ("EDI id", customers_t.c.edi_id, new.edi_id),
            ("GLN", customers_t.c.gln, new.gln),
        )
        if value and conn.execute(select(customers_t.c.id).where(col == value)).first() is not None
    ]
    ids = [a.id for a in new.addresses]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("address ids repeat", address_ids=ids)
    if ids:
        taken = conn.execute(select(addresses_t.c.id).where(addresses_t.c.id.in_(ids))).scalars().all()
        clashes += [("address id", a) for a in taken]
    return clashes


def _part_keys(part_numbers: Mapping[str, str]) -> dict[str, str]:
    """Customer part number -> SKU, keyed the way intake.validate's LearnedMappings looks them up
    (upper case, one space, at most 128 characters); empty keys dropped."""
    keys: dict[str, str] = {}
    for part, sku in part_numbers.items():
        key = re.sub(r"\s+", " ", part.strip().upper())[:128]
        if key:
            keys[key] = sku
    return keys
