"""Benchmark of the LLM planner's prompt size against the number of affected orders.

The planner's fact sheet shows the orders in scope as counts (per status, node, promise bucket,
customer tier, service level, SKU) and a few exemplars, and the model names sets of orders by
filter, so the prompt must not grow with the incident. This seeds one SQLite network, puts
1k / 10k / 100k unreleased orders on one DC (a direct SQL update of node and status: the bench only
reads, so stock reservations do not matter), triages a congestion there and renders exactly what
one planner call sends: the system prompt with the JSON-mode instructions, the fact sheet and the
tool signatures (the schema itself goes in ``response_format``, which the server turns into a
grammar, not prompt tokens; its size is printed too). Tokens are :func:`tools.llm.estimate_tokens` (chars / 3, the
estimate the per-call budget is enforced on; it errs high). Also printed: the time to build the
fact sheet (count queries) and the default per-call budget.

No model is called. It only creates and deletes its own temporary SQLite file.

    python -m evals.bench.bench_llm_prompt --sizes 1000,10000,100000
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

from langchain_core.messages import HumanMessage, SystemMessage
from sqlalchemy import text

from agents.llm_planner import DEFAULT_WRITE_TOOLS, SELECTOR_EXAMPLE, gather_facts, render_input, tool_spec
from agents.plan import ExceptionKind, Scope, Triage
from core.clock import FixedClock
from core.db import make_database, migrate
from core.netgen import NetworkSpec, generate_network
from core.settings import Settings
from prompts import load_prompt
from tools.adapters.embedded import embedded_adapters
from tools.base import ToolEnv
from tools.llm import _with_json_instruction, estimate_tokens, proposals_schema
from tools.write import WRITE_TOOLS


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="1000,10000,100000", help="affected orders, comma-separated")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    spec = NetworkSpec(seed=args.seed, nodes=8, skus=300, customers=40, orders=max(sizes) + 2000)
    tmp = Path(tempfile.mkdtemp(prefix="orderops_bench_prompt_"))
    try:
        db = make_database(url=f"sqlite:///{(tmp / 'bench.db').as_posix()}")
        migrate(db)
        started = time.perf_counter()
        generate_network(db, spec)
        print(f"seeded {spec.orders:,} orders in {time.perf_counter() - started:.1f}s")
        clock = FixedClock(datetime.combine(spec.business_date, dtime(9, 0), tzinfo=UTC))
        env = ToolEnv(embedded_adapters(db, clock), clock)
        node = next(n.id for n in env.adapters.wms.list_nodes() if n.id.startswith("DC-"))
        prompt = load_prompt("exception_planner")
        specs = [tool_spec(t) for t in WRITE_TOOLS if t.name in DEFAULT_WRITE_TOOLS]
        schema = json.dumps(proposals_schema(specs))
        budget = Settings().llm_max_prompt_tokens
        rows = []
        for size in sizes:
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE orders SET status = 'shipped' WHERE node_id = :n"), {"n": node})
                conn.execute(
                    text(
                        "UPDATE orders SET node_id = :n, status = 'created' WHERE id IN "
                        "(SELECT id FROM orders ORDER BY id LIMIT :k)"
                    ),
                    {"n": node, "k": size},
                )
            triage = Triage(
                kind=ExceptionKind.NODE_CONGESTION,
                scope=Scope(node_ids=[node]),
                summary=f"{node} congested",
                source="alert",
                quoted_text=f"{node} backlog over capacity",
            )
            t0 = time.perf_counter()
            facts = gather_facts(triage, env)
            facts_s = time.perf_counter() - t0
            messages = _with_json_instruction(
                [SystemMessage(prompt.system), HumanMessage(render_input(prompt, triage, facts))],
                None,
                specs,
                SELECTOR_EXAMPLE,
            )
            tokens = estimate_tokens(messages)
            rows.append((facts["orders_in_scope"]["total"], tokens, len(json.dumps(facts)), facts_s))
        print(f"\nLLM planner prompt per call (json_schema mode), congestion at {node}; per-call budget {budget}")
        print(f"(response_format schema: {len(schema):,} chars, the same for every size)")
        print(f"{'affected':>10} {'prompt tok':>11} {'facts chars':>12} {'facts s':>8}")
        for total, tokens, chars, secs in rows:
            print(f"{total:>10,} {tokens:>11,} {chars:>12,} {secs:>8.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
