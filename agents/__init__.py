"""Agent logic: triage, fact gathering, planning (deterministic playbooks and the LLM planner),
sourcing decisions, verification and reports. Agents call the systems only through tools (the
gateway); they never touch adapters or the database directly."""
