"""The OpenAPI document of the backend API: served to anyone, complete, and able to fail a test.

Every answer of /api/ that these tests and the widget's receive is checked against it
(tests/support/openapi_check.py, autouse); here, that the check really catches an undocumented
field, a wrong type and an undocumented status, whichever client received the answer, and that
the document lists every route and every code the app has.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from app.api.openapi import stored_document
from app.config import ALL_PERMISSIONS, LOCALES, TIERS
from app.passid import DenyReason
from app.plumbing.passid_connection import passid_connection
from app.rules import sessions
from app.rules.decision import VERDICTS, VerdictReason
from app.rules.sessions import SessionStatus
from app.rules.verifications import FinalStatus, Source
from tests.support.openapi_check import DOCUMENT_PATH, AnswerLog, AnswerMismatch

SCHEMAS = stored_document()["components"]["schemas"]


def a_session(**changed: Any) -> dict[str, Any]:
    """A `GET /api/sessions/<id>` document as the app answers it (an open session), with `changed` laid over."""
    return {"id": "vs_1", "reference": "loan-1", "locale": None, "status": "open", "verdict": None,
            "verdictReasons": [], "resultId": None, "result": None, "attempts": [],
            "createdAt": "2026-11-25T22:18:00Z", "expiresAt": "2026-11-25T23:18:00Z", "cancelledAt": None, **changed}


class Canned(BaseAdapter):
    """A server that answers every request with one JSON document: what a changed API would answer."""

    def __init__(self, status: int, document: Any, cache_control: str = "no-store") -> None:
        super().__init__()
        self.status, self.document, self.cache_control = status, document, cache_control

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = self.status
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json",
                                                "Cache-Control": self.cache_control})
        response._content = json.dumps(self.document).encode()
        response.request, response.url = request, request.url or ""
        return response

    def close(self) -> None:
        pass


def answered(status: int, document: Any, path: str = "/api/sessions/vs_1", **headers: str) -> requests.Response:
    with requests.Session() as session:
        session.mount("http://bank.test/", Canned(status, document, **headers))
        return session.get(f"http://bank.test{path}", timeout=1)


@pytest.mark.databases("sqlite")
def test_the_document_is_served_without_a_key_and_may_be_cached(client: FlaskClient) -> None:
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=300"
    assert answer.get_json() == stored_document()
    assert answer.get_json()["openapi"].startswith("3.1") and answer.get_json()["servers"][0]["url"] == "/"


@pytest.mark.databases("sqlite")
def test_served_under_a_prefix_the_document_names_it(client: FlaskClient) -> None:
    served = client.get("/api/openapi.json", environ_overrides={"SCRIPT_NAME": "/identity"}).get_json()
    assert served["servers"][0]["url"] == "/identity"


@pytest.mark.databases("sqlite")
def test_the_document_lists_every_route_of_the_api_and_no_other(app: Flask) -> None:
    routes = sorted((method, rule.rule.replace("<", "{").replace(">", "}"))
                    for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
                    for method in rule.methods or () if method not in ("HEAD", "OPTIONS"))
    documented = sorted((method.upper(), path) for path, item in stored_document()["paths"].items() for method in item)
    # The document names path parameters as integrators read them (resultId, sessionId).
    assert [(m, p.replace("{result_id}", "{resultId}").replace("{session_id}", "{sessionId}")) for m, p in routes] \
        == documented


def test_the_documented_codes_are_the_apps() -> None:
    def enum(name: str) -> list[Any]:
        return list(SCHEMAS[name]["enum"])

    assert enum("SessionStatus") == [status.value for status in SessionStatus]
    assert enum("FinalStatus") == [status.value for status in FinalStatus]
    assert enum("Source") == [source.value for source in Source]
    assert enum("Verdict") == list(VERDICTS) == enum("Recommendation")
    assert enum("VerdictReason") == [reason.value for reason in VerdictReason]
    # A deny reason PASSID adds later is recorded as sent (its verdict reason: not_verified): examples, not an enum.
    assert SCHEMAS["DenyReason"]["examples"] == [reason.value for reason in DenyReason]
    assert enum("Permission") == list(ALL_PERMISSIONS)
    assert enum("Locale") == list(LOCALES)
    assert SCHEMAS["Claims"]["properties"]["tier"]["enum"] == list(TIERS)


@pytest.mark.databases("sqlite")
def test_an_undocumented_field_in_an_answer_fails_the_test(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, answers_match_the_api_document: AnswerLog
) -> None:
    with app.app_context():
        key = passid_connection().api_key
    made = client.post("/api/sessions", json={"reference": "loan-1"}, headers={"X-Institution-Key": key}).get_json()
    assert answers_match_the_api_document.checked == 1  # the 201 was checked, and passed
    documented = sessions.session_document
    monkeypatch.setattr(sessions, "session_document", lambda *args, **kwargs: {**documented(*args, **kwargs),
                                                                               "riskScore": 0.2})
    with pytest.raises(AnswerMismatch, match=r"(?s)GET /api/sessions/vs_\S+ answered 200, which app/api/openapi.json "
                                             r"does not allow:\n  - at /: .*'riskScore' was unexpected"):
        client.get(f"/api/sessions/{made['id']}", headers={"X-Institution-Key": key})


def test_a_document_of_the_apps_shape_passes_and_a_wrong_type_fails() -> None:
    assert answered(200, a_session()).status_code == 200
    with pytest.raises(AnswerMismatch, match=r"at /expiresAt: 1764112680 is not of type \"string\""):
        answered(200, a_session(expiresAt=1764112680))
    with pytest.raises(AnswerMismatch, match=r"at /status: \"closed\" is not one of"):
        answered(200, a_session(status="closed"))
    attempt = {"resultId": "res_1", "channel": "qr", "status": "completed", "denyReason": None, "verdict": "approve",
               "createdAt": "2026-11-25T22:18:00Z", "score": 700}
    with pytest.raises(AnswerMismatch, match=r"at /attempts/0: .*'score' was unexpected"):
        answered(200, a_session(attempts=[attempt]))


def test_an_erased_session_is_only_that_it_was() -> None:
    assert answered(200, {"id": "vs_1", "redacted": True, "redactedAt": "2026-11-25T22:18:00Z"}).status_code == 200
    with pytest.raises(AnswerMismatch, match=r"'reference' was unexpected"):
        answered(200, {"id": "vs_1", "redacted": True, "redactedAt": "2026-11-25T22:18:00Z", "reference": "loan-1"})


def test_an_undocumented_status_header_or_error_shape_fails() -> None:
    with pytest.raises(AnswerMismatch, match=r"status 403 is not documented \(documented: 200, 401, 500, 404\)"):
        answered(403, {"error": {"code": "FORBIDDEN", "message": "No."}})
    with pytest.raises(AnswerMismatch, match=r"header Cache-Control: \"no-store\" was expected"):
        answered(200, a_session(), cache_control="private")
    with pytest.raises(AnswerMismatch, match=r"at /error: .*'detail' was unexpected"):
        answered(404, {"error": {"code": "NOT_FOUND", "message": "No session has this id.", "detail": "x"}})
    with requests.Session() as session, pytest.raises(
            AnswerMismatch, match=r"a method /api/sessions/\{sessionId\} does not have, answered 200"):
        session.mount("http://bank.test/", Canned(200, a_session()))
        session.delete("http://bank.test/api/sessions/vs_1", timeout=1)


def test_paths_the_document_does_not_list_are_left_to_their_own_server() -> None:
    """Over HTTP an /api/ path the document does not list may be a fake PASSID's, not ours."""
    assert answered(201, {"requestId": "req_1"}, path="/api/bridge/request").status_code == 201


def test_a_mismatch_on_another_thread_still_fails_the_test(answers_match_the_api_document: AnswerLog) -> None:
    caught: list[BaseException] = []

    def read() -> None:
        try:
            answered(200, a_session(extra=1))
        except AnswerMismatch as mismatch:
            caught.append(mismatch)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert caught and answers_match_the_api_document.unreported == [str(caught[0])]
    answers_match_the_api_document.unreported.clear()  # reported here; otherwise the test would fail as it ends


def test_the_check_reads_the_document_the_app_serves() -> None:
    assert json.loads(DOCUMENT_PATH.read_text(encoding="utf-8")) == stored_document()
