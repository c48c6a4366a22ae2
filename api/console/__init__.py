"""The operations console: server-rendered pages under ``/console`` in the same FastAPI app.

Approvals (with the simulated preview, subset-by-filter approval and argument edits), runs and
their timelines, the network, and the audit trail. Sign-in takes the API's own keys and roles;
every action goes through the tool gateway. :func:`install` mounts it on an app.
"""

from api.console.routes import ContinueRun, install

__all__ = ["ContinueRun", "install"]
