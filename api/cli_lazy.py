"""Subcommands imported when they run, not when ``orderops`` starts.

Every command module pulls in what its work needs (LangGraph, the LLM client, SQLAlchemy, FastAPI,
the PDF parsers): imported up front, they made ``orderops --help`` take seconds and every command
pay for all the others. The root group lists each command from a :class:`Mount` — its name, where
it lives and its one-line help — and imports the module only when the command is invoked (or its
own ``--help`` is asked for).

What this module must never do: import a command module to list it, or change what a command does
once loaded (the loaded command is the module's own Typer command, unchanged).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Mount:
    """A command or group of the root, named before its module is imported."""

    name: str
    target: str
    """``module:attribute``: a :class:`typer.Typer` (a group) or a command function."""
    help: str
    """What ``orderops --help`` shows; a test checks it against the loaded command's own help."""
    extra: tuple[tuple[str, str], ...] = ()
    """``(name, "module:function")`` commands added to a group that live in another module."""


def resolve(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _command(name: str, target: str) -> Any:
    """The Typer command ``name`` built from the function at ``target`` (as ``app.command(name)``)."""
    one = typer.Typer()
    one.command(name)(resolve(target))
    return typer.main.get_command(one)


def load(mount: Mount) -> Any:
    """The real click command behind ``mount`` (imports its module)."""
    found = resolve(mount.target)
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(found)
        for name, target in mount.extra:
            group.add_command(_command(name, target), name)
        command: Any = group
    else:
        command = _command(mount.name, mount.target)
    command.name = mount.name
    return command


class _Listed(TyperCommand):
    """Stands in for a mounted command in listings (help, suggestions) until it is invoked."""

    def __init__(self, mount: Mount) -> None:
        super().__init__(mount.name, help=mount.help)
        self.mount = mount


class LazyGroup(TyperGroup):
    """A Typer group whose :attr:`mounts` are imported on first use. Commands added the ordinary
    way (``app.add_typer``, ``@app.command``) work as well, listed after the mounts."""

    mounts: ClassVar[Sequence[Mount]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        eager = dict(self.commands)
        self.commands.clear()
        for m in self.mounts:
            self.commands[m.name] = _Listed(m)
        self.commands.update(eager)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command's whole first paragraph, wrapped (click cuts it at ~45 characters).

        Used where the group renders plain help (``rich_markup_mode=None``): Typer's Rich help
        imports Rich's Markdown, syntax and traceback renderers, which cost more than everything
        else ``orderops --help`` loads."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, " ".join((cmd.short_help or cmd.help or "").split("\n\n")[0].split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args:
            listed = self.commands.get(args[0])
            if isinstance(listed, _Listed):
                self.commands[args[0]] = load(listed.mount)
        return super().resolve_command(ctx, args)
