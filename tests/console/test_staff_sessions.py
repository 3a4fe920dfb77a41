"""Staff sessions end on time and on the server: 8 hours, sign-out, a password change (issue 9, findings 3 and 7).

Sessions are checked over real HTTP against the app under gunicorn; the sign-in timing check counts
password-hash checks through Flask's test client, because a timer cannot prove "the same work".
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

import app.staff.models as staff_models
from app import create_app
from tests.console.conftest import PASSWORD, create_staff, hidden, run_flask, sign_in
from tests.support.servers import AppServer, base_env, migrate

EIGHT_HOURS = 8 * 3600


def _session_serializer(server: AppServer, age_seconds: int = 0) -> URLSafeTimedSerializer:
    """Flask's own cookie serializer for the server's SECRET_KEY, stamping cookies `age_seconds` in the past."""
    holder = Flask("forge")
    holder.secret_key = server.env["SECRET_KEY"]
    serializer = SecureCookieSessionInterface().get_signing_serializer(holder)
    assert serializer is not None

    class BackdatedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    serializer.signer = BackdatedSigner
    return serializer


def _console_status(server: AppServer, cookie: str) -> int:
    """What a browser holding only this cookie gets from the console: 200 signed in, 302 to sign-in."""
    answer = requests.get(f"{server.url}/console/", cookies={"session": cookie}, allow_redirects=False, timeout=10)
    if answer.status_code == 302:
        assert "/staff/sign-in" in answer.headers["Location"]
    return answer.status_code


def test_the_session_cookie_lasts_eight_hours_not_a_month(console_server: AppServer, staff_name: str) -> None:
    before = time.time()
    browser = sign_in(console_server, staff_name)
    cookie = next(c for c in browser.cookies if c.name == "session")
    assert cookie.expires is not None
    lifetime = cookie.expires - before
    assert EIGHT_HOURS - 60 <= lifetime <= EIGHT_HOURS + 60, f"cookie lasts {lifetime / 3600:.1f} h"


def test_a_session_signed_more_than_eight_hours_ago_is_refused(console_server: AppServer, staff_name: str) -> None:
    """Expiry is enforced by the server (the signed timestamp), not only by the browser dropping the cookie."""
    browser = sign_in(console_server, staff_name)
    contents = _session_serializer(console_server).loads(browser.cookies["session"])
    seven_hours_old = _session_serializer(console_server, age_seconds=7 * 3600).dumps(contents)
    nine_hours_old = _session_serializer(console_server, age_seconds=9 * 3600).dumps(contents)
    assert _console_status(console_server, seven_hours_old) == 200
    assert _console_status(console_server, nine_hours_old) == 302


def test_a_session_in_use_still_ends_eight_hours_after_sign_in(console_server: AppServer, staff_name: str) -> None:
    """Flask re-signs the cookie on every response, so its timestamp alone is an idle timeout."""
    browser = sign_in(console_server, staff_name)
    contents = _session_serializer(console_server).loads(browser.cookies["session"])
    # A cookie the server has just re-signed, for a sign-in nine hours ago (seven for the control).
    fresh = _session_serializer(console_server)
    nine_hours_in = fresh.dumps({**contents, "signed_in_at": int(time.time()) - 9 * 3600})
    seven_hours_in = fresh.dumps({**contents, "signed_in_at": int(time.time()) - 7 * 3600})
    assert _console_status(console_server, seven_hours_in) == 200
    assert _console_status(console_server, nine_hours_in) == 302


def test_signing_out_ends_a_copied_cookie(console_server: AppServer) -> None:
    staff_name = create_staff(console_server)  # its own: signing out ends every session of the account
    browser = sign_in(console_server, staff_name)
    copied = browser.cookies["session"]
    assert _console_status(console_server, copied) == 200
    page = browser.get(f"{console_server.url}/console/", timeout=10).text
    out = browser.post(f"{console_server.url}/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")},
                       allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert _console_status(console_server, copied) == 302
    # Signing in again works, with a new cookie; the copy stays dead.
    again = sign_in(console_server, staff_name)
    assert again.get(f"{console_server.url}/console/", allow_redirects=False, timeout=10).status_code == 200
    assert _console_status(console_server, copied) == 302


def test_a_password_change_ends_the_other_sessions(console_server: AppServer) -> None:
    name = create_staff(console_server)
    tablet, desk = sign_in(console_server, name), sign_in(console_server, name)
    assert _console_status(console_server, tablet.cookies["session"]) == 200
    changed = run_flask(console_server, "staff", "create", name, "--password", PASSWORD + " changed")
    assert changed.returncode == 0, changed.stderr
    assert _console_status(console_server, tablet.cookies["session"]) == 302
    assert _console_status(console_server, desk.cookies["session"]) == 302


def test_another_account_s_password_change_leaves_a_session_alone(console_server: AppServer) -> None:
    mine, other = create_staff(console_server), create_staff(console_server)
    browser = sign_in(console_server, mine)
    assert run_flask(console_server, "staff", "create", other, "--password", PASSWORD + " changed").returncode == 0
    assert _console_status(console_server, browser.cookies["session"]) == 200


@pytest.fixture
def sign_in_app(tmp_path: Path) -> Iterator[Flask]:
    """The app in this process over a migrated SQLite file, with one staff account, `alice`."""
    env = base_env(f"sqlite:///{tmp_path / 'passid.db'}", PASSID_BACKGROUND_JOBS="false")
    migrate(env)
    application = create_app(env)
    with application.app_context():
        created = application.test_cli_runner().invoke(args=["staff", "create", "alice", "--password", PASSWORD])
    assert created.exit_code == 0, created.output
    yield application


@pytest.mark.parametrize("username", ["alice", "nobody", "no\x00body"])
def test_every_sign_in_does_the_same_password_work(
    sign_in_app: Flask, monkeypatch: pytest.MonkeyPatch, username: str
) -> None:
    """An unknown name must cost one password-hash check too, or the answer's timing tells names apart."""
    checks: list[str] = []
    real_check = staff_models.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checks.append(pwhash.split("$", 1)[0])
        return real_check(pwhash, password)

    monkeypatch.setattr(staff_models, "check_password_hash", counting_check)
    client = sign_in_app.test_client()
    form = client.get("/staff/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert csrf
    answer = client.post("/staff/sign-in", data={"csrf_token": csrf.group(1), "username": username,
                                                 "password": "not the password"})
    assert answer.status_code == 401
    assert len(checks) == 1, checks
    # The same method and cost as a real account's hash, so the check takes as long.
    with sign_in_app.app_context():
        alice = staff_models.find_staff("alice")
        assert alice is not None
        assert checks[0] == alice.password_hash.split("$", 1)[0]
