"""Use cases, one home each: the ways in (CLI, HTTP, console, Slack, workers) call these and stay thin.

Layering: ``api -> services -> graphs -> {agents, intake} -> tools -> {guardrails, adapters} -> core``.
"""
