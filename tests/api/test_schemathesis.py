"""Property-based API tests from the OpenAPI schema (schemathesis): no request, however odd,
gets a server error, and valid requests get responses that match the documented schema.

Driven through schemathesis's Python API (operation -> hypothesis strategy) rather than its pytest
plugin, whose fixture loader does not run under pytest 9. Examples are bounded per operation and
derandomized so the module runs in seconds and the same way every time; every call carries an
admin key (the one role that reaches every route) so generated requests get past authentication.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.api.conftest import Api

EXAMPLES = 25


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_api_never_fails_with_a_server_error(api: Api, mode: GenerationMode) -> None:
    api.propose_bulk_reroute()  # something in the approval queue and the audit trail
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    headers = api.as_("admin")
    # Valid requests must also match the documented responses; invalid ones must only never be 5xx.
    checks: Any = None if mode is GenerationMode.POSITIVE else [not_a_server_error]
    tested: list[str] = []
    exercised: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"invalid operation in the schema: {result}"
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            exercise()
        except Unsatisfiable:
            # An operation with no parameters and no body (/healthz) has no invalid input to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        exercised.append(operation.label)
    assert set(exercised) >= {"POST /v1/approvals/{approval_id}", "GET /v1/orders", "POST /v1/decide/route"}
    assert "POST /v1/approvals/{approval_id}" in tested
    assert len(tested) >= 10
