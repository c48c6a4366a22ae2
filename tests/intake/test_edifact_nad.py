"""EDIFACT NAD (name and address) element positions, D.96A and D.01B alike:

``NAD+3035+C082+C058+C080+C059+3164+3229+3251+3207`` - party qualifier, party id, free-form name
and address, party name, street, city, country sub-entity, postcode, country.

The sample generator wrote the delivery party one element short (``NAD+DP++name+street+city+
ST+zip+US``): read by the standard, the street landed in the party name, the city in the street
and "US" in the postcode, so no ship-to matched and all 16 expected-auto EDIFACT eval cases
(``c11-*``) went to review. The parser was right; the documents were wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.clock import FixedClock
from core.db import Database
from core.netgen import NetworkSpec, generate_network
from intake.edifact import parse_edifact
from intake.matching import address_score, normalize_address, normalize_known
from intake.model import Party
from intake.samples import Catalog, generate_documents, load_catalog
from tools.adapters.embedded import embedded_adapters

HEAD = "UNA:+.? '\nUNB+UNOC:3+BUYER:ZZ+ORDEROPS:ZZ+261118:0900+36'\nUNH+36+ORDERS:D:96A:UN'\nBGM+220+PO-1+9'\n"
TAIL = "LIN+1++SKU-00105:SA'\nQTY+21:2:EA'\nUNS+S'\nCNT+2:1'\nUNT+8+36'\nUNZ+1+36'\n"


def _ship_to(nad: str) -> tuple[Party, list[str]]:
    doc = parse_edifact(HEAD + nad + "\n" + TAIL)
    (po,) = doc.purchase_orders
    assert po.ship_to is not None
    return po.ship_to, [f.code for f in doc.all_findings()]


def test_a_standard_nad_reads_each_element_where_the_standard_puts_it() -> None:
    party, codes = _ship_to("NAD+DP+++Heartland Hospitality Inc.+4883 Park Pkwy+Providence+RI+02947+US'")
    assert (party.name, party.address_lines) == ("Heartland Hospitality Inc.", ["4883 Park Pkwy"])
    assert (party.city, party.state, party.postal_code, party.country) == ("Providence", "RI", "02947", "US")
    assert "nad_elements_shifted" not in codes


def test_a_nad_one_element_short_is_read_as_written_and_said() -> None:
    """No guessed realignment (a wrong street must not reach an order): the reading stays the
    standard's and a finding tells the reviewer why the address matches nothing."""
    party, codes = _ship_to("NAD+DP++Heartland Hospitality Inc.+4883 Park Pkwy+Providence+RI+02947+US'")
    assert (party.city, party.state, party.postal_code, party.country) == ("RI", "02947", "US", None)
    assert codes.count("nad_elements_shifted") == 1


@pytest.mark.parametrize(
    "nad",
    [
        "NAD+DP+4012345000009::9++Shop?'s Name+Main Street 1+Berlin++10115+DE'",  # German, no sub-entity
        "NAD+DP+8711576100019::9'",  # a GLN alone
        "NAD+DP+++Depot+1 Main St+Springfield+IL+62701'",  # no country at all: the postcode is digits
    ],
)
def test_ordinary_nads_carry_no_shift_finding(nad: str) -> None:
    _party, codes = _ship_to(nad)
    assert "nad_elements_shifted" not in codes


@pytest.fixture
def catalog(sqlite_db: Database) -> Catalog:
    generate_network(sqlite_db, NetworkSpec(seed=11, nodes=3, skus=120, customers=8, orders=0))
    return load_catalog(sqlite_db)


def test_generated_edifact_ship_tos_match_their_known_address(catalog: Catalog, sqlite_db: Database) -> None:
    """The eval's EDIFACT documents name their delivery address so that the pipeline's own address
    matching (not only the eval's lenient street lookup) finds it with full confidence."""
    docs = generate_documents(catalog, seed=11, count=30, noise=0.0, formats=("edifact",))
    oms = embedded_adapters(sqlite_db, FixedClock(datetime(2026, 11, 18, tzinfo=UTC))).oms
    checked = 0
    for d in docs:
        doc = parse_edifact(d.data)
        (po,) = doc.purchase_orders
        assert "nad_elements_shifted" not in [f.code for f in doc.all_findings()], d.doc_id
        if d.gold.ship_to_address_id is None:
            continue
        party = po.ship_to
        assert party is not None, d.doc_id
        known = {a.id: a for a in oms.addresses(d.gold.customer_id)}[d.gold.ship_to_address_id]
        written = normalize_address(party.address_lines, party.city, party.state, party.postal_code)
        assert address_score(written, normalize_known(known)) == 1.0, (d.doc_id, party)
        checked += 1
    assert checked >= 20
