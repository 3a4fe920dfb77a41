"""Schemathesis against the running sandbox, from the OpenAPI document it serves.

Every operation of `GET /sandbox/openapi.json` gets generated cases — valid
ones and invalid ones — sent with a real institution key and a real user JWT.
Each answer must be no 5xx, a status the document lists for that operation,
JSON, with the documented headers, and a body of the documented shape; and
an invalid request must be refused with a 4xx (the document's limits hold).

One pytest test per operation drives Schemathesis's strategies with
Hypothesis directly: `schemathesis.pytest.from_fixture` (4.32) reaches for
`Function._nodeid`, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.passid import PassidClient
from tests.conftest import fuzz_examples
from tests.support.servers import AppServer

DOCUMENT = Path(__file__).resolve().parents[2] / "app" / "sandbox" / "openapi.json"
MAX_EXAMPLES = fuzz_examples(40)  # per operation and database
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass(frozen=True)
class Credentials:
    institution_id: str
    sandbox_key: str
    user_jwt: str
    client: PassidClient


@pytest.fixture(scope="module")
def credentials(app_server: AppServer) -> Credentials:
    """An institution that has verified a fixed token (so outcomes can be reported) and a user."""
    anonymous = PassidClient(app_server.sandbox_url, timeout=(3.05, 15.0))
    onboarding = anonymous.onboard("Fuzzing Lender")
    client = PassidClient(app_server.sandbox_url, onboarding.sandbox_key, timeout=(3.05, 15.0))
    assert client.verify("KE8V-3TXY-Z72L").verified
    return Credentials(
        institution_id=onboarding.institution_id,
        sandbox_key=onboarding.sandbox_key,
        user_jwt=anonymous.sandbox_login("KE8V-3TXY-Z72L"),
        client=client,
    )


@pytest.fixture(scope="module")
def sandbox_schema(app_server: AppServer, credentials: Credentials):  # type: ignore[no-untyped-def]
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": 15,
            "auth": {
                "openapi": {
                    "institutionKey": {"api_key": credentials.sandbox_key},
                    "userJwt": {"bearer": credentials.user_jwt},
                }
            },
        }
    )
    return schemathesis.openapi.from_url(f"{app_server.sandbox_url}/openapi.json", config=config)


def _point_at_live_resources(case, credentials: Credentials) -> None:  # type: ignore[no-untyped-def]
    """Half the valid cases that name a request or a share token get a live one, so success answers are checked too.

    Which half is decided by the generated value itself, so a failing example replays the same way.
    """
    meta = case.meta
    if meta is None or meta.generation.mode.is_negative:
        return
    path = case.operation.path
    if "{requestId}" in path:
        generated = str(case.path_parameters.get("requestId", ""))
        if len(generated) % 2 == 0:
            case.path_parameters["requestId"] = credentials.client.create_request(ttl_seconds=600).request_id
    elif path == "/api/bridge/share/{token}":
        generated = str(case.path_parameters.get("token", ""))
        if len(generated) % 2 == 0:
            case.path_parameters["token"] = credentials.client.create_share_token(
                credentials.user_jwt, credentials.institution_id
            ).token
    elif path == "/api/bridge/share" and isinstance(case.body, dict):
        generated = str(case.body.get("institutionId", ""))
        if len(generated) % 2 == 0:
            case.body["institutionId"] = credentials.institution_id


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) the stored document lists; the served one must list the same."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


OPERATIONS = _operations()


def test_the_served_document_lists_every_operation(sandbox_schema) -> None:  # type: ignore[no-untyped-def]
    served = sorted((op.ok().method.upper(), op.ok().path) for op in sandbox_schema.get_all_operations())
    assert served == sorted(OPERATIONS)
    # Its server is relative: the sandbox's mount point on whatever host served the document.
    assert sandbox_schema.raw_schema["servers"][0]["url"] == "/sandbox"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(  # type: ignore[no-untyped-def]
    sandbox_schema, credentials: Credentials, method: str, path: str
) -> None:
    operation = sandbox_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )
    session = requests.Session()

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case) -> None:  # type: ignore[no-untyped-def]
        _point_at_live_resources(case, credentials)
        case.call_and_validate(session=session, checks=CHECKS, timeout=15)

    try:
        answers_as_documented()
    finally:
        session.close()
