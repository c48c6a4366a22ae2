"""The personal data the system already holds, as a matcher the redactor runs over free text.

Patterns find what looks like an e-mail or a street address; they cannot know that "Lakeside
Office Group" is a customer or that "8206 LAKEVIEW ST" is a ship-to address. The customer records
can: :func:`load_customer_values` reads every customer's name and e-mail and every address's
name and street, and :class:`KnownValues` finds them anywhere in a text (case- and
space-insensitive, whole words only) by looking word sequences up in a dict (Aho-Corasick's idea
on words), so the cost per word does not grow with the number of customers.
:class:`RefreshingKnownValues` keeps the matcher current (rebuilt when older than ``max_age_s``,
or on :meth:`~RefreshingKnownValues.refresh`).

What it must never do: hand out a half-built matcher, or hide a failed load as an empty one (the
redactor would then let every customer name through): a failed first load raises; a failed
refresh keeps the previous matcher (logged), and the next call tries again.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)

MIN_CHARS = 4
"""Shorter values ("Bo", "3 A St") would match ordinary words and numbers everywhere."""

_TOKENS = re.compile(r"\w+|[^\w\s]")
"""Words, and each other non-space character on its own: "Tri-County Inc." -> tri - county inc ."""


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKENS.findall(text)]


@dataclass(frozen=True)
class KnownValues:
    """Values to find in free text, each with the token kind it gets (``name``, ``address``...).

    Matching works on word tokens, not characters: a value is the sequence of its words (and
    punctuation marks), so "LAKESIDE  OFFICE\nGROUP" is found for "Lakeside Office Group", but never
    "Acme" inside "Acmeville". Each position of a text is looked up in a dict by its first word,
    then only the value lengths that start with that word are tried: the cost per word does not grow
    with the number of values, and building it is a dict fill (no regex to compile for 100k values).
    """

    values: dict[tuple[str, ...], tuple[str, str]] = field(default_factory=dict)
    """Token sequence -> (kind, the value as stored: what its token is made of)."""
    lengths: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """First token -> the token counts of the values starting with it, longest first."""

    @classmethod
    def build(cls, values: Iterable[tuple[str, str]]) -> KnownValues:
        """From ``(kind, value)`` pairs; the first kind given for a value wins, values shorter than
        :data:`MIN_CHARS` or without a letter are left out. A trailing full stop or comma is not
        required in the text ("Northwind Hospitality LLC." is found without its full stop)."""
        found: dict[tuple[str, ...], tuple[str, str]] = {}
        for kind, value in values:
            if len(value.strip()) < MIN_CHARS or not any(c.isalpha() for c in value):
                continue
            toks = _tokens(value)
            while toks and toks[-1] in (".", ","):
                toks.pop()
            if toks:
                found.setdefault(tuple(toks), (kind, value.strip()))
        lengths: dict[str, set[int]] = {}
        for seq in found:
            lengths.setdefault(seq[0], set()).add(len(seq))
        return cls(values=found, lengths={k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()})

    def __len__(self) -> int:
        return len(self.values)

    def find(self, text: str) -> Iterator[tuple[int, int, str, str]]:
        """``(start, end, kind, stored value)`` of every known value in ``text``, left to right; where
        values overlap, the longest from the earliest position."""
        if not self.values:
            return
        spans = [(m.start(), m.end(), m.group(0).lower()) for m in _TOKENS.finditer(text)]
        words = [w for _s, _e, w in spans]
        i = 0
        while i < len(words):
            for n in self.lengths.get(words[i], ()):
                hit = self.values.get(tuple(words[i : i + n])) if i + n <= len(words) else None
                if hit is not None:
                    yield spans[i][0], spans[i + n - 1][1], hit[0], hit[1]
                    i += n
                    break
            else:
                i += 1


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
                try:
                    self._values = self._load()
                except Exception:
                    if self._values is None:
                        raise  # nothing to fall back on: redacting without it would let names through
                    # An older matcher still knows every customer it knew; try again on the next call.
                    log.warning("refreshing the known personal data failed; keeping the previous values",
                                exc_info=True)  # fmt: skip
                    return self._values
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
