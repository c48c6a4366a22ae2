"""How long ``orderops`` takes to start: whole-process wall time of ``--help``, ``--version`` and a
bare interpreter, and what importing the CLI's entry point loads.

Each measurement is a fresh process (the console script when installed, else ``python -c``), timed
from spawn to exit, repeated; the table gives the median and the best. Times depend on the machine
and its load, so compare runs made on the same machine at the same time (the bare interpreter's line
is the floor). Nothing is written.

    python -m evals.bench.cli_startup --repeat 7
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("langgraph", "langchain_core", "fastapi", "sqlalchemy", "pdfplumber", "openai", "alembic")
_MODULES = "import sys, json, api.cli; print(json.dumps(sorted(sys.modules)))"


def _command(argv: list[str]) -> list[str]:
    script = shutil.which("orderops", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script, *argv]
    return [sys.executable, "-c", "from api.cli import main; main()", *argv]


def wall_times(cmd: list[str], repeat: int) -> list[float]:
    """Seconds from spawn to exit of ``cmd``, ``repeat`` times (output discarded)."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - started)
    return out


def imported_by_entry() -> list[str]:
    """The modules a fresh interpreter holds after ``import api.cli``."""
    done = subprocess.run([sys.executable, "-c", _MODULES], cwd=REPO, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert isinstance(found, list)
    return [str(m) for m in found]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "orderops --help": _command(["--help"]),
        "orderops --version": _command(["--version"]),
    }
    print(f"{'command':<22} {'median s':>9} {'best s':>8}   ({args.repeat} runs each)")
    for name, cmd in cases.items():
        times = wall_times(cmd, args.repeat)
        print(f"{name:<22} {statistics.median(times):>9.3f} {min(times):>8.3f}")
    modules = imported_by_entry()
    heavy = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    print(f"import api.cli: {len(modules)} modules in sys.modules; heavy ones: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
