"""The canonical purchase order that every intake parser produces (EDI now; PDF, email, CSV later).

Values are plain Python types (``str``, ``Decimal``, ``date``) so that the intake agent, the
validators and the tests can read and compare them without unwrapping. Where each value came from
is kept apart, in one flat map :attr:`PurchaseOrder.sources` keyed by the field's path inside the
order (``"po_number"``, ``"lines[0].quantity"``, ``"parties[2].city"``). We chose the map over a
``Sourced[T]`` wrapper on every field because wrappers make every reader write ``.value``, make
models built by hand (or by an LLM) verbose, and make equality checks noisy; a map costs nothing
for callers who do not care about provenance and answers "where did this come from?" in one call
(:meth:`PurchaseOrder.source_of`).

:class:`Source` is shared by every document kind: EDI fills ``path`` (``"PO1[2].04"``, segment id,
1-based occurrence within the transaction, element position, optional ``.NN`` component) and
``span`` (character offsets in the decoded document); PDF will fill ``page`` and ``bbox``; email
fills ``span``.

Parsers report problems as :class:`Finding` objects and never raise on bad input: a purchase
order with gaps plus findings is more useful to the intake agent than an exception.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SourceKind = Literal["edi", "pdf", "email", "csv", "sheet", "manual"]


MAX_DOCUMENT_INT = 2**31 - 1
"""The largest whole number read from a document that becomes an ``int`` (a count, a quantity in
base units): what every database's ``INTEGER`` column holds, and far below the 64-bit limit of the
workflow checkpoints. A larger one is a finding, never a crash."""


class Source(BaseModel):
    """Where one extracted value came from in the original document."""

    model_config = ConfigDict(frozen=True)

    kind: SourceKind
    document: str | None = None
    """Identifier of the document (file name, message id) when the caller gave one."""
    path: str | None = None
    """Structural pointer, e.g. ``PO1[2].04`` (X12) or ``LIN[3].03.01`` (EDIFACT)."""
    span: tuple[int, int] | None = None
    """Half-open character offsets in the decoded document text."""
    page: int | None = None
    """1-based page number (PDF)."""
    bbox: tuple[float, float, float, float] | None = None
    """``(x0, top, x1, bottom)`` in PDF points on ``page``."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Finding(BaseModel):
    """A problem (or notable fact) a parser met; parsers return these instead of raising."""

    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    """Stable machine-readable code, e.g. ``se_count_mismatch``."""
    message: str
    source: Source | None = None


class Reference(BaseModel):
    qualifier: str
    value: str
    description: str | None = None


class Communication(BaseModel):
    qualifier: str
    """``TE`` phone, ``FX`` fax, ``EM`` e-mail, ..."""
    value: str


class Contact(BaseModel):
    function: str | None = None
    """``BD`` buyer, ``OC`` order contact, ..."""
    name: str | None = None
    communications: list[Communication] = Field(default_factory=list)
    party_role: str | None = None
    """Role of the party loop the contact appeared in, if any."""


class Party(BaseModel):
    role: str
    """Entity code: ``BY`` buyer, ``SE``/``VN``/``SU`` seller, ``ST``/``DP`` ship-to, ``BT``/``IV`` bill-to."""
    name: str | None = None
    additional_names: list[str] = Field(default_factory=list)
    id_qualifier: str | None = None
    id: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class DateRef(BaseModel):
    qualifier: str
    value: date | None
    raw: str


class Carrier(BaseModel):
    """Carrier and routing details (X12 TD5, EDIFACT TDT)."""

    routing_sequence: str | None = None
    id_qualifier: str | None = None
    id: str | None = None
    transport_method: str | None = None
    routing: str | None = None
    service_level: str | None = None


class AllowanceCharge(BaseModel):
    indicator: str
    """``A`` allowance, ``C`` charge, ``N`` no allowance or charge."""
    code: str | None = None
    amount: Decimal | None = None
    percent: Decimal | None = None
    description: str | None = None


class Amount(BaseModel):
    qualifier: str
    value: Decimal


class ProductId(BaseModel):
    qualifier: str
    value: str


class PackInfo(BaseModel):
    """Item physical details (X12 PO4)."""

    pack: Decimal | None = None
    size: Decimal | None = None
    size_unit: str | None = None
    packaging_code: str | None = None


# Qualifier groups shared by X12 (code list 235) and EDIFACT (code list 7143).
BUYER_PART_QUALIFIERS = ("BP", "IN", "BY", "CB")
VENDOR_PART_QUALIFIERS = ("VN", "VP", "SA", "MF", "VA")
UPC_QUALIFIERS = ("UP", "UA", "UK")
GTIN_QUALIFIERS = ("EN", "SRV", "EO", "UK", "UP")
DOCUMENT_TOKEN_QUALIFIER = "TOKEN"
"""Not an EDI code: the whole token of the document around a part number a model read out of it
("SKU-00001" where the model wrote "00001"). Validation falls back to it, with a finding, only when
the model's value resolves to nothing (:mod:`intake.validate`)."""


class POLine(BaseModel):
    line_number: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    unit_price: Decimal | None = None
    price_basis: str | None = None
    product_ids: list[ProductId] = Field(default_factory=list)
    description: str | None = None
    """First free-text description (PID/IMD); all of them are in :attr:`descriptions`."""
    descriptions: list[str] = Field(default_factory=list)
    pack: PackInfo | None = None
    dates: list[DateRef] = Field(default_factory=list)
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list)
    amount: Decimal | None = None
    """Line amount when the document states one (EDIFACT MOA 203)."""

    def product_id(self, *qualifiers: str) -> str | None:
        """First product id whose qualifier is in ``qualifiers``, in the order asked."""
        for q in qualifiers:
            for pid in self.product_ids:
                if pid.qualifier == q:
                    return pid.value
        return None

    @property
    def buyer_part_number(self) -> str | None:
        return self.product_id(*BUYER_PART_QUALIFIERS)

    @property
    def vendor_part_number(self) -> str | None:
        return self.product_id(*VENDOR_PART_QUALIFIERS)

    @property
    def upc(self) -> str | None:
        return self.product_id(*UPC_QUALIFIERS)

    @property
    def gtin(self) -> str | None:
        """EAN/GTIN; a 12-digit UPC counts as a GTIN-12."""
        return self.product_id(*GTIN_QUALIFIERS)


_DELIVERY_DATE_QUALIFIERS = ("002", "2", "106", "064", "64", "017", "17")
_SHIP_DATE_QUALIFIERS = ("010", "10", "037", "118", "011", "11")


class PurchaseOrder(BaseModel):
    """One purchase order as the document stated it (not yet validated against the catalogue)."""

    document_type: str
    """``x12-850``, ``edifact-orders``, ``pdf``, ..."""
    po_number: str | None = None
    po_date: date | None = None
    purpose_code: str | None = None
    """X12 BEG01 / EDIFACT BGM message function (``00``/``9`` original, ``05``/``5`` replace)."""
    order_type: str | None = None
    """X12 BEG02 (``SA`` stand-alone, ``DS`` drop-ship, ...) / EDIFACT BGM document name code."""
    currency: str | None = None
    parties: list[Party] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    dates: list[DateRef] = Field(default_factory=list)
    carriers: list[Carrier] = Field(default_factory=list)
    lines: list[POLine] = Field(default_factory=list)
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list)
    declared_line_count: int | None = None
    """Line count the sender declared (X12 CTT01, EDIFACT CNT 2); compare with ``len(lines)``."""
    hash_total: Decimal | None = None
    amounts: list[Amount] = Field(default_factory=list)
    sources: dict[str, Source] = Field(default_factory=dict)
    """Provenance of each extracted value, keyed by field path (``lines[0].unit_price``)."""

    def source_of(self, field_path: str) -> Source | None:
        return self.sources.get(field_path)

    def party(self, *roles: str) -> Party | None:
        """First party whose role is in ``roles``, in the order asked."""
        for role in roles:
            for p in self.parties:
                if p.role == role:
                    return p
        return None

    def date_for(self, *qualifiers: str) -> date | None:
        for q in qualifiers:
            for d in self.dates:
                if d.qualifier == q and d.value is not None:
                    return d.value
        return None

    @property
    def buyer(self) -> Party | None:
        return self.party("BY", "OB")

    @property
    def seller(self) -> Party | None:
        return self.party("SE", "VN", "SU", "SF")

    @property
    def ship_to(self) -> Party | None:
        return self.party("ST", "DP")

    @property
    def bill_to(self) -> Party | None:
        return self.party("BT", "IV")

    @property
    def requested_delivery_date(self) -> date | None:
        return self.date_for(*_DELIVERY_DATE_QUALIFIERS)

    @property
    def requested_ship_date(self) -> date | None:
        return self.date_for(*_SHIP_DATE_QUALIFIERS)

    @property
    def total_amount(self) -> Decimal | None:
        """Monetary total (X12 AMT TT/1, EDIFACT MOA 79/86/39) when the document states one."""
        for q in ("TT", "1", "79", "86", "39", "GV"):
            for a in self.amounts:
                if a.qualifier == q:
                    return a.value
        return None


# --- value coercion shared by the parsers ---------------------------------------------------------


def parse_decimal(raw: str, decimal_mark: str = ".") -> Decimal | None:
    """EDI numeric (``12``, ``.57``, ``-3.5``, ``1,5`` with a comma mark) to Decimal; None if it is not one."""
    s = raw.strip()
    if not s:
        return None
    if decimal_mark != ".":
        s = s.replace(decimal_mark, ".")
    try:
        value = Decimal(s)
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


def parse_edi_date(raw: str) -> date | None:
    """``CCYYMMDD`` or ``YYMMDD`` (optionally followed by a time, as in EDIFACT format 203)."""
    s = raw.strip()
    try:
        if len(s) >= 8 and s[:8].isdigit():
            return date(int(s[:4]), int(s[4:6]), int(s[6:8]))
        if len(s) == 6 and s.isdigit():
            yy = int(s[:2])
            # X12 YYMMDD: the usual sliding window, years below 50 are 20xx.
            return date((2000 if yy < 50 else 1900) + yy, int(s[2:4]), int(s[4:6]))
    except ValueError:
        return None
    return None
