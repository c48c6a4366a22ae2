"""Fixtures for the graph tests: the small generated network of tests/tools with a congested DC."""

from __future__ import annotations

import pytest

from core.db import Database
from tests.graphs.support import congest
from tests.tools.conftest import Net, build_net


@pytest.fixture
def congested(db: Database) -> tuple[Net, str, str]:
    """(network, congested DC, another open DC) on each backend."""
    net = build_net(db)
    node, target = congest(net)
    return net, node, target


@pytest.fixture
def sqlite_congested(sqlite_db: Database) -> tuple[Net, str, str]:
    net = build_net(sqlite_db)
    node, target = congest(net)
    return net, node, target
