"""A process forked from one that runs the parse fork server can parse too (the eval runner forks
its workers): it used to inherit the server's bookkeeping and fail with ChildProcessError."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import os
from intake import sandbox
from intake.documents import DocumentLimits
sandbox.warm_up()
pid = os.fork()
if pid == 0:
    try:
        out = sandbox.parse_isolated(b"PO Number,SKU,Qty\\nPO-1,SKU-1,2\\n", fmt="csv", limits=DocumentLimits())
        os._exit(0 if out is not None else 3)
    except Exception as exc:
        print(type(exc).__name__, exc)
        os._exit(1)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_process_starts_its_own_fork_server() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
