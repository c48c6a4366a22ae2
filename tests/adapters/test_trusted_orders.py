"""The OMS listing builds its orders without validating (tools/adapters/embedded/_orders.py,
``build_orders``): the orders must be validation's, field by field (values, their types, the
fields set, reprs), with and without lines, on SQLite and PostgreSQL; records the enums do not
know still fail as validation fails."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time

import pytest
from pydantic import ValidationError

from core.clock import FixedClock
from core.db import Database
from core.domain import Order, OrderStatus
from core.netgen import NetworkSpec, generate_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.embedded._orders import build_orders, validate_orders
from tools.adapters.embedded.oms import list_order_records
from tools.adapters.protocols import OrderFilter


def _same(built: list[Order], validated: list[Order]) -> None:
    assert built == validated
    assert [repr(o) for o in built] == [repr(o) for o in validated]
    for b, v in zip(built, validated, strict=True):
        assert b.model_fields_set == v.model_fields_set
        assert list(b.__dict__) == list(v.__dict__)
        assert [type(x) for x in b.__dict__.values()] == [type(x) for x in v.__dict__.values()]
        assert b.model_dump_json() == v.model_dump_json()
        for bl, vl in zip(b.lines, v.lines, strict=True):
            assert bl.model_fields_set == vl.model_fields_set
            assert [type(x) for x in bl.__dict__.values()] == [type(x) for x in vl.__dict__.values()]
        assert b.model_dump(exclude_unset=True) == v.model_dump(exclude_unset=True)


def test_built_orders_are_the_validated_ones(db: Database) -> None:
    spec = NetworkSpec(seed=5, nodes=4, skus=40, customers=6, orders=300)
    generate_network(db, spec)
    clock = FixedClock(datetime.combine(spec.business_date, time(9, 0), tzinfo=UTC))
    oms = embedded_adapters(db, clock).oms
    some = [o.id for o in oms.list_orders(OrderFilter(statuses=[OrderStatus.CREATED]), limit=3)]
    assert oms.transition(some, OrderStatus.HELD).done == some  # held_from set on some
    for with_lines in (True, False):
        records = list_order_records(db, OrderFilter(), limit=10_000, with_lines=with_lines)
        validated = validate_orders(copy.deepcopy(records))
        built = build_orders(records)
        assert len(built) == 300
        _same(built, validated)
        assert any(o.held_from is not None for o in built)
        assert all(bool(o.lines) is with_lines for o in built)
        assert with_lines or all("lines" not in o.model_fields_set for o in built)
    # The listing the playbooks read is the built one.
    _same(oms.list_orders(OrderFilter(), limit=10_000, with_lines=True), validated_with_lines(db))
    # The models are as immutable as validated ones.
    with pytest.raises(ValidationError):
        built[0].id = "X"  # type: ignore[misc]


def validated_with_lines(db: Database) -> list[Order]:
    return validate_orders(list_order_records(db, OrderFilter(), limit=10_000, with_lines=True))


def test_unknown_status_fails_as_validation_does(db: Database) -> None:
    spec = NetworkSpec(seed=5, nodes=3, skus=10, customers=3, orders=20)
    generate_network(db, spec)
    records = list_order_records(db, OrderFilter(), limit=100, with_lines=True)
    records[7]["status"] = "lost"
    with pytest.raises(ValidationError):
        validate_orders(copy.deepcopy(records))
    with pytest.raises(ValidationError):
        build_orders(records)
