"""Property-based fuzzing of every API operation in the hub's own OpenAPI document.

Schemathesis generates requests from `/api/openapi.json` (valid and invalid ones), sends them
to the in-process app with a delegate's bearer token (so authenticated operations run past the
sign-in check), and checks two things of every answer:

- `not_a_server_error`: no input whatever gives a 5xx;
- `response_schema_conformance`: where the schema declares a response body for the status
  (every 2xx model, and the `ErrorBody` declared for 400 and 422), the body conforms.

Checks left out, and why: `status_code_conformance` (the operations do not list every 401, 403,
404 and 409 they answer; documenting those is a schema project of its own), the negative-data
checks (`negative_data_rejection`, `positive_data_acceptance`: the generator cannot know which
values a domain accepts — a slug that names no member is well-formed yet refused), and
`max_response_time` (timing belongs in benchmarks). The number of examples per operation is
small so that the run stays within about two minutes on a slow machine.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = 10
CHECKS = [not_a_server_error, response_schema_conformance]

pytestmark = pytest.mark.slow


def _operations(schema: Any) -> list[Any]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def _cases(operation: Any) -> Any:
    """Requests that fit the schema and requests that break it (out-of-range ids, wrong types,
    missing fields), in one strategy."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    # An operation with nothing to break (no parameters, no body) has no negative cases.
    with contextlib.suppress(Exception):
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def test_every_operation_survives_generated_requests(app, make) -> None:
    # Prepare: a member with a delegate whose token every request carries
    delegate = make.delegate("kenya", "KE")
    make.delegate("brazil", "BR")
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = _operations(schema)
    assert len(operations) > 50  # the whole API, not a stray subset
    failures: list[str] = []

    # Execute
    for operation in operations:

        @given(case=_cases(operation))
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=delegate.headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, then report
            failures.append(f"{operation.label}: {str(exc)[:800]}")

    # Assert
    assert not failures, "\n\n".join(failures)


def test_stateful_sequences_of_operations(app, make, empty_tables) -> None:
    """Sequences that feed one answer into the next request (a created programme's id into
    its enrolments …), along the links Schemathesis infers from the schema.

    Each scenario starts from the same database: Hypothesis replays a scenario's choices to
    explore and shrink, and the links it may follow depend on the answers (a name taken by an
    earlier scenario answers 409 and offers no link), so state carried between scenarios made
    the same choices draw differently (`FlakyStrategyDefinition`)."""
    # Prepare
    from schemathesis.core.errors import NoLinksFound

    caller: dict[str, Any] = {}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    try:
        machine = schema.as_state_machine()
    except NoLinksFound as exc:
        pytest.skip(f"no links to follow in the schema: {exc}")

    class Sequences(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            empty_tables()
            caller["headers"] = make.delegate("kenya", "KE").headers

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": caller["headers"]}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS)

    # Execute / Assert: any failing check raises with the sequence that led to it
    Sequences.run(
        settings=hypothesis_settings(
            max_examples=EXAMPLES * 3,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
