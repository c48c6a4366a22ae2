"""OrderOps foundation: settings, errors, the domain model, the database layer and geography.

Everything else in the project depends on this package; it depends on nothing of the project's.
It must never import from agents/, tools/, graphs/, intake/, guardrails/ or api/.
"""
