"""A new buyer: when no customer matches a purchase order, what the document tells us about the
customer to create — its name and ids, its ship-to, and its part numbers mapped to our SKUs.

The proposal is evidence for a person, never an action: it travels with the review item, and only
an approved ``create_customer`` call through the tool gateway (:class:`tools.customers.CreateCustomer`)
creates anything. Every value says where it came from; identifiers that another customer already
uses, and free-mail domains that would claim every sender of that provider, are never proposed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import usaddress  # type: ignore[import-untyped]
from pydantic import BaseModel, Field, ValidationError
from rapidfuzz import fuzz

from core.domain import Customer, CustomerTier
from core.errors import ValidationFailed
from core.geo import CITIES
from intake.model import BUYER_PART_QUALIFIERS, Party, PurchaseOrder

__all__ = [
    "FREE_MAIL_DOMAINS",
    "NewCustomerProposal",
    "PartProposal",
    "ProposedAddress",
    "is_gln",
    "propose_customer",
]

FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "ymail.com", "hotmail.com", "outlook.com", "live.com", "msn.com",
    "aol.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "gmx.com", "gmx.net", "web.de",
    "mail.com", "zoho.com", "yandex.com", "comcast.net", "att.net", "verizon.net", "qq.com", "163.com",
})  # fmt: skip
"""Mail providers whose domain says nothing about the company: a sender there is known by its
address only, never by the domain."""

_BUYER_ROLES = ("BY", "OB", "BT", "IV", "PO")
_SELLER_ROLES = ("SE", "VN", "SU", "SF")
_GLN_QUALIFIERS = ("UL", "9", "14", "GLN")
PROPOSE_PART = 0.75
"""Lowest match score a part cross-reference is proposed at. Higher than validation's fuzzy bar
(0.6): an approved cross-reference is trusted for every later PO, so a weaker match is only named
in the warnings, for a person to add (``parts.<their part>=SKU``) if it is right."""

_STATE_CENTRES: dict[str, tuple[float, float]] = {
    "AL": (32.8, -86.8), "AK": (64.0, -150.0), "AZ": (34.3, -111.7), "AR": (34.9, -92.4), "CA": (37.2, -119.5),
    "CO": (39.0, -105.5), "CT": (41.6, -72.7), "DE": (39.0, -75.5), "DC": (38.9, -77.0), "FL": (28.6, -82.4),
    "GA": (32.7, -83.4), "HI": (20.8, -156.3), "ID": (44.4, -114.6), "IL": (40.0, -89.2), "IN": (39.9, -86.3),
    "IA": (42.1, -93.5), "KS": (38.5, -98.4), "KY": (37.5, -85.3), "LA": (31.1, -92.0), "ME": (45.4, -69.2),
    "MD": (39.0, -76.8), "MA": (42.3, -71.8), "MI": (44.3, -85.4), "MN": (46.3, -94.3), "MS": (32.7, -89.7),
    "MO": (38.4, -92.5), "MT": (47.0, -109.6), "NE": (41.5, -99.8), "NV": (39.3, -116.6), "NH": (43.7, -71.6),
    "NJ": (40.2, -74.7), "NM": (34.4, -106.1), "NY": (42.9, -75.5), "NC": (35.6, -79.4), "ND": (47.5, -100.5),
    "OH": (40.3, -82.8), "OK": (35.6, -97.5), "OR": (43.9, -120.6), "PA": (40.9, -77.8), "RI": (41.7, -71.5),
    "SC": (33.9, -80.9), "SD": (44.4, -100.2), "TN": (35.9, -86.4), "TX": (31.5, -99.3), "UT": (39.3, -111.7),
    "VT": (44.1, -72.7), "VA": (37.5, -78.9), "WA": (47.4, -120.5), "WV": (38.6, -80.6), "WI": (44.6, -89.9),
    "WY": (43.0, -107.5),
}  # fmt: skip
"""Approximate geographic centres of the US states: where an address in a state the network's
city list does not cover is placed (a parcel zone spans hundreds of miles)."""


def is_gln(value: str) -> bool:
    """A 13-digit GS1 Global Location Number with a valid check digit."""
    if not re.fullmatch(r"\d{13}", value):
        return False
    digits = [int(c) for c in value]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == digits[12]


class PartProposal(BaseModel):
    """One cross-reference to create: the buyer's part number -> our SKU, and how sure we are."""

    line: int
    customer_part: str
    sku: str
    score: float
    method: Literal["reviewer", "exact", "vendor", "fuzzy"]


class ProposedAddress(BaseModel):
    """The ship-to as the document wrote it, split into fields, with an approximate location."""

    id: str
    label: str = "Ship-to"
    name: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str = "US"
    lat: float | None = None
    lon: float | None = None
    located: str = ""
    """How ``lat``/``lon`` were found (a city centre, the state's known cities), for the card."""


_EDITABLE = {"name", "account_number", "email", "email_domain", "edi_id", "gln", "tier", "price_list_id"}
"""Customer fields a reviewer may edit on a proposal by name."""
_SHIP_FIELDS = {"name", "label", "street", "city", "state", "postal_code", "country"}
"""Ship-to fields a reviewer may edit (``ship_to.<field>``)."""


class NewCustomerProposal(BaseModel):
    """The customer a person may create from this PO (see :meth:`tool_args`)."""

    customer_id: str
    name: str | None = None
    account_number: str
    account_from_document: bool = False
    email: str = ""
    email_domain: str = ""
    edi_id: str | None = None
    gln: str | None = None
    tier: CustomerTier = CustomerTier.STANDARD
    price_list_id: str | None = None
    ship_to: ProposedAddress | None = None
    parts: list[PartProposal] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    """Where each proposed value came from."""
    warnings: list[str] = Field(default_factory=list)
    """What a person should know before approving (e.g. nothing will identify the next PO exactly)."""
    similar: list[tuple[str, str, float]] = Field(default_factory=list)
    """Existing customers with a similar name ``(id, name, score)``: perhaps not new at all."""
    unmatched_lines: list[int] = Field(default_factory=list)
    """Lines (0-based) with no SKU: no cross-reference is proposed for them."""

    @property
    def missing(self) -> list[str]:
        """What must be filled in before the customer can be created."""
        out = [] if self.name else ["name"]
        if self.ship_to is None:
            out.append("ship_to")
        elif self.ship_to.lat is None or self.ship_to.lon is None:
            out.append("ship_to.location")
        return out

    def _edit_one(self, data: dict[str, Any], parts: dict[str, Any], key: str, value: str | None) -> bool:
        """Apply one edit to the dumped proposal; True when it moved the ship-to's city or state (the
        location is looked up again). An edit of anything else raises."""
        if key in _EDITABLE:
            data[key] = value or (None if key in ("edi_id", "gln", "price_list_id", "name") else "")
            if key == "account_number":
                data["account_from_document"] = False
        elif key.startswith("ship_to.") and key[8:] in _SHIP_FIELDS:
            if data["ship_to"] is None:
                data["ship_to"] = {"id": _address_id(self.customer_id), "name": self.name or "", "street": "",
                                   "city": "", "state": "", "postal_code": ""}  # fmt: skip
            data["ship_to"][key[8:]] = value or ""
            return key[8:] in ("city", "state")
        elif key.startswith("parts.") and len(key) > 6:
            part = key[6:]
            if not value:
                parts.pop(part, None)
            else:
                parts[part] = {"line": parts.get(part, {}).get("line", -1), "customer_part": part,
                               "sku": value.upper(), "score": 1.0, "method": "reviewer"}  # fmt: skip
        else:
            raise ValidationFailed(f"cannot edit {key!r} of a new customer; editable: {', '.join(sorted(_EDITABLE))}, "
                                   "ship_to.<street|city|state|postal_code|name|label>, parts.<their part>",
                                   field=key)  # fmt: skip
        return False

    def edited(self, edits: Mapping[str, Any]) -> NewCustomerProposal:
        """A copy with a reviewer's edits: customer fields by name (``name``, ``account_number``,
        ``email``, ``email_domain``, ``edi_id``, ``gln``, ``tier``, ``price_list_id``),
        ``ship_to.<field>``, and ``parts.<their part>`` = SKU (empty: drop it). Bad edits raise."""
        data = self.model_dump(mode="json")
        parts = {p["customer_part"]: p for p in data["parts"]}
        relocate = False
        for key, raw in edits.items():
            value = None if raw is None else str(raw).strip()
            relocate = self._edit_one(data, parts, key, value) or relocate
        data["parts"] = list(parts.values())
        if data["ship_to"] is not None:
            data["ship_to"]["state"] = (data["ship_to"]["state"] or "").upper()
            if relocate or data["ship_to"].get("lat") is None:
                lat, lon, how = locate(data["ship_to"]["city"], data["ship_to"]["state"])
                data["ship_to"].update(lat=lat, lon=lon, located=how)
        try:
            return NewCustomerProposal.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(f"the edited customer is not valid: {exc.errors()[0]['msg']}") from None

    def tool_args(self, *, by: str, reason: str = "") -> dict[str, Any]:
        """The ``create_customer`` arguments; raises naming what is missing."""
        if self.missing:
            raise ValidationFailed("the new customer needs " + ", ".join(self.missing) + " before it can be created",
                                   missing=self.missing)  # fmt: skip
        assert self.ship_to is not None
        assert self.name is not None
        address = self.ship_to.model_dump(exclude={"located"})
        return {
            "customer_id": self.customer_id,
            "customer": {
                "name": self.name, "account_number": self.account_number, "tier": self.tier.value,
                "email": self.email, "email_domain": self.email_domain, "edi_id": self.edi_id, "gln": self.gln,
                "price_list_id": self.price_list_id, "addresses": [address],
                "part_numbers": {p.customer_part: p.sku for p in self.parts}, "created_by": by,
            },
            "reason": reason or "new buyer: customer created from its first purchase order",
        }  # fmt: skip


# --- building the proposal --------------------------------------------------------------------------


def _short_hash(*parts: str | None) -> str:
    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:8].upper()


def _address_id(customer_id: str) -> str:
    return f"ADDR-{customer_id.removeprefix('CUST-')}-1"[:32]


def locate(city: str | None, state: str | None) -> tuple[float | None, float | None, str]:
    """Approximate coordinates from the cities the network knows: the city centre, else the mean of
    the state's known cities (zones and ETAs need a point; a parcel zone spans hundreds of miles)."""
    st = (state or "").strip().upper()
    name = (city or "").strip().lower()
    for c in CITIES:
        if c.state == st and c.name.lower() == name:
            return c.lat, c.lon, f"centre of {c.name}, {c.state}"
    in_state = [c for c in CITIES if c.state == st]
    if in_state:
        lat = round(sum(c.lat for c in in_state) / len(in_state), 4)
        lon = round(sum(c.lon for c in in_state) / len(in_state), 4)
        return lat, lon, f"approximate: the mean of {len(in_state)} known cities in {st}"
    if st in _STATE_CENTRES:
        lat, lon = _STATE_CENTRES[st]
        return lat, lon, f"approximate: the centre of {st}"
    return None, None, "not located: the state is not a US state"


_CITY_LABELS = ("PlaceName",)


def split_address(party: Party) -> tuple[str, str, str, str]:
    """Street, city, state, ZIP as written (case kept), the city line read by ``usaddress``."""
    city, state, postal = party.city or "", party.state or "", party.postal_code or ""
    street_lines: list[str] = []
    for line in party.address_lines:
        try:
            tagged = usaddress.parse(line)
        except Exception:  # the parser's own failure must not stop intake
            tagged = []
        labels = {lbl for _tok, lbl in tagged}
        if tagged and labels <= {"PlaceName", "StateName", "ZipCode", "CountryName"} and "StateName" in labels:
            city = city or " ".join(t.strip(",") for t, lbl in tagged if lbl == "PlaceName")
            state = state or " ".join(t.strip(",.") for t, lbl in tagged if lbl == "StateName")
            postal = postal or " ".join(t.strip(",") for t, lbl in tagged if lbl == "ZipCode")
            continue
        street_lines.append(line.strip())
    return ", ".join(x for x in street_lines if x), city.strip(), state.strip().upper()[:2], postal.strip()[:10]


def _buyer_ids(po: PurchaseOrder) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(gln, where)`` and ``(account, where)`` candidates from buyer parties and references."""
    glns: list[tuple[str, str]] = []
    accounts: list[tuple[str, str]] = []
    for p in po.parties:
        if not p.id or p.role in _SELLER_ROLES:
            continue
        value = p.id.strip()
        if is_gln(value) or ((p.id_qualifier or "").upper() in _GLN_QUALIFIERS and value.isdigit()):
            glns.append((value, f"{p.role} party id"))
        elif p.role in _BUYER_ROLES:
            accounts.append((value, f"{p.role} party id"))
    for r in po.references:
        label = f"{r.qualifier} {r.description or ''}".lower()
        if "account" in label and r.value.strip():
            accounts.append((r.value.strip(), f"reference {r.qualifier}"))
    return glns, accounts


class ValidatedLineLike(Protocol):
    """What the proposal reads of a validated line (:class:`intake.validate.ValidatedLine`)."""

    @property
    def index(self) -> int: ...
    @property
    def sku(self) -> str | None: ...
    @property
    def sku_method(self) -> str | None: ...
    @property
    def candidates(self) -> list[tuple[str, float]]: ...


def _parts(po: PurchaseOrder, lines: Sequence[ValidatedLineLike]) -> tuple[list[PartProposal], list[int]]:
    out: dict[str, PartProposal] = {}
    unmatched: list[int] = []
    for vl in lines:
        ln = po.lines[vl.index] if vl.index < len(po.lines) else None
        if vl.sku is None or ln is None:
            unmatched.append(vl.index)
            continue
        exact = vl.sku_method in ("reviewer", "exact", "vendor")
        score = 1.0 if exact else (vl.candidates[0][1] if vl.candidates else 0.0)
        if score < PROPOSE_PART:
            unmatched.append(vl.index)
            continue
        buyer = [pid.value for pid in ln.product_ids if pid.qualifier in BUYER_PART_QUALIFIERS]
        theirs = buyer or [pid.value for pid in ln.product_ids]
        for part in theirs:
            if part.strip() and part.strip().upper() != vl.sku.upper() and part.strip() not in out:
                method: Any = vl.sku_method if vl.sku_method in ("reviewer", "exact", "vendor") else "fuzzy"
                out[part.strip()] = PartProposal(line=vl.index, customer_part=part.strip(), sku=vl.sku,
                                                 score=round(float(score), 3), method=method)  # fmt: skip
    return list(out.values()), unmatched


def _proposed_ids(
    po: PurchaseOrder,
    sender_ids: Sequence[str | None],
    customers: Sequence[Customer],
    evidence: list[str],
    warnings: list[str],
) -> tuple[str | None, tuple[str, str] | None, tuple[str, str] | None]:
    """EDI id, GLN and account number (each with why) that no other customer holds already."""
    taken_edi = {c.edi_id.upper() for c in customers if c.edi_id}
    taken_gln = {c.gln for c in customers if c.gln}
    taken_acct = {c.account_number.upper() for c in customers}
    edi = next((s.strip() for s in sender_ids if s and s.strip()), None)
    if edi and edi.upper() in taken_edi:
        warnings.append(f"EDI sender id {edi} already belongs to another customer; not proposed")
        edi = None
    elif edi:
        evidence.append(f"EDI id {edi}: the interchange sender")
    glns, accounts = _buyer_ids(po)
    gln = next(((g, w) for g, w in glns if g not in taken_gln), None)
    if gln:
        evidence.append(f"GLN {gln[0]}: {gln[1]}")
    acct = next(((a, w) for a, w in accounts if a.upper() not in taken_acct and a != edi and len(a) <= 32), None)
    if acct:
        evidence.append(f"account number {acct[0]}: {acct[1]}")
    return edi, gln, acct


def _sender_address(
    sender: str | None, customers: Sequence[Customer], evidence: list[str], warnings: list[str]
) -> tuple[str, str]:
    """The sender's e-mail, and its domain unless a public provider's or another customer's (then
    the customer is known by the address only)."""
    if not (sender and "@" in sender):
        return "", ""
    taken_domain = {c.email_domain.lower() for c in customers if c.email_domain}
    email = sender.strip().lower()[:200]
    domain = ""
    dom = email.rsplit("@", 1)[1]
    if dom in FREE_MAIL_DOMAINS:
        warnings.append(f"{dom} is a public mail provider: the customer is known by {email} only, not the domain")
    elif dom in taken_domain:
        warnings.append(f"the domain {dom} already belongs to another customer: known by {email} only")
    else:
        domain = dom
    evidence.append(f"e-mail {email}: the sender" + (f" (domain {domain})" if domain else ""))
    return email, domain


def _proposed_ship_to(
    po: PurchaseOrder, customer_id: str, name: str | None, evidence: list[str], warnings: list[str]
) -> ProposedAddress | None:
    """The ship-to (else buyer, else bill-to) address, located; None when it is incomplete."""
    ship_party = po.ship_to or po.buyer or po.bill_to
    if ship_party is None:
        return None
    street, city, state, postal = split_address(ship_party)
    if not (street and city and state and postal):
        warnings.append("the ship-to is incomplete (street, city, state and ZIP are needed)")
        return None
    lat, lon, how = locate(city, state)
    evidence.append(f"ship-to {street}, {city}, {state} {postal}: the {ship_party.role} party ({how})")
    return ProposedAddress(id=_address_id(customer_id), name=(ship_party.name or name or "")[:200],
                           street=street[:200], city=city[:100], state=state, postal_code=postal,
                           country=(ship_party.country or "US")[:2].upper(), lat=lat, lon=lon,
                           located=how)  # fmt: skip


def _similar(name: str | None, customers: Sequence[Customer]) -> list[tuple[str, str, float]]:
    """Existing customers whose name is close (the new one may be a duplicate), closest first."""
    similar = []
    if name:
        for c in customers:
            s = fuzz.token_sort_ratio(name.lower(), c.name.lower()) / 100
            if s >= 0.6:
                similar.append((c.id, c.name, round(s, 3)))
        similar.sort(key=lambda t: -t[2])
    return similar


def _part_warnings(lines: Sequence[ValidatedLineLike]) -> list[str]:
    """Lines whose product match is too weak, or tied with others, to propose as a cross-reference."""
    warnings = []
    for vl in lines:
        if vl.sku_method == "fuzzy" and vl.candidates and vl.candidates[0][1] < PROPOSE_PART:
            warnings.append(f"line {vl.index + 1}: closest product {vl.candidates[0][0]} (score "
                            f"{vl.candidates[0][1]:.2f}) is too weak to propose as a cross-reference")  # fmt: skip
    for vl in lines:
        close = [sku for sku, sc in vl.candidates[1:] if vl.candidates and sc >= vl.candidates[0][1] - 0.02]
        if vl.sku_method == "fuzzy" and close:
            warnings.append(f"line {vl.index + 1}: {vl.sku} is one of {len(close) + 1} equally close products "
                            f"({', '.join([vl.sku or '', *close])}); check the cross-reference")  # fmt: skip
    return warnings


def propose_customer(
    po: PurchaseOrder,
    *,
    sender: str | None,
    sender_ids: Sequence[str | None],
    customers: Sequence[Customer],
    lines: Sequence[ValidatedLineLike],
) -> NewCustomerProposal:
    """What the PO says about its (unknown) buyer. ``lines`` are validation's lines (SKU, method and
    candidates per line); ``sender_ids`` the envelope's sender ids (ISA06/GS02 or UNB)."""
    evidence: list[str] = []
    warnings: list[str] = []
    edi, gln, acct = _proposed_ids(po, sender_ids, customers, evidence, warnings)
    email, domain = _sender_address(sender, customers, evidence, warnings)
    named = [(p.name.strip(), p.role) for p in (po.buyer, po.bill_to, po.ship_to) if p is not None and p.name]
    name = named[0][0][:200] if named else None
    if name:
        evidence.append(f"name {name!r}: the {named[0][1]} party")
    elif domain:
        name = domain
        warnings.append(f"the document names no buyer; the name is the sender's domain {domain}")

    customer_id = f"CUST-N{_short_hash(edi, gln[0] if gln else None, acct[0] if acct else None, email, name)}"
    account = acct[0] if acct else f"NEW-{customer_id[6:]}"
    if not acct:
        warnings.append(f"the document gives no account number; {account} is made up (change it if you have one)")
    if not (edi or gln or acct or email):
        warnings.append("no EDI id, GLN, account number or sender address: the next PO will be matched by name "
                        "only (a guess, so it will be reviewed)")  # fmt: skip
    ship_to = _proposed_ship_to(po, customer_id, name, evidence, warnings)
    similar = _similar(name, customers)
    parts, unmatched = _parts(po, lines)
    warnings.extend(_part_warnings(lines))
    return NewCustomerProposal(
        customer_id=customer_id, name=name, account_number=account, account_from_document=acct is not None,
        email=email, email_domain=domain, edi_id=edi, gln=gln[0] if gln else None, ship_to=ship_to, parts=parts,
        evidence=evidence, warnings=warnings, similar=similar[:3], unmatched_lines=unmatched,
    )  # fmt: skip
