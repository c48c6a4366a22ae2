"""Deterministic playbooks, one per exception kind, behind the :class:`~agents.plan.Planner` protocol."""

from agents.playbooks.planner import PlaybookPlanner

__all__ = ["PlaybookPlanner"]
