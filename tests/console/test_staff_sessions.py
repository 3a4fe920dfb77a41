"""Staff sessions end on time and on the server: 8 hours, sign-out, a password change.

In-process (Flask's test client; `flask staff create` through the CLI runner): each check is what the
app answers to a cookie, and a timer cannot prove "the same work", so the sign-in timing check counts
password-hash checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient, FlaskCliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

import app.staff.models as staff_models
from app.config import SETTINGS
from tests.console.conftest import PASSWORD, add_staff, signed_in
from tests.support.html_fields import hidden

EIGHT_HOURS = 8 * 3600


def _session_serializer(app: Flask, age_seconds: int = 0) -> URLSafeTimedSerializer:
    """Flask's own cookie serializer for the app's SECRET_KEY, stamping cookies `age_seconds` in the past."""
    holder = Flask("forge")
    holder.secret_key = app.config["SECRET_KEY"]
    serializer = SecureCookieSessionInterface().get_signing_serializer(holder)
    assert serializer is not None

    class BackdatedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    serializer.signer = BackdatedSigner
    return serializer


def _session_cookie(browser: FlaskClient) -> str:
    cookie = browser.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _console_status(app: Flask, cookie: str) -> int:
    """What a browser holding only this cookie gets from the console: 200 signed in, 302 to sign-in."""
    stranger = app.test_client()
    stranger.set_cookie("session", cookie)
    answer = stranger.get("/console/")
    if answer.status_code == 302:
        assert "/staff/sign-in" in answer.headers["Location"]
    return answer.status_code


def test_the_session_cookie_lasts_eight_hours_not_a_month(app: Flask, runner: FlaskCliRunner) -> None:
    before = datetime.now(UTC)
    browser = signed_in(app.test_client(), add_staff(runner))
    cookie = browser.get_cookie("session")
    assert cookie is not None and cookie.expires is not None
    lifetime = (cookie.expires - before).total_seconds()
    assert EIGHT_HOURS - 60 <= lifetime <= EIGHT_HOURS + 60, f"cookie lasts {lifetime / 3600:.1f} h"


def test_a_session_signed_more_than_eight_hours_ago_is_refused(app: Flask, staff_client: FlaskClient) -> None:
    """Expiry is enforced by the server (the signed timestamp), not only by the browser dropping the cookie."""
    contents = _session_serializer(app).loads(_session_cookie(staff_client))
    seven_hours_old = _session_serializer(app, age_seconds=7 * 3600).dumps(contents)
    nine_hours_old = _session_serializer(app, age_seconds=9 * 3600).dumps(contents)
    assert _console_status(app, seven_hours_old) == 200
    assert _console_status(app, nine_hours_old) == 302


def test_a_session_in_use_still_ends_eight_hours_after_sign_in(app: Flask, staff_client: FlaskClient) -> None:
    """Flask re-signs the cookie on every response, so its timestamp alone is an idle timeout."""
    contents = _session_serializer(app).loads(_session_cookie(staff_client))
    # A cookie the server has just re-signed, for a sign-in nine hours ago (seven for the control).
    fresh = _session_serializer(app)
    nine_hours_in = fresh.dumps({**contents, "signed_in_at": int(time.time()) - 9 * 3600})
    seven_hours_in = fresh.dumps({**contents, "signed_in_at": int(time.time()) - 7 * 3600})
    assert _console_status(app, seven_hours_in) == 200
    assert _console_status(app, nine_hours_in) == 302


def test_signing_out_ends_a_copied_cookie(app: Flask, runner: FlaskCliRunner) -> None:
    staff_name = add_staff(runner)
    browser = signed_in(app.test_client(), staff_name)
    copied = _session_cookie(browser)
    assert _console_status(app, copied) == 200
    page = browser.get("/console/").text
    out = browser.post("/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")})
    assert out.status_code == 302
    assert _console_status(app, copied) == 302
    # Signing in again works, with a new cookie; the copy stays dead.
    again = signed_in(app.test_client(), staff_name)
    assert again.get("/console/").status_code == 200
    assert _console_status(app, copied) == 302


def test_a_password_change_ends_the_other_sessions(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner)
    tablet, desk = signed_in(app.test_client(), name), signed_in(app.test_client(), name)
    assert _console_status(app, _session_cookie(tablet)) == 200
    add_staff(runner, name, PASSWORD + " changed")
    assert _console_status(app, _session_cookie(tablet)) == 302
    assert _console_status(app, _session_cookie(desk)) == 302


def test_another_account_s_password_change_leaves_a_session_alone(app: Flask, runner: FlaskCliRunner) -> None:
    mine, other = add_staff(runner), add_staff(runner)
    browser = signed_in(app.test_client(), mine)
    add_staff(runner, other, PASSWORD + " changed")
    assert _console_status(app, _session_cookie(browser)) == 200


@pytest.mark.parametrize("username", ["alice", "nobody", "no\x00body"])
def test_every_sign_in_does_the_same_password_work(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    """An unknown name must cost one password-hash check too, or the answer's timing tells names apart."""
    checks: list[str] = []
    real_check = staff_models.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checks.append(pwhash.split("$", 1)[0])
        return real_check(pwhash, password)

    add_staff(runner, "alice")
    monkeypatch.setattr(staff_models, "check_password_hash", counting_check)
    client = app.test_client()
    form = client.get("/staff/sign-in").text
    answer = client.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": username,
                                                 "password": "not the password"})
    assert answer.status_code == 401
    assert len(checks) == 1, checks
    # The same method and cost as a real account's hash, so the check takes as long.
    with app.app_context():
        alice = staff_models.find_staff("alice")
        assert alice is not None
        assert checks[0] == alice.password_hash.split("$", 1)[0]


def test_production_hashes_with_scrypt_and_an_unknown_name_costs_a_scrypt_check_too(
    build_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one test that pays for scrypt (every other app under test hashes cheaply, PASSID_PASSWORD_HASH).

    Production's default is scrypt; an account made with it carries Werkzeug's scrypt cost today, and an
    unknown name is checked against the constant hash of exactly that method and cost, so both take as long.
    """
    assert SETTINGS["password_hash"].default == "scrypt"
    app = build_app(PASSID_PASSWORD_HASH=SETTINGS["password_hash"].default)
    runner = app.test_cli_runner()
    add_staff(runner, "alice")
    with app.app_context():
        alice = staff_models.find_staff("alice")
        assert alice is not None and alice.check_password(PASSWORD)
        method = alice.password_hash.split("$", 1)[0]
    assert method.startswith("scrypt:") and method == staff_models.UNMATCHABLE_HASH.split("$", 1)[0]
    checks: list[str] = []
    real_check = staff_models.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checks.append(pwhash)
        return real_check(pwhash, password)

    monkeypatch.setattr(staff_models, "check_password_hash", counting_check)
    client = app.test_client()
    form = client.get("/staff/sign-in").text
    answer = client.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": "nobody",
                                                 "password": PASSWORD})
    assert answer.status_code == 401
    assert checks == [staff_models.UNMATCHABLE_HASH]
