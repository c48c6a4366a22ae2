"""The personal data the system already holds, as a matcher the redactor runs over free text.

Patterns find what looks like an e-mail or a street address; they cannot know that "Lakeside
Office Group" is a customer or that "8206 LAKEVIEW ST" is a ship-to address. The customer records
can: :func:`load_customer_values` reads every customer's name and e-mail and every address's
name and street, and :class:`KnownValues` finds them anywhere in a text (case- and
space-insensitive, whole words only) with one compiled regular expression built as a trie, so the
cost per character stays bounded by the longest value rather than growing with their number.
:class:`RefreshingKnownValues` keeps the matcher current (rebuilt when older than ``max_age_s``,
or on :meth:`~RefreshingKnownValues.refresh`).

What it must never do: hand out a half-built matcher, or hide a failed load as an empty one (the
redactor would then let every customer name through); a failed load raises, and the next call
tries again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select

from core.db.engine import Database
from core.db.tables import AddressRow, CustomerRow

__all__ = [
    "KnownValues",
    "KnownValuesSource",
    "RefreshingKnownValues",
    "customer_values",
    "load_customer_values",
]

MIN_CHARS = 4
"""Shorter values ("Bo", "3 A St") would match ordinary words and numbers everywhere."""

_WS = re.compile(r"\s+")


def _normalize(value: str) -> str:
    return _WS.sub(" ", value.strip()).lower()


_Trie = dict[str, "_Trie"]
_END = ""  # the key marking "a value ends here" (a real child key is always one character)


def _trie_regex(node: _Trie) -> str:
    """``{"a": {"b": {END}, "c": {END}}}`` -> ``a(?:b|c)``; spaces match any run of whitespace."""
    alternatives = []
    for ch in sorted(k for k in node if k != _END):
        head = r"\s+" if ch == " " else re.escape(ch)
        alternatives.append(head + _trie_regex(node[ch]))
    if not alternatives:
        return ""
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    if _END in node:  # a value may end here, or go on to a longer one (greedy: the longest wins)
        return f"(?:{body})?"
    return body


@dataclass(frozen=True)
class KnownValues:
    """Values to find in free text, each with the token kind it gets (``name``, ``address``...)."""

    kinds: dict[str, str] = field(default_factory=dict)
    """Normalised value (lower case, single spaces) -> kind."""
    pattern: re.Pattern[str] | None = None

    @classmethod
    def build(cls, values: Iterable[tuple[str, str]]) -> KnownValues:
        """From ``(kind, value)`` pairs; the first kind given for a value wins, values shorter than
        :data:`MIN_CHARS` or without a letter are left out."""
        kinds: dict[str, str] = {}
        for kind, value in values:
            norm = _normalize(value)
            if len(norm) >= MIN_CHARS and any(c.isalpha() for c in norm):
                kinds.setdefault(norm, kind)
        if not kinds:
            return cls()
        root: _Trie = {}
        for norm in kinds:
            node = root
            for ch in norm:
                node = node.setdefault(ch, {})
            node[_END] = {}
        # Whole words only: "Acme" must not match inside "Acmeville" or an e-mail's "acme.com".
        regex = r"(?<![\w@.])" + _trie_regex(root) + r"(?![\w@]|\.\w)"
        return cls(kinds=kinds, pattern=re.compile(regex, re.IGNORECASE))

    def __len__(self) -> int:
        return len(self.kinds)

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """``(start, end, kind)`` of every known value in ``text``, left to right, longest first."""
        if self.pattern is None:
            return
        for m in self.pattern.finditer(text):
            kind = self.kinds.get(_normalize(m.group(0)))
            if kind is not None and m.end() > m.start():
                yield m.start(), m.end(), kind


class KnownValuesSource(Protocol):
    """Anything that gives the current :class:`KnownValues` (a loader wrapped for freshness)."""

    def current(self) -> KnownValues: ...


def customer_values(db: Database) -> Iterator[tuple[str, str]]:
    """``(kind, value)`` for the personal data in the customer records: names, e-mails, ship-to
    names and streets (this schema keeps no phone numbers; a ``phone`` kind is supported all the same)."""
    with db.sessions() as session:
        for name, email in session.execute(select(CustomerRow.name, CustomerRow.email)):
            yield "name", name
            yield "email", email
        for name, street in session.execute(select(AddressRow.name, AddressRow.street)):
            yield "name", name
            yield "address", street


def load_customer_values(db: Database) -> KnownValues:
    """The matcher for everything :func:`customer_values` yields."""
    return KnownValues.build(customer_values(db))


class RefreshingKnownValues:
    """The latest :class:`KnownValues` from ``load``, rebuilt when older than ``max_age_s``.

    Loads lazily (on first use, not at construction: the database may not be migrated yet when the
    app is wired). Thread-safe: one caller rebuilds while the others keep the previous matcher.
    """

    def __init__(
        self,
        load: Callable[[], KnownValues],
        *,
        max_age_s: float = 60.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.max_age_s = max_age_s
        self._timer = timer
        self._lock = threading.Lock()
        self._values: KnownValues | None = None
        self._loaded_at = 0.0

    @classmethod
    def from_database(cls, db: Database, *, max_age_s: float = 60.0) -> RefreshingKnownValues:
        return cls(lambda: load_customer_values(db), max_age_s=max_age_s)

    def current(self) -> KnownValues:
        values = self._values
        if values is not None and self._timer() - self._loaded_at < self.max_age_s:
            return values
        if values is not None and not self._lock.acquire(blocking=False):
            return values  # someone is rebuilding; the previous matcher is a few seconds old at most
        if values is None:
            self._lock.acquire()
        try:
            if self._values is None or self._timer() - self._loaded_at >= self.max_age_s:
                self._values = self._load()
                self._loaded_at = self._timer()
            return self._values
        finally:
            self._lock.release()

    def refresh(self) -> KnownValues:
        """Rebuild now (after customers or addresses changed)."""
        with self._lock:
            self._values = self._load()
            self._loaded_at = self._timer()
            return self._values
