"""Bad input of every kind, sent raw with `requests` where the client would refuse to send it.

Each answer must be a 4xx in exactly the contract's error shape, with the API
version header and no HTML or traceback; the server must answer the next
request; and a rejected call must leave nothing behind.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import create_engine, text

from app.passid import PassidClient
from tests.support.postgres import refused_before_storage
from tests.support.servers import WebhookReceiver

UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
GOOD_OUTCOME = {"token": "KE8V-3TXY-Z72L", "outcome": "repaid", "productType": "loan", "amount": 100}
GOOD_WEBHOOK = {"url": "http://127.0.0.1:9/hooks", "secret": "s" * 16}


@dataclass(frozen=True)
class Raw:
    """A body sent byte for byte, for what `json.dumps` would never write."""

    data: bytes


def send(base_url: str, key: str | None, method: str, path: str, body: object = None, **headers: str):
    """One raw call to the sandbox; `body` is JSON-encoded unless it is `Raw` (or None: no body)."""
    send_headers = {"Content-Type": "application/json", **headers}
    if key:
        send_headers["X-Institution-Key"] = key
    if body is None:
        data = b""
    elif isinstance(body, Raw):
        data = body.data
    else:
        data = json.dumps(body).encode()
    return requests.request(method, base_url + path, data=data, headers=send_headers, timeout=30)


def assert_contract_error(response: requests.Response, status: int | None = None, field: str | None = None) -> dict:
    """Exactly `{"error": {"code", "message", "field"?}}`, JSON, versioned, with no HTML or traceback."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert response.headers.get("X-PASSID-API-Version") == "1"
    lowered = response.text.lower()
    for leak in ("<html", "<!doctype", "traceback", 'file "/', "sqlalchemy", "psycopg"):
        assert leak not in lowered, response.text[:500]
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error) <= {"code", "message", "field"}
    assert isinstance(error["code"], str) and UPPER_SNAKE.match(error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if "field" in error:
        assert isinstance(error["field"], str) and error["field"], error
    if field is not None:
        assert error.get("field") == field, error
    return error


def assert_still_serving(client: PassidClient) -> None:
    assert client.verify("KE8V-3TXY-Z72L").verified is True


# --- bodies that are not a JSON object, on every endpoint that reads one ---------------------

BODY_ENDPOINTS = [
    ("POST", "/api/onboard"),
    ("PUT", "/api/institution/webhook"),
    ("POST", "/api/bridge/request"),
    ("POST", "/api/bridge/verify"),
    ("POST", "/api/bridge/outcome"),
]
NOT_AN_OBJECT = {
    "malformed": Raw(b'{"token": "KE8V-3TXY-Z72L"'),
    "garbage": Raw(b"this is not json"),
    # Not "no body": where a body is optional, only zero bytes mean none (Schemathesis found this one).
    "whitespace_only": Raw(b"\r\n "),
    "array": ["KE8V-3TXY-Z72L"],
    "string": "KE8V-3TXY-Z72L",
    "number": 42,
    "null": Raw(b"null"),
    "invalid_utf8": Raw(b'{"institutionName": "\xff\xfe"}'),
    "nested_too_deep": Raw(b"[" * 100_000 + b"]" * 100_000),
}


@refused_before_storage
@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS, ids=[p for _, p in BODY_ENDPOINTS])
@pytest.mark.parametrize("body", list(NOT_AN_OBJECT.values()), ids=list(NOT_AN_OBJECT))
def test_a_body_that_is_not_a_json_object_is_400_on_the_body_field(institution, method, path, body) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    response = send(client.base_url, onboarding.sandbox_key, method, path, body)
    assert_contract_error(response, 400, "body")
    assert_still_serving(client)


@refused_before_storage
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/onboard"), ("PUT", "/api/institution/webhook"), ("POST", "/api/bridge/verify"),
     ("POST", "/api/bridge/outcome")],
)
def test_an_empty_body_where_one_is_required_is_400(institution, method, path) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    assert_contract_error(send(client.base_url, onboarding.sandbox_key, method, path), 400, "body")
    assert_still_serving(client)


# --- wrong types and values, field by field ---------------------------------------------------

FIELD_CASES = [
    # POST /api/onboard
    ("POST", "/api/onboard", {}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": None}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": 5}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": ["Acme"]}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": "x" * 81}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": "   "}, "institutionName"),
    ("POST", "/api/onboard", {"institutionName": "Acme\u0000Bank"}, "institutionName"),
    ("POST", "/api/onboard", Raw(b'{"institutionName": "Acme \\ud800"}'), "institutionName"),
    # PUT /api/institution/webhook
    ("PUT", "/api/institution/webhook", {"secret": "s" * 16}, "url"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "url": 5}, "url"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "url": ["https://x.example"]}, "url"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "url": "ftp://x.example"}, "url"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "url": "https://x.example/" + "a" * 2048}, "url"),
    ("PUT", "/api/institution/webhook", {"url": GOOD_WEBHOOK["url"]}, "secret"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "secret": 1234567890123456}, "secret"),
    ("PUT", "/api/institution/webhook", {**GOOD_WEBHOOK, "secret": "short"}, "secret"),
    # POST /api/bridge/request
    ("POST", "/api/bridge/request", {"ttlSeconds": "60"}, "ttlSeconds"),
    ("POST", "/api/bridge/request", {"ttlSeconds": True}, "ttlSeconds"),
    ("POST", "/api/bridge/request", {"ttlSeconds": 60.5}, "ttlSeconds"),
    ("POST", "/api/bridge/request", {"ttlSeconds": 3601}, "ttlSeconds"),
    ("POST", "/api/bridge/request", {"ttlSeconds": -5}, "ttlSeconds"),
    ("POST", "/api/bridge/request", {"ttlSeconds": 10**30}, "ttlSeconds"),
    ("POST", "/api/bridge/request", Raw(b'{"ttlSeconds": NaN}'), "ttlSeconds"),
    ("POST", "/api/bridge/request", Raw(b'{"ttlSeconds": 1e400}'), "ttlSeconds"),
    ("POST", "/api/bridge/request", {"permissions": "full_score"}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": ["full_score", "shoe_size"]}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": ["FULL_SCORE"]}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": []}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": [1]}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": [["full_score"]]}, "permissions"),
    ("POST", "/api/bridge/request", {"permissions": {"full_score": True}}, "permissions"),
    ("POST", "/api/bridge/request", {"institutionName": "x" * 81}, "institutionName"),
    ("POST", "/api/bridge/request", {"institutionName": ""}, "institutionName"),
    ("POST", "/api/bridge/request", {"institutionName": 42}, "institutionName"),
    # POST /api/bridge/verify
    ("POST", "/api/bridge/verify", {}, "token"),
    ("POST", "/api/bridge/verify", {"token": None}, "token"),
    ("POST", "/api/bridge/verify", {"token": 123}, "token"),
    ("POST", "/api/bridge/verify", {"token": ["KE8V-3TXY-Z72L"]}, "token"),
    ("POST", "/api/bridge/verify", {"token": {"value": "KE8V-3TXY-Z72L"}}, "token"),
    ("POST", "/api/bridge/verify", {"token": "KE8V-3TXY-Z72L\u0000"}, "token"),
    ("POST", "/api/bridge/verify", {"token": "x" * 10_000}, "token"),
    # POST /api/bridge/outcome
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "token": 123}, "token"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "token": "not a token"}, "token"),
    ("POST", "/api/bridge/outcome", {k: v for k, v in GOOD_OUTCOME.items() if k != "token"}, "token"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "outcome": 1}, "outcome"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "outcome": "bankrupt"}, "outcome"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "productType": ["loan"]}, "productType"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "productType": ""}, "productType"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "productType": "loan\u0000"}, "productType"),
    ("POST", "/api/bridge/outcome", {k: v for k, v in GOOD_OUTCOME.items() if k != "amount"}, "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "amount": "5"}, "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "amount": True}, "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "amount": None}, "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "amount": -1}, "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "amount": [5]}, "amount"),
    ("POST", "/api/bridge/outcome",
     Raw(b'{"token": "KE8V-3TXY-Z72L", "outcome": "repaid", "productType": "loan", "amount": NaN}'), "amount"),
    ("POST", "/api/bridge/outcome",
     Raw(b'{"token": "KE8V-3TXY-Z72L", "outcome": "repaid", "productType": "loan", "amount": Infinity}'),
     "amount"),
    ("POST", "/api/bridge/outcome",
     Raw(b'{"token": "KE8V-3TXY-Z72L", "outcome": "repaid", "productType": "loan", "amount": 1e400}'), "amount"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "currency": 840}, "currency"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "currency": "US"}, "currency"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "currency": "U$D"}, "currency"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "notes": "n" * 1001}, "notes"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "notes": 7}, "notes"),
    ("POST", "/api/bridge/outcome", {**GOOD_OUTCOME, "outcome": "other"}, "notes"),
]


def _case_id(case: tuple) -> str:
    method, path, body, field = case
    shown = body.data.decode(errors="replace") if isinstance(body, Raw) else json.dumps(body)
    return f"{method} {path} {field} {shown[:60]}"


@refused_before_storage
@pytest.mark.parametrize(("method", "path", "body", "field"), FIELD_CASES, ids=[_case_id(c) for c in FIELD_CASES])
def test_a_bad_field_is_400_naming_that_field(institution, method, path, body, field) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    if path == "/api/bridge/outcome":
        client.verify("KE8V-3TXY-Z72L")  # so that only the field, not the token's history, can be wrong
    response = send(client.base_url, onboarding.sandbox_key, method, path, body)
    error = assert_contract_error(response, 400, field)
    assert error["code"] == "VALIDATION_ERROR"
    assert_still_serving(client)


@refused_before_storage
@pytest.mark.parametrize(
    "key",
    ["k" * 256, "k" * 300, "clé-non-ascii", "tab\there"],
    ids=["256 chars", "300 chars", "non-ascii", "control char"],
)
def test_a_bad_idempotency_key_is_400_naming_the_header(institution, key: str) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    response = send(
        client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/verify", {"token": "KE8V-3TXY-Z72L"},
        **{"Idempotency-Key": key},
    )
    assert_contract_error(response, 400, "Idempotency-Key")
    assert_still_serving(client)


def test_a_nul_in_a_query_parameter_is_400_not_a_database_error(institution) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    response = requests.get(
        client.base_url + "/api/bridge/cohorts",
        params={"productType": "loan\x00"},
        headers={"X-Institution-Key": onboarding.sandbox_key},
        timeout=10,
    )
    assert_contract_error(response, 400, "productType")
    assert_still_serving(client)


# --- size, paths and methods ---------------------------------------------------------------------

@refused_before_storage
@pytest.mark.parametrize(("method", "path"), [("POST", "/api/onboard"), ("POST", "/api/bridge/verify")])
def test_a_ten_megabyte_body_is_413(institution, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    body = Raw(b'{"institutionName": "' + b"a" * (10 * 1024 * 1024) + b'"}')
    response = send(client.base_url, onboarding.sandbox_key, method, path, body)
    error = assert_contract_error(response, 413)
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert_still_serving(client)


@refused_before_storage
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/nope", 404, "NOT_FOUND"),
        ("POST", "/api/bridge/nope/deeper", 404, "NOT_FOUND"),
        ("GET", "/api/bridge/request/req_doesnotexist", 404, "NOT_FOUND"),
        ("GET", "/api/bridge/request/req_%00x", 404, "NOT_FOUND"),
        ("GET", "/api/bridge/request/req_%00x/public", 404, "NOT_FOUND"),
        ("GET", "/api/bridge/request/code/not-a-code", 400, "VALIDATION_ERROR"),
        ("DELETE", "/api/onboard", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/api/bridge/verify", 405, "METHOD_NOT_ALLOWED"),
        ("PATCH", "/api/institution/webhook", 405, "METHOD_NOT_ALLOWED"),
        ("PUT", "/api/bridge/outcome", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_unknown_paths_and_wrong_methods_answer_in_the_error_shape(institution, method, path, status, code) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    response = requests.request(
        method, client.base_url + path, headers={"X-Institution-Key": onboarding.sandbox_key, "Accept": "text/html"},
        timeout=10,
    )
    assert assert_contract_error(response, status)["code"] == code
    assert_still_serving(client)


# --- nothing is half-written --------------------------------------------------------------------

def _count(database_url: str, sql: str, **params: object) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


def test_a_rejected_create_request_leaves_no_request(institution, database_url: str) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    rejected = [
        {"ttlSeconds": "60"}, {"permissions": ["full_score", "shoe_size"]}, {"institutionName": "x" * 81},
        {"permissions": "full_score"}, Raw(b'{"ttlSeconds": NaN}'), Raw(b"{"),
    ]
    for body in rejected:
        assert_contract_error(send(client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/request", body), 400)
    count_sql = "SELECT count(*) FROM sandbox_request WHERE institution_id = :id"
    assert _count(database_url, count_sql, id=onboarding.institution_id) == 0
    client.create_request(ttl_seconds=60)
    assert _count(database_url, count_sql, id=onboarding.institution_id) == 1


def test_a_rejected_onboarding_creates_no_institution(sandbox: PassidClient, database_url: str) -> None:
    marker = f"Rejected {uuid.uuid4().hex}"
    for body in ({"institutionName": marker + "x" * 80}, {"institutionName": marker + "\u0000"}):
        assert_contract_error(send(sandbox.base_url, None, "POST", "/api/onboard", body), 400, "institutionName")
    like = "SELECT count(*) FROM sandbox_institution WHERE name LIKE :pattern"
    assert _count(database_url, like, pattern=marker + "%") == 0


def test_a_rejected_outcome_leaves_no_outcome_and_sends_no_event(institution) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    with WebhookReceiver() as receiver:
        client.set_webhook(receiver.url, "s" * 16)
        client.verify("KE8V-3TXY-Z72L")
        for body in (
            {**GOOD_OUTCOME, "amount": "5"},
            {**GOOD_OUTCOME, "notes": "n" * 1001},
            {**GOOD_OUTCOME, "outcome": "other"},
            {**GOOD_OUTCOME, "currency": "POUNDS"},
            Raw(json.dumps(GOOD_OUTCOME).replace("100", "NaN").encode()),
        ):
            assert_contract_error(send(client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/outcome", body))
        receipt = client.report_outcome("KE8V-3TXY-Z72L", "repaid", "loan", 100)
        assert receipt.amount == 100 and receipt.currency == "USD"
        types = [delivery.type for delivery in client.list_webhook_deliveries()]
        assert types.count("outcome.reported") == 1
        assert types.count("verification.completed") == 1


def test_a_rejected_webhook_setting_changes_nothing(institution) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    client.set_webhook("http://127.0.0.1:9/first-hooks", "f" * 16)
    for body in (
        {"url": "https://second.example/hooks", "secret": "short"},
        {"url": "ftp://second.example", "secret": "s" * 16},
        {"url": "https://second.example/hooks", "secret": 12345678901234567},
    ):
        assert_contract_error(send(client.base_url, onboarding.sandbox_key, "PUT", "/api/institution/webhook", body))
    assert client.get_webhook().url == "http://127.0.0.1:9/first-hooks"


def test_a_rejected_verify_does_not_burn_its_idempotency_key(institution) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    key = f"retry-{uuid.uuid4()}"
    rejected = send(client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/verify", {"token": 123},
                    **{"Idempotency-Key": key})
    assert_contract_error(rejected, 400, "token")
    first = send(client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/verify", {"token": "KE8V-3TXY-Z72L"},
                 **{"Idempotency-Key": key})
    assert first.status_code == 200 and first.json()["verified"] is True
    assert "Idempotent-Replayed" not in first.headers
    again = send(client.base_url, onboarding.sandbox_key, "POST", "/api/bridge/verify", {"token": "KE8V-3TXY-Z72L"},
                 **{"Idempotency-Key": key})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.content == first.content
