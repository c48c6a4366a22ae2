"""Redaction: personal data out, identifiers kept, equal values -> equal tokens."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from guardrails.redaction import RedactionRules, Redactor

TOKEN = re.compile(r"^\[[a-z_]+:[0-9a-f]{10}\]$")


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(key=b"test-key")


def test_personal_data_is_replaced_and_ids_kept(redactor: Redactor) -> None:
    value = {
        "customer_id": "CUST-0042",
        "order_id": "SO-555-123-4567",
        "orderIds": ["SO-1", "SO-2"],
        "sku": "SKU-0001",
        "ship_to": {
            "address_id": "ADDR-9",
            "name": "Maria Gonzalez",
            "street": "4100 Congress Ave",
            "city": "Austin",
            "state": "TX",
            "postal_code": "78701",
        },
        "contact": {"firstName": "Maria", "email": "maria@example.com", "phone": "+1 512-555-0100"},
        "note": "Maria (maria@example.com, 512.555.0100) wants it left at 77 Oak Street, Apt 5",
        "amount": Decimal("10.50"),
        "count": 3,
    }
    out = redactor.redact(value)
    text = json.dumps(out)
    for secret in ("Gonzalez", "Congress", "maria@example.com", "555-0100", "555.0100", "77 Oak Street", "Apt 5"):
        assert secret not in text, secret
    assert out["customer_id"] == "CUST-0042"
    assert out["order_id"] == "SO-555-123-4567"  # an id, even though it looks like a phone number
    assert out["orderIds"] == ["SO-1", "SO-2"]
    assert out["sku"] == "SKU-0001"
    assert out["ship_to"]["address_id"] == "ADDR-9"
    assert (out["ship_to"]["city"], out["ship_to"]["state"], out["ship_to"]["postal_code"]) == ("Austin", "TX", "78701")
    assert TOKEN.match(out["ship_to"]["name"])
    assert out["ship_to"]["name"].startswith("[name:")
    assert out["ship_to"]["street"].startswith("[address:")
    assert out["contact"]["email"].startswith("[email:")
    assert out["amount"] == "10.50"
    assert out["count"] == 3
    # the same email in a field and inside free text gets the same token
    assert out["contact"]["email"] in out["note"]
    # the same phone number written differently gets the same token
    assert redactor.token("phone", "+1 512-555-0100") == redactor.token("phone", "(512) 555 0100")
    assert out["contact"]["phone"] in redactor.redact_text("call 512.555.0100")


def test_equal_values_give_equal_tokens_and_different_values_do_not(redactor: Redactor) -> None:
    a = redactor.redact({"email": "Jane@Example.com "})["email"]
    b = redactor.redact({"contact_email": "jane@example.com"})["contact_email"]
    c = redactor.redact({"email": "john@example.com"})["email"]
    assert a == b != c
    other_key = Redactor(key=b"another-key").redact({"email": "jane@example.com"})["email"]
    assert other_key != a  # tokens depend on the secret key


def test_redaction_is_idempotent_and_keeps_shape(redactor: Redactor) -> None:
    value = {"name": "Ann Lee", "lines": [{"name": "Bob Roe", "qty": 2}], "flag": True, "none": None}
    once = redactor.redact(value)
    assert redactor.redact(once) == once
    assert set(once) == set(value)
    assert len(once["lines"]) == 1
    assert once["flag"] is True
    assert once["none"] is None


def test_rules_are_configurable(tmp_path: Path) -> None:
    rules = RedactionRules.from_mapping(
        {"keys": {"vat_number": "tax_id_no"}, "keep": ["name"], "patterns": {"ticket": r"TCK-\d+"}}
    )
    red = Redactor(rules, key=b"k")
    out = red.redact({"vat_number": "DE123", "name": "Widget", "note": "see TCK-42, mail a@b.co"})
    assert out["vat_number"].startswith("[tax_id_no:")
    assert out["name"] == "Widget"
    assert out["note"].startswith("see [ticket:")
    assert "a@b.co" in out["note"]
    path = tmp_path / "rules.yaml"
    path.write_text("keys: {email: email}\npatterns: {}\n", encoding="utf-8")
    assert RedactionRules.from_yaml(path).key_kinds == {"email": "email"}


@pytest.mark.parametrize(
    "data",
    [
        {"patterns": {"bad": "("}},
        {"keys": {"email": "Not A Kind"}},
        {"keys": ["email"]},
    ],
)
def test_bad_rules_are_a_configuration_error(data: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RedactionRules.from_mapping(data)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        Redactor(key=b"")
