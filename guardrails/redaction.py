"""Redaction of personal data before anything reaches the audit trail.

The audit trail is kept for years and exported to people who do not need to know who the
customers are; it must never hold a person's name, email, phone number or street address. It
must still answer "which calls touched this customer / this order / this email?", so:

* identifiers (``customer_id``, ``order_id``, ``address_id``, any key ending in ``id``) are never
  touched;
* redacted values become a keyed hash token, ``[email:3f9a1c0b2d]``: equal values (after
  normalising case, spaces and phone punctuation) give equal tokens, so rows still join, but the
  value cannot be recovered or guessed from the token without the key.

Rules are data (:class:`RedactionRules`, default in ``default_redaction.yaml``). Redaction never
raises on odd values and never changes the shape of what it is given: dicts stay dicts with the
same keys, lists keep their length.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigurationError
from guardrails._store import JsonValue, to_jsonable

DEFAULT_RULES_PATH = Path(__file__).with_name("default_redaction.yaml")

_TOKEN = re.compile(r"\[[a-z_]+:[0-9a-f]{10}\]")
_ID_SUFFIX = re.compile(r"ids?$")
_WS = re.compile(r"\s+")


def normalize_key(key: str) -> str:
    """``firstName``, ``first_name`` and ``First-Name`` are the same field."""
    return re.sub(r"[^0-9a-z]", "", key.lower())


@dataclass(frozen=True)
class RedactionRules:
    """What to redact. Build with :meth:`from_mapping`, :meth:`from_yaml` or :meth:`default`."""

    key_kinds: Mapping[str, str]
    """Normalised field name -> token kind (``name``, ``email``, ``phone``, ``address``...)."""
    keep_keys: frozenset[str]
    """Normalised field names never touched (besides anything ending in ``id``/``ids``)."""
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    """(kind, regex) applied, in order, to every other string value."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RedactionRules:
        """Validate a rules mapping (the YAML shape); a bad rule is a :class:`ConfigurationError`."""
        keys = data.get("keys") or {}
        keep = data.get("keep") or []
        patterns = data.get("patterns") or {}
        if not isinstance(keys, Mapping) or not isinstance(keep, list) or not isinstance(patterns, Mapping):
            raise ConfigurationError("redaction rules need `keys` (mapping), `keep` (list), `patterns` (mapping)")
        key_kinds: dict[str, str] = {}
        for key, kind in keys.items():
            if not isinstance(kind, str) or not re.fullmatch(r"[a-z_]+", kind):
                raise ConfigurationError(f"redaction kind for key {key!r} must be lowercase letters, got {kind!r}")
            key_kinds[normalize_key(str(key))] = kind
        compiled: list[tuple[str, re.Pattern[str]]] = []
        for kind, pattern in patterns.items():
            if not isinstance(kind, str) or not re.fullmatch(r"[a-z_]+", kind):
                raise ConfigurationError(f"redaction pattern kind must be lowercase letters, got {kind!r}")
            try:
                compiled.append((kind, re.compile(str(pattern))))
            except re.error as exc:
                raise ConfigurationError(f"redaction pattern {kind!r} is not a valid regex: {exc}") from exc
        return cls(
            key_kinds=key_kinds,
            keep_keys=frozenset(normalize_key(str(k)) for k in keep),
            patterns=tuple(compiled),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> RedactionRules:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read redaction rules {path}: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"redaction rules {path} must be a mapping")
        return cls.from_mapping(data)

    @classmethod
    def default(cls) -> RedactionRules:
        return cls.from_yaml(DEFAULT_RULES_PATH)

    def is_kept(self, key: str) -> bool:
        norm = normalize_key(key)
        return norm in self.keep_keys or bool(_ID_SUFFIX.search(norm))


class Redactor:
    """Applies :class:`RedactionRules` with a secret key for the tokens.

    The key must be the same for every process writing one trail (otherwise equal values stop
    matching) and must not be stored beside the trail (otherwise short values such as phone
    numbers could be guessed by hashing candidates).
    """

    def __init__(self, rules: RedactionRules | None = None, *, key: bytes) -> None:
        if not key:
            raise ConfigurationError("the redaction key must not be empty")
        self.rules = rules if rules is not None else RedactionRules.default()
        self._key = key

    def token(self, kind: str, value: str) -> str:
        """The stable token for ``value``: equal after normalisation -> equal token."""
        norm = _WS.sub(" ", value.strip()).casefold()
        if kind == "phone":
            digits = re.sub(r"\D", "", norm)
            norm = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        mac = hmac.new(self._key, f"{kind}\x00{norm}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}:{mac[:10]}]"

    def redact(self, value: Any) -> JsonValue:
        """A copy of ``value`` (made JSON-safe) with personal data replaced by tokens."""
        return self._walk(to_jsonable(value), None)

    def redact_text(self, text: str) -> str:
        """Free text with emails, phone numbers and street addresses replaced by tokens."""
        for kind, pattern in self.rules.patterns:
            text = pattern.sub(self._replacer(kind), text)
        return text

    def _replacer(self, kind: str) -> Callable[[re.Match[str]], str]:
        return lambda match: self._token_unless_token(kind, match.group(0))

    def _token_unless_token(self, kind: str, value: str) -> str:
        return value if _TOKEN.fullmatch(value) else self.token(kind, value)

    def _walk(self, value: JsonValue, kind: str | None) -> JsonValue:
        if isinstance(value, dict):
            out: dict[str, JsonValue] = {}
            for key, item in value.items():
                if self.rules.is_kept(key):
                    out[key] = item
                else:
                    out[key] = self._walk(item, self.rules.key_kinds.get(normalize_key(key), kind))
            return out
        if isinstance(value, list):
            return [self._walk(item, kind) for item in value]
        if kind is not None and isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            return self._token_unless_token(kind, text) if text.strip() else value
        if isinstance(value, str):
            return self.redact_text(value)
        return value
