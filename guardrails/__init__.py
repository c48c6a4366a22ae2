"""Guardrails: the policy that decides, for every tool call an agent proposes, allow / approve / deny.

Pure code, no I/O at decision time: the tool layer describes a call (:class:`ProposedCall`), the
engine (:class:`PolicyEngine`) returns a :class:`Decision` with its reasons and the policy version.
The audit trail and the approvals store live in their own modules and only record decisions.
"""

from guardrails.calls import (
    Actor,
    CallFacts,
    CarrierUse,
    ProposedCall,
    RiskClass,
    RunTotals,
    digest_arguments,
)
from guardrails.policy import (
    Decision,
    Effect,
    Policy,
    PolicyEngine,
    approvals_complete,
    can_approve,
    load_policy,
    parse_policy,
    policy_version,
)

__all__ = [
    "Actor",
    "CallFacts",
    "CarrierUse",
    "Decision",
    "Effect",
    "Policy",
    "PolicyEngine",
    "ProposedCall",
    "RiskClass",
    "RunTotals",
    "approvals_complete",
    "can_approve",
    "digest_arguments",
    "load_policy",
    "parse_policy",
    "policy_version",
]
