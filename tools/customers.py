"""The write tool that creates a customer: a new buyer, its ship-to and its part cross-references.

A new customer decides which future purchase orders are created without a person (its EDI id,
GLN, account number, e-mail domain and part numbers identify them), so this tool is approval-gated
by policy (rule ``new-customer``) and, like every write, reaches the OMS only through the gateway,
audited. ``simulate`` refuses identifiers another customer holds: a clash would make that
customer's POs ambiguous, or send them to the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from core.errors import Conflict, NotFound, ValidationFailed
from guardrails.calls import CallFacts, RiskClass
from tools.adapters.protocols import NewCustomer
from tools.base import Preview, PreviewItem, ToolArgs, ToolEnv, WriteResult, WriteTool

__all__ = ["CreateCustomer", "CreateCustomerArgs"]


class CreateCustomerArgs(ToolArgs):
    customer_id: str = Field(min_length=3, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9_-]*$",
                             description="Id of the new customer, e.g. CUST-N1A2B3C4D.")  # fmt: skip
    customer: NewCustomer = Field(description="Name, ids, ship-to addresses and part numbers (theirs -> our SKU).")
    reason: str = Field(default="", max_length=500, description="Why, in a sentence, for the audit trail.")


def _clashes(env: ToolEnv, args: CreateCustomerArgs) -> list[str]:
    new = args.customer
    out: list[str] = []
    for c in env.adapters.oms.list_customers():
        if c.id == args.customer_id:
            out.append(f"customer id {c.id} exists")
        if c.account_number.upper() == new.account_number.upper():
            out.append(f"account number {new.account_number} is {c.id}'s")
        if new.edi_id and c.edi_id and c.edi_id.upper() == new.edi_id.upper():
            out.append(f"EDI id {new.edi_id} is {c.id}'s")
        if new.gln and c.gln == new.gln:
            out.append(f"GLN {new.gln} is {c.id}'s")
        if new.email_domain and c.email_domain.lower() == new.email_domain.lower():
            out.append(f"e-mail domain {new.email_domain} is {c.id}'s")
        if new.email and c.email.lower() == new.email.lower():
            out.append(f"e-mail {new.email} is {c.id}'s")
    return out


class CreateCustomer(WriteTool[CreateCustomerArgs]):
    """Create a customer with its ship-to addresses and part cross-references (their part number ->
    our SKU), so that its next purchase orders are recognised. Needs an approver."""

    name: ClassVar[str] = "create_customer"
    risk: ClassVar[RiskClass] = RiskClass.WRITE_HIGH
    args_model: ClassVar[type[ToolArgs]] = CreateCustomerArgs

    def items(self, args: CreateCustomerArgs) -> list[str]:
        return []  # one customer: approved whole

    def restrict(self, args: CreateCustomerArgs, subset: Sequence[str]) -> CreateCustomerArgs:
        return args

    def simulate(self, env: ToolEnv, args: CreateCustomerArgs) -> Preview:
        new = args.customer
        if not new.addresses:
            raise ValidationFailed("a new customer needs a ship-to address")
        clashes = _clashes(env, args)
        if clashes:
            raise Conflict("the new customer clashes with existing ones: " + "; ".join(clashes), clashes=clashes)
        skus = sorted(set(new.part_numbers.values()))
        env.adapters.oms.get_products(skus)  # NotFound names the first unknown SKU
        if len({a.id for a in new.addresses}) != len(new.addresses):
            raise ValidationFailed("address ids repeat")
        for a in new.addresses:
            try:
                env.adapters.oms.get_address(a.id)
            except NotFound:
                continue
            raise Conflict(f"address id {a.id} exists", address_id=a.id)
        ids = {"account": new.account_number, "edi_id": new.edi_id, "gln": new.gln, "email": new.email or None,
               "email_domain": new.email_domain or None}  # fmt: skip
        item = PreviewItem(
            id=args.customer_id,
            ok=True,
            after={
                "name": new.name,
                "tier": new.tier.value,
                "price_list": new.price_list_id or f"PL-{new.tier.value.upper()}",
                **{k: v for k, v in ids.items() if v},
                "ship_to": [f"{a.id}: {a.street}, {a.city}, {a.state} {a.postal_code}" for a in new.addresses],
                "part_numbers": dict(sorted(new.part_numbers.items())),
            },
        )
        facts = CallFacts(
            order_count=0,
            order_value=Decimal(0),
            cost_delta=Decimal(0),
            max_tier=None,
            carriers=(),
            target_node_id=None,
            target_node_status=None,
            hazmat=False,
            hazmat_by_air=False,
            cold_chain=False,
            ship_to_states=frozenset(a.state.upper() for a in new.addresses),
        )
        n_parts = len(new.part_numbers)
        summary = (
            f"create customer {args.customer_id} ({new.name}) with {len(new.addresses)} ship-to address(es) and "
            f"{n_parts} part cross-reference{'s' if n_parts != 1 else ''}"
        )
        return Preview(tool=self.name, summary=summary, items=[item], facts=facts)

    def execute(self, env: ToolEnv, args: CreateCustomerArgs) -> WriteResult:
        customer = env.adapters.oms.create_customer(args.customer, customer_id=args.customer_id)
        return WriteResult(
            tool=self.name,
            done=[customer.id],
            details={
                "customer": customer.model_dump(mode="json"),
                "addresses": [a.id for a in args.customer.addresses],
                "part_numbers": len(args.customer.part_numbers),
            },
        )
