"""`orderops inbox`: misconfiguration is a clear message and exit status 3, not a traceback."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from api.inbox.cli import inbox_app
from core.settings import Settings


def _app(settings: Settings) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = settings

    app.add_typer(inbox_app, name="inbox")
    return app


def test_imap_without_settings_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(Settings(home=tmp_path)), ["inbox", "imap", "--once"])
    assert result.exit_code == 3
    assert "ORDEROPS_IMAP_HOST" in result.output


def test_watch_without_a_folder_exits_3(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(Settings(home=tmp_path)), ["inbox", "watch", "--once"])
    assert result.exit_code == 3
    assert "ORDEROPS_MAILDIR_PATH" in result.output
