"""Redaction of personal data before anything reaches the audit trail.

The audit trail is kept for years and exported to people who do not need to know who the
customers are; it must never hold a person's name, email, phone number or street address. It
must still answer "which calls touched this customer / this order / this email?", so:

* identifiers (``customer_id``, ``order_id``, ``address_id``, any key ending in ``id``) are never
  touched;
* redacted values become a keyed hash token, ``[email:3f9a1c0b2d]``: equal values (after
  normalising case, spaces and phone punctuation) give equal tokens, so rows still join, but the
  value cannot be recovered or guessed from the token without the key.

Free text is searched twice over: for what the system knows to be personal data (the names,
e-mails and streets in the customer records, given as :class:`~guardrails.known_values.KnownValues`,
so "Lakeside Office Group" in a note is found although no pattern could tell it from a phrase), and
for what looks like it (e-mails, phone numbers, street addresses, card numbers that pass the Luhn
check, IBANs that pass mod 97, US social security numbers). A pattern can name a ``check`` that a
match must pass, so an order number of sixteen digits is not mistaken for a card.

Rules are data (:class:`RedactionRules`, default in ``default_redaction.yaml``). Redaction never
raises on odd values and never changes the shape of what it is given: dicts stay dicts with the
same keys, lists keep their length.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigurationError
from guardrails._store import JsonValue, to_jsonable
from guardrails.known_values import KnownValues, KnownValuesSource

DEFAULT_RULES_PATH = Path(__file__).with_name("default_redaction.yaml")

_TOKEN = re.compile(r"\[[a-z_]+:[0-9a-f]{10}\]")
_ID_SUFFIX = re.compile(r"ids?$")
_WS = re.compile(r"\s+")


def luhn_ok(text: str) -> bool:
    """The Luhn check of payment card numbers (separators ignored), 13 to 19 digits."""
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """ISO 13616: country, check digits, account; valid when the rearranged number mod 97 is 1."""
    iban = re.sub(r"[\s-]", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


CHECKS: Mapping[str, Callable[[str], bool]] = {"luhn": luhn_ok, "iban": iban_ok}
"""Checks a pattern's match must pass (``patterns: {card: {regex: ..., check: luhn}}``)."""


def normalize_key(key: str) -> str:
    """``firstName``, ``first_name`` and ``First-Name`` are the same field."""
    return re.sub(r"[^0-9a-z]", "", key.lower())


def _compile_pattern(kind: Any, pattern: Any) -> tuple[re.Pattern[str], str | None]:
    """One ``patterns`` entry (a regex, or ``{regex: ..., check: luhn}``) compiled, with the name of
    its check; anything malformed is a :class:`ConfigurationError` naming the pattern."""
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z_]+", kind):
        raise ConfigurationError(f"redaction pattern kind must be lowercase letters, got {kind!r}")
    regex, check = pattern, None
    if isinstance(pattern, Mapping):
        regex, check = pattern.get("regex"), pattern.get("check")
        if check is not None and check not in CHECKS:
            raise ConfigurationError(f"redaction pattern {kind!r}: unknown check {check!r}, known: "
                                     f"{', '.join(sorted(CHECKS))}")  # fmt: skip
    if not isinstance(regex, str) or not regex:
        raise ConfigurationError(f"redaction pattern {kind!r} needs a regex")
    try:
        return re.compile(regex), None if check is None else str(check)
    except re.error as exc:
        raise ConfigurationError(f"redaction pattern {kind!r} is not a valid regex: {exc}") from exc


@dataclass(frozen=True)
class RedactionRules:
    """What to redact. Build with :meth:`from_mapping`, :meth:`from_yaml` or :meth:`default`."""

    key_kinds: Mapping[str, str]
    """Normalised field name -> token kind (``name``, ``email``, ``phone``, ``address``...)."""
    keep_keys: frozenset[str]
    """Normalised field names never touched (besides anything ending in ``id``/``ids``)."""
    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    """(kind, regex) applied to every other string value; where matches overlap, the earliest and
    then the longest wins, then the pattern listed first."""
    checks: Mapping[str, str] = field(default_factory=dict)
    """Pattern kind -> name of a check in :data:`CHECKS` every match must pass."""

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
        checks: dict[str, str] = {}
        for kind, pattern in patterns.items():
            rx, check = _compile_pattern(kind, pattern)
            compiled.append((kind, rx))
            if check is not None:
                checks[kind] = check
        return cls(
            key_kinds=key_kinds,
            keep_keys=frozenset(normalize_key(str(k)) for k in keep),
            patterns=tuple(compiled),
            checks=checks,
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
    numbers could be guessed by hashing candidates). ``known`` gives the personal data the system
    holds (:class:`~guardrails.known_values.RefreshingKnownValues` over the customer records in the
    app), found in free text besides the patterns.
    """

    def __init__(
        self,
        rules: RedactionRules | None = None,
        *,
        key: bytes,
        known: KnownValues | KnownValuesSource | None = None,
    ) -> None:
        if not key:
            raise ConfigurationError("the redaction key must not be empty")
        self.rules = rules if rules is not None else RedactionRules.default()
        self._key = key
        self._known = known

    def token(self, kind: str, value: str) -> str:
        """The stable token for ``value``: equal after normalisation -> equal token."""
        norm = _WS.sub(" ", value.strip()).casefold()
        if kind == "phone":
            digits = re.sub(r"\D", "", norm)
            norm = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        elif kind in ("card", "iban", "ssn"):  # "4111 1111 1111 1111" == "4111-1111-1111-1111"
            norm = re.sub(r"[\s-]", "", norm)
        mac = hmac.new(self._key, f"{kind}\x00{norm}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}:{mac[:10]}]"

    def redact(self, value: Any) -> JsonValue:
        """A copy of ``value`` (made JSON-safe) with personal data replaced by tokens."""
        return self._walk(to_jsonable(value), None)

    def redact_text(self, text: str) -> str:
        """Free text with known personal data, e-mails, phone numbers, street addresses, card numbers,
        IBANs and the like replaced by tokens; tokens already there are left as they are."""
        spans = sorted(self._spans(text), key=lambda sp: (sp[0], -(sp[1] - sp[0]), sp[3]))
        out: list[str] = []
        pos = 0
        for start, end, kind, _rank, value in spans:
            if start < pos:  # overlaps a span already taken (earlier, or as early and longer)
                continue
            out.append(text[pos:start])
            out.append(text[start:end] if kind is None else self.token(kind, value or text[start:end]))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def _known_values(self) -> KnownValues | None:
        known = self._known
        if known is None or isinstance(known, KnownValues):
            return known
        return known.current()

    def _spans(self, text: str) -> Iterator[tuple[int, int, str | None, int, str | None]]:
        """(start, end, kind or None for "keep as is", rank: lower wins a tie, the value to make
        the token of: a known value's stored form, so it gets the same token as in its field)."""
        for m in _TOKEN.finditer(text):
            yield m.start(), m.end(), None, -1, None
        known = self._known_values()
        if known is not None:
            for start, end, kind, value in known.find(text):
                yield start, end, kind, 0, value
        for rank, (kind, pattern) in enumerate(self.rules.patterns, start=1):
            check = CHECKS.get(self.rules.checks.get(kind, ""))
            for m in pattern.finditer(text):
                if m.end() > m.start() and (check is None or check(m.group(0))):
                    yield m.start(), m.end(), kind, rank, None

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
