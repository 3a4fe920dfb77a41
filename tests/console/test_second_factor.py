"""Staff sign in with a second factor: who must, what a password alone reaches, authenticator codes (once, in
their own time window), recovery codes (once), the lock after wrong answers, the rate limit, an admin's reset,
and every step in the audit log.

In-process (Flask's test client; `flask staff` through the CLI runner), with PASSID_STAFF_MFA as production's
default (`admin`) unless a test says otherwise. Codes are computed from the secret the enrolment page shows,
as an authenticator app computes them; the only stand-in is the clock the server checks codes against
(`app.staff.totp.clock`), moved from one 30-second step to the next instead of waiting for it. Passkeys are
proved in Chromium: tests/browser/test_passkeys.py.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.config import load_settings
from app.plumbing.database import db
from app.rules import audit
from app.staff import totp
from app.staff.factors import LOCK_PERIOD, MAX_FAILURES, StaffTotp
from app.staff.models import find_staff
from tests.console.conftest import PASSWORD, add_staff
from tests.support.html_fields import hidden
from tests.support.oidc import REDIRECT_URI, OidcTestProvider

pytestmark = pytest.mark.databases("sqlite")

SECOND_FACTOR = "/staff/sign-in/second-factor"
ENROL = "/staff/sign-in/enrol"
APP_SETUP = "/staff/second-factor/app"
START = 1_800_000_000.0  # a moment at the start of a 30-second step


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_STAFF_MFA": "admin"}


class Clock:
    """The time the server checks authenticator codes against, moved by the test a step at a time."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += 30 * steps


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(totp, "clock", moving)
    return moving


def password_step(browser: FlaskClient, name: str, next_path: str = "") -> str:
    """Post the sign-in form with the right password; returns where the browser is sent."""
    form = browser.get("/staff/sign-in").text
    answer = browser.post(f"/staff/sign-in{next_path}", data={"csrf_token": hidden(form, "csrf_token"),
                                                              "username": name, "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def csrf(browser: FlaskClient, path: str) -> str:
    return hidden(browser.get(path).text, "csrf_token")


def enrol_app(browser: FlaskClient, clock: Clock) -> str:
    """Set up an authenticator app from the page's secret, typing the code it computes now; returns the secret."""
    page = browser.get(APP_SETUP)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    found = re.search(r"data-totp-secret>([A-Z2-7 ]+)<", page.text)
    assert found and "<svg" in page.text  # the QR code, drawn on the server
    secret = found.group(1).replace(" ", "")
    done = browser.post(APP_SETUP, data={"csrf_token": hidden(page.text, "csrf_token"),
                                         "code": pyotp.TOTP(secret).at(clock.now)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/staff/account/recovery-codes")
    return secret


def answer(browser: FlaskClient, code: str, method: str = "app") -> tuple[int, str]:
    """Post a code at the sign-in's second step: (status, where it leads or the page's alert)."""
    done = browser.post(SECOND_FACTOR, data={"csrf_token": csrf(browser, SECOND_FACTOR), "method": method,
                                             "code": code})
    if done.status_code == 302:
        return 302, done.headers["Location"]
    alert = re.search(r'role="alert">([^<]*)<', done.text)
    return done.status_code, alert.group(1) if alert else ""


def entries(app: Flask, action: audit.Action) -> list[tuple[str, str | None, str | None]]:
    with app.app_context():
        found = db.session.execute(db.select(audit.AuditEntry).where(audit.AuditEntry.action == action)
                                   .order_by(audit.AuditEntry.id)).scalars()
        return [(entry.actor, entry.subject, entry.detail) for entry in found]


def enrolled_admin(app: Flask, runner: FlaskCliRunner, clock: Clock) -> tuple[str, str]:
    """An admin who enrolled an authenticator app at their first sign-in, signed out again: (name, secret)."""
    name = add_staff(runner)
    browser = app.test_client()
    password_step(browser, name)
    secret = enrol_app(browser, clock)
    browser.post("/staff/sign-out", data={"csrf_token": csrf(browser, "/staff/account")})
    return name, secret


def test_production_asks_admins_for_a_second_factor_by_default() -> None:
    assert load_settings({"SECRET_KEY": "test-secret"}).staff_mfa == "admin"


def test_an_admin_s_password_alone_opens_no_staff_page_only_enrolment(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner)
    browser = app.test_client()
    assert password_step(browser, name, "?next=/console/audit").endswith(SECOND_FACTOR)
    assert browser.get(SECOND_FACTOR).headers["Location"].endswith(ENROL)  # no factor yet: enrolment
    for page in ("/console/", "/console/audit", "/console/staff", "/branch/", "/staff/account",
                 "/staff/account/recovery-codes"):
        sent = browser.get(page)
        assert sent.status_code == 302 and sent.headers["Location"].endswith(SECOND_FACTOR), page
    enrolment = browser.get(ENROL)
    assert enrolment.status_code == 200 and "Set up an authenticator app" in enrolment.text
    assert "Sign out" not in enrolment.text and "/console/" not in enrolment.text  # no nav: nobody is signed in
    assert entries(app, audit.Action.SIGN_IN) == []
    # Cancelling forgets the password step: the sign-in page, not enrolment, is next.
    browser.post("/staff/sign-in/cancel", data={"csrf_token": csrf(browser, ENROL)})
    assert "/staff/sign-in?next=" in browser.get("/console/").headers["Location"]


def test_an_authenticator_app_signs_in_once_per_code_and_only_in_its_own_time(
    app: Flask, runner: FlaskCliRunner, clock: Clock
) -> None:
    name = add_staff(runner)
    browser = app.test_client()
    password_step(browser, name)
    secret = enrol_app(browser, clock)
    # Signed in by the enrolment; the recovery codes are made on request and shown on that answer only.
    made = browser.post("/staff/account/recovery-codes", data={"csrf_token": csrf(browser, "/staff/account")})
    codes = re.findall(r"<code>([A-Z0-9-]{19})</code>", made.text)
    assert len(codes) == 10 and made.headers["Cache-Control"] == "no-store"
    later = browser.get("/staff/account/recovery-codes").text
    assert not any(code in later for code in codes) and "10 unused recovery codes" in later
    assert browser.get("/console/audit").status_code == 200
    browser.post("/staff/sign-out", data={"csrf_token": csrf(browser, "/staff/account")})

    app_code = pyotp.TOTP(secret)
    password_step(browser, name, "?next=/console/audit")
    page = browser.get(SECOND_FACTOR).text
    assert "Code from your authenticator app" in page and "Use a recovery code" in page
    # The code typed at enrolment is spent, even within its own 30 seconds.
    assert answer(browser, app_code.at(clock.now)) == (401, "That code has been used already. Wait for the next "
                                                              "one in your app.")
    # A code from two steps ago or two ahead (beyond a phone clock's drift) is wrong.
    clock.step()
    for far in (-2, 2):
        assert answer(browser, app_code.at(clock.now + 30 * far))[0] == 401
    assert answer(browser, "12345")[0] == 401  # not six digits
    assert browser.get("/console/").status_code == 302
    status, landing = answer(browser, app_code.at(clock.now).replace("", " ").strip())  # spaces are fine
    assert status == 302 and landing == "/console/audit"  # the page asked for before the password
    assert browser.get("/console/audit").status_code == 200
    # That code again, from another browser that passed the password: replayed.
    other = app.test_client()
    password_step(other, name)
    assert answer(other, app_code.at(clock.now))[0] == 401
    assert entries(app, audit.Action.SIGN_IN)[-1] == (name, name, "password; second factor: authenticator app")
    assert [detail for _actor, _subject, detail in entries(app, audit.Action.SECOND_FACTOR_FAILED)] == [
        "authenticator app: a code already used", "authenticator app: wrong code", "authenticator app: wrong code",
        "authenticator app: wrong code", "authenticator app: a code already used"]
    assert entries(app, audit.Action.SECOND_FACTOR_ENROLLED) == [(name, name, "authenticator app")]
    assert entries(app, audit.Action.RECOVERY_CODES_CREATED) == [(name, name, "10 codes")]


def test_wrong_answers_in_a_row_lock_the_second_factor_right_ones_included(
    app: Flask, runner: FlaskCliRunner, clock: Clock
) -> None:
    name, secret = enrolled_admin(app, runner, clock)
    browser = app.test_client()
    password_step(browser, name)
    clock.step()
    for _ in range(MAX_FAILURES - 1):
        assert answer(browser, "000000")[0] == 401
    status, alert = answer(browser, "000000")
    assert status == 401 and "locked until" in alert
    # From any browser, with the right code, until the lock ends.
    other = app.test_client()
    password_step(other, name)
    assert answer(other, pyotp.TOTP(secret).at(clock.now))[0] == 423
    assert answer(other, "AAAA-BBBB-CCCC-DDDD", method="recovery")[0] == 423
    assert entries(app, audit.Action.SECOND_FACTOR_LOCKED) == [
        (audit.UNKNOWN_ACTOR, name, f"{MAX_FAILURES} wrong answers in a row; locked for "
                                    f"{LOCK_PERIOD.seconds // 60} minutes")]
    failures = entries(app, audit.Action.SECOND_FACTOR_FAILED)
    assert len(failures) == MAX_FAILURES + 2 and failures[-1][2] == "recovery code: answered while locked"


def test_second_factor_answers_are_rate_limited_per_address(build_app: Callable[..., Flask], clock: Clock) -> None:
    app = build_app(PASSID_STAFF_MFA="admin", PASSID_RATE_LIMIT_SECOND_FACTOR="2 per minute")
    name, _secret = enrolled_admin(app, app.test_cli_runner(), clock)  # its enrolment code was one of the 2
    browser = app.test_client()
    password_step(browser, name)
    assert answer(browser, "000000")[0] == 401
    status, alert = answer(browser, "000000")
    assert status == 429 and "Too many sign-in attempts from this device" in alert


def test_a_recovery_code_signs_in_once(app: Flask, runner: FlaskCliRunner, clock: Clock) -> None:
    name, _secret = enrolled_admin(app, runner, clock)
    browser = app.test_client()
    password_step(browser, name)
    assert answer(browser, pyotp.TOTP(_secret).at(clock.now + 30))[0] == 302
    made = browser.post("/staff/account/recovery-codes", data={"csrf_token": csrf(browser, "/staff/account")})
    first, second = re.findall(r"<code>([A-Z0-9-]{19})</code>", made.text)[:2]
    browser.post("/staff/sign-out", data={"csrf_token": csrf(browser, "/staff/account")})

    lost_phone = app.test_client()
    password_step(lost_phone, name)
    assert answer(lost_phone, first.lower().replace("-", " "), method="recovery") == (302, "/console/")
    again = app.test_client()
    password_step(again, name)
    assert answer(again, first, method="recovery")[0] == 401
    assert answer(again, second, method="recovery")[0] == 302
    assert entries(app, audit.Action.RECOVERY_CODE_USED) == [(name, name, "9 left"), (name, name, "8 left")]
    assert entries(app, audit.Action.SECOND_FACTOR_FAILED)[-1][2] == (
        "recovery code: not an unused recovery code of this account")
    assert first not in str(entries(app, audit.Action.SECOND_FACTOR_FAILED))  # no code is ever logged


def test_an_admin_resets_another_s_second_factor_and_their_sessions_end(
    app: Flask, runner: FlaskCliRunner, clock: Clock
) -> None:
    name, secret = enrolled_admin(app, runner, clock)
    theirs = app.test_client()
    password_step(theirs, name)
    assert answer(theirs, pyotp.TOTP(secret).at(clock.now + 30))[0] == 302
    assert theirs.get("/staff/account").status_code == 200
    admin_name, admin_secret = enrolled_admin(app, runner, clock)
    admin = app.test_client()
    password_step(admin, admin_name)
    assert answer(admin, pyotp.TOTP(admin_secret).at(clock.now + 30))[0] == 302
    with app.app_context():
        staff_id = find_staff(name).id  # type: ignore[union-attr]
        own_id = find_staff(admin_name).id  # type: ignore[union-attr]
    page = admin.get("/console/staff").text
    assert "Reset second factor" in page
    token = hidden(page, "csrf_token")
    assert admin.post(f"/console/staff/{own_id}/second-factor/reset", data={"csrf_token": token}).status_code == 409
    done = admin.post(f"/console/staff/{staff_id}/second-factor/reset", data={"csrf_token": token})
    assert done.status_code == 303
    assert theirs.get("/staff/account").status_code == 302  # signed out everywhere
    password_step(theirs, name)
    assert theirs.get(SECOND_FACTOR).headers["Location"].endswith(ENROL)  # enrols again
    assert entries(app, audit.Action.SECOND_FACTOR_RESET) == [
        (admin_name, name, "0 passkeys, authenticator app yes, 0 recovery codes")]
    # The CLI, for a bank whose only admin lost their devices.
    with app.app_context():
        done_cli = runner.invoke(args=["staff", "reset-second-factor", admin_name])
    assert done_cli.exit_code == 0 and "Reset the second factor" in done_cli.output
    assert entries(app, audit.Action.SECOND_FACTOR_RESET)[-1][0] == audit.CLI_ACTOR


@pytest.mark.parametrize(("policy", "role", "asked"), [
    ("admin", "analyst", False), ("admin", "admin", True), ("all", "counter", True), ("off", "admin", False)])
def test_who_is_asked_follows_passid_staff_mfa(
    build_app: Callable[..., Flask], policy: str, role: str, asked: bool
) -> None:
    app = build_app(PASSID_STAFF_MFA=policy)
    name = add_staff(app.test_cli_runner(), role=role)
    landing = password_step(app.test_client(), name)
    assert landing.endswith(SECOND_FACTOR) == asked
    if not asked:
        assert entries(app, audit.Action.SIGN_IN) == [(name, name, "password")]


def test_an_account_that_enrolled_is_asked_whatever_its_role_and_its_other_sessions_end(
    app: Flask, runner: FlaskCliRunner, clock: Clock
) -> None:
    """An analyst needs no second factor under `admin`, but one who set one up relies on it."""
    name = add_staff(runner, role="analyst")
    desk, tablet = app.test_client(), app.test_client()
    assert password_step(desk, name) == "/console/"
    assert password_step(tablet, name) == "/console/"
    desk.get(APP_SETUP)
    enrol_app(desk, clock)
    assert desk.get("/console/").status_code == 200
    assert tablet.get("/console/").status_code == 302  # a password-only session does not outlive the enrolment
    assert password_step(tablet, name).endswith(SECOND_FACTOR)
    # Removing the last factor is the analyst's choice (their role allows it); an admin's is refused.
    token = csrf(desk, "/staff/account")
    assert desk.post("/staff/account/app/remove", data={"csrf_token": token}).status_code == 303
    assert "Set up an authenticator app" in desk.get("/staff/account").text
    assert entries(app, audit.Action.SECOND_FACTOR_REMOVED) == [(name, name, "authenticator app")]
    admin_name, _secret = enrolled_admin(app, runner, clock)
    admin = app.test_client()
    password_step(admin, admin_name)
    assert answer(admin, pyotp.TOTP(_secret).at(clock.now + 30))[0] == 302
    admin.post("/staff/account/app/remove", data={"csrf_token": csrf(admin, "/staff/account")})
    assert "Your role needs a second factor" in admin.get("/staff/account").text


def test_the_totp_secret_is_not_in_the_database_file(app: Flask, runner: FlaskCliRunner, clock: Clock) -> None:
    _name, secret = enrolled_admin(app, runner, clock)
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(FULL)")
    with open(path, "rb") as stored:
        assert secret.encode() not in stored.read()
    with app.app_context():  # encrypted with the data keyring: the app reads it back, the file holds a Fernet token
        assert db.session.execute(db.select(StaffTotp.secret)).scalar_one() == secret


def single_sign_on(provider: OidcTestProvider, browser: FlaskClient, login: str, **at_provider: str) -> str:
    """Sign in through the bank's provider (tests/support/oidc.py); returns where the app then sends the browser."""
    page = browser.get("/staff/sign-in").text
    started = browser.post("/staff/sso/start", data={"csrf_token": hidden(page, "csrf_token")})
    back = provider.sign_in(started.headers["Location"], login, **at_provider)
    assert back.startswith(REDIRECT_URI)
    answer = browser.get(back.removeprefix("http://localhost"))
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def test_with_single_sign_on_the_provider_s_second_factor_counts_unless_set_otherwise(
    build_app: Callable[..., Flask], oidc_provider: OidcTestProvider, clock: Clock
) -> None:
    app = build_app(**oidc_provider.app_settings(PASSID_STAFF_MFA="admin"))
    name = oidc_provider.add_user("passid-admins")
    # The provider checked a second factor (a password and a one-time code): signed in at once.
    assert single_sign_on(oidc_provider, app.test_client(), name, amr="pwd,otp") == "/console/"
    # It did not: ours after the provider's, and this account has none yet, so enrolment first.
    browser = app.test_client()
    assert single_sign_on(oidc_provider, browser, name).endswith(SECOND_FACTOR)
    assert browser.get("/console/").headers["Location"].endswith(SECOND_FACTOR)
    enrol_app(browser, clock)
    assert browser.get("/console/audit").status_code == 200
    assert [detail for _actor, _subject, detail in entries(app, audit.Action.SIGN_IN)] == [
        "single sign-on; the provider checked a second factor",
        "single sign-on; the provider reported no second factor; second factor: authenticator app"]
    # PASSID_STAFF_MFA_FROM_PROVIDER=off: ours even when the provider checked one.
    strict = build_app(**oidc_provider.app_settings(PASSID_STAFF_MFA="admin", PASSID_STAFF_MFA_FROM_PROVIDER="off"))
    assert single_sign_on(oidc_provider, strict.test_client(), name, amr="pwd,otp").endswith(SECOND_FACTOR)
