"""Staff accounts by `flask staff …` and on the console's staff page (admins only), every change audited."""

from __future__ import annotations

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.plumbing.database import db
from app.rules import audit
from app.staff.models import StaffUser, find_staff
from tests.console.conftest import PASSWORD, add_staff, signed_in
from tests.support.html_fields import hidden


def flask_staff(runner: FlaskCliRunner, *args: str) -> Result:
    with runner.app.app_context():
        return runner.invoke(args=["staff", *args])


def account(app: Flask, name: str) -> StaffUser:
    with app.app_context():
        user = find_staff(name)
        assert user is not None
        db.session.expunge(user)
        return user


def entries(app: Flask, action: audit.Action) -> list[tuple[str, str | None, str | None]]:
    """(actor, subject, detail) of every entry of `action`, oldest first."""
    with app.app_context():
        found = db.session.execute(
            db.select(audit.AuditEntry).where(audit.AuditEntry.action == action).order_by(audit.AuditEntry.id)
        ).scalars()
        return [(entry.actor, entry.subject, entry.detail) for entry in found]


def signs_in(app: Flask, name: str, password: str = PASSWORD) -> bool:
    browser = app.test_client()
    form = browser.get("/staff/sign-in").text
    answer = browser.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": name,
                                                  "password": password})
    return answer.status_code == 302


# --- flask staff ---------------------------------------------------------------------------------


def test_a_new_account_needs_a_role(app: Flask, runner: FlaskCliRunner) -> None:
    done = flask_staff(runner, "create", "newcomer", "--password", PASSWORD)
    assert done.exit_code != 0
    assert "a new account needs a role: --role counter, --role analyst or --role admin" in done.output
    with app.app_context():
        assert find_staff("newcomer") is None
    bad = flask_staff(runner, "create", "newcomer", "--role", "boss", "--password", PASSWORD)
    assert bad.exit_code != 0 and "'boss' is not one of 'counter', 'analyst', 'admin'" in bad.output


def test_create_with_a_role_then_reset_the_password_keeps_the_role(app: Flask, runner: FlaskCliRunner) -> None:
    done = flask_staff(runner, "create", "Teller1", "--role", "counter", "--password", PASSWORD)
    assert done.exit_code == 0 and "Created staff account 'teller1' (counter)." in done.output
    again = flask_staff(runner, "create", "teller1", "--password", PASSWORD + " two")
    assert again.exit_code == 0, again.output
    assert account(app, "teller1").role == "counter"
    assert signs_in(app, "teller1", PASSWORD + " two") and not signs_in(app, "teller1")
    assert entries(app, audit.Action.STAFF_CREATED) == [("cli", "teller1", "role counter")]
    assert entries(app, audit.Action.STAFF_PASSWORD_RESET) == [("cli", "teller1", None)]
    assert entries(app, audit.Action.STAFF_ROLE_CHANGED) == []
    promoted = flask_staff(runner, "create", "teller1", "--role", "analyst", "--password", PASSWORD)
    assert promoted.exit_code == 0 and "role analyst" in promoted.output
    assert account(app, "teller1").role == "analyst"
    assert entries(app, audit.Action.STAFF_ROLE_CHANGED) == [("cli", "teller1", "counter → analyst")]


def test_a_short_password_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    done = flask_staff(runner, "create", "shorty", "--role", "admin", "--password", "eleven char")
    assert done.exit_code != 0 and "A password has at least 12 characters." in done.output
    with app.app_context():
        assert find_staff("shorty") is None


def test_set_role_disable_enable_and_list(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner, role="counter")
    assert "is now analyst" in flask_staff(runner, "set-role", name, "analyst").output
    assert "already is analyst" in flask_staff(runner, "set-role", name, "analyst").output
    assert "Disabled" in flask_staff(runner, "disable", name).output
    assert not signs_in(app, name)
    listed = flask_staff(runner, "list").output
    assert name in listed and "analyst" in listed and "disabled" in listed
    assert "Enabled" in flask_staff(runner, "enable", name).output
    assert signs_in(app, name)
    assert entries(app, audit.Action.STAFF_ROLE_CHANGED) == [("cli", name, "counter → analyst")]
    assert entries(app, audit.Action.STAFF_DISABLED) == [("cli", name, None)]
    assert entries(app, audit.Action.STAFF_ENABLED) == [("cli", name, None)]
    missing = flask_staff(runner, "disable", "nobody-here")
    assert missing.exit_code != 0 and "no staff account is named 'nobody-here'" in missing.output


def test_a_role_change_ends_the_sessions(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner, role="admin")
    browser = signed_in(app.test_client(), name)
    assert browser.get("/console/audit").status_code == 200
    flask_staff(runner, "set-role", name, "analyst")
    assert browser.get("/console/").status_code == 302


def test_the_demo_command_says_how_to_make_the_first_admin(runner: FlaskCliRunner) -> None:
    with runner.app.app_context():
        done = runner.invoke(args=["passid", "demo"])
    assert "staff create YOUR-NAME --role admin" in done.output


# --- the console's staff page ---------------------------------------------------------------------


@pytest.fixture
def admin(app: Flask, runner: FlaskCliRunner) -> tuple[FlaskClient, str]:
    name = add_staff(runner, role="admin")
    return signed_in(app.test_client(), name), name


def post(browser: FlaskClient, url: str, **fields: str):  # type: ignore[no-untyped-def]
    token = hidden(browser.get("/console/staff").text, "csrf_token")
    return browser.post(url, data={"csrf_token": token, **fields})


def staff_id(app: Flask, name: str) -> int:
    return account(app, name).id


def test_the_staff_page_lists_every_account(admin: tuple[FlaskClient, str], runner: FlaskCliRunner) -> None:
    browser, me = admin
    other = add_staff(runner, role="counter")
    page = browser.get("/console/staff").text
    assert f'data-staff="{me}"' in page and f'data-staff="{other}"' in page
    row = page.split(f'data-staff="{other}"', 1)[1].split("</tr>", 1)[0]
    assert "Counter staff" in row and "never" in row


def test_an_admin_creates_an_account_that_can_sign_in(app: Flask, admin: tuple[FlaskClient, str]) -> None:
    browser, me = admin
    done = post(browser, "/console/staff", username="Desk-7", role="analyst", password=PASSWORD)
    assert done.status_code == 303
    assert "Created desk-7 (Analyst)." in browser.get("/console/staff").text
    assert account(app, "desk-7").role == "analyst" and signs_in(app, "desk-7")
    assert entries(app, audit.Action.STAFF_CREATED)[-1] == (me, "desk-7", "role analyst")


@pytest.mark.parametrize(("fields", "problem"), [
    ({"username": "short-pass", "role": "counter", "password": "x" * 11}, "at least 12 characters"),
    ({"username": "no-role", "role": "boss", "password": PASSWORD}, "A role is one of counter, analyst, admin."),
    ({"username": "", "role": "counter", "password": PASSWORD}, "Give the account a name."),
    ({"username": "line\nbreak", "role": "counter", "password": PASSWORD}, "control characters"),
])
def test_a_bad_new_account_is_refused_with_a_sentence(
    app: Flask, admin: tuple[FlaskClient, str], fields: dict[str, str], problem: str
) -> None:
    browser, _ = admin
    done = post(browser, "/console/staff", **fields)
    assert done.status_code == 422 and problem in done.text
    assert [actor for actor, _, _ in entries(app, audit.Action.STAFF_CREATED)] == ["cli"]  # the admin's own


def test_an_existing_name_is_refused(app: Flask, admin: tuple[FlaskClient, str], runner: FlaskCliRunner) -> None:
    browser, _ = admin
    taken = add_staff(runner, role="counter")
    done = post(browser, "/console/staff", username=taken.upper(), role="admin", password=PASSWORD)
    assert done.status_code == 422 and f"There is already a staff account named {taken}." in done.text
    assert account(app, taken).role == "counter"


def test_an_admin_resets_a_password_and_the_old_sessions_end(
    app: Flask, admin: tuple[FlaskClient, str], runner: FlaskCliRunner
) -> None:
    browser, me = admin
    name = add_staff(runner, role="analyst")
    their_browser = signed_in(app.test_client(), name)
    done = post(browser, f"/console/staff/{staff_id(app, name)}/password", password="a brand new password")
    assert done.status_code == 303
    assert their_browser.get("/console/").status_code == 302
    assert signs_in(app, name, "a brand new password") and not signs_in(app, name)
    assert entries(app, audit.Action.STAFF_PASSWORD_RESET) == [(me, name, None)]


def test_an_admin_changes_a_role_and_disables_and_enables(
    app: Flask, admin: tuple[FlaskClient, str], runner: FlaskCliRunner
) -> None:
    browser, me = admin
    name = add_staff(runner, role="counter")
    their_browser = signed_in(app.test_client(), name)
    number = staff_id(app, name)
    assert post(browser, f"/console/staff/{number}/role", role="analyst").status_code == 303
    assert account(app, name).role == "analyst"
    assert their_browser.get("/branch/").status_code == 302  # signed out: they sign in again as an analyst
    their_browser = signed_in(app.test_client(), name)
    assert post(browser, f"/console/staff/{number}/disable").status_code == 303
    assert their_browser.get("/console/").status_code == 302 and not signs_in(app, name)
    assert "Enable" in browser.get("/console/staff").text.split(f'data-staff="{name}"', 1)[1].split("</tr>")[0]
    assert post(browser, f"/console/staff/{number}/enable").status_code == 303
    assert signs_in(app, name)
    assert entries(app, audit.Action.STAFF_ROLE_CHANGED) == [(me, name, "counter → analyst")]
    assert entries(app, audit.Action.STAFF_DISABLED) == [(me, name, None)]
    assert entries(app, audit.Action.STAFF_ENABLED) == [(me, name, None)]


def test_an_admin_cannot_disable_or_demote_themselves(app: Flask, admin: tuple[FlaskClient, str]) -> None:
    """The console is never left without an admin who can undo a mistake."""
    browser, me = admin
    number = staff_id(app, me)
    assert f'action="/console/staff/{number}/disable"' not in browser.get("/console/staff").text
    disabled = post(browser, f"/console/staff/{number}/disable")
    assert disabled.status_code == 409 and "You cannot disable your own account" in disabled.text
    demoted = post(browser, f"/console/staff/{number}/role", role="analyst")
    assert demoted.status_code == 409 and "You cannot remove your own admin role" in demoted.text
    assert account(app, me).role == "admin" and account(app, me).disabled_at is None
    assert browser.get("/console/staff").status_code == 200  # still signed in, still an admin
    assert entries(app, audit.Action.STAFF_DISABLED) == entries(app, audit.Action.STAFF_ROLE_CHANGED) == []


def test_another_admin_can_be_disabled(app: Flask, admin: tuple[FlaskClient, str], runner: FlaskCliRunner) -> None:
    browser, _ = admin
    other = add_staff(runner, role="admin")
    assert post(browser, f"/console/staff/{staff_id(app, other)}/disable").status_code == 303
    assert not signs_in(app, other)


def test_an_unknown_account_is_a_404(admin: tuple[FlaskClient, str]) -> None:
    browser, _ = admin
    answer = post(browser, "/console/staff/999999/disable")
    assert answer.status_code == 404 and "No staff account has this id." in answer.text
