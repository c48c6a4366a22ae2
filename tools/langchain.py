"""The tools as LangChain tools, for LangGraph agents and LLM planners.

Each LangChain tool is a thin shell over the gateway: the model sees the tool's docstring and its
pydantic argument schema; calling it goes through validation, simulation, policy, approval and the
audit trail like any other call. A graph gets only the tools on its allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from guardrails.calls import Actor
from tools.gateway import Proposer, RunLedger, ToolGateway


def as_langchain_tools(
    gateway: ToolGateway,
    *,
    actor: Actor,
    run: RunLedger,
    allow: Iterable[str],
    idempotency_key: Callable[[str, dict[str, Any]], str],
    proposer: Proposer = Proposer(),
) -> list[BaseTool]:
    """LangChain tools for the names in ``allow`` (unknown names raise KeyError: a typo in an
    allow-list must not silently drop a tool). ``idempotency_key(tool, args)`` derives each write's
    key, so a resumed graph that repeats a call replays it instead of acting twice."""
    tools: list[BaseTool] = []
    for name in allow:
        if name in gateway.reads:
            read = gateway.reads[name]

            def run_read(_name: str = name, **kwargs: Any) -> str:
                return gateway.read(_name, kwargs, actor=actor, run=run, proposer=proposer).model_dump_json()

            tools.append(
                StructuredTool.from_function(
                    func=run_read, name=name, description=read.description, args_schema=read.args_model
                )
            )
        elif name in gateway.writes:
            write = gateway.writes[name]

            def run_write(_name: str = name, **kwargs: Any) -> str:
                outcome = gateway.propose(
                    _name,
                    kwargs,
                    actor=actor,
                    run=run,
                    idempotency_key=idempotency_key(_name, kwargs),
                    proposer=proposer,
                )
                data = outcome.model_dump(mode="json", exclude={"preview"})
                if outcome.preview is not None:
                    data["preview_summary"] = outcome.preview.summary
                return json.dumps(data)

            tools.append(
                StructuredTool.from_function(
                    func=run_write, name=name, description=write.description, args_schema=write.args_model
                )
            )
        else:
            raise KeyError(f"no tool named {name!r}")
    return tools
