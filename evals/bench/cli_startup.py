"""How long ``orderops`` takes to start: whole-process wall time of ``--help``, ``--version``,
``orderops intake ONE.x12`` and a bare interpreter, and what importing the CLI's entry point loads.

Each measurement is a fresh process (the console script when installed, else ``python -c``), timed
from spawn to exit (wall) with its CPU seconds (user + system, from ``wait4``: on a shared machine
the CPU number is the one that holds), repeated; the table gives medians and the best wall time.
Times depend on the machine and its load, so compare runs made on the same machine at the same time
(the bare interpreter's line is the floor).

Bytecode: the children run with a bytecode cache (``PYTHONPYCACHEPREFIX`` under a temporary
directory, one untimed warm-up run per command) even where the caller sets
``PYTHONDONTWRITEBYTECODE``: an installed package has its ``.pyc`` files, and without them every
run compiles every imported module again (``--no-bytecode`` measures that case).

The intake case initialises a small network in a temporary home (untimed) and ingests a freshly
generated, distinct X12 850 each run (a re-sent document would take the cheaper duplicate path).
Nothing outside the temporary directory is written.

    python -m evals.bench.cli_startup --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("langgraph", "langchain_core", "fastapi", "sqlalchemy", "pdfplumber", "openai", "alembic")
_MODULES = "import sys, json, api.cli; print(json.dumps(sorted(sys.modules)))"


def _command(argv: list[str]) -> list[str]:
    script = shutil.which("orderops", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script, *argv]
    return [sys.executable, "-c", "from api.cli import main; main()", *argv]


def child_env(tmp: Path, *, bytecode: bool, home: Path | None = None) -> dict[str, str]:
    """The children's environment: a bytecode cache under ``tmp`` (or none), the bench's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDEROPS_") and k != "DATABASE_URL"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    if home is not None:
        env["ORDEROPS_HOME"] = str(home)
    return env


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds from spawn to exit, CPU seconds of the process) for one run of ``cmd``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(make: Callable[[int], list[str]], env: dict[str, str], repeat: int) -> list[tuple[float, float]]:
    """One untimed warm-up (fills the bytecode cache), then ``repeat`` timed runs of ``make(i)``."""
    timed_run(make(repeat), env)
    return [timed_run(make(i), env) for i in range(repeat)]


def intake_setup(tmp: Path, env: dict[str, str], count: int) -> list[Path]:
    """A small network in ``tmp/home`` and ``count`` distinct X12 850 files for it."""
    subprocess.run(
        [*_command(["init", "--orders", "200", "--skus", "100", "--customers", "5", "--nodes", "3"])],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True,
    )  # fmt: skip
    from core.db import make_database
    from intake.samples import generate_documents, load_catalog

    db = make_database(url=f"sqlite:///{tmp / 'home' / 'orderops.db'}")
    try:
        docs = generate_documents(load_catalog(db), seed=3, count=count, noise=0.0, formats=("x12",))
    finally:
        db.dispose()
    paths = []
    for i, doc in enumerate(docs[:count]):
        path = tmp / f"po-{i}.x12"
        path.write_bytes(doc.data)
        paths.append(path)
    return paths


def imported_by_entry() -> list[str]:
    """The modules a fresh interpreter holds after ``import api.cli``."""
    done = subprocess.run([sys.executable, "-c", _MODULES], cwd=REPO, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert isinstance(found, list)
    return [str(m) for m in found]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-intake", action="store_true", help="skip `orderops intake ONE.x12`")
    parser.add_argument("--no-bytecode", action="store_true", help="children compile every module (no .pyc)")
    args = parser.parse_args(argv)
    repeat = min(max(1, args.repeat), 50)
    with tempfile.TemporaryDirectory(prefix="orderops-cli-startup-") as name:
        tmp = Path(name)
        env = child_env(tmp, bytecode=not args.no_bytecode, home=tmp / "home")
        cases: dict[str, Callable[[int], list[str]]] = {
            "python -c pass": lambda _: [sys.executable, "-c", "pass"],
            "orderops --help": lambda _: _command(["--help"]),
            "orderops --version": lambda _: _command(["--version"]),
        }
        if not args.no_intake:
            files = intake_setup(tmp, env, repeat + 1)
            cases["orderops intake ONE.x12"] = lambda i: _command(["intake", str(files[i])])
        cache = "no bytecode cache" if args.no_bytecode else "bytecode cached"
        print(f"{'command':<25} {'median s':>9} {'best s':>8} {'CPU s':>7}   ({repeat} runs each, {cache})")
        for label, make in cases.items():
            runs = measure(make, env, repeat)
            walls = [w for w, _ in runs]
            cpu = statistics.median(c for _, c in runs)
            print(f"{label:<25} {statistics.median(walls):>9.3f} {min(walls):>8.3f} {cpu:>7.3f}")
    modules = imported_by_entry()
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    print(f"import api.cli: {len(modules)} modules in sys.modules; heavy ones: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
