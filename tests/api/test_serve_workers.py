"""``orderops serve --workers 2`` as a real process tree: two HTTP processes answer on one port, the
job pool (in the supervisor) processes a run an alert queued, every decision either process made
is in the log after SIGTERM, and SIGTERM stops every process with exit code 0."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from api import serve_multi
from api.auth import ApiKeyStore, create_key
from api.serve_multi import CHILD_APP, listening_socket, settings_from_env, settings_to_env, stack
from core.db import make_database
from core.errors import ConfigurationError
from core.settings import Settings
from tests.conftest import REPO
from tests.test_cli_safety import cli, home  # noqa: F401
from tests.test_closure_over_http import _free_port, _wait_until

PID = re.compile(r'^orderops_server_process\{pid="(\d+)"\} 1\.0$', re.MULTILINE)


def children(pid: int) -> list[int]:
    """The ids of ``pid``'s child processes (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    db = make_database(url=url)
    try:
        with db.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        db.dispose()


def new_key(home: Path, url: str, name: str, role: str) -> str:  # noqa: F811
    keys = ApiKeyStore.for_settings(Settings(home=home, database_url=url))
    try:
        return create_key(keys, name, [role])
    finally:
        keys.db.dispose()


def start(home: Path, url: str, port: int) -> subprocess.Popen[bytes]:  # noqa: F811
    """The server with the database named only by ``--database-url`` (not the environment): the
    children must get it from the supervisor."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(ORDEROPS_HOME=str(home), ORDEROPS_WORKER_THREADS="1")
    code = "import sys; from api.cli import run; sys.exit(run(sys.argv[1:]))"
    argv = ["--database-url", url, "serve", "--workers", "2", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen([sys.executable, "-c", code, *argv], cwd=REPO, env=env, stderr=subprocess.PIPE)


def decide_via_each_process(base: str, key: str, order_ids: list[str], want: int) -> Counter[int]:
    """Decisions over fresh connections until each of the two processes made ``want``: on each
    connection ``/metrics`` names the process, then a decision is asked on the same connection."""
    made: Counter[int] = Counter()
    auth = {"Authorization": f"Bearer {key}"}
    for i in range(400):
        with httpx.Client(base_url=base, timeout=30) as http:  # one keep-alive connection
            pids = PID.findall(http.get("/metrics").text)
            assert len(pids) == 1, "each process labels its own scrape"
            r = http.post("/v1/decide/route", json={"order_id": order_ids[i % len(order_ids)]}, headers=auth)
            assert r.status_code == 200, r.text
            made[int(pids[0])] += 1
        if len(made) == 2 and min(made.values()) >= want:
            break
    return made


@pytest.mark.parametrize(
    "empty_db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_two_processes_share_the_port_run_jobs_log_every_decision_and_stop_on_sigterm(
    home: Path,  # noqa: F811
    empty_db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = empty_db_url
    small = ["--orders", "300", "--nodes", "5", "--skus", "40", "--customers", "5"]
    assert cli(capsys, "--database-url", url, "init", *small, "--json")[0] == 0
    viewer, operator = new_key(home, url, "vic", "viewer"), new_key(home, url, "otto", "operator")
    order_ids = [r[0] for r in rows(url, "select id from orders order by id limit 50")]
    node = rows(url, "select id from nodes where id like 'DC-%' order by id")[0][0]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = start(home, url, port)
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert _wait_until(up, 180), server.stderr.read().decode() if server.stderr and server.poll() else "no server"
        workers = [p for p in children(server.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2, workers

        made = decide_via_each_process(base, viewer, order_ids, want=3)
        assert set(made) == set(workers), made  # both processes answered, and only they

        alert = {"id": "serve-workers-1", "kind": "node_congestion", "severity": "critical", "labels": {"node": node}}
        r = httpx.post(f"{base}/v1/alerts", content=json.dumps(alert), headers=_json(operator), timeout=30)
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]

        def processed() -> bool:
            return [s for (s,) in rows(url, f"select status from jobs where serial_key = '{run_id}'")] == ["done"]

        assert _wait_until(processed, 180), rows(url, f"select kind, status from jobs where serial_key = '{run_id}'")
    finally:
        server.send_signal(signal.SIGTERM)
        rc = server.wait(60)
    assert rc == 0, server.stderr.read().decode() if server.stderr else rc
    assert not [p for p in workers if alive(p)]
    logged = int(rows(url, "select count(*) from sourcing_decisions")[0][0])
    assert logged == sum(made.values())


def _json(key: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {key}", "content-type": "application/json"}


def test_children_build_the_settings_the_cli_built(tmp_path: Path) -> None:
    """What the CLI set explicitly (``--database-url``, a secret) reaches a child; the rest it reads
    from the environment as the parent did."""
    parent = Settings(home=tmp_path, database_url="sqlite:///x.db", webhook_secret="whsec_abc", worker_threads=3)
    child = settings_from_env({"ORDEROPS_SERVE_SETTINGS": settings_to_env(parent)})
    assert child == parent
    assert child.webhook_secret is not None
    assert child.webhook_secret.get_secret_value() == "whsec_abc"
    assert settings_from_env({}) == Settings()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("fixed", [True, False])
def test_connections_on_the_shared_socket_get_tcp_nodelay(fixed: bool, loop: str) -> None:
    """uvicorn's bound socket says proto 0, so asyncio left Nagle on for every accepted connection
    (each keep-alive answer after the first waited ~40 ms for a delayed ACK); the one the children
    get says TCP, and what they accept has TCP_NODELAY, on either loop the server may run.
    ``fixed=False`` shows the bug it avoids (asyncio only: uvloop sets TCP_NODELAY itself)."""
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
    config = uvicorn.Config(CHILD_APP, host="127.0.0.1", port=0, log_level="warning")
    sock = listening_socket(config) if fixed else config.bind_socket()
    assert (sock.proto == socket.IPPROTO_TCP) is fixed
    rebuilt = pickle.loads(ForkingPickler.dumps(sock))  # as it reaches a spawned child
    sock.close()

    async def accepted_nodelay() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            got.set_result(w.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            w.close()

        server = await asyncio.start_server(on_connect, sock=rebuilt)
        async with server:
            _r, w = await asyncio.open_connection(*rebuilt.getsockname())
            value = await asyncio.wait_for(got, 10)
            w.close()
        return value

    if loop == "uvloop":
        assert bool(uvloop.run(accepted_nodelay()))
    else:
        assert bool(asyncio.run(accepted_nodelay())) is fixed


def test_stack_is_uvloop_and_httptools_when_installed_else_asyncio_and_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    """``orderops serve`` names uvicorn's loop and parser: the C ones when installed, the pure-Python
    ones otherwise; asking for one that is missing, or an unknown name, is a configuration error."""
    monkeypatch.setattr(serve_multi, "_installed", lambda name: True)
    assert stack() == ("uvloop", "httptools")
    assert stack("asyncio", "h11") == ("asyncio", "h11")
    monkeypatch.setattr(serve_multi, "_installed", lambda name: False)
    assert stack() == ("asyncio", "h11")
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        stack("uvloop", "auto")
    with pytest.raises(ConfigurationError, match="--http must be one of"):
        stack("auto", "zttp")


def test_serve_fallback_stack_answers(home: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """The pure-Python stack (``--loop asyncio --http h11``) still serves: the fallback where uvloop
    and httptools are not installed."""
    url = f"sqlite:///{home / 'fallback.db'}"
    assert cli(capsys, "--database-url", url, "init", "--orders", "5", "--nodes", "2", "--json")[0] == 0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.update(ORDEROPS_HOME=str(home), ORDEROPS_WORKER_THREADS="0")
    code = "import sys; from api.cli import run; sys.exit(run(sys.argv[1:]))"
    argv = ["--database-url", url, "serve", "--port", str(port), "--loop", "asyncio", "--http", "h11"]
    server = subprocess.Popen([sys.executable, "-c", code, *argv, "--log-level", "warning"], cwd=REPO, env=env)
    try:

        def up() -> bool:
            try:
                return bool(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"})
            except httpx.HTTPError:
                return False

        assert _wait_until(up, 120)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) in (0, -signal.SIGTERM)  # one uvicorn process re-raises the signal
