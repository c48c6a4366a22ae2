"""HTTP routes, one module per area; each exposes ``router``. Only ``api/`` knows HTTP."""
