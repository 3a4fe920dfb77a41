"""Schemathesis against the backend API in process, from the OpenAPI document it serves at `/api/openapi.json`.

Every operation gets generated cases, valid and invalid, sent with the institution key through
Schemathesis's WSGI transport (no server, no port). Each answer must be no 5xx, a status the document
lists, JSON of the documented shape with the documented headers, and an invalid request must be
refused with a 4xx. Half the valid cases that name a session, a result or a reference get a live one,
so the documents of real sessions (with attempts, a deny and a success) are checked, not only 404s.

Few examples: the API is small and the API and widget tests already hold every answer they receive
to the same document (tests/support/openapi_check.py); this adds the inputs nobody thought of.
The sandbox's own run is tests/fuzz/test_sandbox_schemathesis.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
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

from app.plumbing.passid_connection import passid_connection
from tests.support.html_fields import hidden
from tests.support.in_process import migrated_sqlite_url, serving_in_process
from tests.support.openapi_check import DOCUMENT_PATH

MAX_EXAMPLES = 25  # per operation: the whole file takes about five seconds
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@dataclass(frozen=True)
class Live:
    """What exists in the app before fuzzing: a session decided after a denied attempt, and its result."""

    key: str
    session_id: str
    result_id: str
    reference: str


def _operations() -> list[tuple[str, str]]:
    document = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app for every operation: what one operation's cases leave behind is more for the next to meet."""
    directory = tmp_path_factory.mktemp("api-fuzz")
    with serving_in_process(migrated_sqlite_url(directory), directory) as app:
        yield app


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def live(app: Flask, client: FlaskClient) -> Live:
    """A session whose customer typed an expired token, then a good one: two attempts, a result with claims."""
    with app.app_context():
        key = passid_connection().api_key
    made = client.post("/api/sessions", json={"reference": "loan-fuzz"}, headers={"X-Institution-Key": key}).get_json()
    page = client.get("/verify/session", query_string={"id": made["id"]}).text
    for token in ("TEST-EXPD-0001", "KE8V-3TXY-Z72L"):
        client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"), "token": token})
    session = client.get(f"/api/sessions/{made['id']}", headers={"X-Institution-Key": key}).get_json()
    assert session["status"] == "completed" and len(session["attempts"]) == 2, session
    return Live(key, made["id"], session["resultId"], "loan-fuzz")


def _point_at_live_resources(case, live: Live, client: FlaskClient) -> None:  # type: ignore[no-untyped-def]
    """Half the valid cases naming a session, result or reference get a live one (decided by the generated value,
    so a failing example replays the same way); a cancel gets an open session of its own to cancel."""
    meta = case.meta
    if meta is None or meta.generation.mode.is_negative:
        return
    for name in ("sessionId", "resultId"):
        generated = str(case.path_parameters.get(name, "")) if case.path_parameters else ""
        if name in (case.path_parameters or {}) and len(generated) % 2 == 0:
            if case.operation.path.endswith("/cancel"):
                case.path_parameters[name] = client.post(
                    "/api/sessions", json={"reference": live.reference}, headers={"X-Institution-Key": live.key}
                ).get_json()["id"]
            else:
                case.path_parameters[name] = live.session_id if name == "sessionId" else live.result_id
    if case.query and isinstance(case.query.get("reference"), str) and len(case.query["reference"]) % 2 == 0:
        case.query["reference"] = live.reference


@pytest.fixture(scope="module")
def api_schema(app: Flask, live: Live):  # type: ignore[no-untyped-def]
    """The document as the app serves it, the institution key for every case."""
    # Uncompressed: Schemathesis's WSGI transport reads the body as the app sent it.
    config = schemathesis.Config.from_dict({"headers": {"Accept-Encoding": "identity"},
                                            "auth": {"openapi": {"institutionKey": {"api_key": live.key}}}})
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(  # type: ignore[no-untyped-def]
    api_schema, client: FlaskClient, live: Live, method: str, path: str
) -> None:
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case) -> None:  # type: ignore[no-untyped-def]
        _point_at_live_resources(case, live, client)
        # Through the in-process client, which closes each answer as a server would: an answer left open
        # keeps its request's body slot (app/plumbing/request_guards.py), and the next post would meet a 503.
        case.call_and_validate(session=client, checks=CHECKS)

    answers_as_documented()
