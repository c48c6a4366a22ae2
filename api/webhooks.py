"""Signed alert webhooks: Standard-Webhooks signature checks, and the senders' payloads as ``Alert``.

Signatures (https://www.standardwebhooks.com): the sender signs ``f"{webhook-id}.{webhook-timestamp}.{body}"``
with HMAC-SHA256 under the shared secret and sends ``webhook-signature: v1,<base64 digest>`` (several
space-separated signatures are allowed, for secret rotation). The check runs on the RAW body bytes,
before any parsing, so a re-serialized body can never pass for the signed one. A timestamp outside
the tolerance window is refused, so a captured delivery cannot be replayed later; a replay within
the window is caught by its ``webhook-id`` (see :mod:`api.routes.alerts`).

Payload mapping: a generic body is our :class:`~agents.plan.Alert`; Prometheus Alertmanager
(``{"version": "4", "alerts": [...]}``) and Datadog (``{"title", "body", "tags"}``) bodies are mapped
label by label. Text from the sender (descriptions, bodies) stays data: it lands in ``Alert.text``.

What this module must never do: accept a signature it did not recompute over the exact bytes
received, compare digests in variable time, or log a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from agents.plan import Alert, ExceptionKind
from api.inputs import unstorable
from api.problems import Unauthenticated
from core.errors import ValidationFailed

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

Source = Literal["generic", "alertmanager", "datadog"]
LABEL_KEYS = ("node", "nodes", "carrier", "carriers", "region", "state", "states", "sku", "skus", "order", "orders")
"""Labels triage reads (see :func:`agents.triage.triage_alert`); other labels are dropped."""


def secret_key(secret: str) -> bytes:
    """The HMAC key: ``whsec_<base64>`` decodes (the Standard Webhooks form), anything else is used as text."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` header value for a delivery (what a sender, and the tests, send)."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def has_signature(headers: Mapping[str, str]) -> bool:
    """Whether the request claims to be a signed delivery (then it must verify; no fallback)."""
    return any(h in headers for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))


def verify(
    secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = 300,
    now: Callable[[], float] = time.time,
) -> str:
    """Check a delivery's signature over the raw ``body``; return its webhook id or raise 401.

    ``headers`` must be case-insensitive (Starlette's are)."""
    secret, webhook_id, ts = _checked_headers(secret, headers, tolerance_s, now)
    presented = headers.get(SIGNATURE_HEADER, "")
    expected = sign(secret, webhook_id, ts, body).split(",", 1)[1].encode()
    ok = False
    for candidate in presented.split():
        version, _, value = candidate.partition(",")
        # Compare every candidate (no early exit) so timing says nothing about which one matched.
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            ok = True
    if not ok:
        raise Unauthenticated("the webhook signature does not match the body")
    return webhook_id


def check_headers(
    secret: str | None, headers: Mapping[str, str], *, tolerance_s: int = 300, now: Callable[[], float] = time.time
) -> None:
    """Everything :func:`verify` checks that needs no body (secret configured, headers present and
    well-formed, timestamp in the window): raise 401 before the body is read."""
    _checked_headers(secret, headers, tolerance_s, now)


def _checked_headers(
    secret: str | None, headers: Mapping[str, str], tolerance_s: int, now: Callable[[], float]
) -> tuple[str, str, int]:
    if not secret:
        raise Unauthenticated("signed webhooks are not configured on this server (ORDEROPS_WEBHOOK_SECRET)")
    webhook_id = headers.get(ID_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not webhook_id or not stamp or not headers.get(SIGNATURE_HEADER, ""):
        raise Unauthenticated(f"a signed webhook needs {ID_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    if len(webhook_id) > 200 or unstorable(webhook_id) is not None:
        raise Unauthenticated(f"{ID_HEADER} is too long or holds a NUL byte")
    try:
        ts = int(stamp)
    except ValueError as exc:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be whole seconds since the epoch") from exc
    if abs(now() - ts) > tolerance_s:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is outside the {tolerance_s}s window; refusing a stale delivery")
    return secret, webhook_id, ts


# --- payloads -----------------------------------------------------------------------------------


def detect(payload: Any) -> Source:
    if isinstance(payload, dict):
        if isinstance(payload.get("alerts"), list) and ("receiver" in payload or "version" in payload):
            return "alertmanager"
        if "title" in payload and ("tags" in payload or "body" in payload or "alert_type" in payload):
            return "datadog"
    return "generic"


def to_alerts(payload: Any, source: Source | None = None) -> tuple[Source, list[Alert]]:
    """The alerts in a webhook body (Alertmanager batches several; resolved ones are left out)."""
    source = source or detect(payload)
    if not isinstance(payload, dict):
        raise ValidationFailed("an alert body must be a JSON object")
    try:
        if source == "alertmanager":
            alerts = _alertmanager(payload)
        elif source == "datadog":
            alerts = [a for a in [_datadog(payload)] if a is not None]
        else:
            alerts = [Alert.model_validate(payload)]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "alert"
        raise ValidationFailed(f"not a valid {source} alert ({where}: {first['msg']})") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        # A body of the named (or detected) format with members of the wrong JSON type, e.g.
        # ``?source=alertmanager`` with ``"alerts": 3``: the sender's mistake, not ours.
        raise ValidationFailed(f"not a valid {source} alert (a member has the wrong type)") from exc
    for i, alert in enumerate(alerts):
        # What is stored is the mapped alert (members we do not read are dropped): PostgreSQL cannot
        # store a NUL in text, neither backend a lone surrogate, and no sender has a reason to send either.
        found = _unstorable_at(alert.model_dump(mode="json"))
        if found is not None:
            where, why = found
            at = f"alerts[{i}].{where}" if len(alerts) > 1 or source == "alertmanager" else where
            raise ValidationFailed(f"the alert holds {why} (at {at or 'the top level'})")
    return source, alerts


def _unstorable_at(value: Any) -> tuple[str, str] | None:
    """(path, why) of the first string (key or value) in ``value`` no database can store, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:  # iterative: a deeply nested body must not exhaust the stack
        item, at = stack.pop()
        if isinstance(item, str):
            why = unstorable(item)
            if why is not None:
                return at, why
        elif isinstance(item, dict):
            for k, v in item.items():
                why = unstorable(k) if isinstance(k, str) else None
                if why is not None:
                    return at, why
                stack.append((v, f"{at}.{k}" if at else str(k)))
        elif isinstance(item, list):
            stack.extend((v, f"{at}[{i}]") for i, v in enumerate(item))
    return None


_KIND_WORDS: tuple[tuple[re.Pattern[str], ExceptionKind], ...] = (
    (re.compile(r"congest|backlog|overload|throughput|pick.?rate", re.I), ExceptionKind.NODE_CONGESTION),
    (re.compile(r"closure|closed|shut.?down|offline|node.?down", re.I), ExceptionKind.NODE_CLOSURE),
    (re.compile(r"carrier|outage|pickup|linehaul", re.I), ExceptionKind.CARRIER_OUTAGE),
    (re.compile(r"stock.?out|out.?of.?stock|inventory|atp", re.I), ExceptionKind.STOCKOUT),
    (re.compile(r"promise|late|sla|delay", re.I), ExceptionKind.PROMISE_RISK),
    (re.compile(r"hazmat|compliance", re.I), ExceptionKind.COMPLIANCE),
)


def guess_kind(explicit: str | None, *names: str) -> ExceptionKind:
    """An explicit ``kind`` label wins; else the first kind whose words appear in the alert's name."""
    if explicit:
        try:
            return ExceptionKind(explicit.strip().lower())
        except ValueError:
            pass
    for pattern, kind in _KIND_WORDS:
        if any(pattern.search(n or "") for n in names):
            return kind
    return ExceptionKind.UNKNOWN


def _severity(value: str | None) -> Literal["info", "warning", "critical"]:
    v = (value or "").lower()
    if v in ("critical", "page", "error", "high", "p1", "p2"):
        return "critical"
    if v in ("info", "low", "none", "success", "p5"):
        return "info"
    return "warning"


def _labels(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k.lower(): str(v)[:200] for k, v in raw.items() if k.lower() in LABEL_KEYS and v not in (None, "")}


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        try:
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.year > 1 else None  # Alertmanager's zero time: not set
    return None


def _alertmanager(payload: Mapping[str, Any]) -> list[Alert]:
    out: list[Alert] = []
    group = payload.get("groupKey") or payload.get("receiver") or "am"
    for i, raw in enumerate(payload.get("alerts") or []):
        if not isinstance(raw, dict) or str(raw.get("status", "firing")).lower() == "resolved":
            continue
        raw_labels, raw_notes = raw.get("labels"), raw.get("annotations")
        labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
        notes = {str(k): str(v) for k, v in raw_notes.items()} if isinstance(raw_notes, dict) else {}
        name = labels.get("alertname", "")
        ident = raw.get("fingerprint") or f"{group}:{i}"
        started = raw.get("startsAt") or ""
        out.append(
            Alert(
                id=f"am:{ident}:{started}"[:200],
                kind=guess_kind(labels.get("kind"), name, notes.get("summary", "")),
                severity=_severity(labels.get("severity")),
                labels=_labels(labels),
                summary=(notes.get("summary") or name)[:500],
                text=(notes.get("description") or notes.get("message") or "")[:20_000],
                fired_at=_time(started),
            )
        )
    return out


def _datadog(payload: Mapping[str, Any]) -> Alert | None:
    transition = str(payload.get("alert_transition") or payload.get("transition") or "").lower()
    if transition in ("recovered", "resolved"):
        return None
    raw_tags = payload.get("tags") or []
    tags = raw_tags.split(",") if isinstance(raw_tags, str) else [str(t) for t in raw_tags]
    labels: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.strip().partition(":")
        if sep and value:
            labels.setdefault(key.strip().lower(), value.strip())
    title = str(payload.get("title") or "")
    ident = payload.get("id") or payload.get("alert_id") or payload.get("aggregate") or title
    return Alert(
        id=f"dd:{ident}"[:200],
        kind=guess_kind(labels.get("kind"), title, str(payload.get("alert_title") or "")),
        severity=_severity(str(payload.get("alert_type") or payload.get("priority") or "")),
        labels=_labels(labels),
        summary=title[:500],
        text=str(payload.get("body") or payload.get("text") or "")[:20_000],
        fired_at=_time(payload.get("date") or payload.get("last_updated")),
    )
