"""A new buyer: its first PO becomes a ``new_customer`` review item whose one approved step creates the
customer, its ship-to and its part cross-references through the gateway, so that its next PO flows."""

from __future__ import annotations

import pytest

from core.domain import Address, Customer, CustomerTier
from core.errors import PolicyDenied, ValidationFailed
from guardrails.audit import EventType
from guardrails.calls import Actor
from intake.model import Party, PurchaseOrder, Reference
from intake.onboarding import is_gln, propose_customer
from intake.validate import IntakeContext, LearnedMappings, validate
from tests.intake.test_pipeline import Intake, Line, csv_po, x12_850
from tests.tools.conftest import AGENT, APPROVER, APPROVER_2
from tools.gateway import RunLedger

from tests.intake.test_pipeline import intake, sqlite_intake  # noqa: F401  # isort: skip

OPERATOR = Actor(kind="user", id="otto", roles=frozenset({"operator"}))
SENDER = "purchasing@brightlane-supply.example"


def _site(n: int = 1) -> Address:
    """A ship-to nobody in the generated network has (Dallas is on the network's map)."""
    return Address(id="x", customer_id="x", label="x", name="Brightlane Supply Receiving",
                   street=f"{4000 + n} Commerce Street", city="Dallas", state="TX", postal_code="75226",
                   lat=0, lon=0)  # fmt: skip


def _their_lines(it: Intake, n: int = 2) -> tuple[list[str], list[Line]]:
    """Lines in the buyer's own part numbers, with our product names slightly off; no prices stated."""
    skus = it.skus(n)
    names = [it.net.adapters.oms.get_product(s).name for s in skus]
    lines: list[Line] = [(3 + k, "EA", None, "BP", f"BL-{900 + k}", names[k].upper().replace(",", ""))
                         for k in range(n)]  # fmt: skip
    return skus, lines


def test_unknown_sender_becomes_a_new_customer_item_and_one_approval_lets_the_next_po_flow(
    intake: Intake,  # noqa: F811
) -> None:
    it = intake
    skus, lines = _their_lines(it)
    doc = it.receive(csv_po("BL-1001", _site(), lines), filename="bl.csv", channel="email", sender=SENDER)
    (out,) = it.process(doc).outcomes
    assert (out.decision, out.status) == ("review", "queued")
    queue = it.deps.review_queue()
    item = queue.get(out.review_item_id or "")
    assert item.kind == "new_customer"
    p = item.validated.new_customer
    assert p is not None
    assert (p.name, p.email, p.email_domain) == ("Brightlane Supply Receiving", SENDER, "brightlane-supply.example")
    assert p.ship_to is not None
    assert (p.ship_to.street, p.ship_to.city, p.ship_to.state, p.ship_to.postal_code) == (
        "4001 Commerce Street", "Dallas", "TX", "75226")  # fmt: skip
    assert p.ship_to.lat is not None
    assert [(x.customer_part, x.sku, x.method) for x in p.parts] == [("BL-900", skus[0], "fuzzy"),
                                                                     ("BL-901", skus[1], "fuzzy")]  # fmt: skip
    assert all(0.6 <= x.score < 1 for x in p.parts)
    assert any(w.startswith("the document gives no account number") for w in p.warnings)
    assert any(f.code == "new_customer_proposed" for f in item.validated.findings)
    before = len(it.net.adapters.oms.list_customers())

    done = queue.approve(item.id, APPROVER)  # the approver creates the customer and, the PO now clean, the order
    assert done.status == "approved", done.reasons
    assert done.customer_id == p.customer_id
    customer = it.net.adapters.oms.get_customer(p.customer_id)
    assert (customer.email_domain, customer.tier.value) == ("brightlane-supply.example", "standard")
    assert len(it.net.adapters.oms.list_customers()) == before + 1
    assert [a.street for a in it.net.adapters.oms.addresses(customer.id)] == ["4001 Commerce Street"]
    mappings = LearnedMappings(it.net.db, it.net.clock)
    assert [mappings.lookup(customer.id, "part", f"bl-{900 + k}") for k in range(2)] == skus
    order = it.net.adapters.oms.get_order(done.order_id or "")
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [(skus[0], 3), (skus[1], 4)]
    executed = it.net.gateway.guard.audit.list(event_type=EventType.EXECUTED)
    (create,) = [e for e in executed if e.tool == "create_customer"]
    assert create.approver == APPROVER.id
    assert create.arguments["customer"]["part_numbers"] == {"BL-900": skus[0], "BL-901": skus[1]}

    # The same buyer's next PO (another person there, the ship-to written differently): no review.
    street = "4001 COMMERCE ST."
    nxt = csv_po("BL-1002", _site().model_copy(update={"street": street, "postal_code": "75226-1234"}), lines[:1])
    doc2 = it.receive(nxt, filename="bl2.csv", channel="email", sender="ap@brightlane-supply.example")
    (out2,) = it.process(doc2).outcomes
    assert (out2.decision, out2.status) == ("auto_create", "created"), out2.reasons
    assert it.orders_for(customer.id, "BL-1002") == [out2.order_id]


def test_a_reviewer_without_the_role_parks_the_customer_for_an_approver(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    _skus, lines = _their_lines(it, 1)
    doc = it.receive(csv_po("BL-2001", _site(2), lines), filename="b.csv", channel="email", sender=SENDER)
    (out,) = it.process(doc).outcomes
    queue = it.deps.review_queue()
    item = queue.create_customer(out.review_item_id or "", OPERATOR, edits={"name": "Brightlane Supply Co."})
    assert item.status == "awaiting_approval"
    assert item.approval_id is not None
    assert item.validated.new_customer is not None
    with pytest.raises(Exception, match="customer"):
        it.net.adapters.oms.get_customer(item.validated.new_customer.customer_id)
    done = queue.approve(item.id, APPROVER_2)
    assert done.status == "approved", done.reasons
    assert done.customer_id is not None
    assert it.net.adapters.oms.get_customer(done.customer_id).name == "Brightlane Supply Co."


def test_bad_edits_and_clashing_ids_change_nothing(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    _skus, lines = _their_lines(it, 1)
    doc = it.receive(csv_po("BL-3001", _site(3), lines), filename="c.csv", channel="email", sender=SENDER)
    (out,) = it.process(doc).outcomes
    queue = it.deps.review_queue()
    before = queue.get(out.review_item_id or "")
    n = len(it.net.adapters.oms.list_customers())
    with pytest.raises(ValidationFailed):
        queue.create_customer(before.id, APPROVER, edits={"colour": "red"})
    with pytest.raises(ValidationFailed):
        queue.create_customer(before.id, APPROVER, edits={"ship_to.state": "Texas"})
    taken = it.net.adapters.oms.list_customers()[0].account_number
    with pytest.raises(PolicyDenied, match="account number"):
        queue.create_customer(before.id, APPROVER, edits={"account_number": taken})
    with pytest.raises(PolicyDenied):
        queue.create_customer(before.id, APPROVER, edits={"parts.BL-900": "NOT-A-SKU"})
    assert queue.get(before.id) == before
    assert len(it.net.adapters.oms.list_customers()) == n
    done = queue.reject(before.id, APPROVER, "not a buyer we sell to")
    assert done.status == "rejected"
    assert len(it.net.adapters.oms.list_customers()) == n


def test_edi_buyer_ids_and_free_mail(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    env = it.net.gateway.env
    skus = it.skus(1)
    lines: list[Line] = [(2, "EA", None, "VN", skus[0], "")]
    data = x12_850("NEWBUYER01", "NB-1", _site(4), lines, extra=[])
    doc = it.receive(data, filename="nb.x12")
    (out,) = it.process(doc).outcomes
    item = it.deps.review_queue().get(out.review_item_id or "")
    p = item.validated.new_customer
    assert p is not None
    assert p.edi_id == "NEWBUYER01"
    assert p.parts == []  # our own SKU: nothing to cross-reference
    v = validate(item.extracted, env, context=IntakeContext(sender="Jane.Buyer@gmail.com"))
    assert v.new_customer is not None
    assert (v.new_customer.email, v.new_customer.email_domain) == ("jane.buyer@gmail.com", "")
    done = it.deps.review_queue().approve(item.id, APPROVER)
    assert done.status == "approved", done.reasons
    (out2,) = it.process(it.receive(x12_850("NEWBUYER01", "NB-2", _site(4), lines, control=2),
                                    filename="nb2.x12")).outcomes  # fmt: skip
    assert (out2.decision, out2.status) == ("auto_create", "created"), out2.reasons

    assert is_gln("4006381333931")
    assert not is_gln("4006381333932")


def test_an_agent_cannot_approve_the_customer_it_proposed(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    _skus, lines = _their_lines(it, 1)
    doc = it.receive(csv_po("BL-4001", _site(5), lines), filename="d.csv", channel="email", sender=SENDER)
    (out,) = it.process(doc).outcomes
    p = it.deps.review_queue().get(out.review_item_id or "").validated.new_customer
    assert p is not None
    gw = it.net.gateway
    outcome = gw.propose("create_customer", p.tool_args(by="agent"), actor=AGENT, run=RunLedger("r"),
                         idempotency_key="k1")  # fmt: skip
    assert outcome.status == "awaiting_approval"
    assert outcome.approval_id is not None
    with pytest.raises(PolicyDenied):
        gw.decide(outcome.approval_id, approver=Actor(kind="user", id="olivia", roles=frozenset({"approver"})),
                  decision="approve")  # fmt: skip
    assert p.customer_id not in {c.id for c in it.net.adapters.oms.list_customers()}


def test_two_pos_of_one_new_buyer_create_the_customer_once(sqlite_intake: Intake) -> None:  # noqa: F811
    it = sqlite_intake
    _skus, lines = _their_lines(it, 1)
    items = []
    for k in (1, 2):
        doc = it.receive(csv_po(f"BL-50{k}", _site(6), lines), filename=f"e{k}.csv", channel="email", sender=SENDER)
        (out,) = it.process(doc).outcomes
        items.append(out.review_item_id or "")
    queue = it.deps.review_queue()
    n = len(it.net.adapters.oms.list_customers())
    first = queue.approve(items[0], APPROVER)
    assert first.status == "approved", first.reasons
    second = queue.approve(items[1], APPROVER)  # the customer exists now: nothing to create, the PO flows
    assert second.status == "approved", second.reasons
    assert second.customer_id == first.customer_id
    assert len(it.net.adapters.oms.list_customers()) == n + 1
    created = [e for e in it.net.gateway.guard.audit.list(event_type=EventType.EXECUTED) if e.tool == "create_customer"]
    assert len(created) == 1


def test_the_proposal_takes_buyer_ids_from_the_document_never_the_sellers() -> None:
    po = PurchaseOrder(document_type="test", po_number="P-1", parties=[
        Party(role="SE", name="Us", id="4006381333931"),  # our own GLN on the seller party
        Party(role="BY", name="Kestrel Foods", id="0614141000012"),
        Party(role="BT", name="Kestrel Foods AP", id="KF-5521"),
        Party(role="ST", name="Kestrel DC", address_lines=["77 Wharf St., Dock 4", "Portland, ME 04101-2233"]),
    ], references=[Reference(qualifier="ZZ", value="ACC-9", description="customer account")])  # fmt: skip
    taken = Customer(id="C1", name="Kestrel Food Co", account_number="ACC-9", tier=CustomerTier.GOLD, email="a@b.c",
                     email_domain="b.c", price_list_id="PL-GOLD")  # fmt: skip
    p = propose_customer(po, sender=None, sender_ids=("KESTREL01 ", None), customers=[taken], lines=[])
    assert (p.edi_id, p.gln, p.account_number, p.account_from_document) == (
        "KESTREL01", "0614141000012", "KF-5521", True)  # fmt: skip
    assert p.name == "Kestrel Foods"
    assert p.ship_to is not None
    assert (p.ship_to.street, p.ship_to.city, p.ship_to.state, p.ship_to.postal_code) == (
        "77 Wharf St., Dock 4", "Portland", "ME", "04101-2233")  # fmt: skip
    assert p.ship_to.located.startswith("centre of Portland")
    assert [s[0] for s in p.similar] == ["C1"]  # perhaps not new at all: the reviewer sees it
    assert p.missing == []
    args = p.tool_args(by="amir")
    assert args["customer"]["addresses"][0]["lat"] == p.ship_to.lat
    nowhere = p.edited({"ship_to.state": "ZZ"})
    assert nowhere.missing == ["ship_to.location"]
    with pytest.raises(ValidationFailed, match=r"ship_to\.location"):
        nowhere.tool_args(by="amir")
