"""``orderops eval``: run the offline eval suites, compare runs, A/B-replay sourcing configurations.

Mounted on the main app with ``app.add_typer(eval_app, name="eval")``. Results go to the
configured database (the ``eval_runs`` / ``eval_case_results`` tables) unless ``--results-db``
names another; reports (Markdown, HTML, JSON) go to ``--out``. Every case runs on its own
temporary copy of a generated network, never on the configured network.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agents.sourcing import SourcingWeights
from core.errors import OrderOpsError
from core.netgen import NetworkSpec
from core.settings import Settings
from evals.metrics import SUITES, CaseResult, Suite

eval_app = typer.Typer(help="Offline evals: suites, reports, comparisons, sourcing A/B replay.", no_args_is_help=True)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.obj if ctx is not None else None
    return obj if isinstance(obj, Settings) else Settings()


def _results_url(ctx: typer.Context, results_db: str | None) -> str:
    return results_db or _settings(ctx).resolved_database_url


def _fail(exc: OrderOpsError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.message if hasattr(exc, 'message') else exc}")
    return typer.Exit(3 if type(exc).__name__ == "ConfigurationError" else 2)


@eval_app.command("run")
def run_cmd(
    ctx: typer.Context,
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            help="intake | intake-external | exceptions | security | anomaly | risk | forecast | captured | all, "
            "or a comma list",
        ),
    ] = "all",
    planner: Annotated[str, typer.Option("--planner", help="playbook | llm")] = "playbook",
    model: Annotated[str | None, typer.Option("--model", help="LLM model name (with --planner llm)")] = None,
    trials: Annotated[int, typer.Option("--trials", min=1, help="Trials per case (for pass^k)")] = 1,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Parallel worker processes")] = 2,
    case_timeout: Annotated[float, typer.Option("--case-timeout", help="Seconds per case")] = 120.0,
    cases: Annotated[list[str] | None, typer.Option("--case", help="Only case ids starting with this")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most this many cases per suite")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="Sourcing weights YAML")] = None,
    congestion_target: Annotated[float, typer.Option("--congestion-target-days")] = 1.0,
    out: Annotated[Path | None, typer.Option("--out", help="Report directory (default <home>/evals/<run id>)")] = None,
    results_db: Annotated[str | None, typer.Option("--results-db", help="Where results are stored")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
    cassettes: Annotated[
        Path | None,
        typer.Option("--cassettes", help="With --planner llm: record model calls per case here, or replay them"),
    ] = None,
    replay_only: Annotated[
        bool, typer.Option("--replay-only", help="With --cassettes: never call the endpoint (offline replay)")
    ] = False,
    captured_dir: Annotated[
        Path | None,
        typer.Option("--captured-dir", help="Scenarios of --suite captured (default evals/datasets/captured)"),
    ] = None,
) -> None:
    """Run eval suites; store the results and write Markdown + HTML + JSON reports. With
    ``--cassettes`` a run with a real model is recorded so it can be replayed offline; a replayed
    run says so in its report."""
    from evals.report import write_reports
    from evals.runner import EvalConfig, open_results_db, run_eval

    names = [s.strip() for s in suite.split(",") if s.strip()]
    chosen: tuple[Suite, ...] = SUITES if names == ["all"] else tuple(s for s in SUITES if s in names)
    unknown = [s for s in names if s not in SUITES] if names != ["all"] else []
    if unknown or not chosen:
        err.print(f"[red]error:[/red] unknown suite {suite!r}; choose {', '.join(SUITES)}, all, or a comma list")
        raise typer.Exit(2)
    if planner not in ("playbook", "llm"):
        err.print(f"[red]error:[/red] unknown planner {planner!r}; choose playbook or llm")
        raise typer.Exit(2)
    settings = _settings(ctx)
    if planner == "llm" and not (cassettes is not None and replay_only):
        # An LLM eval without a model would grade the playbooks under the model's name.
        from tools.llm import endpoint_problem

        problem = endpoint_problem(settings.model_copy(update={"llm_model": model or settings.llm_model}))
        if problem is not None:
            err.print(f"[red]error:[/red] --planner llm: {problem}")
            raise typer.Exit(3 if not settings.llm_base_url else 1)
    try:
        config = EvalConfig(
            suites=chosen,
            planner=planner,  # type: ignore[arg-type]
            model=model or (settings.llm_model if planner == "llm" else None),
            trials=trials,
            workers=workers,
            case_timeout_s=case_timeout,
            weights=SourcingWeights.load(weights),
            congestion_target_days=congestion_target,
            policy_path=settings.policy_path,
            cases=tuple(cases or ()),
            limit=limit,
            llm_base_url=settings.llm_base_url,
            llm_api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            cassettes=cassettes,
            replay_only=replay_only,
            captured_dir=captured_dir,
        )
        db = open_results_db(_results_url(ctx, results_db))
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=err,
        disable=as_json,
    )
    state: dict[str, Any] = {}

    def on_start(total: int) -> None:
        state["task"] = progress.add_task("eval cases", total=total, failed=0)

    def on_result(r: CaseResult, done: int, _total: int) -> None:
        state["failed"] = state.get("failed", 0) + (not r.passed)
        progress.update(state["task"], completed=done, failed=state["failed"])

    try:
        with progress:
            run = run_eval(config, results_db=db, on_result=on_result, on_start=on_start)
    except OrderOpsError as exc:  # e.g. a captured scenario file that does not validate
        raise _fail(exc) from exc
    finally:
        db.dispose()
    target = out or Path(settings.home) / "evals" / run.id
    paths = write_reports(run, target)
    if as_json:
        print(json.dumps({"run_id": run.id, "metrics": run.metrics, "reports": {k: str(v) for k, v in paths.items()}}))
        return
    _print_headline(run)
    console.print(f"run [bold]{run.id}[/bold]: reports in {target}")


def _print_headline(run: Any) -> None:
    from evals.report import headline

    for suite, values in headline(run.metrics).items():
        t = Table(title=suite, show_header=False)
        for k, v in values.items():
            t.add_row(k, v)
        console.print(t)


def _load(ref: str, url: str) -> Any:
    from evals.runner import EvalRun, load_run, open_results_db

    path = Path(ref)
    if path.is_dir():
        path = path / "run.json"
    if path.suffix == ".json" and path.exists():
        return EvalRun.model_validate_json(path.read_text(encoding="utf-8"))
    db = open_results_db(url)
    try:
        return load_run(db, ref)
    finally:
        db.dispose()


@eval_app.command("compare")
def compare_cmd(
    ctx: typer.Context,
    run_a: Annotated[str, typer.Argument(help="Baseline: a run id, a run.json or a report directory")],
    run_b: Annotated[str, typer.Argument(help="Candidate: a run id, a run.json or a report directory")],
    threshold: Annotated[float, typer.Option("--threshold", help="Allowed worsening (rates: absolute)")] = 0.02,
    results_db: Annotated[str | None, typer.Option("--results-db")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Improvements and regressions of RUN_B against RUN_A; exit 1 on any regression."""
    from evals.compare import compare_runs, render_comparison

    url = _results_url(ctx, results_db)
    try:
        a, b = _load(run_a, url), _load(run_b, url)
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    c = compare_runs(a, b, threshold=threshold)
    if as_json:
        print(json.dumps({**c.model_dump(mode="json"), "regressions": c.regressions}))
    else:
        console.print(render_comparison(c), markup=False)
    if c.regressions:
        raise typer.Exit(1)


@eval_app.command("ab")
def ab_cmd(
    ctx: typer.Context,
    a: Annotated[Path | None, typer.Option("--a", help="Arm A sourcing weights YAML (default weights)")] = None,
    b: Annotated[Path | None, typer.Option("--b", help="Arm B sourcing weights YAML (default weights)")] = None,
    db_url: Annotated[str | None, typer.Option("--db-url", help="Replay this network (default: generated)")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated network")] = 7,
    orders: Annotated[int, typer.Option("--orders", help="Orders in the generated network")] = 2000,
    resamples: Annotated[int, typer.Option("--resamples")] = 1000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Report the live experiment (orderops profiles) instead of a replay")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="With --live: this experiment (default: running, else newest)")
    ] = None,
) -> None:
    """Replay the same orders through two sourcing configurations; cost, on-time and split rates.
    With ``--live``: the live A/B experiment's decisions joined to their shipped outcomes."""
    if live:
        from api.cli_profiles import live_ab, render_live_ab

        live_report = live_ab(_settings(ctx), experiment, resamples=resamples)
        if as_json:
            print(live_report.model_dump_json(indent=1))
        else:
            console.print(render_live_ab(live_report), markup=False)
        return
    from api.bootstrap import make_clock
    from core.db import check_schema, make_database
    from evals.ab import ab_replay, render_ab
    from evals.env import CaseEnv, fresh_database
    from tools.adapters.embedded import embedded_adapters

    try:
        wa, wb = SourcingWeights.load(a), SourcingWeights.load(b)
        if db_url:
            db = make_database(url=db_url)
            check_schema(db)
            clock = make_clock(_settings(ctx), db)
            adapters = embedded_adapters(db, clock)
        else:
            spec = NetworkSpec(seed=seed, nodes=8, skus=200, customers=20, orders=orders)
            db = fresh_database(Path(tempfile.mkdtemp(prefix="orderops-ab-")), spec, "ab")
            env = CaseEnv.build(db, spec, None)
            clock, adapters = env.clock, env.adapters
        try:
            report = ab_replay(adapters, clock, wa, wb, db=db, resamples=resamples)
        finally:
            db.dispose()
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    if as_json:
        print(report.model_dump_json(indent=1))
    else:
        console.print(render_ab(report), markup=False)


@eval_app.command("capture")
def capture_cmd(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A finished run of this installation (orderops runs list)")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the scenario file (default evals/datasets/captured)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Save a finished run as an eval scenario (trigger, network as of its start, what it did and what
    people decided), personal data redacted as in the audit trail; `eval run --suite captured` replays it."""
    from api.bootstrap import open_context
    from evals.capture import Source, capture, write_scenario

    settings = _settings(ctx)
    try:
        actx = open_context(settings)
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    try:
        redactor = actx.guard.audit.redactor
        if redactor is None:  # pragma: no cover - the app's trail always redacts
            raise typer.Exit(3)
        src = Source(db=actx.db, audit=actx.guard.audit, redactor=redactor, twin_clock_mode=settings.clock,
                     writes=actx.gateway.writes)  # fmt: skip
        scenario = capture(src, run_id)
        path = write_scenario(scenario, out)
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    finally:
        actx.close()
    if as_json:
        print(json.dumps({"scenario": scenario.id, "path": str(path), "snapshot": scenario.snapshot.as_of}))
        return
    console.print(f"captured run {run_id} as [bold]{scenario.id}[/bold]: {path}")
    console.print(f"snapshot: {scenario.snapshot.note}")
    console.print("replay it: orderops eval run --suite captured" + (f" --captured-dir {out}" if out else ""))


@eval_app.command("list")
def list_cmd(
    ctx: typer.Context,
    results_db: Annotated[str | None, typer.Option("--results-db")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stored eval runs, newest first."""
    from evals.runner import list_runs, open_results_db

    try:
        db = open_results_db(_results_url(ctx, results_db))
    except OrderOpsError as exc:
        raise _fail(exc) from exc
    try:
        runs = list_runs(db)
    finally:
        db.dispose()
    if as_json:
        print(json.dumps(runs))
        return
    t = Table("id", "started", "suites", "planner", "code", "status")
    for r in runs:
        t.add_row(r["id"], r["started_at"], ",".join(r["suites"]), r["planner"], r["code_version"], r["status"])
    console.print(t)
