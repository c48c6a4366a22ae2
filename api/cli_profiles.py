"""`orderops profiles ...`: sourcing profiles (versioned weights and constraints), which one the
decision API uses, live A/B experiments between two of them and their report.

Reading needs nothing; changing what decides (create, activate, rollback, starting or stopping an
experiment) needs an admin's API key (``--key`` or ``ORDEROPS_API_KEY``), and the key's principal
is recorded with the change. Mounted by :mod:`api.cli` (the ``profiles`` group in ``MOUNTS``).

What this module must never do: change a stored profile version, or decide a route itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agents.sourcing import SourcingWeights
from api.auth import Role
from api.cli_common import JsonFlag, app_context, print_json, settings_of
from api.cli_keys import KeyOpt, principal_for
from core.errors import ValidationFailed
from core.settings import Settings
from services.experiments import ExperimentStore, LiveABReport, live_report
from services.profiles import ProfileConstraints, ProfileStore

profiles_app = typer.Typer(
    help="Sourcing profiles: versions, the active one, rollback, live A/B experiments.", no_args_is_help=True
)
console = Console(width=None if sys.stdout.isatty() else 160)


def _admin(settings: Settings, key: str | None, doing: str) -> str:
    return principal_for(settings, key, role=Role.ADMIN, doing=doing).id


def _ref(text: str) -> tuple[str, int | None]:
    """``name`` or ``name@vN`` (also ``name@N``)."""
    name, _, version = text.partition("@")
    if not version:
        return name, None
    try:
        return name, int(version.removeprefix("v"))
    except ValueError:
        raise ValidationFailed(f"profile {text!r}: write NAME or NAME@vN") from None


def _changed(weights: SourcingWeights) -> dict[str, Any]:
    """The weights that differ from the defaults (what makes a profile what it is)."""
    base = SourcingWeights().model_dump()
    return {k: v for k, v in weights.model_dump().items() if base[k] != v}


def _weights(source: Path | None, sets: list[str]) -> SourcingWeights:
    base = SourcingWeights.load(source).model_dump()
    for item in sets:
        field, sep, value = item.partition("=")
        if not sep or field not in base:
            raise ValidationFailed(f"--set {item!r}: write FIELD=VALUE with one of {', '.join(sorted(base))}")
        base[field] = value
    try:
        return SourcingWeights.model_validate(base)
    except ValueError as exc:
        raise ValidationFailed(f"invalid weights: {exc}") from exc


@profiles_app.command("list")
def list_cmd(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every stored version (and the built-in default v0); the active one is marked."""
    with app_context(settings_of(ctx)) as actx:
        store = ProfileStore(actx.db, actx.clock)
        profiles, active = store.list(), store.active()
    if as_json:
        print_json({"active": active.profile.label, "profiles": profiles})
        return
    t = Table("profile", "active", "weights (changed from defaults)", "constraints", "note")
    for p in profiles:
        mark = "*" if p.label == active.profile.label else ""
        t.add_row(p.label, mark, str(_changed(p.weights)), str(p.constraints.model_dump(exclude_defaults=True)), p.note)
    console.print(t)


@profiles_app.command("show")
def show_cmd(
    ctx: typer.Context, profile: Annotated[str, typer.Argument(help="NAME or NAME@vN")], as_json: JsonFlag = False
) -> None:
    """One profile version in full (the newest unless @vN is given)."""
    with app_context(settings_of(ctx)) as actx:
        p = ProfileStore(actx.db, actx.clock).get(*_ref(profile))
    print_json(p) if as_json else console.print(p.model_dump(mode="json"))


@profiles_app.command("create")
def create_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Profile name (lowercase, digits, . _ -)")],
    source: Annotated[Path | None, typer.Option("--from", help="Weights YAML (missing keys: defaults)")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="FIELD=VALUE over the weights, repeatable")] = None,
    nodes: Annotated[list[str] | None, typer.Option("--node", help="Candidate node (repeatable; default all)")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude-carrier", help="Carrier never chosen")] = None,
    no_split: Annotated[bool, typer.Option("--no-split", help="Never split an order over two nodes")] = False,
    note: Annotated[str, typer.Option("--note")] = "",
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Store the next version of NAME; nothing is activated."""
    settings = settings_of(ctx)
    who = _admin(settings, key, "create a sourcing profile")
    constraints = ProfileConstraints(
        nodes=tuple(nodes) if nodes else None, exclude_carriers=tuple(exclude or ()), allow_split=not no_split
    )
    with app_context(settings) as actx:
        p = ProfileStore(actx.db, actx.clock).create(name, _weights(source, sets or []), constraints, note=note, by=who)
    print_json(p) if as_json else console.print(
        f"created {p.label}; activate it with `orderops profiles activate {p.label}`"
    )


@profiles_app.command("activate")
def activate_cmd(
    ctx: typer.Context,
    profile: Annotated[str, typer.Argument(help="NAME or NAME@vN (default: its newest version)")],
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a profile version the one the decision API uses (servers pick it up within 0.25 s)."""
    settings = settings_of(ctx)
    who = _admin(settings, key, "activate a sourcing profile")
    with app_context(settings) as actx:
        active = ProfileStore(actx.db, actx.clock).activate(*_ref(profile), by=who)
    print_json(active) if as_json else console.print(f"active: {active.profile.label}")


@profiles_app.command("rollback")
def rollback_cmd(ctx: typer.Context, key: KeyOpt = None, as_json: JsonFlag = False) -> None:
    """Go back to the profile that was active before the current activation."""
    settings = settings_of(ctx)
    who = _admin(settings, key, "roll back the sourcing profile")
    with app_context(settings) as actx:
        active = ProfileStore(actx.db, actx.clock).rollback(by=who)
    print_json(active) if as_json else console.print(f"active: {active.profile.label} (rolled back)")


@profiles_app.command("experiment-start")
def experiment_start_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Option("--a", help="Arm A: NAME or NAME@vN")] = "default@v0",
    b: Annotated[str, typer.Option("--b", help="Arm B: NAME or NAME@vN")] = "",
    share_b: Annotated[float, typer.Option("--share-b", help="Share of orders (by hash of the id) in arm B")] = 0.5,
    mde: Annotated[float, typer.Option("--mde", help="Difference in cost to serve (USD/order) worth detecting")] = 1.0,
    name: Annotated[str, typer.Option("--name")] = "",
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Split live decisions between two profile versions until stopped."""
    settings = settings_of(ctx)
    who = _admin(settings, key, "start a sourcing experiment")
    if not b:
        raise ValidationFailed("name arm B with --b NAME[@vN]")
    with app_context(settings) as actx:
        profiles = ProfileStore(actx.db, actx.clock)
        pa, pb = profiles.get(*_ref(a)), profiles.get(*_ref(b))
        exp = ExperimentStore(actx.db, actx.clock).start(
            name or f"{pa.label} vs {pb.label}", pa, pb, share_b=share_b, mde_usd=mde, by=who
        )
    print_json(exp) if as_json else console.print(f"started {exp.id}: A {pa.label}, B {pb.label}, {share_b:.0%} to B")


@profiles_app.command("experiment-stop")
def experiment_stop_cmd(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Argument(help="Experiment id (default: the running one)")] = None,
    key: KeyOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop an experiment: decisions go back to the active profile."""
    settings = settings_of(ctx)
    _admin(settings, key, "stop a sourcing experiment")
    with app_context(settings) as actx:
        exp = ExperimentStore(actx.db, actx.clock).stop(experiment)
    print_json(exp) if as_json else console.print(f"stopped {exp.id}")


def live_ab(settings: Settings, experiment: str | None, *, resamples: int) -> LiveABReport:
    """The live report of ``experiment`` (default: the running one, else the newest)."""
    with app_context(settings) as actx:
        store = ExperimentStore(actx.db, actx.clock)
        exp = store.get(experiment) if experiment else (store.running() or store.latest())
        if exp is None:
            raise ValidationFailed("no experiment yet: start one with `orderops profiles experiment-start`")
        return live_report(actx.db, actx.adapters, actx.twin_clock, exp, resamples=resamples)


def render_live_ab(r: LiveABReport) -> str:
    """The report as text: per arm means with intervals, B - A, the horizon and the verdict."""
    e = r.experiment
    pct = f"{r.confidence:.0%}"
    lines = [f"live A/B {e.id} ({e.name}), {e.status}; {pct} bootstrap intervals"]
    for arm in r.arms:
        lines.append(f"  arm {arm.arm} {arm.profile}: {arm.decided} decided, {arm.measured} shipped")
        for m, est in arm.means.items():
            lines.append(f"    {m}: {est.mean:.4g} [{est.low:.4g}, {est.high:.4g}]")
    lines.append("  B - A:")
    for m, est in r.difference.items():
        lines.append(f"    {m}: {est.mean:+.4g} [{est.low:+.4g}, {est.high:+.4g}]")
    lines.append(
        f"  fixed horizon: {r.horizon_per_arm} shipped orders per arm (mde {e.mde_usd} USD, sd {r.sigma_cost:.3g})"
    )
    lines.append(f"  {r.verdict}")
    return "\n".join(lines)


@profiles_app.command("ab")
def ab_cmd(
    ctx: typer.Context,
    experiment: Annotated[str | None, typer.Argument(help="Experiment id (default: running, else newest)")] = None,
    resamples: Annotated[int, typer.Option("--resamples")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """The live A/B report (as `orderops eval ab --live`): outcomes of shipped orders per arm."""
    report = live_ab(settings_of(ctx), experiment, resamples=resamples)
    if as_json:
        print(report.model_dump_json(indent=1))
    else:
        console.print(render_live_ab(report), markup=False)
