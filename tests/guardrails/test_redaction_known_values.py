"""Redaction that knows the data: the customer records' names and streets, card numbers, IBANs and
SSNs are redacted in free text, in the stored audit rows; look-alikes that fail their check stay."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from core.clock import FixedClock
from core.db import Database
from core.db.tables import AddressRow, AuditEventRow, CustomerRow
from core.errors import ConfigurationError
from core.netgen import generate_network
from guardrails.audit import AuditEvent, AuditTrail, EventType
from guardrails.known_values import KnownValues, RefreshingKnownValues, load_customer_values
from guardrails.redaction import RedactionRules, Redactor, iban_ok, luhn_ok
from tests.tools.conftest import SPEC

CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
NOT_A_CARD = "4111 1111 1111 1112"  # 16 digits, fails the Luhn check: an order number, say
ORDER_NUMBER = "5105105105105101"  # fails Luhn too, written without separators


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(key=b"test-key")


def test_checks() -> None:
    assert luhn_ok(CARD)
    assert luhn_ok("4111-1111-1111-1111")
    assert luhn_ok("378282246310005")
    assert not luhn_ok(NOT_A_CARD)
    assert not luhn_ok(ORDER_NUMBER)
    assert not luhn_ok("0")
    assert iban_ok(IBAN)
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("DE89 3704 0044 0532 0130 01")
    assert not iban_ok("DE89")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"please charge {CARD} today", "card"),
        ("card 4111-1111-1111-1111.", "card"),
        ("amex 3782 822463 10005 on file", "card"),
        (f"refund to {IBAN} please", "iban"),
        ("IBAN GB82WEST12345698765432", "iban"),
        ("SSN 123-45-6789 on the form", "ssn"),
    ],
)
def test_identifiers_in_free_text_become_tokens(redactor: Redactor, text: str, kind: str) -> None:
    out = redactor.redact_text(text)
    assert re.search(rf"\[{kind}:[0-9a-f]{{10}}\]", out), out
    assert not re.search(r"\d{4}[ -]?\d{4,6}[ -]?\d{4,5}|\d{3}-\d{2}-\d{4}", out), out


@pytest.mark.parametrize(
    "text",
    [
        f"order {NOT_A_CARD} shipped",
        f"order number {ORDER_NUMBER}",
        "IBAN-like DE89 3704 0044 0532 0130 0X",
        "SO-555-123-4567 and 000-12-3456",
        "GLN 2811720019542, qty 1234567",
    ],
)
def test_look_alikes_that_fail_their_check_stay(redactor: Redactor, text: str) -> None:
    assert redactor.redact_text(text) == text


def test_equal_cards_written_differently_get_one_token(redactor: Redactor) -> None:
    a = redactor.redact_text(f"pay {CARD}")
    b = redactor.redact_text("pay 4111-1111-1111-1111")
    assert a == b
    assert redactor.redact({"card_number": "4111111111111111"})["card_number"] in a


def test_a_pattern_check_must_be_known() -> None:
    with pytest.raises(ConfigurationError):
        RedactionRules.from_mapping({"patterns": {"card": {"regex": r"\d+", "check": "nope"}}})
    with pytest.raises(ConfigurationError):
        RedactionRules.from_mapping({"patterns": {"card": {"check": "luhn"}}})


def test_known_values_match_whole_words_case_and_space_insensitively() -> None:
    known = KnownValues.build(
        [("name", "Lakeside Office Group"), ("name", "Lakeside Office"), ("address", "866 Elm St"), ("name", "Bo"),
         ("name", "Tri-County Hospitality Inc.")]
    )  # fmt: skip
    assert len(known) == 4  # "Bo" is too short to look for
    text = (
        "Ship to LAKESIDE  OFFICE\nGROUP at 866 elm st; Lakeside Officer; lakesideofficegroup.com; Lakeside Office. "
        "From tri-county hospitality inc, not Tri County Hospitality."
    )
    found = [(text[s:e], kind, value) for s, e, kind, value in known.find(text)]
    assert found == [
        ("LAKESIDE  OFFICE\nGROUP", "name", "Lakeside Office Group"),
        ("866 elm st", "address", "866 Elm St"),
        ("Lakeside Office", "name", "Lakeside Office"),
        ("tri-county hospitality inc", "name", "Tri-County Hospitality Inc."),
    ]
    assert list(KnownValues.build([]).find(text)) == []


def test_known_values_beat_patterns_and_tokens_stay(redactor: Redactor) -> None:
    known = KnownValues.build([("name", "Acme"), ("address", "12 Main Street")])
    red = Redactor(key=b"test-key", known=known)
    out = red.redact_text("Acme at 12 MAIN STREET, mail acme@example.com")
    assert out.startswith(red.token("name", "acme") + " at " + red.token("address", "12 main street"))
    assert red.token("email", "acme@example.com") in out  # the e-mail is one token, not "[name]@..."
    assert red.redact_text(out) == out
    assert red.redact({"ship_to": {"name": "ACME"}})["ship_to"]["name"] == red.token("name", "Acme")


# --- on the seeded network, through the audit trail ---------------------------------------------------


@pytest.fixture
def seeded(db: Database) -> Database:
    generate_network(db, SPEC)
    return db


def _stored_text(db: Database) -> str:
    with db.engine.connect() as conn:
        rows = conn.execute(select(AuditEventRow.__table__).order_by(AuditEventRow.seq)).all()
    return json.dumps([dict(r._mapping) for r in rows], default=str)


def _customer_and_address(db: Database) -> tuple[str, str]:
    with db.sessions() as s:
        c = s.scalars(select(CustomerRow).order_by(CustomerRow.id)).first()
        assert c is not None
        a = s.scalars(select(AddressRow).where(AddressRow.customer_id == c.id)).first()
        assert a is not None
        return c.name, a.street


def test_stored_audit_rows_hold_no_customer_data_in_free_text(seeded: Database) -> None:
    db = seeded
    name, street = _customer_and_address(db)
    clock = FixedClock(datetime.combine(SPEC.business_date, time(9, 0), tzinfo=UTC))
    known = RefreshingKnownValues.from_database(db)
    trail = AuditTrail(db, Redactor(key=b"k" * 32, known=known), clock)
    note = (
        f"Per {name.upper()}: deliver to {street.upper()}, back door. Pay with {CARD} or wire to {IBAN}; "
        f"our ref {NOT_A_CARD}."
    )
    trail.append(
        AuditEvent(
            event_type=EventType.NOTE,
            tool="create_order",
            arguments={"order_id": "IN-1", "note": note, "lines": [{"sku": "SKU-00001", "comment": note}]},
            result={"message": f"created for {name}"},
            reasons=[f"customer {name} at {street} asked"],
        )
    )
    stored = _stored_text(db)
    for secret in (name, name.upper(), street, street.upper(), CARD, IBAN, "4111111111111111"):
        assert secret not in stored, secret
    red = Redactor(key=b"k" * 32)
    for token in (red.token("name", name), red.token("address", street), red.token("card", CARD),
                  red.token("iban", IBAN)):  # fmt: skip
        assert token in stored, token
    assert NOT_A_CARD in stored  # an order number that is no card number stays readable
    assert "SKU-00001" in stored
    assert "IN-1" in stored


def test_new_customers_are_known_after_a_refresh(seeded: Database) -> None:
    db = seeded
    now = [0.0]
    known = RefreshingKnownValues(lambda: load_customer_values(db), max_age_s=60, timer=lambda: now[0])
    red = Redactor(key=b"k", known=known)
    text = "Quinta Verde Trading asked for 77 Quarry Hollow"
    assert red.redact_text(text) == text
    with db.begin() as s:
        price_list = s.scalars(select(CustomerRow.price_list_id)).first()
        s.execute(insert(CustomerRow).values(id="CUST-9999", name="Quinta Verde Trading", account_number="AC-9999",
                                             tier="standard", email="ops@quintaverde.example",
                                             email_domain="quintaverde.example", price_list_id=price_list))  # fmt: skip
        s.execute(insert(AddressRow).values(id="ADDR-9999", customer_id="CUST-9999", label="Store",
                                            name="Quinta Verde Trading", street="77 Quarry Hollow", city="Reno",
                                            state="NV", postal_code="89501", lat=0.0, lon=0.0))  # fmt: skip
    assert red.redact_text(text) == text  # the matcher is still the one loaded a moment ago
    now[0] = 61.0
    out = red.redact_text(text)
    assert "Quinta" not in out, out
    assert "Quarry" not in out, out
    known.refresh()
    assert red.redact_text(text) == out


def test_a_failed_load_is_not_an_empty_matcher(caplog: pytest.LogCaptureFixture) -> None:
    down = [True]
    now = [0.0]

    def load() -> KnownValues:
        if down[0]:
            raise RuntimeError("database is down")
        return KnownValues.build([("name", "Lakeside Office Group")])

    red = Redactor(key=b"k", known=RefreshingKnownValues(load, max_age_s=60, timer=lambda: now[0]))
    with pytest.raises(RuntimeError):
        red.redact_text("anything")
    down[0] = False
    assert "Lakeside" not in red.redact_text("for Lakeside Office Group")
    down[0], now[0] = True, 100.0  # a refresh fails: the previous matcher goes on
    assert "Lakeside" not in red.redact_text("for Lakeside Office Group")
    assert "keeping the previous values" in caplog.text


def test_the_app_wires_the_customer_records_into_the_trail(seeded: Database, tmp_path: Path) -> None:
    from api.bootstrap import make_guard
    from core.settings import Settings

    name, street = _customer_and_address(seeded)
    settings = Settings(home=tmp_path, redaction_key=SecretStr("wired-key"))
    guard = make_guard(settings, seeded, FixedClock())
    guard.audit.append(AuditEvent(event_type=EventType.NOTE, reasons=[f"{name} / {street}"]))
    stored = _stored_text(seeded)
    assert name not in stored
    assert street not in stored
