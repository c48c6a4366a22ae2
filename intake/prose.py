"""An order written as sentences in a mail body, read without a model.

Buyers write "We need 40 of the Copperleaf boxes (SKU-00001) and also 24 of the corner
protectors, SKU-00003" or "could you add SKU ABC-1, qty 40" - no table, no line per item, often
hard-wrapped by the mail program in the middle of a sentence. The rule-based extractor
(:mod:`intake.extract`) reads only whole lines in known shapes, so without a model such a mail
read as nothing at all. This module reads what it can from the sentences themselves:

* :func:`body_ship_to` - a US street address (house number, street, city, state, ZIP) in a sentence
  that says where the goods go ("please send it to ...", "deliver to our dock at ..."). It becomes
  the ship-to, which validation then matches to the customer's address book (street number, street,
  city, state and ZIP, normalised: :func:`intake.matching.address_score`).
* :func:`prose_po_number` - "our reference for this one is FF-PO-77120", "under PO# 4711-B".
* :func:`prose_lines` - a quantity and an item code in the same clause ("120 x SKU-123",
  "SKU ABC-1, qty 40", "3 cases of HX-200 at $12.50").

Everything read from a sentence carries a ``read_from_prose`` finding naming the sentence: the
pipeline turns it into a blocking reason (:func:`intake.decide.with_prose_reading`), so such an
order always reaches a person - the point is that the reviewer starts from a filled-in order, not
from nothing. The ship-to alone is no doubt: an address that equals a known one, number and ZIP
included, is the same evidence whichever way the sentence around it is worded.

Offsets are character offsets in the text given (single line breaks inside a paragraph are read as
spaces, so a sentence wrapped by the mail program is one sentence and keeps its offsets).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import usaddress  # type: ignore[import-untyped]

from intake.extract import SpanSource, span_source
from intake.matching import US_STATES, part_key
from intake.model import Finding, Party, POLine, ProductId, PurchaseOrder, Severity, Source

__all__ = [
    "PROSE_CODE",
    "ProseLine",
    "add_unread_lines",
    "body_ship_to",
    "flatten",
    "prose_lines",
    "prose_po_number",
    "read_prose_order",
]

PROSE_CODE = "read_from_prose"
"""Finding code for a value read from a sentence rather than from a labelled field or a line."""

# --- text ----------------------------------------------------------------------------------------

_QUOTED_LINE_RE = re.compile(r"^[ \t]*+>.*$", re.M)
_CUT_RE = re.compile(
    r"^(?:--[ \t\r]?$|[ \t]*+On\b[^\n]{5,200}\bwrote:[ \t\r]*+$|[ \t>]*+-{3,}\s*+(?:Forwarded|Original)\s++Message)",
    re.M | re.I,
)
_BULLET_RE = re.compile(r"[ \t]*(?:[-*•·]|\d{1,3}[.)])\s")
_COLUMNS_RE = re.compile(r"\S(?:\t| {2,})\S")
_WRAP_MIN = 40
"""A line this long may have been wrapped by the mail program; a shorter one ended where its writer ended it."""


def _wrapped(before: str, after: str) -> bool:
    """Whether the break between two lines is the mail program's: a long prose line followed by
    more prose - not a list item, not table rows (columns), not an indented block."""
    if len(before.rstrip()) < _WRAP_MIN or not after.strip() or _BULLET_RE.match(after):
        return False
    if _COLUMNS_RE.search(before.strip()) or _COLUMNS_RE.search(after.strip()):
        return False
    return not after[:1].isspace()


def flatten(text: str) -> str:
    """``text`` with the line breaks the mail program put inside sentences turned into spaces
    (same length, so every offset still points at the same character); quoted lines, a signature
    and a quoted earlier message blanked out (an older order's lines are not this order's)."""
    text = text.replace("\r", " ")
    cut = _CUT_RE.search(text)
    if cut is not None:
        text = text[: cut.start()] + " " * (len(text) - cut.start())
    text = _QUOTED_LINE_RE.sub(lambda m: " " * len(m.group()), text)
    chars = list(text)
    lines = text.split("\n")
    pos = 0
    for before, after in itertools.pairwise(lines):
        pos += len(before)
        if _wrapped(before, after):
            chars[pos] = " "
        pos += 1
    return "".join(chars)


# --- ship-to ---------------------------------------------------------------------------------------


_STATE_NAMES = "|".join(sorted((re.escape(n).replace(r"\ ", r"\s++") for n in US_STATES), key=len, reverse=True))
_STATE_ZIP_RE = re.compile(rf"\b(?P<state>[A-Z]{{2}}|(?i:{_STATE_NAMES}))\.?,?[ \t]+(?P<zip>\d{{5}}(?:-\d{{4}})?)\b")
_SHIP_WORDS_RE = re.compile(
    r"\b(?:ship(?:ped|ping)?|send|sent|deliver(?:y|ed)?|drop(?:ped)?\s++off|bring|goes|go|arrive|receiving|dock"
    r"|warehouse|site|address|destination|to\s++our|to\s++the)\b",
    re.I,
)
_BILL_WORDS_RE = re.compile(r"\b(?:bill(?:ing|ed)?|invoice[sd]?|remit(?:tance)?|accounts\s++payable|mailing)\b", re.I)
_STREET_LABELS = frozenset(
    {"StreetNamePreModifier", "StreetNamePreDirectional", "StreetNamePreType", "StreetName", "StreetNamePostType",
     "StreetNamePostDirectional", "OccupancyType", "OccupancyIdentifier", "SubaddressType",
     "SubaddressIdentifier", "USPSBoxType", "USPSBoxID", "BuildingName"}
)  # fmt: skip
_WINDOW = 220


@dataclass(frozen=True)
class _Address:
    start: int
    end: int
    street: tuple[str, int, int]
    city: tuple[str, int, int] | None
    state: str
    zip: tuple[str, int, int]


def _tokens(window: str, base: int) -> list[tuple[str, str, int, int]]:
    """usaddress's tags for ``window`` with each token's offsets (``base`` added)."""
    try:
        parsed = usaddress.parse(window)
    except Exception:  # the tagger's own failure must not stop intake
        return []
    out: list[tuple[str, str, int, int]] = []
    pos = 0
    for tok, label in parsed:
        at = window.find(tok, pos)
        if at < 0:
            return []
        pos = at + len(tok)
        lead = len(tok) - len(tok.lstrip("(["))
        core = tok.strip("()[],;")
        out.append((core, label, base + at + lead, base + at + lead + len(core)))
    return out


def _address_at(flat: str, m: re.Match[str]) -> _Address | None:
    """The address ending at a ``STATE ZIP`` match: the last house number before it that starts a
    street, the street, and the city between street and state."""
    para = flat.rfind("\n\n", 0, m.start())
    lo = max(0, m.start() - _WINDOW, para + 2 if para >= 0 else 0)
    # The tagger reads an address best whole: tag up to the ZIP, use what lies before the state.
    toks = [t for t in _tokens(flat[lo : m.end()], lo) if t[3] <= m.start(1)]
    numbers = [
        i for i, t in enumerate(toks) if t[1] == "AddressNumber" and any(x[1] in _STREET_LABELS for x in toks[i + 1 :])
    ]
    if not numbers:
        return None
    i = numbers[-1]
    street = [t for t in toks[i:] if t[1] == "AddressNumber" or t[1] in _STREET_LABELS]
    city = [t for t in toks[i:] if t[1] == "PlaceName"]
    if len(street) < 2 or not city:
        return None
    s0, s1 = street[0][2], street[-1][3]
    c0, c1 = city[0][2], city[-1][3]
    state_raw = re.sub(r"\s++", " ", m.group("state")).lower()
    state = US_STATES.get(state_raw, m.group("state").upper())
    return _Address(
        start=s0, end=m.end(), street=(flat[s0:s1].rstrip(" ,;"), s0, s1), city=(flat[c0:c1].strip(" ,"), c0, c1),
        state=state, zip=(m.group("zip"), m.start("zip"), m.end("zip")),
    )  # fmt: skip


MAX_ADDRESS_CANDIDATES = 20
"""At most this many "STATE ZIP" places are tagged (each costs a tagger run): a mail names a handful
of addresses; a hostile one naming thousands must not cost seconds per thousand."""


def _addresses(flat: str) -> list[_Address]:
    out: list[_Address] = []
    for m in itertools.islice(_STATE_ZIP_RE.finditer(flat), MAX_ADDRESS_CANDIDATES):
        a = _address_at(flat, m)
        if a is not None and not any(a.start < b.end and b.start < a.end for b in out):
            out.append(a)
    return out


def _lead(flat: str, a: _Address) -> str:
    """The words before an address in its sentence (what it is said to be)."""
    start = max(flat.rfind("\n\n", 0, a.start), a.start - 120, 0)
    lead = flat[start : a.start]
    cut = max(lead.rfind(". "), lead.rfind("! "), lead.rfind("? "))
    return lead[cut + 1 :] if cut >= 0 else lead


def body_ship_to(text: str, src: SpanSource | None = None) -> tuple[Party, dict[str, Source], Finding] | None:
    """The ship-to a mail body states in a sentence, or None.

    Only an address the sentence says the goods go to ("send it to ...", "deliver to our dock at
    ...", "ship to ..."), never one it calls a billing or mailing address, and never a signature's
    (cut off before reading). Returns the party, its field sources and an info finding.
    """
    make = src or span_source("email")
    flat = flatten(text)
    for a in _addresses(flat):
        lead = _lead(flat, a)
        if _BILL_WORDS_RE.search(lead) or not _SHIP_WORDS_RE.search(lead):
            continue
        party = Party(role="ST", address_lines=[a.street[0]], state=a.state, postal_code=a.zip[0], country="US")
        sources: dict[str, Source] = {"address_lines[0]": make(a.street[1], a.street[2]),
                                      "postal_code": make(a.zip[1], a.zip[2])}  # fmt: skip
        if a.city is not None:
            party.city = a.city[0]
            sources["city"] = make(a.city[1], a.city[2])
        written = " ".join(text[a.start : a.end].split())
        finding = Finding(
            severity=Severity.INFO,
            code="ship_to_from_body",
            message=f"ship-to read from the message text: {written!r}",
            source=make(a.start, a.end),
        )
        return party, sources, finding
    return None


# --- PO number ---------------------------------------------------------------------------------------

_TOKEN = r"(?P<po>#?[A-Za-z0-9][\w\-/.]*\d[\w\-/]*)"
_PO_PROSE_RES = [
    re.compile(
        r"\b(?:our|my|the|your|this)\s++(?:p\.?o\.?|purchase\s++order|order|reference|ref\.?)"
        r"(?:\s++(?:number|no\.?|num|#|id))?(?:\s++for\s++(?:this|the)(?:\s++(?:one|order|po))?)?"
        rf"\s++(?:is|will\s++be|reads)\s*+:?\s*+{_TOKEN}",
        re.I,
    ),
    re.compile(
        r"\b(?:under|against|with|on|use|reference|ref\.?|quote)\s++(?:p\.?o\.?|ref\.?|reference)"
        rf"\s*+(?:#|no\.?|number)?\s*+:?\s*+{_TOKEN}",
        re.I,
    ),
    re.compile(rf"\b(?:reference|ref\.?)\s*+(?:#|no\.?|number)?\s*+:\s*+{_TOKEN}", re.I),
]  # fmt: skip


def prose_po_number(text: str) -> tuple[str, int, int] | None:
    """A PO number a sentence names ("our reference for this one is FF-PO-77120"), with offsets."""
    flat = flatten(text)
    for rx in _PO_PROSE_RES:
        m = rx.search(flat)
        if m is not None:
            value = m.group("po").lstrip("#").rstrip(".,;/")
            start = m.start("po") + (1 if m.group("po").startswith("#") else 0)
            return value, start, start + len(value)
    return None


# --- line items --------------------------------------------------------------------------------------

_UNITS: dict[str, str] = {
    "ea": "EA", "each": "EA", "pc": "EA", "pcs": "EA", "piece": "EA", "pieces": "EA", "unit": "EA", "units": "EA",
    "cs": "CS", "case": "CS", "cases": "CS", "bx": "BX", "box": "BX", "boxes": "BX", "pk": "PK", "pack": "PK",
    "packs": "PK", "rl": "RL", "roll": "RL", "rolls": "RL", "dz": "DZ", "dozen": "DZ", "pr": "PR", "pair": "PR",
    "pairs": "PR", "pallet": "PL", "pallets": "PL", "carton": "CT", "cartons": "CT", "ctn": "CT", "ctns": "CT",
}  # fmt: skip
"""Units a sentence names right after its quantity ("3 cases of ..."); others are left to the catalogue."""
_UNIT_ALT = "|".join(sorted(_UNITS, key=len, reverse=True))

_CODE_RE = re.compile(
    r"(?<![\w/.-])(?:(?i:sku|item|part|p/n|pn|article|art\.|model|cat\.?|catalog)\s*+(?:#|(?i:no)\.?|(?i:number))?"
    r"\s*+:?\s*+(?P<labelled>[A-Za-z0-9][\w./-]*\d[\w./-]*|\d[\w./-]*)"
    r"|(?P<code>(?=[A-Z0-9./_-]*\d)(?=[A-Z0-9./_-]*[A-Z])[A-Z0-9][A-Z0-9./_-]*[A-Z0-9]))(?![\w/-])"
)
_DIMENSION_RE = re.compile(r"^\d+(?:\.\d+)?[xX×]\d+")
_QTY_AFTER_RE = re.compile(
    # "ABC-1, qty 40", "HX-200 x 6", "(x6)", "SKU-1 quantity 200 pcs", "SKU-14 - 10 rolls"
    rf"^\s*+(?:[,:(–-]\s*+)?(?:(?:(?i:qty|quantity|qnty)\.?\s*+(?:of\s*+)?:?\s*+|[x×*]\s*+)(?P<q>\d{{1,6}})"
    rf"(?:\s*+(?P<u>(?i:{_UNIT_ALT}))\b)?|(?P<q2>\d{{1,6}})\s*+(?P<u2>(?i:{_UNIT_ALT}))\b)"
)
_QTY_BEFORE_RE = re.compile(
    rf"(?<![\w.,$/-])(?P<q>\d{{1,6}})(?![\w.,/-]|\s*+[x×]\s*+\d)\s*+(?:(?P<u>(?i:{_UNIT_ALT}))\b\.?\s*+)?"
    r"(?:(?i:more|additional|extra|new)\s++)?(?:(?:x|×|\*|(?i:of|off))\b\s*+|(?=[A-Za-z(]))"
)
_PRICE_RE = re.compile(r"(?:@|\$|(?<!\w)(?i:at|for)\s++\$?)\s*+(?P<p>\d{1,6}(?:,\d{3})*(?:\.\d{1,4})?)(?!\s*+%)")
_MONTHS = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_NUMBER_RE = re.compile(rf"{_MONTHS}\.?\s++$|^\s*+(?:st|nd|rd|th)?\s*+{_MONTHS}\b|^(?:st|nd|rd|th)\b")
# "(?<!\s)": a joining word is looked for once per run of spaces, from its start; without it every
# space of a long run started a scan to the run's end (16,000 spaces cost 4.5 s of CPU). Every other
# run of spaces in this module is possessive (\s*+, \s++): a space given back could only stand where
# the next part needs a word, and three optional runs in a row made "SKU" + 1,000 spaces cost 5 s.
_CLAUSE_SPLIT_RE = re.compile(
    r"(?<=[.!?])\s++(?=[A-Z(\"])|;|\n|(?<!\s)\s++(?:and|plus|as\s++well\s++as|then)\s++(?=\S)", re.I
)


@dataclass
class ProseLine:
    """One line item read from a clause, with offsets of each value in the text."""

    sku: tuple[str, int, int]
    quantity: tuple[Decimal, int, int] | None
    unit: tuple[str, int, int] | None = None
    price: tuple[Decimal, int, int] | None = None
    clause: tuple[int, int] = (0, 0)
    doubts: list[str] = field(default_factory=list)


_ABBREVIATIONS = frozenset(
    {"no", "nr", "st", "ave", "rd", "n", "s", "e", "w", "approx", "ca", "incl", "qty", "pcs", "ref"}
)


def _abbreviation_before(flat: str, at: int) -> bool:
    """True when the full stop before ``at`` ends an abbreviation ("item no. SKU-4"), not a sentence."""
    m = re.search(r"(\w+)\.\s*+$", flat[max(0, at - 12) : at + 1])
    return m is not None and m.group(1).lower() in _ABBREVIATIONS


def _clauses(flat: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _CLAUSE_SPLIT_RE.finditer(flat):
        if flat[m.start() - 1 : m.start()] == "." and _abbreviation_before(flat, m.start() - 1):
            continue
        if flat[pos : m.start()].strip():
            out.append((pos, m.start()))
        pos = m.end()
    if flat[pos:].strip():
        out.append((pos, len(flat)))
    return out


def _codes(clause: str, skip: set[str]) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for m in _CODE_RE.finditer(clause):
        g = "labelled" if m.group("labelled") else "code"
        value = m.group(g).rstrip(".,")
        if value.upper() in skip or _DIMENSION_RE.match(value) or re.fullmatch(r"\d{1,2}(?:ST|ND|RD|TH)", value):
            continue
        out.append((value, m.start(g), m.start(g) + len(value)))
    return out


def _number(raw: str) -> Decimal | None:
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None


def _quantities(clause: str, codes: list[tuple[str, int, int]], prices: list[tuple[int, int]]) -> list[re.Match[str]]:
    """Numbers in ``clause`` that read as a quantity: not inside a code or a price, not a day of a
    month, not a size ("4x6")."""
    taken = sorted([(s, e) for _v, s, e in codes] + prices)
    reach = list(itertools.accumulate((b for _a, b in taken), max))
    out: list[re.Match[str]] = []
    for m in _QTY_BEFORE_RE.finditer(clause):
        s, e = m.start("q"), m.end("q")
        if _overlaps(taken, reach, s, e):
            continue
        if _DATE_NUMBER_RE.search(clause[max(0, s - 12) : s]) or _DATE_NUMBER_RE.search(clause[e : e + 12]):
            continue
        out.append(m)
    return out


def _overlaps(taken: list[tuple[int, int]], reach: list[int], s: int, e: int) -> bool:
    """Whether ``[s, e)`` starts or ends inside one of ``taken`` (spans sorted by start; ``reach[i]``
    the furthest end of ``taken[:i + 1]``): only spans starting before ``e`` can, and the walk back
    stops where none that early reaches past ``s`` (a scan of every span per number made a long
    clause quadratic: 20,000 "4 of SKU-1," cost 65 s)."""
    k = bisect.bisect_left(taken, (e, -1))
    while k > 0 and reach[k - 1] > s:
        a, b = taken[k - 1]
        if a <= s < b or a < e <= b:
            return True
        k -= 1
    return False


def _line_for(
    clause: str, base: int, code: tuple[str, int, int], before: list[re.Match[str]], before_ends: list[int]
) -> ProseLine:
    """The line of one code: a quantity right after it ("ABC-1, qty 40", "HX-200 x 6"), else the
    nearest one before it in the clause ("40 of the boxes (SKU-1)")."""
    value, cs, ce = code
    line = ProseLine(sku=(value, base + cs, base + ce), quantity=None)
    after = _QTY_AFTER_RE.match(clause[ce:])
    q: tuple[str, int, int, str | None, int, int] | None = None
    if after is not None:
        qg, ug = ("q", "u") if after.group("q") else ("q2", "u2")
        u = after.group(ug)
        q = (after.group(qg), ce + after.start(qg), ce + after.end(qg), u, ce + after.start(ug) if u else 0,
             ce + after.end(ug) if u else 0)  # fmt: skip
    else:
        k = bisect.bisect_right(before_ends, cs)  # the last quantity ending before the code
        if k:
            m = before[k - 1]
            u = m.group("u")
            q = (m.group("q"), m.start("q"), m.end("q"), u, m.start("u") if u else 0, m.end("u") if u else 0)
    if q is not None:
        amount = _number(q[0])
        if amount is not None and amount > 0:
            line.quantity = (amount, base + q[1], base + q[2])
        if q[3]:
            line.unit = (_UNITS[q[3].lower()], base + q[4], base + q[5])
    return line


def _clause_lines(flat: str, start: int, end: int, skip: set[str]) -> list[ProseLine]:
    clause = flat[start:end]
    codes = _codes(clause, skip)
    if not codes:
        return []
    price_ms = list(_PRICE_RE.finditer(clause))
    prices = [(m.start(), m.end()) for m in price_ms]
    before = _quantities(clause, codes, prices)
    ends = [m.end("q") for m in before]  # ascending: finditer's order
    lines = [_line_for(clause, start, c, before, ends) for c in codes]
    used = Counter(ln.quantity[1] for ln in lines if ln.quantity is not None)
    for ln in lines:
        ln.clause = (start, end)
        if ln.quantity is not None and used[ln.quantity[1]] > 1:
            ln.quantity = None  # one number for two parts: nobody can say whose it is
        if ln.quantity is None:
            ln.doubts.append(f"part {ln.sku[0]} is named without a quantity that is clearly its own")
    if len(price_ms) == 1 and len(lines) == 1:
        price = _number(price_ms[0].group("p"))
        if price is not None:
            lines[0].price = (price, start + price_ms[0].start("p"), start + price_ms[0].end("p"))
    return lines


def prose_lines(text: str, *, skip: tuple[str, ...] = ()) -> list[ProseLine]:
    """Every item code in the text's clauses with the quantity (unit, price) the clause gives it.

    ``skip``: values that are not parts (the PO number). Codes inside a stated address are not
    parts either (a ZIP+4, a suite number) and are never read."""
    flat = flatten(text)
    for a in _addresses(flat):
        flat = flat[: a.start] + " " * (a.end - a.start) + flat[a.end :]
    skip_up = {s.upper() for s in skip if s}
    out: list[ProseLine] = []
    for s, e in _clauses(flat):
        out += _clause_lines(flat, s, e, skip_up)
    return out


# --- putting it together -------------------------------------------------------------------------


def _doubt(message: str, src: SpanSource, span: tuple[int, int] | None) -> Finding:
    return Finding(severity=Severity.WARNING, code=PROSE_CODE, message=message,
                   source=src(*span) if span else None)  # fmt: skip


SAID_MAX = 200
"""Characters of a sentence quoted in a doubt: enough for a person to find it (the finding's source
points at all of it); a 20,000-part sentence quoted whole in each of its lines' doubts was quadratic."""


def _said(text: str, clause: tuple[int, int]) -> str:
    piece = " ".join(text[clause[0] : min(clause[1], clause[0] + 4 * SAID_MAX)].split())
    return piece if len(piece) <= SAID_MAX and clause[1] - clause[0] <= 4 * SAID_MAX else piece[:SAID_MAX] + "…"


def _add_lines(po: PurchaseOrder, lines: list[ProseLine], text: str, src: SpanSource) -> list[Finding]:
    findings: list[Finding] = []
    for ln in lines:
        said = _said(text, ln.clause)
        if ln.quantity is None:
            findings.append(_doubt(f"{ln.doubts[0]}: {said!r}; not read as a line", src, ln.clause))
            continue
        k = len(po.lines)
        p = f"lines[{k}]."
        line = POLine(line_number=str(k + 1), quantity=ln.quantity[0],
                      product_ids=[ProductId(qualifier="VN", value=ln.sku[0])])  # fmt: skip
        po.sources[p + "product_ids[0]"] = src(ln.sku[1], ln.sku[2])
        po.sources[p + "quantity"] = src(ln.quantity[1], ln.quantity[2])
        if ln.unit is not None:
            line.unit = ln.unit[0]
            po.sources[p + "unit"] = src(ln.unit[1], ln.unit[2])
        if ln.price is not None:
            line.unit_price = ln.price[0]
            po.sources[p + "unit_price"] = src(ln.price[1], ln.price[2])
        po.lines.append(line)
        findings.append(_doubt(f"line {k + 1} ({ln.quantity[0]} x {ln.sku[0]}) read from a sentence, not from an "
                               f"order line: {said!r}; a person checks it", src, ln.clause))  # fmt: skip
    return findings


def read_prose_order(
    text: str, po: PurchaseOrder | None, *, src: SpanSource | None = None, document_type: str = "email"
) -> tuple[PurchaseOrder | None, list[Finding]]:
    """Fill what the rule-based reading left empty - the PO number, the lines - from the text's
    sentences. ``po`` is what was read so far (None: nothing); it is returned filled, or a new one
    when the sentences hold an order and ``po`` was None. Lines are read only when ``po`` has none
    (the lines a table or a list gave are never mixed with lines from sentences)."""
    make = src or span_source("email")
    out = po if po is not None else PurchaseOrder(document_type=document_type)
    findings: list[Finding] = []
    if out.po_number is None:
        number = prose_po_number(text)
        if number is not None:
            out.po_number = number[0]
            out.sources["po_number"] = make(number[1], number[2])
            findings.append(_doubt(f"PO number {number[0]!r} read from a sentence", make, (number[1], number[2])))
    if not out.lines:
        findings += _add_lines(out, prose_lines(text, skip=(out.po_number or "",)), text, make)
    if po is None and out.po_number is None and not out.lines:
        return None, findings
    return out, findings


def add_unread_lines(po: PurchaseOrder, text: str, *, src: SpanSource | None = None) -> list[Finding]:
    """Lines the text's sentences give for parts that no line read so far names, added with a
    ``read_from_prose`` doubt each.

    A mail of one order line in a known shape and one in a sentence ("pls ship 120 x SKU-12 asap,
    and SKU-5, qty 40") was read as one line and could be created without the other: an order with
    a line missing is a wrong order. Parts named without a quantity are left alone here (a note
    about a part is no line)."""
    make = src or span_source("email")
    have = {part_key(p.value) for ln in po.lines for p in ln.product_ids if p.value}
    read = _lines_read(po)
    unread = [
        ln
        for ln in prose_lines(text, skip=(po.po_number or "",))
        if ln.quantity is not None
        and part_key(ln.sku[0]) not in have
        and not any(a <= x < b for a, b in read for x in (ln.sku[1], ln.quantity[1]))
        and not _in_table_row(text, ln.sku[1])
    ]
    return _add_lines(po, unread, text, make)


def _lines_read(po: PurchaseOrder) -> list[tuple[int, int]]:
    """Where the line items' part numbers and quantities were read: never read a second time."""
    keys = (".product_ids[", ".quantity")
    return [
        src.span
        for key, src in po.sources.items()
        if key.startswith("lines[") and any(k in key for k in keys) and src.span is not None
    ]


def _in_table_row(text: str, at: int) -> bool:
    """Whether the text line at ``at`` is a row of columns (a code in a row's description column is
    not another line: "100-7056-06   150  EA  8.19  Ball bearing 6204-2RS")."""
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return _COLUMNS_RE.search(text[start : len(text) if end < 0 else end].strip()) is not None
