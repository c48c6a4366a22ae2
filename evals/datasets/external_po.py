"""Purchase orders nobody on this team wrote, with answers nobody on this team wrote: the cases of
the ``intake-external`` eval suite.

Sources (all under ``../shared/corpora``, read in place: several are GPL data and are never copied
into this repository; the gold is derived when the suite runs):

``po-erp-styles``
    36 ERP-like PDFs, scans, mails, CSV and XLSX from an independent generator; gold from its
    ``gold.json``.
``bots-x12-demo``
    17 X12 850 files (36 transactions) from bots-edi; gold from bots' own translation of each
    transaction (``expected-xml/850_N.xml``): PO number, date, ship-to, per line the buyer /
    supplier article numbers and GTIN, quantity, unit and price.
``bots-edifactorder2xml``
    2 EDIFACT ORDERS interchanges (26 messages); gold from bots' XML of each message (BGM number,
    DTM 137, NAD DP, LIN / PIA ids, QTY 21, PRI).
``node-x12``
    ``850.edi`` with node-x12's ``850_map_result.json`` (PO number, ship-to, line quantities).
``invoice2data``
    13 real invoice PDFs: negative cases. Nothing here is a purchase order; the answer is "not an
    order" and no order may be created.
``evals/datasets/external/``
    small permissively licensed samples found in public repositories, each folder with its
    ``SOURCE.md`` (where from, licence) and a ``gold.json`` in the po-erp-styles shape.

The expected files are matched to their input transaction by values both carry (sender id, PO
number and the ordered quantities), read from the raw input with a few lines of splitting here,
never through OrderOps' parsers: a parser bug can neither hide a case nor shape its gold. Gold is
partial where the expected output is (node-x12 maps no date, bots maps prices only where the 850
has them): a field absent from the expected output is not scored.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

__all__ = [
    "CORPORA",
    "LOCAL",
    "ExternalDoc",
    "GoldLine",
    "GoldOrder",
    "GoldShipTo",
    "canonical_unit",
    "external_docs",
    "load_bots_edifact",
    "load_bots_x12",
    "load_invoices",
    "load_local",
    "load_node_x12",
    "load_po_erp_styles",
]

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"
"""``../shared/corpora`` next to the checkout (what tests call ``CORPORA``)."""
LOCAL = Path(__file__).resolve().parent / "external"
"""Small permissively licensed public samples kept in this repository (each with a SOURCE.md)."""


# --- the gold ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldShipTo:
    """Where the goods go, as far as the expected output says: a postal code, a party code, or both."""

    postal_code: str | None = None
    party_id: str | None = None
    name: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class GoldLine:
    part_ids: tuple[str, ...] = ()
    """Every code the expected output gives for the item (buyer part, vendor part, GTIN); any one read counts."""
    buyer_part: str | None = None
    vendor_part: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    unit: str | None = None
    """Canonical unit (:func:`canonical_unit`), or None where the expected output states none."""
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class GoldOrder:
    po_number: str | None
    po_date: date | None
    ship_to: GoldShipTo | None
    lines: tuple[GoldLine, ...]
    buyer_name: str | None = None
    buyer_id: str | None = None
    """The sender's interchange id (ISA06 / UNB sender) where the expected output names it."""


@dataclass(frozen=True)
class ExternalDoc:
    """One input file and what a correct reader makes of it."""

    case_id: str
    """``source/file name``: unique across sources."""
    source: str
    format: str
    """``pdf``, ``pdf-scan``, ``eml``, ``csv``, ``xlsx``, ``x12``, ``edifact``."""
    path: Path
    orders: tuple[GoldOrder, ...] = ()
    negative: bool = False
    """Not a purchase order at all (an invoice): no order may come of it."""
    note: str | None = None
    """What the document is, for a negative case (e.g. the invoice number a reader must not take as PO number)."""
    licence: str = ""

    @property
    def filename(self) -> str:
        return self.path.name

    def read(self) -> bytes:
        return self.path.read_bytes()


# --- normalisation shared by gold and scoring ------------------------------------------------------

_UNITS: dict[str, str] = {
    **dict.fromkeys(
        ("EA", "EACH", "EACHES", "PC", "PCS", "PCE", "PIECE", "PIECES", "UN", "UNIT", "UNITS", "C62", "H87"), "EA"
    ),
    **dict.fromkeys(("BX", "BOX", "BOXES"), "BX"),
    **dict.fromkeys(("CS", "CA", "CASE", "CASES", "CT", "CTN", "CARTON", "CARTONS"), "CS"),
    **dict.fromkeys(("PK", "PACK", "PACKS", "PKG", "PACKAGE"), "PK"),
    **dict.fromkeys(("RL", "RO", "ROLL", "ROLLS"), "RL"),
    **dict.fromkeys(("SP", "SPOOL", "SPOOLS"), "SP"),
    **dict.fromkeys(("FT", "FOOT", "FEET", "LF"), "FT"),
    **dict.fromkeys(("LB", "LBS", "POUND", "POUNDS"), "LB"),
    **dict.fromkeys(("DZ", "DOZ", "DOZEN"), "DZ"),
    **dict.fromkeys(("PR", "PAIR", "PAIRS"), "PR"),
}


def canonical_unit(raw: str | None) -> str | None:
    """A unit as written (``Each``, ``case of 12``, ``pk/24``, ``CA``) -> one code per unit of
    measure, so that the gold's and a reader's spelling compare; an unknown word stays as written."""
    if raw is None:
        return None
    m = re.match(r"\s*([A-Za-z]+)", str(raw))
    if not m:
        return None
    word = m.group(1).upper()
    return _UNITS.get(word, word)


def _dec(value: object) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _iso(value: object) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _ids(*values: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip() for v in values if v is not None and str(v).strip()))


# --- po-erp-styles (and local samples in its gold shape) ------------------------------------------


def _gold_from_erp(g: dict[str, object]) -> GoldOrder:
    ship = g.get("ship_to") or {}
    assert isinstance(ship, dict)
    lines = []
    for gl in g.get("lines") or []:  # type: ignore[attr-defined]
        lines.append(
            GoldLine(
                part_ids=_ids(gl.get("buyer_part_number"), gl.get("vendor_part_number")),
                buyer_part=gl.get("buyer_part_number"),
                vendor_part=gl.get("vendor_part_number"),
                description=gl.get("description"),
                quantity=_dec(gl.get("quantity")),
                unit=canonical_unit(gl.get("uom")),
                unit_price=_dec(gl.get("unit_price")),
            )
        )
    return GoldOrder(
        po_number=str(g["po_number"]) if g.get("po_number") is not None else None,
        po_date=_iso(g.get("po_date")),
        ship_to=GoldShipTo(
            postal_code=ship.get("postal_code"),
            name=ship.get("name"),
            street=ship.get("street"),
            city=ship.get("city"),
            state=ship.get("state"),
        )
        if ship
        else None,
        lines=tuple(lines),
        buyer_name=str(g["buyer_name"]) if g.get("buyer_name") else None,
        buyer_id=str(g["buyer_id"]) if g.get("buyer_id") else None,
    )


def load_po_erp_styles(root: Path | None = None, *, source: str = "po-erp-styles") -> list[ExternalDoc]:
    """Every document ``gold.json`` names under ``root/docs`` (a po-erp-styles-shaped folder)."""
    root = root or CORPORA / "po-erp-styles"
    path = root / "gold.json"
    if not path.exists():
        return []
    gold: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for name, g in sorted(gold.items()):
        doc = root / "docs" / name
        if not doc.exists():
            continue
        negative = g.get("expected") == "not_an_order"
        out.append(
            ExternalDoc(
                case_id=f"{source}/{name}", source=source, format=str(g.get("format") or doc.suffix.lstrip(".")),
                path=doc, orders=() if negative else (_gold_from_erp(g),), negative=negative,
                note=str(g["notes"]) if negative and g.get("notes") else None,
            )
        )  # fmt: skip
    return out


def load_local(root: Path = LOCAL) -> list[ExternalDoc]:
    """The samples kept under ``evals/datasets/external/<source>/`` (same layout as po-erp-styles)."""
    if not root.is_dir():
        return []
    out: list[ExternalDoc] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "gold.json").exists()):
        out += load_po_erp_styles(folder, source=folder.name)
    return out


# --- X12: bots' expected XML -----------------------------------------------------------------------


@dataclass
class _RawTx:
    """What the matcher needs from one raw transaction (no parsing beyond splitting)."""

    file: str
    index: int
    sender: str
    kind: str
    po_number: str | None = None
    quantities: list[Decimal | None] = field(default_factory=list)


def _x12_transactions(name: str, data: bytes) -> Iterator[_RawTx]:
    """Split raw X12 into transactions: separators from each ISA (element separator after ``ISA``,
    the segment terminator after ISA16), so files with several envelopes and odd separators split
    right. Only ST01, BEG03 and PO102 are read."""
    text = data.decode("latin-1").replace("\ufeff", "").replace("\xef\xbb\xbf", "")
    pos, n = 0, 0
    while (start := text.find("ISA", pos)) >= 0 and start + 4 < len(text):
        found = _interchange(text, start)
        if found is None:
            return
        segments, stop = found
        sender = segments[0][6].strip() if len(segments[0]) > 6 else ""
        for tx in _purchase_orders(name, sender, segments, n):
            yield tx
            n += 1
        pos = max(stop, start + 3)


def _interchange(text: str, start: int) -> tuple[list[list[str]], int] | None:
    """The segments (split into elements) of the interchange whose ISA is at ``start``, and where it
    ends; None when the text ends inside the ISA."""
    sep, j, seen = text[start + 3], start + 3, 0
    while seen < 16 and j < len(text):
        seen += text[j] == sep
        j += 1
    if j + 1 >= len(text):
        return None
    term = text[j + 1]
    end = text.find("IEA" + sep, j)
    stop = len(text) if end < 0 else (text.find(term, end) if text.find(term, end) >= 0 else len(text))
    chunk = text[start:stop]
    if term not in "\r\n":
        chunk = chunk.replace("\r", "").replace("\n", "")
    return [s.strip().split(sep) for s in chunk.split(term)], stop


def _purchase_orders(name: str, sender: str, segments: list[list[str]], n: int) -> Iterator[_RawTx]:
    """The 850 transactions among ``segments``, numbered on from ``n``."""
    tx: _RawTx | None = None
    for el in segments:
        if el[0] == "ST":
            tx = _RawTx(name, n, sender, el[1] if len(el) > 1 else "")
        elif tx is not None and el[0] == "BEG":
            tx.po_number = el[3] if len(el) > 3 else None
        elif tx is not None and el[0] == "PO1":
            tx.quantities.append(_dec(el[2]) if len(el) > 2 else None)
        elif tx is not None and el[0] == "SE":
            if tx.kind == "850":
                yield tx
                n += 1
            tx = None


def _x(el: ET.Element | None, tag: str) -> str | None:
    if el is None:
        return None
    v = el.findtext(tag)
    return v.strip() if v and v.strip() else None


def _bots_x12_gold(msg: ET.Element) -> GoldOrder:
    ship: GoldShipTo | None = None
    for party in msg.iter("party"):
        if _x(party, "qual") == "ST":
            if _x(party, "pcode") or _x(party, "externalID"):
                ship = GoldShipTo(
                    postal_code=_x(party, "pcode"), party_id=_x(party, "externalID"), name=_x(party, "name1"),
                    street=_x(party, "address1"), city=_x(party, "city"), state=_x(party, "state"),
                )  # fmt: skip
            break
    lines = tuple(
        GoldLine(
            part_ids=_ids(_x(ln, "byart"), _x(ln, "suart"), _x(ln, "gtin")),
            buyer_part=_x(ln, "byart"),
            vendor_part=_x(ln, "suart"),
            description=_x(ln, "desc"),
            quantity=_dec(_x(ln, "ordqua")),
            unit=canonical_unit(_x(ln, "ordunit")),
            unit_price=_dec(_x(ln, "price")),
        )
        for ln in msg.iter("line")
    )
    return GoldOrder(po_number=_x(msg, "docnum"), po_date=_iso(_x(msg, "docdtm")), ship_to=ship, lines=lines,
                     buyer_id=_x(msg, "sender"))  # fmt: skip


def _match(
    expected: Iterable[tuple[tuple[object, ...], GoldOrder]], raw: Sequence[tuple[tuple[object, ...], _RawTx]]
) -> dict[str, list[tuple[int, GoldOrder]]]:
    """Each expected message to the first unused raw transaction with the same key; per file, in order."""
    used: set[tuple[str, int]] = set()
    by_file: dict[str, list[tuple[int, GoldOrder]]] = {}
    for key, gold in expected:
        for rkey, tx in raw:
            if rkey == key and (tx.file, tx.index) not in used:
                used.add((tx.file, tx.index))
                by_file.setdefault(tx.file, []).append((tx.index, gold))
                break
    return by_file


def load_bots_x12(root: Path | None = None) -> list[ExternalDoc]:
    """bots-edi's X12 850 demo files; each transaction's gold from bots' XML of it."""
    root = root or CORPORA / "x12-850" / "bots-x12-demo"
    if not (root / "expected-xml").is_dir():
        return []
    raw = [t for f in sorted((root / "in").iterdir()) for t in _x12_transactions(f.name, f.read_bytes())]
    expected = []
    for xml in sorted((root / "expected-xml").glob("850_*.xml"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
        msg = ET.parse(xml).getroot()
        gold = _bots_x12_gold(msg)
        expected.append(((gold.buyer_id, gold.po_number, tuple(ln.quantity for ln in gold.lines)), gold))
    keyed = [((t.sender, t.po_number, tuple(t.quantities)), t) for t in raw]
    by_file = _match(expected, keyed)
    return [
        ExternalDoc(case_id=f"bots-x12-demo/{name}", source="bots-x12-demo", format="x12", path=root / "in" / name,
                    orders=tuple(g for _, g in sorted(golds, key=lambda t: t[0])), licence="GPL-2.0 (read in place)")
        for name, golds in sorted(by_file.items())
    ]  # fmt: skip


# --- EDIFACT: bots' expected XML -------------------------------------------------------------------


def _edifact_segments(data: bytes) -> Iterator[list[list[str]]]:
    """Segments as elements of components, honouring UNA and the release character."""
    text = data.decode("latin-1").replace("\ufeff", "")
    comp, elem, rel, term = ":", "+", "?", "'"
    if text.startswith("UNA"):
        comp, elem, rel, term = text[3], text[4], text[6], text[8]
        text = text[9:]
    seg: list[list[str]] = [[""]]
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == rel and i + 1 < len(text):
            seg[-1][-1] += text[i + 1]
            i += 2
            continue
        if ch == term:
            if seg != [[""]]:
                seg[0][0] = seg[0][0].strip()
                yield seg
            seg = [[""]]
        elif ch == elem:
            seg.append([""])
        elif ch == comp:
            seg[-1].append("")
        elif ch not in "\r\n":
            seg[-1][-1] += ch
        i += 1


def _edifact_messages(name: str, data: bytes) -> Iterator[_RawTx]:
    tx: _RawTx | None = None
    sender, n = "", 0
    for seg in _edifact_segments(data):
        tag = seg[0][0]
        if tag == "UNB" and len(seg) > 2:
            sender = seg[2][0]
        elif tag == "UNH":
            tx = _RawTx(name, n, sender, seg[2][0] if len(seg) > 2 else "", po_number=seg[1][0] if len(seg) > 1 else "")
        elif tx is not None and tag == "QTY" and len(seg) > 1 and seg[1][0] == "21":
            tx.quantities.append(_dec(seg[1][1]) if len(seg[1]) > 1 else None)
        elif tx is not None and tag == "UNT":
            if tx.kind == "ORDERS":
                yield tx
                n += 1
            tx = None


def _edi_date(value: str | None, fmt: str | None) -> date | None:
    if not value:
        return None
    if fmt in ("102", "203", "204") and len(value) >= 8:
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        except ValueError:
            return None
    return None


def _bots_edifact_gold(unh: ET.Element) -> tuple[str | None, GoldOrder]:
    po_date = None
    for dtm in unh.findall("DTM"):
        if _x(dtm, "_C507.2005") == "137":
            po_date = _edi_date(_x(dtm, "_C507.2380"), _x(dtm, "_C507.2379"))
    ship = None
    buyer = None
    for nad in unh.findall("NAD"):
        role = _x(nad, "_3035")
        if role == "BY":
            buyer = _x(nad, "_C082.3039")
        if role in ("DP", "ST") and ship is None:
            ship = GoldShipTo(postal_code=_x(nad, "_3251"), party_id=_x(nad, "_C082.3039"), city=_x(nad, "_3164"))
    lines = []
    for lin in unh.findall("LIN"):
        qty = next((q for q in lin.findall("QTY") if _x(q, "_C186.6063") == "21"), None)
        pri = lin.find("PRI")
        pia = [_x(p, "_C212_1.7140") for p in lin.findall("PIA")]
        lines.append(
            GoldLine(
                part_ids=_ids(_x(lin, "_C212.7140"), *pia),
                quantity=_dec(_x(qty, "_C186.6060")),
                unit=canonical_unit(_x(qty, "_C186.6411")),
                unit_price=_dec(_x(pri, "_C509.5118")),
            )
        )
    bgm = unh.find("BGM")
    return _x(unh, "_0062"), GoldOrder(po_number=_x(bgm, "_1004"), po_date=po_date, ship_to=ship,
                                       lines=tuple(lines), buyer_id=buyer)  # fmt: skip


def load_bots_edifact(root: Path | None = None) -> list[ExternalDoc]:
    """bots-edi's EDIFACT ORDERS demo interchanges; each message's gold from bots' XML of it."""
    root = root or CORPORA / "edifact-orders" / "bots-edifactorder2xml"
    if not (root / "expected-xml").is_dir():
        return []
    raw = [m for f in sorted((root / "in").iterdir()) for m in _edifact_messages(f.name, f.read_bytes())]
    expected = []
    for xml in sorted((root / "expected-xml").glob("*.xml"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
        ref, gold = _bots_edifact_gold(ET.parse(xml).getroot())
        expected.append(((ref, tuple(ln.quantity for ln in gold.lines)), gold))
    keyed = [((t.po_number, tuple(t.quantities)), t) for t in raw]
    by_file = _match(expected, keyed)
    return [
        ExternalDoc(case_id=f"bots-edifactorder2xml/{name}", source="bots-edifactorder2xml", format="edifact",
                    path=root / "in" / name, orders=tuple(g for _, g in sorted(golds, key=lambda t: t[0])),
                    licence="GPL-2.0 (read in place)")
        for name, golds in sorted(by_file.items())
    ]  # fmt: skip


# --- node-x12 --------------------------------------------------------------------------------------


def load_node_x12(root: Path | None = None) -> list[ExternalDoc]:
    """node-x12's ``850.edi`` with its test's expected mapping (an empty value there is not gold)."""
    root = root or CORPORA / "x12-850" / "node-x12"
    result = root / "850_map_result.json"
    if not result.exists() or not (root / "850.edi").exists():
        return []
    m = json.loads(result.read_text(encoding="utf-8"))
    st = m.get("ShipTo") or {}
    gold = GoldOrder(
        po_number=m.get("OrderNumber") or None,
        po_date=_iso(m.get("Date")),
        ship_to=GoldShipTo(postal_code=st.get("Zip") or None, party_id=st.get("Destination") or None,
                           name=st.get("Name"), street=st.get("Address"), city=st.get("City"), state=st.get("State")),
        lines=tuple(GoldLine(quantity=_dec(ln.get("Quantity"))) for ln in m.get("OrderLines") or []),
    )  # fmt: skip
    return [ExternalDoc(case_id="node-x12/850.edi", source="node-x12", format="x12", path=root / "850.edi",
                        orders=(gold,), licence="MIT")]  # fmt: skip


# --- invoices: negative cases ----------------------------------------------------------------------


def load_invoices(root: Path | None = None) -> list[ExternalDoc]:
    """invoice2data's real invoice PDFs: none is a purchase order."""
    root = root or CORPORA / "pdf" / "invoice2data"
    if not root.is_dir():
        return []
    out = []
    for pdf in sorted(root.glob("*.pdf")):
        note = None
        meta = pdf.with_suffix(".json")
        if meta.exists():
            try:
                first = json.loads(meta.read_text(encoding="utf-8"))
                first = first[0] if isinstance(first, list) and first else first
                if isinstance(first, dict) and first.get("invoice_number"):
                    note = f"invoice {first['invoice_number']} from {first.get('issuer', '?')}"
            except ValueError:
                note = None
        out.append(ExternalDoc(case_id=f"invoice2data/{pdf.name}", source="invoice2data", format="pdf", path=pdf,
                               negative=True, note=note, licence="MIT"))  # fmt: skip
    return out


# --- all of it -------------------------------------------------------------------------------------


def external_docs(corpora: Path | None = None, *, local: Path | None = LOCAL) -> list[ExternalDoc]:
    """Every external case, in a stable order (empty where ``corpora`` is missing)."""
    base = corpora or CORPORA
    docs = [
        *load_po_erp_styles(base / "po-erp-styles"),
        *load_bots_x12(base / "x12-850" / "bots-x12-demo"),
        *load_bots_edifact(base / "edifact-orders" / "bots-edifactorder2xml"),
        *load_node_x12(base / "x12-850" / "node-x12"),
        *load_invoices(base / "pdf" / "invoice2data"),
        *(load_local(local) if local is not None else []),
    ]
    return docs
