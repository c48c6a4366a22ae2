"""``orderops llm check``: what the configured model endpoint supports, and how fast it answers.

A user who points OrderOps at a model (``ORDEROPS_LLM_BASE_URL``, ``ORDEROPS_LLM_MODEL``) needs
to know before the first run whether it will be used at all: whether anything answers, whether
the server returns native tool calls or honours a JSON schema (:mod:`tools.llm` works either way,
but says which), and how slow it is (on a CPU, minutes per planner call). The probe result is
stored where runs read it (``<home>/llm-capabilities.json``), so runs do not probe again.

Exit codes: 0 usable, 1 unreachable or failing, 3 not configured. It never prints the API key.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console

from core.settings import Settings
from tools.llm import EndpointUnavailable, capability_cache, endpoint_problem, make_chat_model, probe

llm_app = typer.Typer(help="The model endpoint: what it supports, how fast it answers.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)


@llm_app.callback()
def _group() -> None:
    """The model endpoint: what it supports, how fast it answers."""  # a group even with one command


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


@llm_app.command("check")
def check(
    ctx: typer.Context,
    refresh: Annotated[bool, typer.Option("--refresh", help="Probe again even if a result is stored")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Probe the endpoint: native tool calls, JSON schema, latency and tokens/s; store the result."""
    settings = _settings(ctx)
    out: dict[str, object] = {
        "base_url": settings.llm_base_url,
        "model": settings.llm_model,
        "mode_setting": settings.llm_mode,
        "timeout_s": settings.llm_timeout_s,
        "max_tokens": settings.llm_max_tokens,
        "temperature": settings.llm_temperature,
        "seed": settings.llm_seed,
    }
    problem = endpoint_problem(settings)
    if problem is not None:
        out["problem"] = problem
        _emit(out, as_json)
        raise typer.Exit(3 if not settings.llm_configured else 1)
    cache = capability_cache(settings)
    base_url, model = settings.llm_base_url or "", settings.llm_model or ""
    caps = None if refresh else cache.get(base_url, model)
    out["cached"] = caps is not None
    if caps is None:
        chat = make_chat_model(settings)
        assert chat is not None  # configured, checked above
        try:
            caps = probe(chat, base_url=base_url, model=model)
        except EndpointUnavailable as exc:
            out["problem"] = str(exc)
            _emit(out, as_json)
            raise typer.Exit(1) from exc
        cache.put(caps)
    mode = caps.best_mode() if settings.llm_mode == "auto" else settings.llm_mode
    out.update(
        native_tools=caps.native_tools,
        json_schema=caps.json_schema,
        mode=mode,
        latency_s=caps.latency_s,
        tokens_per_s=caps.tokens_per_s,
        probed_at=caps.probed_at,
        notes=caps.notes,
    )
    _emit(out, as_json)


def _emit(out: dict[str, object], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return
    console.print(f"endpoint: {out['base_url'] or '(not set)'}  model: {out['model'] or '(not set)'}", highlight=False)
    if "problem" in out:
        console.print(f"[red]not usable:[/red] {out['problem']}", highlight=False)
        return
    yes = {True: "[green]yes[/green]", False: "[yellow]no[/yellow]"}
    console.print(f"native tool calls: {yes[bool(out['native_tools'])]}")
    console.print(f"response_format JSON schema: {yes[bool(out['json_schema'])]}")
    console.print(f"structured output mode used: [bold]{out['mode']}[/bold] (setting: {out['mode_setting']})")
    stored = f" (stored probe from {out['probed_at']}; --refresh to probe again)" if out.get("cached") else ""
    console.print(
        f"latency of a short answer: {out['latency_s']} s; {out['tokens_per_s'] or '?'} answer tokens/s "
        f"(prompt time included){stored}",
        highlight=False,
    )
    console.print(
        f"settings: timeout {out['timeout_s']} s, max tokens {out['max_tokens']}, temperature {out['temperature']}, "
        f"seed {out['seed']}",
        highlight=False,
    )
    notes = out.get("notes")
    for note in notes if isinstance(notes, list) else []:
        console.print(f"note: {note}", highlight=False)
