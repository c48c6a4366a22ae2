"""Deterministic generator of a whole fulfillment network (the digital twin the agents act on).

Everything comes from one ``random.Random(spec.seed)`` consumed in a fixed order, and every date
hangs off ``spec.business_date``: the same spec gives the same rows, byte for byte, on SQLite and
PostgreSQL, today and next year. Geography is real (:mod:`core.geo`), so zones, rates and transit
times behave like real ones.

Speed matters (the benchmark seeds a million orders on a 2-core machine), so rows are built as
plain tuples in bounded chunks and written with one ``executemany`` per chunk on SQLite and
``COPY`` on PostgreSQL, bypassing the ORM. The whole generation is one transaction: it either
leaves a complete network or nothing.

The generator must never write into a database that already holds a network (it refuses with
:class:`~core.errors.Conflict`), and must never draw from the global ``random`` or the wall clock.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Connection, Table, func, select, update

from core.db.engine import Database
from core.db.tables import (
    AddressRow,
    Base,
    CarrierRow,
    CarrierServiceRow,
    CustomerRow,
    InventoryRow,
    MetaRow,
    NodeRow,
    OrderLineRow,
    OrderRow,
    PriceListItemRow,
    PriceListRow,
    ProductRow,
    ProductUomRow,
    RateCardRow,
    ShipmentRow,
    TrackingEventRow,
)
from core.domain import (
    RESERVING_STATUSES,
    CarrierStatus,
    CustomerTier,
    NodeStatus,
    NodeType,
    OrderStatus,
    ServiceLevel,
    ShipmentStatus,
)
from core.errors import Conflict, ValidationFailed
from core.geo import CITIES, NODE_SITES, City, city, zone_between

GENERATOR_VERSION = "netgen/1"

Progress = Callable[[str, int, int], None]
"""``progress(step_name, done, total)``: lets a CLI draw progress bars; never affects the data."""


# Network tables, parents first. Reset deletes them in reverse; other tables are not ours to touch.
def _table(row: type[Base]) -> Table:
    return cast(Table, row.__table__)


NETWORK_TABLES: tuple[Table, ...] = tuple(
    _table(t)
    for t in (
        MetaRow,
        PriceListRow,
        ProductRow,
        ProductUomRow,
        PriceListItemRow,
        CustomerRow,
        AddressRow,
        NodeRow,
        InventoryRow,
        CarrierRow,
        CarrierServiceRow,
        RateCardRow,
        OrderRow,
        OrderLineRow,
        ShipmentRow,
        TrackingEventRow,
    )
)

MAX_ORDERS = 9_999_999  # order ids keep 7 digits, so sorting by id is sorting by age
CHUNK_ORDERS = 20_000
SQLITE_BULK_CACHE_KIB = 512 * 1024


@dataclass(frozen=True)
class NetworkSpec:
    """What to generate. The same spec always yields the same network."""

    seed: int = 42
    nodes: int = 8
    skus: int = 500
    customers: int = 20
    orders: int = 5_000
    business_date: date = date(2026, 11, 23)

    def validate(self) -> None:
        """Raise :class:`ValidationFailed` for a spec the generator cannot honour."""
        problems = []
        if not 1 <= self.nodes <= len(NODE_SITES):
            problems.append(f"nodes must be 1..{len(NODE_SITES)} (one per known site), got {self.nodes}")
        if self.skus < 1:
            problems.append(f"skus must be >= 1, got {self.skus}")
        if self.customers < 1:
            problems.append(f"customers must be >= 1, got {self.customers}")
        if not 0 <= self.orders <= MAX_ORDERS:
            problems.append(f"orders must be 0..{MAX_ORDERS}, got {self.orders}")
        if problems:
            raise ValidationFailed("invalid network spec: " + "; ".join(problems), problems=problems)

    def to_json(self) -> str:
        d = asdict(self)
        d["business_date"] = self.business_date.isoformat()
        return json.dumps(d, sort_keys=True)


class NetworkSummary(BaseModel):
    """What a generation wrote, and how long it took."""

    seed: int
    business_date: date
    nodes: int
    skus: int
    customers: int
    addresses: int
    price_lists: int
    price_list_items: int
    carriers: int
    carrier_services: int
    inventory_rows: int
    orders: int
    order_lines: int
    shipments: int
    tracking_events: int
    rows: int
    """All rows written, every table together."""
    elapsed_s: float


# --- public API ---------------------------------------------------------------------------------


def network_exists(db: Database) -> bool:
    """Whether the database already holds a (possibly partial) network."""
    with db.engine.connect() as conn:
        for table in (_table(MetaRow), _table(NodeRow), _table(OrderRow)):
            if conn.execute(select(func.count()).select_from(table)).scalar_one():
                return True
    return False


def generate_network(db: Database, spec: NetworkSpec, *, progress: Progress | None = None) -> NetworkSummary:
    """Generate the network ``spec`` describes into an empty, migrated database.

    Raises :class:`ValidationFailed` for a bad spec and :class:`Conflict` if a network is already
    there (call :func:`reset_network` first); either way nothing is written.
    """
    spec.validate()
    if network_exists(db):
        raise Conflict(f"database {db.url} already holds a network; reset it before generating another", url=db.url)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        if db.is_sqlite:
            # A big page cache while bulk-loading: the secondary indexes of orders are written in
            # random key order, and the default 2 MB cache makes that disk-bound past ~100k orders.
            old_cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
        try:
            counts = _Generator(conn, spec, progress or _no_progress, postgres=db.is_postgres).run()
        finally:
            if db.is_sqlite:
                conn.exec_driver_sql(f"PRAGMA cache_size={int(old_cache)}")
    return NetworkSummary(
        seed=spec.seed,
        business_date=spec.business_date,
        rows=sum(counts.values()),
        elapsed_s=round(time.perf_counter() - started, 3),
        **{k: v for k, v in counts.items() if k not in ("meta", "product_uoms", "rate_cards")},
    )


def reset_network(db: Database) -> None:
    """Delete every network row (children first), leaving an empty schema to generate into."""
    with db.engine.begin() as conn:
        for table in reversed(NETWORK_TABLES):
            conn.execute(table.delete())


# --- reference data -----------------------------------------------------------------------------

_BRANDS = (
    "Acme", "Northstar", "Summit", "Keystone", "Bluebird", "Ironwood", "Crestline", "Harbor",
    "Pinnacle", "Evergreen", "Trailhead", "Copperleaf",
)  # fmt: skip
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # category: (nouns, attributes, variants)
    "office": (
        ("Copy Paper", "Ballpoint Pens", "Sticky Notes", "File Folders", "Binder Clips", "Stapler",
         "Toner Cartridge", "Desk Organizer", "Legal Pads", "Envelopes", "Highlighters", "Ring Binders"),
        ("Recycled", "Premium", "Heavy-Duty", "Everyday", "Assorted Color", "Black", "Blue"),
        ("Letter Size", "Pack of 12", "Box of 100", "Ream of 500", "Legal Size", "Pack of 24"),
    ),
    "janitorial": (
        ("Trash Bags", "Paper Towels", "Toilet Tissue", "Hand Soap", "Floor Cleaner", "Microfiber Cloths",
         "Mop Head", "Disinfectant Wipes", "Glass Cleaner", "Hand Sanitizer"),
        ("Industrial", "Unscented", "Lemon", "Ultra-Strength", "Eco", "Commercial"),
        ("33 Gallon", "1 Gallon", "Case of 6", "Roll of 800 ft", "Pack of 12", "Canister of 75"),
    ),
    "packaging": (
        ("Shipping Boxes", "Packing Tape", "Bubble Wrap", "Stretch Film", "Poly Mailers", "Void Fill",
         "Shipping Labels", "Corner Protectors", "Kraft Paper"),
        ("Double-Wall", "Clear", "Kraft", "Heavy-Duty", "Self-Seal", "Printed"),
        ("12x12x12 in", "18x18x24 in", "2 in x 110 yd", "Roll of 500", "Bundle of 25", "4x6 in"),
    ),
    "safety": (
        ("Nitrile Gloves", "Safety Glasses", "Hi-Vis Vest", "Ear Plugs", "Hard Hat", "First Aid Kit",
         "N95 Respirators", "Cut-Resistant Gloves", "Safety Cones"),
        ("Powder-Free", "Anti-Fog", "ANSI Class 2", "Disposable", "Reusable", "OSHA-Compliant"),
        ("Large", "Medium", "Small", "X-Large", "Box of 100", "Pair", "50-Person"),
    ),
    "food service": (
        ("Paper Cups", "Plastic Cutlery", "Dinner Napkins", "Takeout Containers", "Coffee Filters",
         "Stir Sticks", "Deli Wrap", "Portion Cups"),
        ("Compostable", "Heavy-Weight", "Insulated", "Clear", "White", "Kraft"),
        ("12 oz", "16 oz", "Case of 1000", "Pack of 250", "8 in", "2 oz"),
    ),
    "breakroom": (
        ("Ground Coffee", "Tea Bags", "Bottled Water", "Snack Bars", "Sugar Packets", "Hot Cocoa",
         "Paper Plates", "K-Cup Pods"),
        ("Medium Roast", "Dark Roast", "Decaf", "Organic", "Assorted", "Original"),
        ("2 lb Bag", "Box of 100", "Case of 24", "Pack of 48", "12 oz", "Box of 72"),
    ),
    "electrical": (
        ("LED Bulbs", "Extension Cord", "Surge Protector", "Zip Ties", "Electrical Tape", "AA Batteries",
         "Power Strip", "Work Light"),
        ("Daylight", "Soft White", "Outdoor", "12-Gauge", "6-Outlet", "Heavy-Duty"),
        ("Pack of 4", "25 ft", "50 ft", "Pack of 100", "60W Equivalent", "Pack of 24"),
    ),
    "tools": (
        ("Utility Knife", "Tape Measure", "Screwdriver Set", "Box Cutter Blades", "Hand Truck",
         "Pallet Jack", "Step Ladder", "Socket Set"),
        ("Professional", "Compact", "Folding", "Magnetic", "Steel", "Ergonomic"),
        ("25 ft", "Pack of 10", "6-Piece", "4 ft", "1000 lb Capacity", "40-Piece"),
    ),
}  # fmt: skip
# Hazardous and cold-chain goods get their own vocabulary so names and descriptions stay coherent.
_HAZMAT: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("Aerosol Degreaser", "Isopropyl Alcohol 99%", "Lithium Battery Pack", "Bleach Concentrate", "Spray Paint",
     "Butane Refill", "Drain Opener", "Oven Cleaner Spray"),
    ("Industrial", "Commercial", "Professional", "Heavy-Duty"),
    ("12 oz Aerosol", "1 Gallon", "Case of 12", "32 oz", "Pack of 6"),
)  # fmt: skip
_COLD: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = (
    ("Coffee Creamer", "Gel Ice Packs", "Yogurt Cups", "Breakfast Sandwiches", "Reagent Kit", "Probiotic Capsules",
     "Milk Cartons", "Vaccine Carrier Packs"),
    ("Refrigerated", "Frozen", "Chilled", "Temperature-Controlled"),
    ("Case of 12", "32 oz", "Pack of 24", "Half Gallon", "Kit of 10"),
)  # fmt: skip

_CUSTOMER_PREFIX = (
    "Northwind", "Bluewater", "Granite", "Silverline", "Redwood", "Lakeside", "Sunbelt", "Frontier",
    "Heartland", "Riverbend", "Pacific", "Atlantic", "Prairie", "Cedar", "Magnolia", "Liberty",
    "Pioneer", "Coastal", "Tri-County", "Midstate",
)  # fmt: skip
_CUSTOMER_TRADE = ("Medical", "Foods", "Hospitality", "Facilities", "Logistics", "Office", "Health",
                   "Industrial", "Schools", "Retail", "Dental", "Hotels")  # fmt: skip
_CUSTOMER_SUFFIX = ("Supply Co.", "Group", "Inc.", "Partners", "Distributors", "LLC", "Services")
_STREETS = ("Main", "Oak", "Commerce", "Industrial", "Maple", "Harbor", "Park", "Lakeview", "Washington",
            "Distribution", "Airport", "Riverside", "Elm", "Enterprise", "Market")  # fmt: skip
_STREET_KINDS = ("St", "Ave", "Blvd", "Dr", "Pkwy", "Way", "Rd", "Ct")
_ADDRESS_LABELS = ("Headquarters", "Main Warehouse", "Receiving Dock", "East Campus", "West Branch", "Store")
_EMAIL_USERS = ("purchasing", "orders", "procurement", "buyer", "supply")
# A representative 3-digit ZIP prefix per state, so postal codes look like they belong.
_ZIP3 = {
    "NY": "100", "MA": "021", "PA": "191", "NJ": "071", "CT": "061", "RI": "029", "ME": "041", "MD": "212",
    "DC": "200", "VA": "232", "NC": "282", "GA": "303", "FL": "322", "TN": "372", "KY": "402", "AL": "352",
    "SC": "294", "LA": "701", "TX": "770", "OK": "731", "AR": "722", "IL": "606", "MI": "482", "OH": "432",
    "IN": "462", "WI": "532", "MN": "554", "MO": "631", "NE": "681", "IA": "503", "CO": "802", "UT": "841",
    "AZ": "850", "NM": "871", "NV": "891", "ID": "837", "CA": "900", "OR": "972", "WA": "981",
}  # fmt: skip

# Tier discounts off list price, in percent.
_TIER_DISCOUNT = {
    CustomerTier.PLATINUM: 18,
    CustomerTier.GOLD: 12,
    CustomerTier.SILVER: 6,
    CustomerTier.STANDARD: 0,
}
_TIER_WEIGHTS = (10, 20, 30, 40)  # same order as CustomerTier

# Carriers: (id, name, levels offered, price factor, base on-time rate).
_CARRIERS = (
    ("RDG", "Ridgeline Parcel", (ServiceLevel.GROUND, ServiceLevel.TWO_DAY, ServiceLevel.OVERNIGHT), 1.00, 0.96),
    ("BJX", "BlueJay Express", (ServiceLevel.GROUND, ServiceLevel.TWO_DAY, ServiceLevel.OVERNIGHT), 1.08, 0.97),
    ("PRF", "Prairie Freightways", (ServiceLevel.GROUND, ServiceLevel.TWO_DAY, ServiceLevel.OVERNIGHT), 0.93, 0.93),
    ("CCR", "Coastal Courier", (ServiceLevel.GROUND, ServiceLevel.TWO_DAY), 0.88, 0.91),
)
_LEVEL_CODE = {ServiceLevel.GROUND: "GROUND", ServiceLevel.TWO_DAY: "2DAY", ServiceLevel.OVERNIGHT: "OVERNIGHT"}
_LEVEL_NAME = {ServiceLevel.GROUND: "Ground", ServiceLevel.TWO_DAY: "2Day", ServiceLevel.OVERNIGHT: "Overnight Air"}
# Typical transit days by zone 2..8: what the customer is promised, and what carriers vary around.
_TRANSIT = {
    ServiceLevel.GROUND: (1, 2, 3, 3, 4, 5, 5),
    ServiceLevel.TWO_DAY: (1, 2, 2, 2, 2, 2, 2),
    ServiceLevel.OVERNIGHT: (1, 1, 1, 1, 1, 1, 1),
}
# Rate cards in cents: (base at zone 2, base step per zone, per kg at zone 2, per kg step per zone).
_RATES = {
    ServiceLevel.GROUND: (850, 55, 45, 12),
    ServiceLevel.TWO_DAY: (1600, 160, 140, 30),
    ServiceLevel.OVERNIGHT: (3200, 330, 320, 55),
}

_STATUSES = (
    OrderStatus.CREATED,
    OrderStatus.ALLOCATED,
    OrderStatus.RELEASED,
    OrderStatus.PICKED,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.HELD,
    OrderStatus.CANCELLED,
)
_STATUS_CUM = tuple(itertools.accumulate((22, 20, 14, 7, 11, 18, 4, 4)))
# How many days ago an order in each status was created (inclusive range).
_AGE_DAYS = {
    OrderStatus.CREATED: (0, 1),
    OrderStatus.ALLOCATED: (0, 2),
    OrderStatus.RELEASED: (0, 3),
    OrderStatus.PICKED: (0, 2),
    OrderStatus.HELD: (0, 5),
    OrderStatus.CANCELLED: (0, 10),
    OrderStatus.SHIPPED: (1, 6),
    OrderStatus.DELIVERED: (0, 14),  # added on top of the time the delivery took
}
_LEVELS = (ServiceLevel.GROUND, ServiceLevel.TWO_DAY, ServiceLevel.OVERNIGHT)
_LEVEL_CUM = (70, 90, 100)
_LINES_CUM = (45, 75, 90, 100)  # 1..4 lines
_HELD_FROM = (OrderStatus.CREATED, OrderStatus.ALLOCATED, OrderStatus.RELEASED)
"""The status a held order was held from (drawn uniformly)."""


def _no_progress(_step: str, _done: int, _total: int) -> None:
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").upper()


def _gln(rng: random.Random) -> str:
    """A 13-digit GS1 Global Location Number with a valid check digit."""
    body = f"{rng.randrange(10**11, 10**12):012d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@dataclass
class _Node:
    id: str
    type: NodeType
    site: City
    lat: float
    lon: float
    capacity_floor: int
    days_of_work: float
    stock: set[int]


@dataclass
class _Address:
    id: str
    customer: int
    site: City
    lat: float
    lon: float
    nodes_by_distance: tuple[int, ...]
    zones: tuple[int, ...]


@dataclass
class _Service:
    id: str
    carrier: str
    level: ServiceLevel
    transit: tuple[int, ...]
    late_rate: float


class _Generator:
    """One generation: owns the rng and the connection of the single transaction."""

    def __init__(self, conn: Connection, spec: NetworkSpec, progress: Progress, *, postgres: bool) -> None:
        self.conn = conn
        self.spec = spec
        self.progress = progress
        self.postgres = postgres
        self.rng = random.Random(spec.seed)
        self.counts: dict[str, int] = {}
        bd = spec.business_date
        self.bd = bd
        # Values whose storage differs by backend: PostgreSQL COPY takes native values and
        # numeric text; SQLite gets what SQLAlchemy's SQLite types would have stored.
        self.money: Callable[[int], Any] = _cents if postgres else (lambda c: c / 100)
        self.day: Callable[[date], Any] = (lambda d: d) if postgres else (lambda d: d.isoformat())
        self.stamp: Callable[[datetime], Any] = (
            (lambda t: t) if postgres else (lambda t: t.strftime("%Y-%m-%d %H:%M:%S.000000"))
        )
        self.nodes: list[_Node] = []
        self.addresses: list[_Address] = []
        self.customer_addresses: list[list[int]] = []
        self.customer_prices: list[list[int]] = []  # customer -> price in cents per sku index
        self.customer_cum: list[float] = []
        self.customer_ids: list[str] = []
        self.customer_edi: list[bool] = []
        self.sku_ids: list[str] = []
        self.sku_weight: list[float] = []
        self.sku_case: list[int] = []
        self.sku_cum: list[float] = []
        self.services_by_level: dict[ServiceLevel, list[_Service]] = {}
        self.reserved: list[list[int]] = []

    # --- writing ---

    def write(self, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]], key: str) -> int:
        """Bulk-insert ``rows`` (tuples in ``columns`` order); COPY on PostgreSQL."""
        rows = list(rows)
        if not rows:
            self.counts[key] = self.counts.get(key, 0)
            return 0
        if self.postgres:
            cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            self.conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", rows)
        self.counts[key] = self.counts.get(key, 0) + len(rows)
        return len(rows)

    # --- steps ---

    def run(self) -> dict[str, int]:
        self.meta()
        self.gen_nodes()
        self.gen_catalogue()
        self.gen_customers()
        self.gen_carriers()
        self.gen_orders()
        self.gen_inventory()
        self.finish_nodes()
        return self.counts

    def meta(self) -> None:
        s = self.spec
        rows = [
            ("generator", GENERATOR_VERSION),
            ("seed", str(s.seed)),
            ("business_date", s.business_date.isoformat()),
            ("spec", s.to_json()),
        ]
        self.write(_table(MetaRow), ("key", "value"), rows, "meta")

    def gen_nodes(self) -> None:
        rng, n = self.rng, self.spec.nodes
        if n <= 2:
            types = [NodeType.DC] * n
        else:
            n_dc = min(6, n - 2) if n < 8 else 6
            types = [NodeType.DC] * n_dc + [NodeType.STORE] * (n - 1 - n_dc) + [NodeType.DROPSHIP]
        rows = []
        for i, kind in enumerate(types):
            site = city(*NODE_SITES[i])
            prefix, label = {
                NodeType.DC: ("DC", "Distribution Center"),
                NodeType.STORE: ("STORE", "Store (ship-from-store)"),
                NodeType.DROPSHIP: ("DS", "Drop-Ship Supplier"),
            }[kind]
            node_id = f"{prefix}-{_slug(site.name)}"
            if kind is NodeType.DC:
                floor, days, cutoff, pick = 1500 + 100 * rng.randrange(0, 30), rng.uniform(0.5, 1.2), 14, 180
            elif kind is NodeType.STORE:
                floor, days, cutoff, pick = 150 + 10 * rng.randrange(0, 30), rng.uniform(0.8, 1.5), 12, 420
            else:
                floor, days, cutoff, pick = 400 + 20 * rng.randrange(0, 30), rng.uniform(1.0, 2.0), 11, 260
            cutoff += rng.randrange(0, 4)
            pick += rng.randrange(0, 120)
            lat, lon = round(site.lat + rng.uniform(-0.08, 0.08), 4), round(site.lon + rng.uniform(-0.08, 0.08), 4)
            self.nodes.append(_Node(node_id, kind, site, lat, lon, floor, days, set()))
            rows.append(
                (node_id, f"{site.name} {label}", kind.value, site.name, site.state, lat, lon, floor, 0, cutoff,
                 NodeStatus.OPEN.value, self.money(pick))
            )  # fmt: skip
        self.write(
            _table(NodeRow),
            ("id", "name", "type", "city", "state", "lat", "lon", "daily_capacity", "backlog", "cutoff_hour",
             "status", "pick_pack_cost"),
            rows,
            "nodes",
        )  # fmt: skip
        self.progress("nodes", n, n)

    def gen_catalogue(self) -> None:
        rng, n = self.rng, self.spec.skus
        cats = sorted(_CATEGORIES)
        products, uoms, list_cents, flags = [], [], [], []
        for i in range(n):
            sku = f"SKU-{i + 1:05d}"
            cat = rng.choice(cats)
            roll = rng.random()
            hazmat, cold = roll < 0.03, 0.03 <= roll < 0.08
            if hazmat:
                cat = "hazardous"
            elif cold:
                cat = "cold chain"
            nouns, attrs, variants = _HAZMAT if hazmat else _COLD if cold else _CATEGORIES[cat]
            brand, attr, noun, variant = rng.choice(_BRANDS), rng.choice(attrs), rng.choice(nouns), rng.choice(variants)
            name = f"{brand} {attr} {noun}, {variant}"
            case = rng.choice((6, 12, 24))
            weight = round(rng.lognormvariate(0.0, 0.9), 3)
            dims = sorted((round(rng.uniform(5, 60), 1) for _ in range(3)), reverse=True)
            cents = int(rng.lognormvariate(3.0, 1.0) * 100) + 99
            notes = []
            if hazmat:
                notes.append("Hazardous material: ground shipping only, UN-labelled packaging.")
            if cold:
                notes.append("Cold chain: keep at 2-8 °C; ships in insulated packaging.")
            desc = (
                f"{attr} {noun.lower()} from {brand} for {cat} supply. {variant}. "
                f"Sold each; case of {case}. " + " ".join(notes)
            ).strip()
            products.append((sku, name, desc, weight, dims[0], dims[1], dims[2], hazmat, cold, "EA", self.money(cents)))
            uoms.append((sku, "EA", 1))
            uoms.append((sku, "CS", case))
            if rng.random() < 0.2:
                uoms.append((sku, "PL", case * rng.choice((20, 40, 48))))
            self.sku_ids.append(sku)
            self.sku_weight.append(weight)
            self.sku_case.append(case)
            list_cents.append(cents)
            flags.append((hazmat, cold))
        # Popularity: Zipf-like over a random ranking, so some SKUs are hot and most are long tail.
        ranks = list(range(n))
        rng.shuffle(ranks)
        self.sku_cum = list(itertools.accumulate(1.0 / (r + 1) ** 0.9 for r in ranks))
        self.list_cents = list_cents
        self.sku_rank = ranks
        self.sku_flags = flags
        self.write(
            _table(ProductRow),
            ("sku", "name", "description", "weight_kg", "length_cm", "width_cm", "height_cm", "hazmat",
             "cold_chain", "base_uom", "list_price"),
            products,
            "skus",
        )  # fmt: skip
        self.write(_table(ProductUomRow), ("sku", "uom", "qty_in_base"), uoms, "product_uoms")
        self.progress("catalogue", n, n)

    def gen_customers(self) -> None:
        rng, n = self.rng, self.spec.customers
        tiers = list(CustomerTier)
        names = [f"{a} {b} {c}" for a in _CUSTOMER_PREFIX for b in _CUSTOMER_TRADE for c in _CUSTOMER_SUFFIX]
        rng.shuffle(names)
        price_lists = [(f"PL-{t.value.upper()}", f"{t.value.title()} tier prices", "USD") for t in tiers]
        tier_prices = {t: [lc * (100 - _TIER_DISCOUNT[t]) // 100 for lc in self.list_cents] for t in tiers}
        items: list[tuple[Any, ...]] = []
        for t in tiers:
            pl = f"PL-{t.value.upper()}"
            items.extend((pl, sku, self.money(c)) for sku, c in zip(self.sku_ids, tier_prices[t], strict=True))
        customers, addresses = [], []
        domains: set[str] = set()
        edi_ids: set[str] = set()
        weights: list[float] = []
        node_pos = [(nd.lat, nd.lon) for nd in self.nodes]
        for i in range(n):
            cid = f"CUST-{i + 1:04d}"
            name = names[i % len(names)] + (f" #{i // len(names) + 1}" if i >= len(names) else "")
            tier = rng.choices(tiers, weights=_TIER_WEIGHTS)[0]
            base = re.sub(r"[^a-z0-9]", "", "".join(name.lower().split()[:2]))
            domain, k = f"{base}.com", 2
            while domain in domains:
                domain, k = f"{base}{k}.com", k + 1
            domains.add(domain)
            email = f"{rng.choice(_EMAIL_USERS)}@{domain}"
            account = f"AC-{100000 + 10 * i + rng.randrange(10)}"
            edi = None
            if rng.random() < 0.6:
                edi = f"{base.upper()[:9]}{rng.randrange(1000, 10000)}"
                while edi in edi_ids:
                    edi = f"{base.upper()[:9]}{rng.randrange(1000, 10000)}"
                edi_ids.add(edi)
            gln = _gln(rng) if rng.random() < 0.7 else None
            prices = tier_prices[tier]
            price_list = f"PL-{tier.value.upper()}"
            if rng.random() < 0.3:  # negotiated contract: tier prices with deeper cuts on some SKUs
                price_list = f"PL-{cid}"
                price_lists.append((price_list, f"{name} contract", "USD"))
                prices = [p * (100 - rng.choice((3, 5, 8, 10))) // 100 if rng.random() < 0.2 else p for p in prices]
                items.extend((price_list, sku, self.money(c)) for sku, c in zip(self.sku_ids, prices, strict=True))
            customers.append((cid, name, account, tier.value, email, domain, edi, gln, price_list))
            self.customer_ids.append(cid)
            self.customer_edi.append(edi is not None)
            self.customer_prices.append(prices)
            weights.append(rng.paretovariate(1.2))
            mine = []
            for j in range(rng.choice((1, 1, 2, 2, 3))):
                site = rng.choice(CITIES)
                aid = f"ADDR-{len(self.addresses) + 1:06d}"
                lat, lon = round(site.lat + rng.uniform(-0.05, 0.05), 5), round(site.lon + rng.uniform(-0.05, 0.05), 5)
                label = _ADDRESS_LABELS[0] if j == 0 else rng.choice(_ADDRESS_LABELS[1:])
                street = f"{rng.randrange(100, 10000)} {rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"
                postal = f"{_ZIP3.get(site.state, '100')}{rng.randrange(0, 100):02d}"
                addresses.append((aid, cid, label, name, street, site.name, site.state, postal, "US", lat, lon))
                order = sorted(range(len(node_pos)), key=lambda k: _dist2(lat, lon, *node_pos[k]))
                zones = tuple(zone_between(lat, lon, nl, no) for nl, no in node_pos)
                self.addresses.append(_Address(aid, i, site, lat, lon, tuple(order), zones))
                mine.append(len(self.addresses) - 1)
            self.customer_addresses.append(mine)
        self.customer_cum = list(itertools.accumulate(weights))
        self.write(_table(PriceListRow), ("id", "name", "currency"), price_lists, "price_lists")
        self.write(
            _table(CustomerRow),
            ("id", "name", "account_number", "tier", "email", "email_domain", "edi_id", "gln", "price_list_id"),
            customers,
            "customers",
        )
        self.write(
            _table(AddressRow),
            ("id", "customer_id", "label", "name", "street", "city", "state", "postal_code", "country", "lat", "lon"),
            addresses,
            "addresses",
        )
        for start in range(0, len(items), 50_000):
            self.write(
                _table(PriceListItemRow),
                ("price_list_id", "sku", "unit_price"),
                items[start : start + 50_000],
                "price_list_items",
            )
        self.progress("customers", n, n)

    def gen_carriers(self) -> None:
        rng = self.rng
        degraded = rng.randrange(len(_CARRIERS)) if rng.random() < 0.5 else -1
        carriers, services, rates = [], [], []
        for ci, (code, name, levels, factor, on_time) in enumerate(_CARRIERS):
            status = CarrierStatus.DEGRADED if ci == degraded else CarrierStatus.OPERATIONAL
            rate = round(on_time - rng.uniform(0, 0.02) - (0.12 if ci == degraded else 0), 3)
            carriers.append((code, name, status.value, rate, "[]"))
            for level in levels:
                sid = f"{code}-{_LEVEL_CODE[level]}"
                # Slower regional lanes on some ground services; never faster for a farther zone.
                transit = tuple(
                    itertools.accumulate(
                        (d + (1 if level is ServiceLevel.GROUND and z >= 4 and rng.random() < 0.3 else 0)
                         for z, d in enumerate(_TRANSIT[level])),
                        max,
                    )
                )  # fmt: skip
                services.append((sid, code, level.value, f"{name} {_LEVEL_NAME[level]}", json.dumps(transit),
                                 level is ServiceLevel.OVERNIGHT))  # fmt: skip
                self.services_by_level.setdefault(level, []).append(_Service(sid, code, level, transit, 1 - rate))
                base0, base_step, kg0, kg_step = _RATES[level]
                for zone in range(2, 9):
                    base = round((base0 + base_step * (zone - 2)) * factor)
                    per_kg = round((kg0 + kg_step * (zone - 2)) * factor)
                    rates.append((sid, zone, self.money(base), self.money(per_kg)))
        self.write(_table(CarrierRow), ("id", "name", "status", "on_time_rate", "outage_states"), carriers, "carriers")
        self.write(
            _table(CarrierServiceRow),
            ("id", "carrier_id", "level", "name", "transit_days_by_zone", "air"),
            services,
            "carrier_services",
        )
        self.write(_table(RateCardRow), ("carrier_service_id", "zone", "base", "per_kg"), rates, "rate_cards")
        self.progress("carriers", len(carriers), len(carriers))

    def plan_stock(self) -> None:
        """Which node stocks which SKU. Stores carry a popular, non-hazardous, ambient subset; some
        SKUs come only from the drop-ship supplier; every SKU is stocked somewhere."""
        rng, n = self.rng, self.spec.skus
        ds = [k for k, nd in enumerate(self.nodes) if nd.type is NodeType.DROPSHIP]
        for s in range(n):
            hazmat, cold = self.sku_flags[s]
            roll = rng.random()
            ds_only = bool(ds) and roll < 0.05
            for nd in self.nodes:
                if nd.type is NodeType.DC:
                    ok = not ds_only and rng.random() < 0.85
                elif nd.type is NodeType.STORE:
                    ok = not (ds_only or hazmat or cold) and self.sku_rank[s] < 0.3 * n and rng.random() < 0.8
                else:
                    ok = ds_only or (not cold and roll > 0.85)
                if ok:
                    nd.stock.add(s)
            if not any(s in nd.stock for nd in self.nodes):
                self.nodes[ds[0] if ds_only else 0].stock.add(s)
        self.reserved = [[0] * n for _ in self.nodes]

    def gen_orders(self) -> None:
        """Orders, their lines, shipments and tracking events, in chunks; the random draws come in
        one fixed order per order (the same seed gives the same network)."""
        self.plan_stock()
        rng, total = self.rng, self.spec.orders
        nodes, addresses = self.nodes, self.addresses
        stock = [nd.stock for nd in nodes]
        node_ids = [nd.id for nd in nodes]
        cust_cum, cust_addr, cust_ids = self.customer_cum, self.customer_addresses, self.customer_ids
        sku_cum, sku_ids = self.sku_cum, self.sku_ids
        cust_range, sku_range = range(len(cust_ids)), range(len(sku_ids))
        self.backlog = [0] * len(nodes)
        day, stamp = self.day, self.stamp
        choices, randrange = rng.choices, rng.randrange
        order_cols = ("id", "customer_id", "external_ref", "ship_to_id", "status", "held_from", "node_id",
                      "carrier_service_id", "service_level", "promised_date", "created_at", "total_value",
                      "total_units", "weight_kg", "version")  # fmt: skip
        line_cols = ("order_id", "line_no", "sku", "quantity", "unit_price")
        ship_cols = ("id", "order_id", "node_id", "carrier_service_id", "tracking_number", "status", "ship_date", "eta")
        event_cols = ("id", "shipment_id", "at", "status", "location", "note")
        order_t, line_t, ship_t, event_t = (
            _table(OrderRow), _table(OrderLineRow), _table(ShipmentRow), _table(TrackingEventRow)
        )  # fmt: skip
        shipping = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
        self._days = [self.bd - timedelta(days=k) for k in range(60)]
        n_ship = n_events = 0
        self.progress("orders", 0, total)
        for start in range(0, total, CHUNK_ORDERS):
            orders: list[tuple[Any, ...]] = []
            lines: list[tuple[Any, ...]] = []
            ships: list[tuple[Any, ...]] = []
            events: list[tuple[Any, ...]] = []
            for oi in range(start, min(total, start + CHUNK_ORDERS)):
                oid = f"ORD-{oi + 1:07d}"
                c = choices(cust_range, cum_weights=cust_cum)[0]
                my_addr = cust_addr[c]
                addr = addresses[my_addr[randrange(len(my_addr))] if len(my_addr) > 1 else my_addr[0]]
                k = choices((1, 2, 3, 4), cum_weights=_LINES_CUM)[0]
                picked = choices(sku_range, cum_weights=sku_cum, k=k)
                node, skus = _place(addr, list(dict.fromkeys(picked)) if k > 1 else picked, stock)
                status = _STATUSES[choices(range(8), cum_weights=_STATUS_CUM)[0]]
                level = self._level(skus)
                zone = addr.zones[node]
                held_from, svc = self._hold_and_service(status, level)
                cdate, created_at = self._created(status, svc, zone)
                promised = cdate + timedelta(days=1 + _TRANSIT[level][zone - 2])
                # A hold keeps the reservation the order had (as the embedded OMS does).
                reserves = status in RESERVING_STATUSES or (held_from is not None and held_from in RESERVING_STATUSES)
                value, units, weight = self._order_lines(oid, c, skus, node, reserves, lines)
                orders.append(
                    (oid, cust_ids[c], self._external_ref(c), addr.id, status.value,
                     held_from.value if held_from else None, node_ids[node], svc.id if svc else None, level.value,
                     day(promised), stamp(created_at), self.money(value), units, round(weight, 3), 1)
                )  # fmt: skip
                if status in shipping and svc is not None:
                    n_ship += 1
                    ship, evs = self._shipment(n_ship, oid, node, svc, zone, status, cdate, addr,
                                               len(events) + n_events + 1)  # fmt: skip
                    ships.append(ship)
                    events += evs
            self.write(order_t, order_cols, orders, "orders")
            self.write(line_t, line_cols, lines, "order_lines")
            self.write(ship_t, ship_cols, ships, "shipments")
            n_events += self.write(event_t, event_cols, events, "tracking_events")
            self.progress("orders", min(total, start + CHUNK_ORDERS), total)
        self._orders_done(n_events)

    def _level(self, skus: list[int]) -> ServiceLevel:
        """The service level drawn for the order; order capture never books dangerous goods on air:
        the seeded baseline is compliant, and compliance scenarios create their violations on purpose."""
        level = _LEVELS[self.rng.choices(range(3), cum_weights=_LEVEL_CUM)[0]]
        if level is ServiceLevel.OVERNIGHT and any(self.sku_flags[x][0] for x in skus):
            level = ServiceLevel.TWO_DAY
        return level

    def _hold_and_service(self, status: OrderStatus, level: ServiceLevel) -> tuple[OrderStatus | None, Any]:
        """The status a held order was held from, and the carrier service (none while created)."""
        randrange = self.rng.randrange
        held_from = _HELD_FROM[randrange(3)] if status is OrderStatus.HELD else None
        svc = None
        if status is not OrderStatus.CREATED and held_from is not OrderStatus.CREATED:
            opts = self.services_by_level[level]
            svc = opts[randrange(len(opts))] if len(opts) > 1 else opts[0]
        return held_from, svc

    def _created(self, status: OrderStatus, svc: Any, zone: int) -> tuple[date, datetime]:
        """The creation day and time: as old as the status suggests (a delivered order is at least
        old enough to have arrived)."""
        randrange = self.rng.randrange
        lo, hi = _AGE_DAYS[status]
        age = randrange(lo, hi + 1)
        if status is OrderStatus.DELIVERED and svc is not None:
            age += 2 + svc.transit[zone - 2]
        cdate = self._days[age]
        hour = randrange(0, 9) if age == 0 else randrange(6, 23)
        return cdate, datetime(cdate.year, cdate.month, cdate.day, hour, randrange(60), randrange(60))

    def _order_lines(
        self, oid: str, c: int, skus: list[int], node: int, reserves: bool, lines: list[tuple[Any, ...]]
    ) -> tuple[int, int, float]:
        """Append the order's line rows (a case quantity now and then); reserve their units at the
        node when the order reserves. Returns value, units and weight."""
        rng, sku_case, sku_weight, sku_ids = self.rng, self.sku_case, self.sku_weight, self.sku_ids
        prices, reserved = self.customer_prices[c], self.reserved[node]
        value = units = 0
        weight = 0.0
        for ln, s in enumerate(skus, 1):
            q = sku_case[s] * rng.randrange(1, 4) if rng.random() < 0.1 else 1 + int(rng.expovariate(0.35))
            p = prices[s]
            value += q * p
            units += q
            weight += q * sku_weight[s]
            lines.append((oid, ln, sku_ids[s], q, self.money(p)))
            if reserves:
                reserved[s] += q
        if reserves:  # the same rule the embedded OMS keeps: queued work = reserving orders
            self.backlog[node] += 1
        return value, units, weight

    def _external_ref(self, c: int) -> str | None:
        """The buyer's PO number on most orders (an 850 number for EDI customers)."""
        if self.rng.random() < 0.7:
            return f"{'850-' if self.customer_edi[c] else 'PO-'}{self.rng.randrange(100000, 1000000)}"
        return None

    def _shipment(
        self, n_ship: int, oid: str, node: int, svc: Any, zone: int, status: OrderStatus, cdate: date, addr: Any,
        event_id: int,
    ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:  # fmt: skip
        """The shipment of a shipped or delivered order (late now and then) and its tracking events:
        picked up, and delivered by the day before ``bd`` at the latest."""
        randrange, day, stamp = self.rng.randrange, self.day, self.stamp
        in_transit, sh_delivered = ShipmentStatus.IN_TRANSIT.value, ShipmentStatus.DELIVERED.value
        sid = f"SHP-{n_ship:07d}"
        ship_date = cdate + timedelta(days=1)
        late = 1 + randrange(3) if self.rng.random() < svc.late_rate else 0
        eta = ship_date + timedelta(days=svc.transit[zone - 2] + late)
        ship = (sid, oid, self.nodes[node].id, svc.id, f"{svc.carrier}{n_ship:09d}{randrange(100, 1000)}",
                in_transit if status is OrderStatus.SHIPPED else sh_delivered, day(ship_date), day(eta))  # fmt: skip
        at = datetime(ship_date.year, ship_date.month, ship_date.day, 17, randrange(60))
        origin = self.nodes[node].site
        events = [(event_id, sid, stamp(at), in_transit, f"{origin.name}, {origin.state}", "Picked up")]
        if status is OrderStatus.DELIVERED:
            when = min(eta, self.bd)
            at = datetime(when.year, when.month, when.day, 10 + randrange(8), randrange(60))
            events.append(
                (event_id + 1, sid, stamp(at), sh_delivered, f"{addr.site.name}, {addr.site.state}", "Delivered")
            )
        return ship, events

    def _orders_done(self, n_events: int) -> None:
        """Every order table counted (zero orders too); on PostgreSQL the event id sequence moved past
        the ids written explicitly (so they do not depend on the sequence's history)."""
        for key in ("orders", "order_lines", "shipments", "tracking_events"):
            self.counts.setdefault(key, 0)
        if self.postgres and n_events:
            self.conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('tracking_events', 'id'), {n_events}, true)"
            )

    def gen_inventory(self) -> None:
        """On hand = what open orders reserve plus a buffer, so ``reserved <= on_hand`` holds by
        construction; a few positions get no buffer at all (zero ATP: the shortages agents meet)."""
        rng = self.rng
        total = len(self.nodes)
        for k, nd in enumerate(self.nodes):
            res = self.reserved[k]
            hi = {NodeType.DC: 400, NodeType.STORE: 40, NodeType.DROPSHIP: 1000}[nd.type]
            rows = []
            for s in sorted(nd.stock):
                buffer = 0 if rng.random() < 0.04 else rng.randrange(hi // 10, hi + 1)
                rows.append((nd.id, self.sku_ids[s], res[s] + buffer, res[s]))
            self.write(_table(InventoryRow), ("node_id", "sku", "on_hand", "reserved"), rows, "inventory_rows")
            self.progress("inventory", k + 1, total)

    def finish_nodes(self) -> None:
        """Backlog = the node's queued orders; capacity sized so that is a plausible day or so of work."""
        nodes_t = _table(NodeRow)
        for k, nd in enumerate(self.nodes):
            cap = max(nd.capacity_floor, math.ceil(self.backlog[k] / nd.days_of_work))
            self.conn.execute(
                update(nodes_t).where(nodes_t.c.id == nd.id).values(backlog=self.backlog[k], daily_capacity=cap)
            )


def _dist2(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Squared equirectangular distance: enough to rank nodes by nearness, and cheap."""
    dx = (lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return dx * dx + (lat2 - lat1) ** 2


def _place(addr: Any, skus: list[int], stock: list[set[int]]) -> tuple[int, list[int]]:
    """The nearest node that stocks every line; failing that, the nearest that stocks the first
    line, keeping only the lines it can serve."""
    for cand in addr.nodes_by_distance:
        st = stock[cand]
        if all(s in st for s in skus):
            return cand, skus
    first = skus[0]
    node = next(cand for cand in addr.nodes_by_distance if first in stock[cand])
    return node, [s for s in skus if s in stock[node]]
