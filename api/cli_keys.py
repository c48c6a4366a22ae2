"""`orderops keys ...`: API keys from a terminal, and the one way a CLI command learns who is deciding.

A person's identity on the command line is an API key (``--key KEY`` or ``ORDEROPS_API_KEY``), the
same key the HTTP API and the console accept: the principal and roles come from the key store, the
``api_keys`` table of the installation's database (:mod:`api.auth`), never from a flag the caller fills in. Mounted by
:mod:`api.cli` (the ``keys`` group in ``MOUNTS``), imported only when one of its commands runs.

What this module must never do: print a key other than once, from ``keys create``, or accept a
self-asserted user id or role in place of a key.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.auth import ApiKeyRecord, ApiKeyStore, Principal, Role
from core.errors import PolicyDenied
from core.settings import Settings

keys_app = typer.Typer(
    help="API keys: the identity of people and scripts (CLI, HTTP API, console).", no_args_is_help=True
)

KEY_ENV = "ORDEROPS_API_KEY"
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar=KEY_ENV,
        show_envvar=True,
        help="Your API key (from `orderops keys create`): who you are and which roles you hold.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    return settings if isinstance(settings, Settings) else Settings()


def key_store(settings: Settings) -> ApiKeyStore:
    """The installation's keys: the ``api_keys`` table of the database ``settings`` names."""
    return ApiKeyStore.for_settings(settings)


def principal_for(settings: Settings, key: str | None, *, role: Role, doing: str) -> Principal:
    """The principal behind ``key``, who must hold ``role`` to do ``doing``; a clear error otherwise."""
    from api.problems import Unauthenticated  # imports FastAPI: only on the error path (CLI start-up)

    if not key:
        raise Unauthenticated(
            f"{doing} needs your API key: pass --key KEY or set {KEY_ENV} "
            f"(an admin creates one with `orderops keys create --name YOU --role {role.value}`)"
        )
    who = key_store(settings).authenticate(key.strip())
    if who is None:
        raise Unauthenticated("the API key is not valid (unknown, malformed, revoked or expired)")
    if not who.has(role):
        held = ", ".join(sorted(r.value for r in who.roles))
        raise PolicyDenied(f"{who.id} holds {held}, not {role.value}: may not {doing}", reasons=[f"needs {role.value}"])
    return who


def _record_json(rec: ApiKeyRecord) -> dict[str, Any]:
    return {**rec.model_dump(mode="json", exclude={"key_hash"}), "state": rec.state()}


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who the key stands for (recorded as approver, requester).")],
    role: Annotated[list[Role], typer.Option("--role", help="A role the key holds (repeatable).")],
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, max=3650, help="Stop working after N days.")
    ] = None,
    note: Annotated[str, typer.Option(help="Where the key is used (shown by `keys list`).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it once: it is stored hashed and cannot be shown again."""
    expires = timedelta(days=expires_in_days) if expires_in_days is not None else None
    plaintext, rec = key_store(_settings(ctx)).create(name, role, note=note, expires_in=expires)
    if as_json:
        sys.stdout.write(json.dumps({"key": plaintext, **_record_json(rec)}, indent=2) + "\n")
        return
    # The key alone on stdout, so `KEY=$(orderops keys create ...)` works; the rest on stderr.
    sys.stdout.write(plaintext + "\n")
    until = f", expires {rec.expires_at:%Y-%m-%d %H:%M} UTC" if rec.expires_at else ""
    err_console.print(
        f"Key {rec.key_id} for [bold]{rec.principal}[/] ({', '.join(r.value for r in rec.roles)}{until}). "
        "Keep it now: it is not stored and cannot be shown again."
    )


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every key with its principal, roles and state (never the key itself)."""
    records = sorted(key_store(_settings(ctx)).records(), key=lambda r: r.created_at)
    if as_json:
        sys.stdout.write(json.dumps([_record_json(r) for r in records], indent=2) + "\n")
        return
    table = Table(title=f"API keys ({len(records)})")
    for col in ("key id", "principal", "roles", "state", "created", "expires", "note"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            r.key_id,
            r.principal,
            ", ".join(x.value for x in r.roles),
            r.state(),
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else "never",
            r.note,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id (`keys list`), or the whole key.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke a key: it stops working at once here, and within 5 s (the key cache) in every process
    that shares this database."""
    parts = key_id.split("_", 2)
    ident = parts[1] if len(parts) == 3 and parts[0] == "oo" else key_id
    rec = key_store(_settings(ctx)).revoke(ident)
    if as_json:
        sys.stdout.write(json.dumps(_record_json(rec), indent=2) + "\n")
    else:
        console.print(f"Key {rec.key_id} of {rec.principal} revoked.")
