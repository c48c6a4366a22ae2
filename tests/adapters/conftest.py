"""Fixtures of the adapter conformance suite.

The suite talks to the systems only through :class:`tools.adapters.protocols.Adapters`. To run it
against another implementation, override ``make_adapters`` (a ``(Database, Clock) -> Adapters``
callable) in a conftest next to a copy of these test modules, or parametrize it; the small network
is seeded into the database and its orders are created through the adapters under test.
"""

from __future__ import annotations

import pytest

from core.clock import FixedClock
from core.db import Database
from tests.factories import AdaptersFactory, SmallNetwork, build_small_network
from tools.adapters.embedded import embedded_adapters
from tools.adapters.protocols import Adapters


@pytest.fixture
def make_adapters() -> AdaptersFactory:
    """The implementation under test."""
    return embedded_adapters


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def network(db: Database, clock: FixedClock, make_adapters: AdaptersFactory) -> SmallNetwork:
    return build_small_network(db, clock, make_adapters=make_adapters)


@pytest.fixture
def adapters(network: SmallNetwork) -> Adapters:
    return network.adapters
