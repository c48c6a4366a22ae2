"""``orderops --help`` and ``--version`` start without the heavy libraries (issue 12).

Behaviour, not timing: in a fresh interpreter, importing the CLI's entry point and building its
help must not import LangGraph, LangChain, FastAPI, SQLAlchemy, the PDF parser or the LLM client —
the commands that need them import them when they run (:mod:`api.cli_lazy`). Timings are printed
by ``evals/bench/cli_startup.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from api.cli import MOUNTS
from api.cli_lazy import load
from tests.conftest import REPO

HEAVY = ("langgraph", "langchain_core", "fastapi", "sqlalchemy", "pdfplumber", "openai", "alembic")

_PROBE = """
import io, json, sys
from contextlib import redirect_stdout
from api.cli import run
with redirect_stdout(io.StringIO()) as out:
    code = run(sys.argv[1:])
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _probe(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_none_of_the_heavy_libraries(argv: list[str]) -> None:
    found = _probe(*argv)
    modules = found["modules"]
    assert isinstance(modules, list)
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert loaded == [], f"orderops {' '.join(argv)} imported {loaded}"
    assert not any(
        str(m).startswith(("api.cli_", "api.inbox", "graphs", "intake")) for m in modules if m != "api.cli_lazy"
    )
    assert found["code"] == 0


def test_help_lists_every_command_without_loading_it() -> None:
    out = str(_probe("--help")["out"])
    for mount in MOUNTS:
        assert re.search(rf"^  {re.escape(mount.name)}\s+{re.escape(mount.help[:20])}", out, re.MULTILINE), mount.name


def test_a_command_is_loaded_when_it_runs() -> None:
    """The probe in reverse: a command that needs a heavy library gets it (the laziness is real)."""
    found = _probe("runs", "--help")
    assert found["code"] == 0
    assert "langgraph" in {str(m).split(".")[0] for m in found["modules"]}  # type: ignore[attr-defined]
    assert "undo" in str(found["out"])  # the group's command from another module is mounted too


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


@pytest.mark.parametrize("mount", MOUNTS, ids=lambda m: m.name)
def test_the_listed_help_is_the_commands_own(mount: object) -> None:
    """The help ``--help`` shows before loading a command is what the loaded command says."""
    from api.cli_lazy import Mount

    assert isinstance(mount, Mount)
    real = load(mount)
    assert real.name == mount.name
    assert _first_paragraph(real.short_help or real.help) == mount.help
    for name, _ in mount.extra:
        assert name in real.commands
