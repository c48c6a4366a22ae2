"""What every CLI command module shares: the consoles, ``--json`` output and the app context.

Its own module so that the command modules import it and not :mod:`api.cli`, the root that
mounts them (an import cycle before).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console

from api.bootstrap import AppContext, open_context
from core.settings import Settings

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command built (with ``--database-url`` applied)."""
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


@contextmanager
def app_context(settings: Settings) -> Iterator[AppContext]:
    ctx = open_context(settings)
    try:
        yield ctx
    finally:
        ctx.close()
