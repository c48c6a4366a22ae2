"""Real US geography for the digital twin: city coordinates, great-circle distance, shipping zone.

Zones follow the usual US parcel-carrier bands by distance (zone 2 is local, zone 8 is
coast-to-coast), so rate cards and transit times behave like real ones.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class City(NamedTuple):
    name: str
    state: str
    lat: float
    lon: float
    region: str


# (city, state, latitude, longitude, region). Coordinates of the city centres, rounded to 4 places.
CITIES: tuple[City, ...] = (
    City("New York", "NY", 40.7128, -74.0060, "Northeast"),
    City("Boston", "MA", 42.3601, -71.0589, "Northeast"),
    City("Philadelphia", "PA", 39.9526, -75.1652, "Northeast"),
    City("Pittsburgh", "PA", 40.4406, -79.9959, "Northeast"),
    City("Newark", "NJ", 40.7357, -74.1724, "Northeast"),
    City("Hartford", "CT", 41.7658, -72.6734, "Northeast"),
    City("Providence", "RI", 41.8240, -71.4128, "Northeast"),
    City("Albany", "NY", 42.6526, -73.7562, "Northeast"),
    City("Buffalo", "NY", 42.8864, -78.8784, "Northeast"),
    City("Portland", "ME", 43.6591, -70.2568, "Northeast"),
    City("Baltimore", "MD", 39.2904, -76.6122, "Southeast"),
    City("Washington", "DC", 38.9072, -77.0369, "Southeast"),
    City("Richmond", "VA", 37.5407, -77.4360, "Southeast"),
    City("Charlotte", "NC", 35.2271, -80.8431, "Southeast"),
    City("Raleigh", "NC", 35.7796, -78.6382, "Southeast"),
    City("Atlanta", "GA", 33.7490, -84.3880, "Southeast"),
    City("Savannah", "GA", 32.0809, -81.0912, "Southeast"),
    City("Jacksonville", "FL", 30.3322, -81.6557, "Southeast"),
    City("Orlando", "FL", 28.5383, -81.3792, "Southeast"),
    City("Miami", "FL", 25.7617, -80.1918, "Southeast"),
    City("Tampa", "FL", 27.9506, -82.4572, "Southeast"),
    City("Nashville", "TN", 36.1627, -86.7816, "Southeast"),
    City("Memphis", "TN", 35.1495, -90.0490, "Southeast"),
    City("Louisville", "KY", 38.2527, -85.7585, "Southeast"),
    City("Birmingham", "AL", 33.5186, -86.8104, "Southeast"),
    City("Charleston", "SC", 32.7765, -79.9311, "Southeast"),
    City("New Orleans", "LA", 29.9511, -90.0715, "South"),
    City("Houston", "TX", 29.7604, -95.3698, "South"),
    City("Dallas", "TX", 32.7767, -96.7970, "South"),
    City("Austin", "TX", 30.2672, -97.7431, "South"),
    City("San Antonio", "TX", 29.4241, -98.4936, "South"),
    City("Fort Worth", "TX", 32.7555, -97.3308, "South"),
    City("El Paso", "TX", 31.7619, -106.4850, "South"),
    City("Oklahoma City", "OK", 35.4676, -97.5164, "South"),
    City("Little Rock", "AR", 34.7465, -92.2896, "South"),
    City("Chicago", "IL", 41.8781, -87.6298, "Midwest"),
    City("Detroit", "MI", 42.3314, -83.0458, "Midwest"),
    City("Columbus", "OH", 39.9612, -82.9988, "Midwest"),
    City("Cleveland", "OH", 41.4993, -81.6944, "Midwest"),
    City("Cincinnati", "OH", 39.1031, -84.5120, "Midwest"),
    City("Indianapolis", "IN", 39.7684, -86.1581, "Midwest"),
    City("Milwaukee", "WI", 43.0389, -87.9065, "Midwest"),
    City("Minneapolis", "MN", 44.9778, -93.2650, "Midwest"),
    City("St. Louis", "MO", 38.6270, -90.1994, "Midwest"),
    City("Kansas City", "MO", 39.0997, -94.5786, "Midwest"),
    City("Omaha", "NE", 41.2565, -95.9345, "Midwest"),
    City("Des Moines", "IA", 41.5868, -93.6250, "Midwest"),
    City("Denver", "CO", 39.7392, -104.9903, "Mountain"),
    City("Salt Lake City", "UT", 40.7608, -111.8910, "Mountain"),
    City("Phoenix", "AZ", 33.4484, -112.0740, "Mountain"),
    City("Tucson", "AZ", 32.2226, -110.9747, "Mountain"),
    City("Albuquerque", "NM", 35.0844, -106.6504, "Mountain"),
    City("Las Vegas", "NV", 36.1699, -115.1398, "Mountain"),
    City("Reno", "NV", 39.5296, -119.8138, "Mountain"),
    City("Boise", "ID", 43.6150, -116.2023, "Mountain"),
    City("Los Angeles", "CA", 34.0522, -118.2437, "West"),
    City("San Diego", "CA", 32.7157, -117.1611, "West"),
    City("San Francisco", "CA", 37.7749, -122.4194, "West"),
    City("San Jose", "CA", 37.3382, -121.8863, "West"),
    City("Sacramento", "CA", 38.5816, -121.4944, "West"),
    City("Fresno", "CA", 36.7378, -119.7871, "West"),
    City("Ontario", "CA", 34.0633, -117.6509, "West"),
    City("Portland", "OR", 45.5152, -122.6784, "West"),
    City("Seattle", "WA", 47.6062, -122.3321, "West"),
    City("Spokane", "WA", 47.6588, -117.4260, "West"),
)

# Cities that host fulfillment nodes in the generated network, in the order nodes are created:
# the classic US DC footprint first (NJ, GA, TX, CA, IL, NV), then more sites.
NODE_SITES: tuple[tuple[str, str], ...] = (
    ("Newark", "NJ"),
    ("Atlanta", "GA"),
    ("Dallas", "TX"),
    ("Ontario", "CA"),
    ("Chicago", "IL"),
    ("Reno", "NV"),
    ("Columbus", "OH"),
    ("Memphis", "TN"),
    ("Salt Lake City", "UT"),
    ("Seattle", "WA"),
    ("Denver", "CO"),
    ("Jacksonville", "FL"),
    ("Kansas City", "MO"),
    ("Phoenix", "AZ"),
    ("Charlotte", "NC"),
    ("Pittsburgh", "PA"),
)

_BY_KEY = {(c.name, c.state): c for c in CITIES}
REGIONS: frozenset[str] = frozenset(c.region for c in CITIES)
STATES_BY_REGION: dict[str, frozenset[str]] = {r: frozenset(c.state for c in CITIES if c.region == r) for r in REGIONS}

EARTH_RADIUS_MI = 3958.8
# Upper bound (miles) of each zone, zones 2..8.
ZONE_LIMITS_MI: tuple[tuple[int, float], ...] = (
    (2, 150),
    (3, 300),
    (4, 600),
    (5, 1000),
    (6, 1400),
    (7, 1800),
    (8, math.inf),
)


def city(name: str, state: str) -> City:
    return _BY_KEY[(name, state)]


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in statute miles."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MI * math.asin(min(1.0, math.sqrt(h)))


def zone_for_distance(miles: float) -> int:
    """Parcel zone 2..8 for a shipping distance."""
    for zone, limit in ZONE_LIMITS_MI:
        if miles <= limit:
            return zone
    return 8  # pragma: no cover - the last limit is infinite


def zone_between(lat1: float, lon1: float, lat2: float, lon2: float) -> int:
    return zone_for_distance(distance_miles(lat1, lon1, lat2, lon2))


def region_of_state(state: str) -> str | None:
    for region, states in STATES_BY_REGION.items():
        if state in states:
            return region
    return None
