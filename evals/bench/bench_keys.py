"""What checking an API key costs on the request path, now that keys live in the database.

Creates one key in a fresh migrated database (SQLite in a temporary folder, or a fresh PostgreSQL
database with ``--pg``; both from :func:`evals.bench.bench_network.fresh_database`) and times
``ApiKeyStore.authenticate`` three ways: with the store's cache warm (the default: a verified key is
trusted for 5 s), with no cache (``ttl_s=0``: one database round trip per check, what the cache
saves), and for an unknown key id (never cached). Not a test: nothing asserts on the numbers.

    python -m evals.bench.bench_keys [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [-n 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from api.auth import ApiKeyStore, Role
from evals.bench.bench_network import DEFAULT_PG_ADMIN, fresh_database


def timed(n: int, call: Callable[[], object]) -> str:
    """p50 / p99 of ``n`` calls, in microseconds."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return f"p50 {statistics.median(samples):8.1f} us, p99 {samples[int(0.99 * (n - 1))]:8.1f} us"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--pg", default=None, help="PostgreSQL admin URL (default: SQLite)")
    p.add_argument("-n", type=int, default=2000, help="checks per case")
    args = p.parse_args()
    with fresh_database("sqlite" if args.pg is None else "postgres", args.pg or DEFAULT_PG_ADMIN) as db:
        plaintext, _rec = ApiKeyStore(db).create("bench", [Role.VIEWER])
        cached, uncached = ApiKeyStore(db), ApiKeyStore(db, ttl_s=0)
        unknown = f"oo_{'0' * 12}_{plaintext.split('_', 2)[2]}"
        assert cached.authenticate(plaintext) is not None
        assert uncached.authenticate(plaintext) is not None
        print(f"authenticate on {db.engine.dialect.name}, {args.n} checks each")
        print(f"  cached (ttl 5 s):      {timed(args.n, lambda: cached.authenticate(plaintext))}")
        print(f"  no cache (ttl 0):      {timed(args.n, lambda: uncached.authenticate(plaintext))}")
        print(f"  unknown key id:        {timed(args.n, lambda: cached.authenticate(unknown))}")


if __name__ == "__main__":
    main()
