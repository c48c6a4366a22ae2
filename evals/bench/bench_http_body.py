"""Large request bodies against a real server: how much memory does the server take for them?

Starts ``orderops serve`` (uvicorn) on a free 127.0.0.1 port over a small seeded SQLite network (as
:mod:`evals.bench.bench_api` does) and sends, one at a time:

* a body announced as ``--size-mb`` MiB (``Content-Length``), without and with an API key;
* the same amount streamed chunked (no ``Content-Length``), with an operator key, to ``/v1/alerts``
  and ``/v1/runs``;
* an unsigned stream to ``/v1/alerts`` (no key, no signature).

For each it prints the status (-1: the server answered and closed the connection while the client
was still sending, so the client saw no status), how many bytes the client managed to send before the server
answered, and the server's resident memory (``VmRSS`` and peak ``VmHWM`` from ``/proc``) after.
Not a test: nothing asserts on the numbers.

    python -m evals.bench.bench_http_body --size-mb 1024
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from api.auth import ApiKeyStore, Role, create_key
from core.settings import Settings
from evals.bench.bench_api import free_port, seed, start_server, wait_ready

CHUNK = 64 * 1024


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {k: v for k, _, v in (line.partition(":") for line in status)}
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def one(base: str, path: str, headers: dict[str, str], size: int, *, announce: bool) -> tuple[int, int]:
    """Send ``size`` bytes; (status, bytes the client got out before the answer or the hang-up)."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        block = b"x" * CHUNK
        while sent < size:
            sent += CHUNK
            yield block

    h = dict(headers)
    if announce:
        h["content-length"] = str(size)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            r = await client.post(path, content=body(), headers=h)
            return r.status_code, sent
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        return -1, sent  # the server answered and hung up while the client was still sending


async def main_async(size_mb: int) -> None:
    size = size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url, _, _ = seed(home, 500)
        keys = ApiKeyStore.for_settings(Settings(home=home, database_url=url))  # the server's database
        key = create_key(keys, "bench-operator", [Role.OPERATOR])
        keys.db.dispose()
        port = free_port()
        proc = start_server(home, url, port)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base, proc)
            print(f"server pid {proc.pid}; start rss/peak {rss_mb(proc.pid)[0]:.0f}/{rss_mb(proc.pid)[1]:.0f} MiB")
            auth = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
            cases = [
                ("announced, no key", "/v1/alerts", {"content-type": "application/json"}, True),
                ("announced, operator key", "/v1/alerts", auth, True),
                ("streamed, operator key", "/v1/alerts", auth, False),
                ("streamed, operator key", "/v1/runs", auth, False),
                ("streamed, no key", "/v1/alerts", {"content-type": "application/json"}, False),
            ]
            print(f"{'case':28} {'path':12} {'status':>6} {'client sent MiB':>16} {'rss MiB':>8} {'peak MiB':>9}")
            for name, path, headers, announce in cases:
                status, sent = await one(base, path, headers, size, announce=announce)
                rss, peak = rss_mb(proc.pid)
                print(f"{name:28} {path:12} {status:>6} {sent / 2**20:>16.1f} {rss:>8.0f} {peak:>9.0f}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(main_async(args.size_mb))


if __name__ == "__main__":
    main()
