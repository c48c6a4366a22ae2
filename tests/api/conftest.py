"""An API app on a small generated network with the full gateway, and one API key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ApiKeyStore, Role, create_key
from api.bootstrap import AppContext
from core.db import Database
from core.settings import Settings
from services import queue
from tests.tools.conftest import AGENT, Net, build_net


@dataclass
class Api:
    net: Net
    actx: AppContext
    keys: ApiKeyStore
    app: FastAPI
    client: TestClient
    key: dict[str, str]
    """role name (or 'requester') -> plaintext key"""

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key[who]}"}

    def propose_bulk_reroute(self, n: int = 40, key: str = "rr-api") -> Any:
        """A pending approval: a bulk reroute the default policy wants an approver for."""
        src = self.net.busiest_dc()
        ids = [o.id for o in self.net.movable(src)][:n]
        out = self.net.gateway.propose(
            "reroute_orders",
            {"order_ids": ids, "to_node_id": self.net.other_dc(src), "reason": "congestion"},
            actor=AGENT,
            run=self.net.run(),
            idempotency_key=key,
        )
        assert out.status == "awaiting_approval", out.reasons
        return out


def make_context(net: Net, home: Path) -> AppContext:
    return AppContext(
        settings=Settings(home=home, database_url=net.db.url),
        db=net.db,
        clock=net.clock,
        adapters=net.adapters,
        guard=net.gateway.guard,
        twin_clock=net.clock,
    )


def build_api(db: Database, home: Path) -> Api:
    net = build_net(db)
    actx = make_context(net, home)
    keys = ApiKeyStore(db, home=home)
    key = {
        "viewer": create_key(keys, "vic", [Role.VIEWER]),
        "operator": create_key(keys, "otto", [Role.OPERATOR]),
        "approver": create_key(keys, "amir", [Role.APPROVER]),
        "admin": create_key(keys, "ada", [Role.ADMIN]),
        # the person on whose behalf the agent (tests.tools.conftest.AGENT) proposes
        "requester": create_key(keys, "olivia", [Role.APPROVER]),
    }
    app = create_app(actx, keys=keys)
    return Api(net=net, actx=actx, keys=keys, app=app, client=TestClient(app), key=key)


@pytest.fixture
def api(sqlite_db: Database, tmp_path: Path) -> Iterator[Api]:
    built = build_api(sqlite_db, tmp_path / "home")
    with built.client:
        yield built


@pytest.fixture
def queue_clients() -> Iterator[None]:
    """Closes the DBOS clients :mod:`services.queue` keeps per database once the test is done, so that
    none (with its connection pool) outlives the database of the test that opened it. The job queue
    tests name it with ``pytestmark = pytest.mark.usefixtures("queue_clients")``."""
    yield
    queue.close_clients()
