"""Matching at catalogue scale: a buyer's part numbers and descriptions -> our SKUs (``rapidfuzz``),
and a ship-to as written -> one of a customer's known addresses (``usaddress``).

Everything here is a *proposal with a score* in 0..1. Exact evidence (a SKU, a learned
cross-reference, an address id) is looked up by :mod:`intake.validate` first; this module is only
asked when that fails, and it must never turn a proposal into a decision: validation caps fuzzy
confidences below the auto-create thresholds, so a guess always reaches a person.

The catalogue is read once into memory (:func:`catalogue_index`, refreshed after
:data:`CACHE_TTL_S`) because a substring search in the database cannot tolerate typos and, at
20,000 SKUs, cuts the candidate pool before the right product is in it.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from weakref import WeakKeyDictionary

import usaddress  # type: ignore[import-untyped]
from rapidfuzz import fuzz, process, utils

from core.domain import Address, Product

__all__ = [
    "CACHE_TTL_S",
    "PART_KEY_SCORE",
    "US_STATES",
    "CatalogueIndex",
    "NormAddress",
    "address_score",
    "catalogue_index",
    "normalize_address",
    "part_key",
    "text_key",
    "text_score",
]

CACHE_TTL_S = 300.0
"""How long a loaded catalogue serves fuzzy matching before it is read again (exact SKU lookups
always go to the OMS, so a product added meanwhile is still found by its SKU)."""
PART_KEY_SCORE = 0.95
"""Score of a part number that equals a SKU once case, separators and leading zeros are dropped
(``sku 12`` / ``SKU00012`` -> ``SKU-00012``): strong, but still a proposal."""
PAGE = 5000


# --- part numbers and descriptions ------------------------------------------------------------------

_DIGITS_RE = re.compile(r"\d+")


def part_key(value: str) -> str:
    """``sku-00012`` / ``SKU 12`` -> ``SKU12``: a part number without formatting. Digits are never
    fuzzed: ``SKU-00120`` is another part than ``SKU-00102``, however similar they look."""
    alnum = re.sub(r"[^A-Z0-9]", "", value.upper())
    return _DIGITS_RE.sub(lambda m: str(int(m.group())), alnum)


_WORD_RE = re.compile(r"[a-z0-9]+")


def text_key(value: str) -> str:
    """Lower-case words and numbers, single spaces (punctuation and case never decide a match)."""
    return " ".join(_WORD_RE.findall(value.lower()))


class _Catalogue(Protocol):
    def list_products(self, *, after: str | None = None, limit: int = 5000) -> list[Product]: ...


POOL = 150
"""Products sharing the rarest words with a description that are scored in full (besides the
nearest names by word-order-free similarity over the whole catalogue)."""


@dataclass(frozen=True)
class CatalogueIndex:
    """The catalogue prepared for fuzzy matching: normalised names and descriptions, part keys, and
    an inverted index of their words (so a description is scored against hundreds of products, not
    all 20,000)."""

    skus: list[str]
    names: list[str]
    descriptions: list[str]
    by_part_key: dict[str, list[str]]
    sorted_names: list[str] = field(default_factory=list)
    """Each name's words sorted: plain similarity on these is token-sort similarity, precomputed."""
    by_word: dict[str, list[int]] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, products: Iterable[Product]) -> CatalogueIndex:
        skus: list[str] = []
        names: list[str] = []
        descriptions: list[str] = []
        by_key: dict[str, list[str]] = {}
        by_word: dict[str, list[int]] = {}
        for i, p in enumerate(products):
            skus.append(p.sku)
            name, desc = text_key(p.name), text_key(p.description)
            names.append(name)
            descriptions.append(desc)
            by_key.setdefault(part_key(p.sku), []).append(p.sku)
            for w in {*name.split(), *desc.split()}:
                if len(w) >= 2:
                    by_word.setdefault(w, []).append(i)
        return cls(skus=skus, names=names, descriptions=descriptions, by_part_key=by_key,
                   sorted_names=[" ".join(sorted(n.split())) for n in names], by_word=by_word)  # fmt: skip

    def __len__(self) -> int:
        return len(self.skus)

    def by_part(self, part: str) -> list[tuple[str, float]]:
        """SKUs equal to ``part`` but for formatting (usually one), scored :data:`PART_KEY_SCORE`."""
        key = part_key(part)
        if len(key) < 3:
            return []
        return [(sku, PART_KEY_SCORE) for sku in self.by_part_key.get(key, [])]

    def _sharing_words(self, needle: str) -> list[int]:
        """Products sharing words with ``needle``, rarest words weighing most (inverse frequency)."""
        n = len(self.skus)
        weight: dict[int, float] = {}
        for w in set(needle.split()):
            hits = self.by_word.get(w)
            if not hits or len(w) < 2:
                continue
            idf = math.log((n + 1) / len(hits))
            for i in hits:
                weight[i] = weight.get(i, 0.0) + idf
        return heapq.nlargest(POOL, weight, key=weight.__getitem__)

    def by_text(self, text: str, *, limit: int = 3) -> list[tuple[str, float]]:
        """Best SKUs for a free-text description, best first, scores in 0..1.

        Candidates: the names nearest by word-order-free similarity over the whole catalogue (typos
        everywhere still find them), and the products sharing the text's rarest words; each is then
        scored by :func:`text_score`.
        """
        needle = text_key(text)
        if len(needle) < 3 or not any(c.isalpha() for c in needle):
            return []
        pool = set(self._sharing_words(needle))
        sorted_needle = " ".join(sorted(needle.split()))
        for _hit, _s, i in process.extract(
            sorted_needle, self.sorted_names, scorer=fuzz.ratio, limit=limit * 8, score_cutoff=30
        ):
            pool.add(i)
        scored = [(i, text_score(needle, self.names[i], self.descriptions[i])) for i in pool]
        # Ties (near-identical names) are broken by the plain name similarity, then by SKU.
        scored.sort(key=lambda t: (-t[1], -fuzz.ratio(needle, self.names[t[0]]), self.skus[t[0]]))
        return [(self.skus[i], round(s, 3)) for i, s in scored[:limit] if s > 0]


def _coverage(needle: str, target: str) -> float:
    """Share of the needle's characters in words found (allowing a typo) among the target's words."""
    words = target.split()
    total = found = 0
    for w in needle.split():
        total += len(w)
        if w in words or (len(w) >= 4 and process.extractOne(w, words, scorer=fuzz.ratio, score_cutoff=80)):
            found += len(w)
    return found / total if total else 0.0


def text_score(needle: str, name: str, description: str = "") -> float:
    """0..1: how well a buyer's text (normalised by :func:`text_key`) describes a product.

    The whole name compared word-order-free (typos cost a little); or the text as a part of the
    name or description (a buyer's shortened text) — but only as far as the text's own words are
    found there, so that one shared brand word never makes a match.
    """
    whole = fuzz.token_sort_ratio(needle, name) / 100
    in_name = 0.92 * fuzz.token_set_ratio(needle, name) / 100 * _coverage(needle, name)
    in_desc = (
        0.85 * fuzz.token_set_ratio(needle, description) / 100 * _coverage(needle, description) if description else 0.0
    )
    return max(whole, in_name, in_desc)


_CACHE: WeakKeyDictionary[object, CatalogueIndex] = WeakKeyDictionary()
_LOCK = threading.Lock()


def load_catalogue(oms: _Catalogue) -> CatalogueIndex:
    """Every product, read in keyset pages."""
    products: list[Product] = []
    after: str | None = None
    while True:
        page = oms.list_products(after=after, limit=PAGE)
        products += page
        if len(page) < PAGE:
            break
        after = page[-1].sku
    return CatalogueIndex.build(products)


def catalogue_index(oms: _Catalogue, *, max_age_s: float = CACHE_TTL_S) -> CatalogueIndex:
    """The catalogue index of ``oms``, loaded once per :data:`CACHE_TTL_S` per OMS object."""
    with _LOCK:
        cached = _CACHE.get(oms)
    if cached is not None and time.monotonic() - cached.loaded_at < max_age_s:
        return cached
    fresh = load_catalogue(oms)
    with _LOCK:
        _CACHE[oms] = fresh
    return fresh


# --- addresses ----------------------------------------------------------------------------------------

_SUFFIX = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "aven": "ave", "avn": "ave", "road": "rd",
    "drive": "dr", "drv": "dr", "boulevard": "blvd", "boul": "blvd", "lane": "ln", "parkway": "pkwy",
    "pky": "pkwy", "court": "ct", "place": "pl", "highway": "hwy", "circle": "cir", "terrace": "ter",
    "trail": "trl", "square": "sq", "expressway": "expy", "freeway": "fwy", "plaza": "plz", "alley": "aly",
    "center": "ctr", "centre": "ctr", "crossing": "xing", "point": "pt", "turnpike": "tpke", "route": "rte",
}  # fmt: skip
_DIRECTION = {"north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne", "northwest": "nw",
              "southeast": "se", "southwest": "sw"}  # fmt: skip
_STREET_LABELS = ("StreetNamePreModifier", "StreetNamePreDirectional", "StreetNamePreType", "StreetName",
                  "StreetNamePostType", "StreetNamePostDirectional")  # fmt: skip
_UNIT_LABELS = ("OccupancyType", "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier")
_BOX_LABELS = ("USPSBoxType", "USPSBoxID")


US_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY", "district of columbia": "DC",
}  # fmt: skip
"""State names to their USPS codes: a buyer writing prose spells "Tennessee" out."""


@dataclass(frozen=True)
class NormAddress:
    """An address in comparable form: USPS abbreviations, lower case, no punctuation, ZIP5."""

    number: str = ""
    street: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    zip5: str = ""


def _word(w: str) -> str:
    return _SUFFIX.get(w, _DIRECTION.get(w, w))


def _norm_words(text: str) -> str:
    return " ".join(_word(w) for w in text_key(text).split())


def _tokens(text: str) -> list[tuple[str, str]]:
    try:
        return [(tok, label) for tok, label in usaddress.parse(text)]
    except Exception:  # the parser's own failure must not stop intake
        return [(tok, "Unknown") for tok in text.split()]


def normalize_address(
    street_lines: Sequence[str], city: str | None = None, state: str | None = None, postal: str | None = None
) -> NormAddress:
    """Parse what a document wrote (street lines, maybe with the city line in them) into components.

    A dock or suite line counts as the unit, a line the parser cannot read as an address (a
    department, "Attn: ...") is ignored, and the city/state/ZIP given separately win over what the
    parser read from the lines.
    """
    text = ", ".join(x.strip() for x in street_lines if x and x.strip())
    got: dict[str, list[str]] = {}
    for tok, label in _tokens(text) if text else []:
        got.setdefault(label, []).append(tok.strip(",;"))
    number = text_key(" ".join(got.get("AddressNumber", [])))
    street = _norm_words(" ".join(w for lbl in _STREET_LABELS for w in got.get(lbl, [])))
    if not street and got.get("USPSBoxID"):
        street = "po box " + text_key(" ".join(got["USPSBoxID"]))
    if not street and not number:
        # Not an address usaddress recognises: compare the words as they are.
        skip = {*_UNIT_LABELS, "PlaceName", "StateName", "ZipCode", "Recipient"}
        street = _norm_words(" ".join(w for lbl, ws in got.items() if lbl not in skip for w in ws))
    unit = _norm_words(" ".join(w for lbl in ("OccupancyIdentifier", "SubaddressIdentifier") for w in got.get(lbl, [])))
    parsed_city = " ".join(got.get("PlaceName", []))
    parsed_state = " ".join(got.get("StateName", []))
    parsed_zip = " ".join(got.get("ZipCode", []))
    zip_digits = re.sub(r"\D", "", postal or parsed_zip)
    return NormAddress(
        number=number,
        street=street,
        unit=unit,
        city=_norm_words(city or parsed_city),
        state=_state_code(state or parsed_state),
        zip5=zip_digits[:5] if len(zip_digits) >= 5 else "",
    )


def _state_code(state: str) -> str:
    """``TX`` / ``Tex`` / ``Texas`` -> ``TX``: a state spelled out is the same state."""
    words = text_key(state)
    return US_STATES.get(words, words.upper()[:2]) if words else ""


def normalize_known(a: Address) -> NormAddress:
    return normalize_address([a.street], a.city, a.state, a.postal_code)


def _sim(a: str, b: str) -> float:
    if a == b:
        return 1.0
    return float(fuzz.ratio(a, b, processor=utils.default_process)) / 100


def address_score(doc: NormAddress, known: NormAddress) -> float:
    """0..1: how likely the document's address is the known one. Formatting (St/Street, case,
    punctuation, ZIP+4, a suite line present on one side only) costs nothing; a different house
    number or ZIP costs a lot; a different suite costs a little (same building)."""
    parts: list[tuple[float, float]] = []
    if doc.street or doc.number:
        if doc.number and known.number:
            parts.append((0.2, 1.0 if doc.number == known.number else 0.0))
        parts.append((0.3, _sim(doc.street, known.street)))
    if doc.city:
        parts.append((0.15, _sim(doc.city, known.city)))
    if doc.state:
        parts.append((0.1, 1.0 if doc.state == known.state else 0.0))
    if doc.zip5:
        parts.append((0.25, 1.0 if doc.zip5 == known.zip5 else 0.0))
    weight = sum(w for w, _ in parts)
    if weight < 0.5:  # a name alone, or a city alone, is not an address
        return 0.0
    score = sum(w * s for w, s in parts) / weight
    if doc.unit and known.unit and doc.unit != known.unit:
        score *= 0.92
    return round(score, 4)
