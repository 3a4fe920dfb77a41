"""Hypothesis over real HTTP: arbitrary input in every field a browser or a caller can send.

The widget's form endpoints, the webhook receiver, staff sign-in and the
sandbox's JSON endpoints each get arbitrary text, bytes and JSON. Whatever can reach the
database (tokens, webhook bodies, user names, the sandbox's JSON) is fuzzed on SQLite and
PostgreSQL; what is signed or validated before anything is stored, on SQLite only. Whatever
arrives, the answer is one of the statuses that route documents — never a
5xx, never a traceback — and the server still answers `/healthz` afterwards.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.passid import PassidClient
from tests.conftest import fuzz_examples, provisioned_database
from tests.support.html_fields import hidden
from tests.support.postgres import refused_before_storage
from tests.support.servers import BIN, ROOT, AppServer, base_env

WEBHOOK_SECRET = "fuzz-webhook-secret-0123456789abcdef"
STAFF_PASSWORD = "correct horse battery staple"
DOCUMENT = Path(__file__).resolve().parents[2] / "app" / "sandbox" / "openapi.json"
TIMEOUT = 20
LEAKS = ("Traceback", 'File "/', "sqlalchemy.exc", "psycopg.errors")

FAST = settings(max_examples=fuzz_examples(60), deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
FEWER = settings(FAST, max_examples=fuzz_examples(30))


# --- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    server: AppServer
    http: requests.Session
    staff_name: str
    institution_key: str
    institution_id: str
    user_jwt: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def target(
    database_kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Target]:
    """The whole app with a webhook secret we know, one staff account and one institution."""
    directory = tmp_path_factory.mktemp("fuzz-forms")
    with provisioned_database(database_kind, directory, request) as database_url:
        yield from _serve(database_url, directory)


def _serve(database_url: str, directory: Path) -> Iterator[Target]:
    env = base_env(
        database_url,
        PASSID_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5",
    )
    staff_name = "fuzz-staff"
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "staff", "create", staff_name, "--role", "admin",
         "--password", STAFF_PASSWORD],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=60,
    )
    server = AppServer(env, directory / "app.log").start()
    try:
        anonymous = PassidClient(server.sandbox_url, timeout=(3.05, 15.0))
        onboarding = anonymous.onboard("Fuzzing Lender")
        with requests.Session() as http:
            yield Target(
                server=server,
                http=http,
                staff_name=staff_name,
                institution_key=onboarding.sandbox_key,
                institution_id=onboarding.institution_id,
                user_jwt=anonymous.sandbox_login("KE8V-3TXY-Z72L"),
            )
        log = (directory / "app.log").read_text(errors="replace")
    finally:
        server.stop()
    # Nothing the fuzzing sent made a request crash (a 500 is logged with its traceback).
    assert "Traceback" not in log, log[-3000:]


def assert_answered(response: requests.Response, allowed: set[int]) -> None:
    # Granian hands request lines of any length the fuzzers make (its buffer is 408 KiB) to the app,
    # so even a 5,000-character URL gets the app's own answer (gunicorn cut them at 4 KB with a 414).
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    for leak in LEAKS:
        assert leak not in response.text, response.text[:2000]


@pytest.fixture(autouse=True)
def still_healthy(target: Target) -> Iterator[None]:
    yield
    assert target.http.get(f"{target.url}/healthz", timeout=TIMEOUT).status_code == 200


# --- strategies -------------------------------------------------------------------------------

INTERESTING = [
    "", " ", "\x00", "\ud7ff", "\ufeff", "\u202e", "%", "%00", "%ff", "<script>alert(1)</script>", "{{7*7}}",
    "' OR 1=1 --", "../../etc/passwd", "PASSID-KE8V-3TXY-Z72L", "passid-ke8v 3txy z72l", "TEST-SANC-0005",
    "KE8V-3TXY-Z72L-", "A" * 5000, "#ff0000", "ff0000", "full_score,,fraud_risk", "full_score,shoe_size",
    "null", "[]", "{}", "0", "-1", "1e400", "NaN", "\n\r\t", "é" * 100, "🙂" * 50, "\\", "//evil.example",
    "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/é", "https://evil.example/",
]
text = st.one_of(st.text(max_size=120), st.sampled_from(INTERESTING))
# Form values as a browser can send them: any text, or bytes that are not even UTF-8 (percent-encoded).
form_value = st.one_of(text, st.binary(max_size=120))
htmx = st.sampled_from([{}, {"HX-Request": "true"}])


def form(*names: str) -> st.SearchStrategy[dict[str, str | bytes]]:
    """Any subset of these fields, each with any value, and sometimes a stray field too."""
    return st.fixed_dictionaries({}, optional={name: form_value for name in (*names, "stray")})


# Header values `requests` can put on the wire: latin-1, no CR/LF/NUL, no leading blank.
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=100
).filter(lambda value: value == value.lstrip())

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


# --- the widget ---------------------------------------------------------------------------------


@refused_before_storage
@FAST
@given(query=st.fixed_dictionaries(
    {}, optional={name: text for name in ("institutionName", "permissions", "theme", "origin", "stray")}
))
def test_the_widget_page_takes_any_query(target: Target, query: dict[str, str]) -> None:
    assert_answered(target.http.get(f"{target.url}/verify", params=query, timeout=TIMEOUT), {200})


@refused_before_storage
@FAST
@given(query=form("n", "o"), headers=htmx)
def test_reset_takes_anything(target: Target, query: dict, headers: dict) -> None:
    response = target.http.get(f"{target.url}/verify/reset", params=query, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {200})


@refused_before_storage
@FEWER
@given(fields=form("o"), headers=htmx)
def test_generate_qr_takes_any_form(target: Target, fields: dict, headers: dict) -> None:
    response = target.http.post(f"{target.url}/verify/qr", data=fields, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {200, 429})


@refused_before_storage
@FEWER
@given(fields=form("o"), headers=htmx)
def test_qr_session_takes_any_form(target: Target, fields: dict, headers: dict) -> None:
    response = target.http.post(f"{target.url}/verify/qr/session", data=fields, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {200, 429})


@refused_before_storage
@FAST
@given(fields=form("o", "n", "token"), headers=htmx)
def test_token_entry_takes_any_form(target: Target, fields: dict, headers: dict) -> None:
    response = target.http.post(f"{target.url}/verify/token", data=fields, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {200, 422, 429})


@FAST
@given(
    fields=form("o", "token"),
    nonce=st.one_of(st.text(min_size=16, max_size=64), form_value),
    headers=htmx,
)
def test_token_check_takes_any_form(target: Target, fields: dict, nonce: str | bytes, headers: dict) -> None:
    """With a nonce of the right length half the time, so the token really goes to PASSID."""
    response = target.http.post(
        f"{target.url}/verify/token/check", data={**fields, "n": nonce}, headers=headers, timeout=TIMEOUT
    )
    assert_answered(response, {200, 422, 429})


@FAST
@given(fields=st.binary(max_size=300), path=st.sampled_from(["/verify/qr", "/verify/token", "/verify/token/check"]))
def test_widget_forms_take_any_raw_body(target: Target, fields: bytes, path: str) -> None:
    response = target.http.post(
        f"{target.url}{path}", data=fields, timeout=TIMEOUT,
        headers={"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"},
    )
    assert_answered(response, {200, 422, 429})


@pytest.fixture(scope="module")
def live_poll(target: Target) -> tuple[str, str]:
    """The (h, o) of a real awaiting widget, as its poll URL carries them."""
    page = target.http.post(f"{target.url}/verify/qr/session", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    match = re.search(r'hx-get="([^"]*/verify/qr/status[^"]*)"', page.text)
    assert match, page.text[:2000]
    query = dict(
        part.split("=", 1) for part in urlsplit(html.unescape(match.group(1))).query.split("&")
    )
    return query["h"], query["o"]


@refused_before_storage
@FAST
@given(query=form("h", "o"), headers=htmx, path=st.sampled_from(["/verify/qr/status", "/verify/qr/resume"]))
def test_poll_and_resume_take_any_handle(target: Target, query: dict, headers: dict, path: str) -> None:
    response = target.http.get(f"{target.url}{path}", params=query, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {200, 204, 404})


@refused_before_storage
@FAST
@given(options=form_value, headers=htmx, path=st.sampled_from(["/verify/qr/status", "/verify/qr/resume"]))
def test_a_live_poll_takes_any_options(
    target: Target, live_poll: tuple[str, str], options: str | bytes, headers: dict, path: str
) -> None:
    handle, _ = live_poll
    response = target.http.get(
        f"{target.url}{path}?h={handle}&o={quote(options)}", headers=headers, timeout=TIMEOUT
    )
    assert_answered(response, {200, 204})


# --- the webhook receiver --------------------------------------------------------------------------

WEBHOOK_HEADERS = (
    "X-PASSID-Signature", "X-PASSID-Event-Id", "X-PASSID-Event-Type", "X-PASSID-Delivery-Attempt", "Content-Type",
)
webhook_headers = st.fixed_dictionaries({}, optional={name: header_value for name in WEBHOOK_HEADERS})
raw_body = st.one_of(
    st.binary(max_size=500),
    json_value.map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"id": text, "type": text, "data": json_value},
        optional={"createdAt": json_value, "test": json_value, "apiVersion": json_value},
    ).map(lambda value: json.dumps(value).encode()),
)


@FAST
@given(body=raw_body, headers=webhook_headers)
def test_the_webhook_receiver_takes_any_unsigned_call(target: Target, body: bytes, headers: dict) -> None:
    response = target.http.post(f"{target.url}/webhooks/passid", data=body, headers=headers, timeout=TIMEOUT)
    assert_answered(response, {401})


@FAST
@given(body=raw_body, headers=webhook_headers)
@example(body=b'{"id": "evt_\\u0000", "type": "verification.completed", "data": {}}', headers={})
@example(body=b'{"id": "evt_1", "type": "\\u0000", "data": {}}', headers={})
@example(body=b'{"id": "evt_\\ud800", "type": "verification.completed", "data": {}}', headers={})
def test_the_webhook_receiver_takes_any_signed_body(target: Target, body: bytes, headers: dict) -> None:
    """Signed with the real secret, so the body gets past the check and into parsing and storage."""
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = target.http.post(
        f"{target.url}/webhooks/passid", data=body, headers={**headers, "X-PASSID-Signature": signature},
        timeout=TIMEOUT,
    )
    assert_answered(response, {200, 400})


# --- staff sign-in -----------------------------------------------------------------------------------


def csrf_token(session: requests.Session, url: str) -> str:
    return hidden(session.get(f"{url}/staff/sign-in", timeout=TIMEOUT).text, "csrf_token")


@FAST
@given(fields=form("csrf_token", "username", "password"), query=form("next"))
def test_sign_in_without_a_valid_csrf_token(target: Target, fields: dict, query: dict) -> None:
    with requests.Session() as browser:
        response = browser.post(
            f"{target.url}/staff/sign-in", params=query, data=fields, timeout=TIMEOUT, allow_redirects=False
        )
    assert_answered(response, {400, 429})


@pytest.fixture(scope="module")
def staff_browser(target: Target) -> tuple[requests.Session, str]:
    browser = requests.Session()
    return browser, csrf_token(browser, target.url)


@FAST
@given(fields=form("username", "password"), query=form("next"))
@example(fields={"username": "fuzz\x00staff", "password": "x"}, query={})
def test_sign_in_with_a_valid_csrf_token(
    target: Target, staff_browser: tuple[requests.Session, str], fields: dict, query: dict
) -> None:
    browser, token = staff_browser
    response = browser.post(
        f"{target.url}/staff/sign-in", params=query, data={**fields, "csrf_token": token},
        timeout=TIMEOUT, allow_redirects=False,
    )
    assert_answered(response, {400, 401, 429})


@FEWER  # each example hashes a password
@given(
    next_page=st.one_of(text, text.map(lambda rest: "/" + rest)),
    username_case=st.sampled_from([str, str.upper, lambda name: f"  {name} "]),
)
@example(next_page="/\\evil.example", username_case=str)
@example(next_page="/\t/evil.example", username_case=str)
@example(next_page="/\n/evil.example", username_case=str)
@example(next_page="/🙂", username_case=str)
@example(next_page="/console/\n", username_case=str)
def test_a_real_sign_in_redirects_only_within_the_site(target: Target, next_page: str, username_case) -> None:  # type: ignore[no-untyped-def]
    with requests.Session() as browser:
        response = browser.post(
            f"{target.url}/staff/sign-in",
            params={"next": next_page},
            data={"csrf_token": csrf_token(browser, target.url), "username": username_case(target.staff_name),
                  "password": STAFF_PASSWORD},
            timeout=TIMEOUT, allow_redirects=False,
        )
    assert_answered(response, {302, 429})
    if response.status_code == 302:
        location = response.headers["Location"]
        # Browsers read `\` as `/` and drop tabs and newlines: whatever they make of it stays on this site.
        as_browsers_read_it = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
        assert as_browsers_read_it.startswith("/") and not as_browsers_read_it.startswith("//"), location


# --- the sandbox's JSON endpoints ----------------------------------------------------------------------


def _sandbox_operations() -> list[tuple[str, str, set[int], list[str]]]:
    """(method, path, documented statuses, body field names) for every operation of the OpenAPI document."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = {int(status) for status in operation["responses"]}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                body = schemas[body["$ref"].rsplit("/", 1)[1]]
            operations.append((method.upper(), path, statuses, sorted(body.get("properties", {}))))
    return operations


SANDBOX_OPERATIONS = _sandbox_operations()


@pytest.mark.parametrize(
    ("method", "path", "statuses", "fields"), SANDBOX_OPERATIONS, ids=[f"{m} {p}" for m, p, _, _ in SANDBOX_OPERATIONS]
)
def test_the_sandbox_takes_any_json(
    target: Target, method: str, path: str, statuses: set[int], fields: list[str]
) -> None:
    auth = {"X-Institution-Key": target.institution_key, "Authorization": f"Bearer {target.user_jwt}"}
    # Objects that use the operation's own field names, with any values; and any JSON at all.
    bodies = st.one_of(
        st.dictionaries(st.sampled_from(fields) if fields else text, json_value, max_size=6),
        json_value,
    )

    @settings(FAST, max_examples=fuzz_examples(40))
    @given(body=bodies, segment=text, with_auth=st.booleans(), idempotency_key=st.one_of(st.none(), header_value))
    def answers_as_documented(body: object, segment: str, with_auth: bool, idempotency_key: str | None) -> None:
        # A path segment of any text (`.` and `..` would move to another route, so they become `x`).
        quoted = quote(segment, safe="") if segment.strip(".") else "x"
        url = target.server.sandbox_url + re.sub(r"\{[^}]+\}", quoted, path)
        headers = {"Content-Type": "application/json", **(auth if with_auth else {})}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = target.http.request(method, url, data=json.dumps(body), headers=headers, timeout=TIMEOUT)
        assert_answered(response, statuses)
        assert response.headers.get("X-PASSID-API-Version") == "1"
        if response.status_code != 204:
            assert response.headers["Content-Type"].startswith("application/json"), response.headers
            answer = response.json()
            if response.status_code >= 400:
                assert set(answer) == {"error"} and {"code", "message"} <= set(answer["error"]), answer

    answers_as_documented()
