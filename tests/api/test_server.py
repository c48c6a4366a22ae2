"""The app under a real uvicorn server on loopback, called over TCP with httpx."""

from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from tests.api.conftest import Api


def test_real_server_on_loopback(api: Api) -> None:
    config = uvicorn.Config(api.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped before it started"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").status_code == 200
            nodes = http.get("/v1/nodes", headers={"X-API-Key": api.key["viewer"]})
            assert nodes.status_code == 200
            assert nodes.json()["nodes"]
            denied = http.get("/v1/nodes")
            assert denied.status_code == 401
            assert denied.headers["content-type"] == "application/problem+json"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert not thread.is_alive()
