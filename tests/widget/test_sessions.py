"""Sessions created by the institution's server, in process through Flask's test client.

The bank's backend creates a session (`POST /api/sessions`), the customer verifies on its hosted
page, "Continue" goes back to the bank with `session=<id>` only, and the backend reads the outcome
(`GET /api/sessions/<id>`). The app here allows https://bank.example as an embed origin and lists
"Partner Bank" as a second institution name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, text
from werkzeug.test import TestResponse

from app.passid import PassidClient
from app.plumbing.database import db, utcnow
from app.plumbing.passid_connection import passid_connection
from app.rules import sessions
from tests.support.html_fields import hidden
from tests.support.migrations import empty_database, flask_db
from tests.support.servers import (
    base_env,
)
from tests.support.waiting import wait_until
from tests.support.widget_actions import WidgetActions
from tests.support.widget_http import QrSession

RETURN_URL = "https://bank.example/loans/return?step=2"
CONTINUE_PREFIX = "https://bank.example/loans/return?step=2&amp;session="


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_ALLOWED_EMBED_ORIGINS": "https://bank.example", "PASSID_INSTITUTION_NAMES": "Partner Bank"}


@pytest.fixture
def key(app: Flask) -> str:
    with app.app_context():
        return passid_connection().api_key


@pytest.fixture
def create(client: FlaskClient, key: str) -> Callable[..., TestResponse]:
    """The bank's backend: `create(reference="loan-1", ...)` posts that JSON body with the key."""
    def post(**body: Any) -> TestResponse:
        return client.post("/api/sessions", json=body, headers={"X-Institution-Key": key})
    return post


@pytest.fixture
def read(client: FlaskClient, key: str) -> Callable[[str], TestResponse]:
    return lambda session_id: client.get(f"/api/sessions/{session_id}", headers={"X-Institution-Key": key})


def open_hosted(client: FlaskClient, url: str, **query: str) -> TestResponse:
    """The hosted page at `url` (absolute, on PUBLIC_BASE_URL), with what an embed would add to its query."""
    parts = urlsplit(url)
    return client.get(parts.path, query_string={**dict(parse_qsl(parts.query)), **query})


def approve_qr(widget: WidgetActions, sandbox: PassidClient, page: str) -> TestResponse:
    """"Verify with the PASSID app" on `page`, approve it on the sandbox phone, and poll to the final state."""
    qr: QrSession = widget.generate_qr(hidden(page, "o"))
    sandbox.fulfill_request(qr.request_id, sandbox.sandbox_login("KE8V-3TXY-Z72L"))
    return widget.poll_until_final(qr)


# --- (a) creating and reading -------------------------------------------------------------------------


def test_creating_a_session_answers_201_with_an_absolute_hosted_url(app: Flask, create: Callable[..., TestResponse],
                                                                   read: Callable[[str], TestResponse]) -> None:
    made = create(reference="loan-42", permissions=["identity_verified"], returnUrl=RETURN_URL, ttlSeconds=600)
    assert made.status_code == 201
    body = made.get_json()
    assert set(body) == {"id", "url", "reference", "expiresAt", "status"}
    assert body["reference"] == "loan-42" and body["status"] == "open" and body["id"].startswith("vs_")
    assert body["url"] == f"{app.config['PUBLIC_BASE_URL']}/verify/session?id={body['id']}"
    got = read(body["id"]).get_json()
    assert got == {"id": body["id"], "reference": "loan-42", "locale": None, "status": "open", "verdict": None,
                   "verdictReasons": [], "resultId": None, "result": None, "attempts": [],
                   "createdAt": got["createdAt"], "expiresAt": body["expiresAt"], "cancelledAt": None}


def test_session_ids_are_unguessable_and_distinct(create: Callable[..., TestResponse]) -> None:
    ids = {create(reference="same").get_json()["id"] for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 32 for i in ids)


@pytest.mark.parametrize("headers", [{}, {"X-Institution-Key": "wrong"}])
def test_without_the_institution_key_both_endpoints_answer_401(client: FlaskClient, headers: dict[str, str]) -> None:
    made = client.post("/api/sessions", json={"reference": "loan-1"}, headers=headers)
    got = client.get("/api/sessions/vs_anything", headers=headers)
    for answer in (made, got):
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "reference"),
    ({"reference": ""}, "reference"),
    ({"reference": "x" * 500}, "reference"),
    ({"reference": "x" * 65}, "reference"),
    ({"reference": "loan\x00-1"}, "reference"),
    ({"reference": "loan\n1"}, "reference"),
    ({"reference": 42}, "reference"),
    ({"reference": "a", "permissions": ["income_verified", "shoe_size"]}, "permissions"),
    ({"reference": "a", "permissions": []}, "permissions"),
    ({"reference": "a", "permissions": "identity_verified"}, "permissions"),
    ({"reference": "a", "institutionName": "Evil Corp"}, "institutionName"),
    ({"reference": "a", "returnUrl": "javascript:alert(1)"}, "returnUrl"),
    ({"reference": "a", "returnUrl": "https://evil.example/return"}, "returnUrl"),
    ({"reference": "a", "returnUrl": "https://bank.example.evil.example/"}, "returnUrl"),
    ({"reference": "a", "returnUrl": "https://user@bank.example/"}, "returnUrl"),
    ({"reference": "a", "returnUrl": "/relative"}, "returnUrl"),
    ({"reference": "a", "returnUrl": "https://bank.example:99999/"}, "returnUrl"),
    ({"reference": "a", "ttlSeconds": 59}, "ttlSeconds"),
    ({"reference": "a", "ttlSeconds": 86401}, "ttlSeconds"),
    ({"reference": "a", "ttlSeconds": "600"}, "ttlSeconds"),
    ({"reference": "a", "ttlSeconds": True}, "ttlSeconds"),
    ({"reference": "a", "ttlSeconds": 600.5}, "ttlSeconds"),
    ({"reference": "a", "locale": "klingon"}, "locale"),
    ({"reference": "a", "locale": "en-XA"}, "locale"),
    ({"reference": "a", "locale": ["fr"]}, "locale"),
    ({"reference": "a", "returnURL": RETURN_URL}, "returnURL"),
])
def test_bad_input_is_a_400_naming_its_field(create: Callable[..., TestResponse], body: dict[str, Any],
                                             field: str) -> None:
    answer = create(**body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["field"] == field and error["message"]


@pytest.mark.parametrize("data", [b"[]", b'"loan-1"', b"null", b"{not json", b""])
def test_a_body_that_is_not_a_json_object_is_a_400(client: FlaskClient, key: str, data: bytes) -> None:
    answer = client.post("/api/sessions", data=data, content_type="application/json",
                         headers={"X-Institution-Key": key})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_an_unknown_session_id_is_a_404_in_the_same_shape(read: Callable[[str], TestResponse]) -> None:
    answer = read("vs_" + "x" * 32)
    assert answer.status_code == 404
    assert answer.get_json()["error"] == {"code": "NOT_FOUND", "field": "id", "message": "No session has this id."}


def test_a_listed_institution_name_is_kept_in_its_listed_spelling(create: Callable[..., TestResponse],
                                                                  client: FlaskClient) -> None:
    made = create(reference="loan-1", institutionName="  partner  bank").get_json()
    assert '<p class="passid__institution">Partner Bank</p>' in open_hosted(client, made["url"]).text


# --- (b) the hosted page --------------------------------------------------------------------------------


def test_the_hosted_page_locks_name_and_permissions_against_query_overrides(
    create: Callable[..., TestResponse], client: FlaskClient, widget: WidgetActions, app_sandbox: PassidClient
) -> None:
    made = create(reference="loan-7", permissions=["identity_verified"]).get_json()
    page = open_hosted(client, made["url"], institutionName="Partner Bank",
                       permissions="income_verified,identity_verified").text
    assert '<p class="passid__institution">Demo Bank</p>' in page
    qr = widget.generate_qr(hidden(page, "o"))
    assert app_sandbox.get_request_by_code(qr.code).institution_name == "Demo Bank"


def test_a_hosted_session_goes_from_creation_to_continue_to_its_result(
    create: Callable[..., TestResponse], read: Callable[[str], TestResponse], client: FlaskClient, key: str,
    widget: WidgetActions, app_sandbox: PassidClient,
) -> None:
    made = create(reference="loan-42", permissions=["identity_verified"], returnUrl=RETURN_URL).get_json()
    final = approve_qr(widget, app_sandbox, open_hosted(client, made["url"]).text)
    assert 'data-view="success"' in final.text
    assert f'href="{CONTINUE_PREFIX}{made["id"]}"' in final.text  # the session id and nothing else
    session = read(made["id"]).get_json()
    assert session["status"] == "completed" and session["resultId"] == session["result"]["resultId"]
    assert set(session["result"]["claims"]) <= {"identity_verified"}  # limited to the session's permissions
    result = client.get(f"/api/results/{session['resultId']}", headers={"X-Institution-Key": key}).get_json()
    assert result == session["result"]
    assert result["reference"] == "loan-42" and result["sessionId"] == made["id"]


def test_a_session_completed_only_by_its_webhook_reads_completed_without_a_poll(
    create: Callable[..., TestResponse], read: Callable[[str], TestResponse], client: FlaskClient,
    widget: WidgetActions, app_sandbox: PassidClient,
) -> None:
    """The customer approved in the app and closed the tab before the next poll: the webhook alone tells us."""
    made = create(reference="loan-77", permissions=["identity_verified"]).get_json()
    qr = widget.generate_qr(hidden(open_hosted(client, made["url"]).text, "o"))
    app_sandbox.fulfill_request(qr.request_id, app_sandbox.sandbox_login("KE8V-3TXY-Z72L"))

    wait_until(lambda: read(made["id"]).get_json()["status"] == "completed", "the webhook completed the session",
               every=0.2)
    session = read(made["id"]).get_json()
    assert session["resultId"] == session["result"]["resultId"]
    assert session["result"]["requestId"] == qr.request_id
    assert session["result"]["reference"] == "loan-77" and session["result"]["sessionId"] == made["id"]
    assert set(session["result"]["claims"]) <= {"identity_verified"}  # limited to the session's permissions


def test_a_session_reopened_after_success_shows_its_final_state_without_claims_or_a_form(
    create: Callable[..., TestResponse], client: FlaskClient, widget: WidgetActions, app_sandbox: PassidClient,
) -> None:
    made = create(reference="loan-9", returnUrl=RETURN_URL).get_json()
    page = open_hosted(client, made["url"]).text
    approve_qr(widget, app_sandbox, page)
    again = open_hosted(client, made["url"]).text
    assert 'data-view="success"' in again and "Verify with the PASSID app" not in again
    assert "passid-claim--" not in again
    assert f'href="{CONTINUE_PREFIX}{made["id"]}"' in again
    # An old page's form cannot start a second verification either.
    late = client.post("/verify/qr", data={"o": hidden(page, "o")})
    assert 'data-view="success"' in late.text and "data-code" not in late.text


def test_a_denied_attempt_may_be_retried_until_the_session_expires(
    create: Callable[..., TestResponse], read: Callable[[str], TestResponse], client: FlaskClient, app: Flask,
) -> None:
    made = create(reference="loan-5", returnUrl=RETURN_URL).get_json()
    page = open_hosted(client, made["url"]).text
    denied = client.post("/verify/token/check", data={"o": hidden(page, "o"), "n": hidden(page, "n"),
                                                      "token": "TEST-EXPD-0001"})
    assert 'data-view="declined"' in denied.text and 'action="/verify/reset"' in denied.text
    session = read(made["id"]).get_json()
    assert session["status"] == "denied" and session["result"]["denyReason"] == "TOKEN_EXPIRED"
    assert session["result"]["reference"] == "loan-5"
    assert "Verify with the PASSID app" in client.get("/verify/reset", query_string={"o": hidden(page, "o")}).text

    with app.app_context():
        row = sessions.find(made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    over = open_hosted(client, made["url"]).text
    assert 'data-view="declined"' in over and "has expired" in over
    assert 'action="/verify/reset"' not in over and "Verify with the PASSID app" not in over
    assert f'href="{CONTINUE_PREFIX}{made["id"]}"' in over
    assert read(made["id"]).get_json()["status"] == "denied"


CANCEL_LABEL = "Cancel and return to Demo Bank"


def test_the_customer_cancels_a_hosted_session_and_goes_back_with_its_id_and_status_only(
    create: Callable[..., TestResponse], read: Callable[[str], TestResponse], client: FlaskClient,
) -> None:
    """What the customer reads first (the bank, the app, what the bank will see, how to get the app) and the way
    out: the session ends as cancelled and the tab goes back to the bank with session=<id>&status=cancelled."""
    made = create(reference="loan-c", permissions=["identity_verified", "fraud_risk"],
                  returnUrl="https://bank.example/back").get_json()
    page = open_hosted(client, made["url"]).text
    assert "Demo Bank asks you to confirm who you are with the PASSID app." in page
    sees = page.split('aria-labelledby="passid-sees">', 1)[1].split("</ul>", 1)[0]
    assert sees.count("<li") == 2 and "Whether your identity is verified" in sees and "fraud risk" in sees
    assert "app store" in page and CANCEL_LABEL in page and 'target="_top"' in page
    back = client.post("/verify/session/cancel", data={"o": hidden(page, "o")})
    assert back.status_code == 303
    assert back.headers["Location"] == f"https://bank.example/back?session={made['id']}&status=cancelled"
    assert read(made["id"]).get_json()["status"] == "cancelled"
    reopened = open_hosted(client, made["url"]).text  # the session's neutral closed state, its way back only
    assert 'data-view="declined"' in reopened and CANCEL_LABEL not in reopened and "passid-manual" not in reopened


def test_a_cancel_in_an_embed_tells_the_embedding_page_and_a_finished_session_is_not_cancelled(
    create: Callable[..., TestResponse], read: Callable[[str], TestResponse], client: FlaskClient,
    widget: WidgetActions, app_sandbox: PassidClient,
) -> None:
    embedded = create(reference="loan-e").get_json()  # no returnUrl: the embedding page decides what comes next
    page = open_hosted(client, embedded["url"], origin="https://bank.example").text
    assert 'hx-post="/verify/session/cancel"' in page and 'target="_top"' not in page
    told = client.post("/verify/session/cancel", data={"o": hidden(page, "o")}, headers={"HX-Request": "true"})
    assert told.status_code == 200 and 'data-view="declined"' in told.text and "Verification cancelled" in told.text
    event = hidden_event(told.text)
    assert event == {"type": "passid:cancel", "sessionId": embedded["id"]}
    assert read(embedded["id"]).get_json()["status"] == "cancelled"

    plain = create(reference="loan-p").get_json()  # nowhere to return to and nobody to tell: no way out offered
    assert CANCEL_LABEL not in open_hosted(client, plain["url"]).text

    done = create(reference="loan-d", returnUrl="https://bank.example/back").get_json()
    old_page = open_hosted(client, done["url"]).text
    approve_qr(widget, app_sandbox, old_page)
    late = client.post("/verify/session/cancel", data={"o": hidden(old_page, "o")})  # from a second tab
    assert late.status_code == 200 and 'data-view="success"' in late.text and "status=cancelled" not in late.text
    assert read(done["id"]).get_json()["status"] == "completed"


def hidden_event(page: str) -> dict[str, Any]:
    """The event a final state hands widget.js for the embedding page (templates/widget/_event.html)."""
    raw = page.split("data-event='", 1)[1].split("'", 1)[0]
    return dict(json.loads(unescape(raw)))


def test_a_session_that_expired_unused_reads_expired(create: Callable[..., TestResponse],
                                                    read: Callable[[str], TestResponse], app: Flask) -> None:
    made = create(reference="loan-6").get_json()
    with app.app_context():
        row = sessions.find(made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert read(made["id"]).get_json()["status"] == "expired"


def test_an_unknown_hosted_session_is_a_404(client: FlaskClient) -> None:
    assert client.get("/verify/session", query_string={"id": "vs_nothing"}).status_code == 404
    assert client.get("/verify/session").status_code == 404


def test_plain_verify_ignores_a_session_in_its_query(create: Callable[..., TestResponse], widget: WidgetActions,
                                                    client: FlaskClient) -> None:
    made = create(reference="loan-1", permissions=["identity_verified"]).get_json()
    page = widget.open(session=made["id"]).text
    assert "Verify with the PASSID app" in page
    assert "Continue" not in page


# --- the migration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_upgrades_and_downgrades_keeping_verifications(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO verification (id, source, status, created_at, session_id, reference) "
                              "VALUES ('res_1', 'qr', 'completed', :at, 'vs_1', 'loan-1')"),
                         {"at": datetime(2026, 11, 26)})
        flask_db(env, "downgrade", "0007_webhook_answered_ms")
        columns = {c["name"] for c in inspect(engine).get_columns("verification")}
        assert "session_id" not in columns and "reference" not in columns
        assert "verification_session" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM verification")).scalars().all() == ["res_1"]
        flask_db(env, "upgrade")
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_session_requests_migration_upgrades_and_downgrades(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO session_request (request_id, session_id, created_at) "
                              "VALUES ('req_1', 'vs_1', :at)"), {"at": datetime(2026, 11, 27)})
            conn.execute(text("INSERT INTO verification (id, source, status, created_at, session_id, reference) "
                              "VALUES ('res_1', 'qr', 'completed', :at, 'vs_1', 'loan-1')"),
                         {"at": datetime(2026, 11, 27)})
        flask_db(env, "downgrade", "0008_verification_sessions")
        assert "session_request" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT session_id FROM verification")).scalars().all() == ["vs_1"]
        flask_db(env, "upgrade")
        assert "session_request" in inspect(engine).get_table_names()
        engine.dispose()


