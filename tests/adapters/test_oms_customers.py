"""OMS conformance for the catalogue pages and customer creation (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from core.errors import Conflict, NotFound, ValidationFailed
from intake.validate import LearnedMappings
from tests.factories import SmallNetwork
from tools.adapters.protocols import NewAddress, NewCustomer


def _new(**kw: object) -> NewCustomer:
    fields: dict[str, object] = {
        "name": "Harbor Fresh", "account_number": "AC-NEW-1", "email": "ap@harborfresh.example",
        "email_domain": "HarborFresh.example", "edi_id": "HARBOR01", "price_list_id": "PL-B",
        "addresses": [NewAddress(id="ADDR-HF-1", name="Harbor Fresh", street="88 Bay Road", city="Boston",
                                 state="MA", postal_code="02110", lat=42.36, lon=-71.06)],
        "part_numbers": {"hf-1 ": "SKU-001", "HF  2": "SKU-002"}, **kw,
    }  # fmt: skip
    return NewCustomer.model_validate(fields)


def test_list_products_pages_by_sku(network: SmallNetwork) -> None:
    oms = network.adapters.oms
    everything = [p.sku for p in oms.list_products()]
    assert everything == sorted(network.skus)
    first = oms.list_products(limit=2)
    rest = oms.list_products(after=first[-1].sku, limit=100)
    assert [p.sku for p in first + rest] == everything
    with pytest.raises(ValidationFailed):
        oms.list_products(limit=0)


def test_create_customer_writes_customer_addresses_and_part_numbers_at_once(network: SmallNetwork) -> None:
    oms = network.adapters.oms
    c = oms.create_customer(_new(), customer_id="CUST-HF")
    assert (c.id, c.email_domain, c.edi_id, c.price_list_id) == ("CUST-HF", "harborfresh.example", "HARBOR01", "PL-B")
    assert [a.id for a in oms.addresses("CUST-HF")] == ["ADDR-HF-1"]
    learned = LearnedMappings(network.db, network.clock).all("CUST-HF")
    assert learned == {("part", "HF-1"): "SKU-001", ("part", "HF 2"): "SKU-002"}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"account_number": "AC-B"}, Conflict),
        ({"price_list_id": "PL-NOPE"}, NotFound),
        ({"part_numbers": {"X": "SKU-NOPE"}}, NotFound),
    ],
)
def test_a_refused_customer_writes_nothing(network: SmallNetwork, change: dict[str, object], error: type) -> None:
    oms = network.adapters.oms
    before = oms.list_customers()
    existing = oms.get_customer(network.customer_b)
    change = {k: (existing.account_number if v == "AC-B" else v) for k, v in change.items()}
    with pytest.raises(error):
        oms.create_customer(_new(**change), customer_id="CUST-HF")
    assert oms.list_customers() == before
    with pytest.raises(NotFound):
        oms.get_address("ADDR-HF-1")
    with pytest.raises(Conflict):
        oms.create_customer(_new(), customer_id=network.customer_a)
