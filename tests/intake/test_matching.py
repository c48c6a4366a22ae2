"""Matching at catalogue scale: part numbers, descriptions (rapidfuzz) and ship-to addresses (usaddress)."""

from __future__ import annotations

from decimal import Decimal

from core.domain import Address, Product
from intake.decide import Thresholds, decide
from intake.matching import CatalogueIndex, address_score, catalogue_index, normalize_address, normalize_known, part_key
from intake.model import Party, POLine, ProductId, PurchaseOrder
from intake.validate import FUZZY_CAP, IntakeContext, validate
from tests.intake.test_pipeline import Intake

from tests.intake.test_pipeline import sqlite_intake  # noqa: F401  # isort: skip


def _p(sku: str, name: str, description: str = "") -> Product:
    return Product(sku=sku, name=name, description=description or name, weight_kg=1, length_cm=1, width_cm=1,
                   height_cm=1, hazmat=False, cold_chain=False, list_price=Decimal(1))  # fmt: skip


CATALOGUE = CatalogueIndex.build([
    _p("SKU-00012", "Acme Heavy-Duty Cable, 10 ft"),
    _p("SKU-00013", "Acme Heavy-Duty Cable, 25 ft"),
    _p("SKU-00120", "Borealis Nitrile Gloves, Large"),
    _p("SKU-00102", "Corvid Shipping Labels, 4x6 roll"),
])  # fmt: skip


def test_part_numbers_match_across_formatting_but_digits_are_never_fuzzed() -> None:
    assert part_key("sku 12") == part_key("SKU-00012") == part_key("Sku.0012") == "SKU12"
    assert CATALOGUE.by_part("sku00012") == [("SKU-00012", 0.95)]
    assert CATALOGUE.by_part("SKU-00021") == []  # transposed digits: another part, not a typo
    assert CATALOGUE.by_part("12") == []


def test_descriptions_tolerate_typos_order_and_case_but_one_shared_word_is_no_match() -> None:
    (best, score), *_ = CATALOGUE.by_text("nitrile GLOVS borealis large")
    assert best == "SKU-00120"
    assert 0.8 <= score < 1
    assert CATALOGUE.by_text("acme heavy duty cable 25ft")[0][0] == "SKU-00013"
    weak = CATALOGUE.by_text("ACME-778")
    assert not weak or weak[0][1] < 0.6
    assert CATALOGUE.by_text("") == []
    assert CATALOGUE.by_text("12") == []


KNOWN = Address(id="A1", customer_id="C", label="HQ", name="Receiving", street="4521 North Oak Avenue",
                city="Dallas", state="TX", postal_code="75201", lat=0, lon=0)  # fmt: skip


def test_addresses_normalise_street_types_suites_case_punctuation_and_zip4() -> None:
    known = normalize_known(KNOWN)
    same = [
        normalize_address(["4521 N. OAK AVE", "Suite 200"], "DALLAS", "tx", "75201-1234"),
        normalize_address(["4521 north oak ave.", "Dallas, TX 75201"]),
        normalize_address(["Ste 4B, 4521 N Oak Avenue"], "Dallas", "TX", "75201"),
    ]
    for doc in same:
        assert address_score(doc, known) >= 0.98, doc
    other_number = normalize_address(["4512 N Oak Ave"], "Dallas", "TX", "75201")
    other_zip = normalize_address(["4521 N Oak Ave"], "Dallas", "TX", "75230")
    assert address_score(other_number, known) < 0.85
    assert address_score(other_zip, known) < 0.8
    assert address_score(normalize_address([], "Dallas", None, None), known) == 0.0  # a city is not an address
    garbage = normalize_address(["))) ###", "\x00"], None, None, None)
    assert address_score(garbage, known) == 0.0


def test_validation_uses_both_and_a_fuzzy_part_stays_below_the_threshold(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    env = it.net.gateway.env
    c = it.customer()
    a = it.net.adapters.oms.addresses(c.id)[0]
    (sku,) = it.skus(1)
    ship = Party(role="ST", name=a.name, address_lines=[a.street.upper() + ".", "Suite 100"], city=a.city.upper(),
                 state=a.state, postal_code=f"{a.postal_code}-0042")  # fmt: skip
    line = POLine(
        quantity=Decimal(2), unit="EA", product_ids=[ProductId(qualifier="BP", value=sku.lower().replace("-", ""))]
    )
    po = PurchaseOrder(document_type="test", po_number="PO-M-1", lines=[line], parties=[ship])
    v = validate(po, env, context=IntakeContext(sender=c.email))
    assert v.ship_to_id == a.id
    assert v.confidence["ship_to"] == 1.0
    (ln,) = v.lines
    assert (ln.sku, ln.sku_method) == (sku, "fuzzy")
    assert v.confidence["lines[0].sku"] <= FUZZY_CAP < Thresholds().sku
    assert any(f.code == "sku_fuzzy" and "written like" in f.message for f in v.findings)
    assert decide(v).kind == "review"
    index = catalogue_index(env.adapters.oms)
    assert catalogue_index(env.adapters.oms) is index  # loaded once, then served from memory
    assert len(index) == len(catalogue_index(env.adapters.oms, max_age_s=0))
