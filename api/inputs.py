"""Input types shared by the HTTP routes: text every database can store.

PostgreSQL cannot store a NUL byte in text (SQLite can), and neither backend can store a lone UTF-16
surrogate (JSON allows ``"\\ud800"``; UTF-8 does not): such a value that reaches a write or a filter
is a 500 on one backend or both, or a poisoned row (a goal with a NUL was accepted, then its job
failed on every attempt). No identifier, goal, reason or argument of ours has a reason to hold one:
the API refuses it up front with a 422 problem, the same on both backends.

What this module must never do: change a value it accepts (no silent stripping: what a person sent
is what gets recorded, or it is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

NUL = "\x00"


def unstorable(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL byte, a lone surrogate), or None if it can."""
    if NUL in value:
        return "a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (not valid Unicode)"
    return None


def no_nul(value: str) -> str:
    why = unstorable(value)
    if why is not None:
        raise ValueError(f"must not contain {why}")
    return value


def no_nul_anywhere(value: Any) -> Any:
    """``value`` unchanged if every string in it (dict keys included, at any depth) can be stored."""
    stack = [value]
    while stack:  # iterative: nesting depth is the client's choice
        item = stack.pop()
        if isinstance(item, str):
            no_nul(item)
        elif isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str):
                    no_nul(k)
                stack.append(v)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return value


NO_NUL_SCHEMA: dict[str, Any] = {"not": {"pattern": NUL}}
"""JSON Schema for "holds no NUL": documents the rule in the OpenAPI schema, so clients (and
schemathesis's generator) know a NUL is refused rather than discover it."""


@dataclass(frozen=True)
class _DocumentNoNul:
    """Adds :data:`NO_NUL_SCHEMA` to a string's JSON Schema (alongside its own length and pattern)."""

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        schema.update(NO_NUL_SCHEMA)
        return schema


def document_no_nul(schema: Any) -> Any:
    """``schema`` (a hand-written JSON Schema) with :data:`NO_NUL_SCHEMA` on every string and every
    object's property names, at any depth."""
    if isinstance(schema, list):
        return [document_no_nul(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: document_no_nul(v) for k, v in schema.items()}
    types = out.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        out.update(NO_NUL_SCHEMA)
    if types == "object":
        out.setdefault("propertyNames", dict(NO_NUL_SCHEMA))
    return out


Text = Annotated[str, AfterValidator(no_nul), _DocumentNoNul()]
"""A string without NUL bytes or lone surrogates (use with ``Field``/``Query`` for lengths and patterns)."""

NoNulJson = Annotated[Any, AfterValidator(no_nul_anywhere)]
"""Any JSON value whose strings all pass :data:`Text`."""

MAX_INT32 = 2**31 - 1
"""Largest integer every backend's ``INTEGER`` column holds (PostgreSQL's is 32-bit): the bound of
integer query parameters compared with such columns."""


def _storable_json(depth: int) -> dict[str, Any]:
    """JSON Schema of a JSON value whose strings hold no NUL, nested ``depth`` levels deep (deeper
    values are accepted too, if they hold no NUL; OpenAPI 3.1 generators handle a bounded schema
    better than a recursive one)."""
    scalars: list[dict[str, Any]] = [
        {"type": "string", **NO_NUL_SCHEMA},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
    if depth == 0:
        return {"anyOf": scalars}
    inner = _storable_json(depth - 1)
    return {
        "anyOf": [
            *scalars,
            {"type": "array", "items": inner},
            {"type": "object", "propertyNames": dict(NO_NUL_SCHEMA), "additionalProperties": inner},
        ]
    }


@dataclass(frozen=True)
class _DocumentNoNulObject:
    """Documents :data:`NoNulObject`: keys and strings at any depth hold no NUL."""

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        schema["propertyNames"] = dict(NO_NUL_SCHEMA)
        schema["additionalProperties"] = _storable_json(2)
        return schema


NoNulObject = Annotated[dict[str, Any], AfterValidator(no_nul_anywhere), _DocumentNoNulObject()]
"""A JSON object whose keys and strings, at any depth, all pass :data:`Text`."""
