"""Bad input to the public side (the backend APIs and the hosted page) is a 4xx, never a 500, on SQLite and
PostgreSQL.

PostgreSQL refuses a NUL character anywhere in text, in a comparison as much as in a stored value, so an id
holding one must be "not found" before it reaches a query. A JSON body nested a thousand levels deep must be
a 400 in the API's own error shape, not a RecursionError: every JSON body goes through one bounded parser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.plumbing.passid_connection import passid_connection
from tests.support.in_process import serving_in_process


@pytest.fixture
def app(fresh_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    with serving_in_process(fresh_database_url, tmp_path, PASSID_BACKGROUND_JOBS="false") as built:
        built.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is the 500 a caller would get, not a raise here
        yield built


@pytest.fixture
def key(app: Flask) -> str:
    with app.app_context():
        return passid_connection().api_key


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize(("path", "says"), [
    ("/api/results/%00", "No result has this id."),
    ("/api/results/res_%00x", "No result has this id."),
    ("/api/sessions/%00", "No session has this id."),
    ("/api/sessions/vs_%00x", "No session has this id."),
])
def test_a_nul_in_an_api_id_is_not_found(client: FlaskClient, key: str, database_kind: str, path: str,
                                         says: str) -> None:
    answer = client.get(path, headers={"X-Institution-Key": key})
    assert answer.status_code == 404, answer.text[:300]
    assert answer.is_json and answer.get_json()["error"]["message"] == says


@pytest.mark.parametrize("session_id", ["%00", "vs_%00x"])
def test_a_nul_in_the_hosted_page_s_id_is_the_unknown_session_page(
    client: FlaskClient, database_kind: str, session_id: str
) -> None:
    answer = client.get(f"/verify/session?id={session_id}")
    assert answer.status_code == 404 and "Unknown verification session." in answer.text


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("body", [b"[" * 1000, b"[" * 100_000, b'{"reference": ' * 40 + b"1" + b"}" * 40])
def test_a_deeply_nested_session_body_is_a_400_in_the_api_s_shape(
    client: FlaskClient, key: str, database_kind: str, body: bytes
) -> None:
    answer = client.post("/api/sessions", data=body, content_type="application/json",
                         headers={"X-Institution-Key": key})
    assert answer.status_code == 400, answer.text[:300]
    error = answer.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["field"] == "body"
    assert "Traceback" not in answer.text
    still = client.post("/api/sessions", json={"reference": "loan-1"}, headers={"X-Institution-Key": key})
    assert still.status_code == 201
