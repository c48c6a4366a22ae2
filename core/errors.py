"""The one error hierarchy of OrderOps.

Three families, kept apart because callers treat them differently:

* :class:`DomainError` — the request is wrong for the current state of the business (unknown SKU,
  illegal status change, not enough stock). A person can act on the message. Never retried.
* :class:`ControlFlow` — agent control flow (approval required, retry a tool). Not failures.
* :class:`ConfigurationError` — the installation is wrong (schema newer than code, bad policy file).

Each error has a stable ``code`` so that API clients, Slack and tests can match on it without
parsing messages. The HTTP mapping lives in one place, in ``api/``; nothing here knows HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OrderOpsError(Exception):
    """Base of every error OrderOps raises on purpose."""

    code: ClassVar[str] = "orderops_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class DomainError(OrderOpsError):
    """The request does not fit the business rules or the current state."""

    code = "domain_error"


class NotFound(DomainError):
    """An entity the caller named does not exist."""

    code = "not_found"

    def __init__(self, kind: str, ident: object, message: str | None = None) -> None:
        super().__init__(message or f"{kind} {ident!r} does not exist", kind=kind, id=str(ident))
        self.kind = kind
        self.ident = ident


class ValidationFailed(DomainError):
    """Input is malformed or out of range (negative quantity, empty batch, bad date)."""

    code = "validation_failed"


class InvalidTransition(DomainError):
    """An order status change the lifecycle does not allow."""

    code = "invalid_transition"


class InsufficientInventory(DomainError):
    """Not enough available-to-promise stock to reserve what was asked."""

    code = "insufficient_inventory"


class Conflict(DomainError):
    """The state changed under the caller (optimistic check failed, duplicate key, decided twice)."""

    code = "conflict"


class PolicyDenied(DomainError):
    """Policy forbids the call. ``details['reasons']`` says why in words a person reads."""

    code = "policy_denied"


class ControlFlow(OrderOpsError):
    """Not an error of the request: tells an agent what to do next."""

    code = "control_flow"


class ApprovalRequired(ControlFlow):
    """The call may run only after a person approves it."""

    code = "approval_required"


class ConfigurationError(OrderOpsError):
    """The installation or configuration is wrong; an operator must fix it, not the caller."""

    code = "configuration_error"


class SchemaTooNew(ConfigurationError):
    """The database was migrated by a newer OrderOps than this one; refusing to touch it."""

    code = "schema_too_new"
