"""Shared plumbing of the guardrail stores: canonical JSON, hashes, UTC times, write transactions.

Private to :mod:`guardrails`. The hashes computed here are written into the audit trail and the
approval requests, so :func:`canonical_json` must never change its output for the same input:
changing it would make every stored chain fail verification.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.db.engine import Database
from core.errors import ValidationFailed

JsonValue = Any
"""A value made only of dict (str keys), list, str, int, float, bool and None."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValidationFailed(f"{value!r} cannot be stored as JSON")
    return value


def _model(value: BaseModel) -> JsonValue:
    # pydantic's JSON mode turns a set into a list in iteration order, which for strings depends
    # on the process's hash seed: the same preview would hash differently in the API, a worker
    # and the CLI. Walk the Python dump beside it to find the sets and sort them.
    return _sort_sets(value.model_dump(mode="python"), value.model_dump(mode="json"))


_SCALARS: tuple[tuple[Any, Callable[[Any], JsonValue]], ...] = (
    (float, _finite),
    (Decimal, str),
    (Enum, lambda v: to_jsonable(v.value)),
    (datetime | date, lambda v: v.isoformat()),
    (UUID, str),
    (BaseModel, _model),
)
"""Values with one JSON form each, tried in order (an Enum before its value's type)."""

_CONTAINERS: tuple[tuple[Any, Callable[[Any], JsonValue]], ...] = (
    (Mapping, lambda v: {str(k): to_jsonable(x) for k, x in v.items()}),
    (set | frozenset, lambda v: sorted((to_jsonable(x) for x in v), key=canonical_json)),
    (list | tuple, lambda v: [to_jsonable(x) for x in v]),
)
"""Containers, converted element by element; sets sorted so their order cannot change a hash."""


def to_jsonable(value: Any) -> JsonValue:
    """Turn tool arguments/results into plain JSON values, the same way every time.

    Decimals become strings (not floats) so that money keeps its exact digits in the hash; sets
    become sorted lists so that their order cannot change a hash. NaN/inf are refused: they have
    no JSON form and would make equal arguments hash differently across drivers.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    for kinds, convert in _SCALARS:
        if isinstance(value, kinds):
            return convert(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    for kinds, convert in _CONTAINERS:
        if isinstance(value, kinds):
            return convert(value)
    raise ValidationFailed(f"a {type(value).__name__} cannot be stored as JSON")


def _sort_sets(py: Any, js: Any) -> JsonValue:
    """``js`` (a JSON-mode dump) with every list that was a set in ``py`` (its Python-mode twin) sorted."""
    if isinstance(py, set | frozenset) and isinstance(js, list):
        return sorted((to_jsonable(v) for v in js), key=canonical_json)
    if isinstance(py, Mapping) and isinstance(js, Mapping):
        py_by_key = {str(k.value if isinstance(k, Enum) else k): v for k, v in py.items()}
        return {str(k): _sort_sets(py_by_key.get(str(k)), v) for k, v in js.items()}
    if isinstance(py, list | tuple) and isinstance(js, list) and len(py) == len(js):
        return [_sort_sets(p, j) for p, j in zip(py, js, strict=True)]
    if isinstance(py, BaseModel):
        return to_jsonable(py)
    return to_jsonable(js)


def canonical_json(value: JsonValue) -> str:
    """Sorted keys, no spaces, UTF-8 kept: one text per value, the input of every hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_hash(value: Any) -> str:
    """sha256 of the canonical JSON of ``value`` (after :func:`to_jsonable`)."""
    return sha256_hex(canonical_json(to_jsonable(value)))


def as_utc(value: datetime) -> datetime:
    """Timezone-aware UTC. SQLite hands back naive datetimes; we only ever store UTC in them."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@contextmanager
def write_transaction(db: Database) -> Iterator[Session]:
    """A transaction that holds the database write lock from its first statement on SQLite.

    SQLite's default deferred transaction would let two writers read the same state and then
    race for the lock; ``BEGIN IMMEDIATE`` takes the lock up front (waiting up to the busy
    timeout). On PostgreSQL this is a plain transaction; callers lock rows themselves.

    Inside :meth:`Database.one_transaction` (the tool gateway records a write's EXECUTED event in
    its effect's transaction) it joins that block, which already holds the write lock: a second
    ``BEGIN IMMEDIATE`` there is an error on SQLite.
    """
    if db.in_one_transaction():
        with db.begin() as session:
            yield session
        return
    with db.begin() as session:
        if db.is_sqlite:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session
