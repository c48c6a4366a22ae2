"""Console fixtures: the API test app (small generated network, one key per role) with a congested
DC and an exception run parked for approval, signed-in test clients, and — for the browser tests —
a real uvicorn server on 127.0.0.1 and Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agents.playbooks.planner import PlaybookPlanner
from core.db import Database
from graphs.checkpoints import open_checkpointer
from graphs.exception import ExceptionRuns, RunDeps, RunResult
from graphs.runs import RunStore
from tests.api.conftest import Api, build_api
from tests.graphs.support import congest, congestion_alert

RUN_ID = "run-console"
CHROMIUM = os.environ.get("ORDEROPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Console:
    api: Api
    run: RunResult
    store: RunStore

    def client(self, who: str) -> TestClient:
        """A fresh client signed in as ``who`` (a role name or 'requester')."""
        c = TestClient(self.api.app)
        c.get("/console/login")
        r = c.post(
            "/console/login",
            data={"api_key": self.api.key[who], "csrf_token": c.cookies["oo_csrf"], "next": "/console/approvals"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return c

    def approval_ids(self) -> list[str]:
        return [str(a["approval_id"]) for a in self.run.approvals]


def start_parked_run(api: Api) -> tuple[RunResult, RunStore]:
    """Congest the busiest DC and start an exception run on the playbook planner; it parks with
    reroute approvals requested on behalf of 'olivia' (the 'requester' key)."""
    node, _ = congest(api.net)
    store = RunStore(api.actx.db, api.actx.clock)
    deps = RunDeps(gateway=api.actx.gateway, planner=PlaybookPlanner(), runs=store, requested_by="olivia")
    with open_checkpointer(api.actx.db) as saver:
        result = ExceptionRuns(deps, saver).start(alert=congestion_alert(node), run_id=RUN_ID)
    assert result.waiting, result
    return result, store


@pytest.fixture
def console(sqlite_db: Database, tmp_path: Path) -> Iterator[Console]:
    api = build_api(sqlite_db, tmp_path / "home")
    run, store = start_parked_run(api)
    with api.client:
        yield Console(api=api, run=run, store=store)


# --- the browser ------------------------------------------------------------------------------------


def chromium_available() -> bool:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).exists():
        return True
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium for the browser tests")
    return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium through Playwright's sync API, for one test module at a time: that API keeps an
    asyncio loop running in the main thread while it is open, and any later test in the same process
    that starts a loop of its own (anyio.run, asyncio.run: the MCP client tests) would then fail."""
    if not chromium_available():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium); browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Served:
    console: Console
    url: str


@pytest.fixture
def served(console: Console) -> Iterator[Served]:
    """The console app under uvicorn on a free loopback port, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(console.api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(console=console, url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- intake review ----------------------------------------------------------------------------------


@dataclass
class Review:
    item_id: str
    sku: str
    """The SKU the unknown part ``ACME-778`` stands for (what a reviewer types in)."""
    customer_id: str


def queue_review_item(api: Api, docs: Path) -> Review:
    """An X12 850 with one part the catalogue does not know, parked in the review queue; the
    console's intake pages are pointed at the same document store."""
    from intake.documents import DocumentStore
    from intake.pipeline import IntakeDeps
    from tests.intake.test_pipeline import Intake, Line, x12_850

    store = DocumentStore(api.actx.db, api.actx.clock, docs)
    deps = IntakeDeps(db=api.actx.db, clock=api.actx.clock, documents=store, gateway=api.actx.gateway)
    it = Intake(net=api.net, store=store, deps=deps)
    c = it.customer()
    assert c.edi_id is not None
    a, b = it.skus(2)
    lines: list[Line] = [(2, "EA", it.price(c, a), "VN", a, ""), (6, "EA", it.price(c, b), "BP", "ACME-778", "")]
    doc = it.receive(x12_850(c.edi_id, "PO-CONSOLE-1", it.address(c), lines), filename="po.x12")
    (out,) = it.process(doc).outcomes
    assert out.decision == "review", out
    api.app.state.console_intake = lambda _actx: deps
    return Review(item_id=out.review_item_id or "", sku=b, customer_id=c.id)


@pytest.fixture
def review(console: Console, tmp_path: Path) -> Review:
    return queue_review_item(console.api, tmp_path / "docs")


def store_eval_runs(api: Api) -> tuple[str, str]:
    """Two small stored eval runs (baseline A, candidate B with one regressed case)."""
    from datetime import UTC, datetime, timedelta

    from evals.metrics import CaseResult
    from evals.runner import EvalRun, store_run

    ids = []
    for n, (rate, passed) in enumerate(((1.0, True), (0.5, False))):
        run = EvalRun(
            id=f"eval-{n}",
            started_at=datetime(2026, 11, 23, 9, tzinfo=UTC) + timedelta(hours=n),
            suites=["exceptions"],
            planner="playbook",
            metrics={"exceptions": {"available": True, "success_rate": rate, "pass^1": rate, "tasks": 2}},
            results=[
                CaseResult(suite="exceptions", case_id="congestion-1", category="congestion", passed=True),
                CaseResult(suite="exceptions", case_id="outage-1", category="outage", passed=passed,
                           failures=[] if passed else ["expected 10 rerouted, found 4"]),
            ],
        )  # fmt: skip
        store_run(api.actx.db, run)
        ids.append(run.id)
    return ids[0], ids[1]
