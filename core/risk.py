"""Order risk at creation: a score in [0, 1] with the reasons behind it, against the customer's own past.

Four signals, each a reason with a weight, combined as a noisy-or (each reason alone is a chance
the order is bad; together they compound, and no single weak one holds an order):

* ``new_ship_to``: an address the customer never shipped to;
* ``address_mismatch``: in a state where the account has no site and never shipped;
* ``new_contact_domain``: the order's e-mail domain is not one the account uses;
* ``value_far_above_history``: value many robust standard deviations above the customer's orders
  (log scale: order values are multiplicative);
* ``velocity``: more orders in the last hours than the customer's pace makes plausible (a Poisson
  tail below :data:`VELOCITY_P`); the pace is the busier of the long-run one and the last day's
  (a busy day is no burst).

At or above :data:`HOLD_THRESHOLD` the order should be held for review. A customer with less than
:data:`MIN_HISTORY` orders has no value baseline: only the address and contact reasons apply.

What this module must never do: hold or change an order itself, or learn from an order before it
is judged (:meth:`RiskScorer.observe` is called for orders that were accepted).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

HOLD_THRESHOLD = 0.5
MIN_HISTORY = 8
VALUE_WINDOW = 200
"""The customer's last orders the value baseline is drawn from."""
VELOCITY_HOURS = 3.0
VELOCITY_P = 1e-4
BUSY_HOUR_FACTOR = 3.6
MAD_TO_SD = 1.4826
LOG_VALUE_FLOOR = 0.25
"""Smallest spread of log order values (a customer who always orders the same still varies)."""


class RiskReason(StrEnum):
    NEW_SHIP_TO = "new_ship_to"
    ADDRESS_MISMATCH = "address_mismatch"
    NEW_CONTACT_DOMAIN = "new_contact_domain"
    VALUE_FAR_ABOVE_HISTORY = "value_far_above_history"
    VALUE_ABOVE_HISTORY = "value_above_history"
    VELOCITY = "velocity"


WEIGHTS: dict[RiskReason, float] = {
    RiskReason.NEW_SHIP_TO: 0.3,
    RiskReason.ADDRESS_MISMATCH: 0.35,
    RiskReason.NEW_CONTACT_DOMAIN: 0.4,
    RiskReason.VALUE_FAR_ABOVE_HISTORY: 0.55,
    RiskReason.VALUE_ABOVE_HISTORY: 0.25,
    RiskReason.VELOCITY: 0.55,
}
VALUE_Z_FAR = 4.5
VALUE_Z = 3.0


@dataclass(frozen=True)
class OrderFacts:
    """What the scorer needs of an order (from intake, the API or the order table)."""

    customer: str
    ship_to_key: str
    ship_to_state: str
    email_domain: str | None
    value: float
    at_hours: float
    """When it was placed, in hours on any monotonic scale (day x 24 + hour)."""


@dataclass(frozen=True)
class RiskScore:
    score: float
    reasons: tuple[tuple[RiskReason, str], ...]
    """Each reason with what made it (``value 41,200 vs usual 1,310``)."""
    hold: bool


@dataclass
class CustomerProfile:
    """What an account's accepted orders taught: its addresses, states, contact domains, values, pace."""

    ship_tos: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)
    log_values: deque[float] = field(default_factory=lambda: deque(maxlen=VALUE_WINDOW))
    times: deque[float] = field(default_factory=lambda: deque(maxlen=VALUE_WINDOW))
    first_at: float | None = None

    def orders_per_hour(self, now: float) -> float:
        """The account's pace over what it has shown (at least a day counted, so a new account is slow)."""
        if not self.times or self.first_at is None:
            return 0.0
        span = max(24.0, now - self.first_at)
        return len(self.times) / span


def _poisson_tail(n: int, lam: float) -> float:
    """P(N >= n) for N ~ Poisson(lam)."""
    if n <= 0:
        return 1.0
    term, cdf = math.exp(-lam), 0.0
    for k in range(n):
        cdf += term
        term *= lam / (k + 1)
    return max(0.0, 1.0 - cdf)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


class RiskScorer:
    """Scores orders against per-customer profiles. Seed it with the account's known sites and
    domains (:meth:`know`), feed it accepted orders (:meth:`observe`), and ask :meth:`score`."""

    def __init__(self, threshold: float = HOLD_THRESHOLD) -> None:
        self.threshold = threshold
        self.profiles: dict[str, CustomerProfile] = {}
        self.recent: dict[str, deque[float]] = {}
        """Every order seen per customer (accepted or not): velocity counts attempts, not acceptances."""

    def know(self, customer: str, *, ship_tos: set[str], states: set[str], domains: set[str]) -> None:
        """The account's master data: its own sites and contact domains are never new."""
        p = self.profiles.setdefault(customer, CustomerProfile())
        p.ship_tos |= ship_tos
        p.states |= states
        p.domains |= domains

    def score(self, o: OrderFacts) -> RiskScore:
        p = self.profiles.get(o.customer, CustomerProfile())
        reasons: list[tuple[RiskReason, str]] = []
        if o.ship_to_key not in p.ship_tos:
            reasons.append((RiskReason.NEW_SHIP_TO, f"first order to {o.ship_to_key}"))
            if o.ship_to_state not in p.states:
                have = ", ".join(sorted(p.states)) or "none"
                reasons.append((RiskReason.ADDRESS_MISMATCH, f"ship-to in {o.ship_to_state}; account sites in {have}"))
        if o.email_domain and p.domains and o.email_domain not in p.domains:
            reasons.append((RiskReason.NEW_CONTACT_DOMAIN, f"contact domain {o.email_domain} not the account's"))
        reasons.extend(self._value(p, o))
        reasons.extend(self._velocity(p, o))
        score = 1.0 - math.prod(1.0 - WEIGHTS[r] for r, _ in reasons)
        recent = self.recent.setdefault(o.customer, deque(maxlen=64))
        recent.append(o.at_hours)
        return RiskScore(round(score, 4), tuple(reasons), score >= self.threshold)

    def _value(self, p: CustomerProfile, o: OrderFacts) -> list[tuple[RiskReason, str]]:
        if len(p.log_values) < MIN_HISTORY or o.value <= 0:
            return []
        logs = list(p.log_values)
        med = _median(logs)
        sd = max(LOG_VALUE_FLOOR, MAD_TO_SD * _median([abs(v - med) for v in logs]))
        z = (math.log(o.value) - med) / sd
        usual = f"value {o.value:,.0f} vs usual {math.exp(med):,.0f} ({z:.1f} sd)"
        if z >= VALUE_Z_FAR:
            return [(RiskReason.VALUE_FAR_ABOVE_HISTORY, usual)]
        if z >= VALUE_Z:
            return [(RiskReason.VALUE_ABOVE_HISTORY, usual)]
        return []

    def _velocity(self, p: CustomerProfile, o: OrderFacts) -> list[tuple[RiskReason, str]]:
        recent = self.recent.get(o.customer, deque())
        n = 1 + sum(1 for t in recent if o.at_hours - VELOCITY_HOURS <= t <= o.at_hours)
        if n < 3 or len(p.times) < MIN_HISTORY:
            return []
        # Busy hours: an account's orders fall on weekdays in about eleven hours, and a Monday is
        # busier still, so its pace then is about 3.6 times its round-the-clock average.
        lam = p.orders_per_hour(o.at_hours) * BUSY_HOUR_FACTOR * VELOCITY_HOURS
        # A day busier than usual (a sale, a morning's backlog) is not a burst by itself: the last day's
        # orders before the window, as if placed in its busy half, set the pace when they are more.
        day = sum(1 for t in recent if o.at_hours - VELOCITY_HOURS - 24.0 <= t < o.at_hours - VELOCITY_HOURS)
        lam = max(lam, day / 12.0 * VELOCITY_HOURS)
        tail = _poisson_tail(n, lam)
        if tail < VELOCITY_P:
            return [(RiskReason.VELOCITY, f"{n} orders in {VELOCITY_HOURS:g} h; usual {lam:.2f} (p={tail:.1e})")]
        return []

    def observe(self, o: OrderFacts) -> None:
        """Learn from an accepted order (its address, state and domain become the account's)."""
        p = self.profiles.setdefault(o.customer, CustomerProfile())
        p.ship_tos.add(o.ship_to_key)
        p.states.add(o.ship_to_state)
        if o.email_domain:
            p.domains.add(o.email_domain)
        if o.value > 0:
            p.log_values.append(math.log(o.value))
        p.times.append(o.at_hours)
        if p.first_at is None:
            p.first_at = o.at_hours
