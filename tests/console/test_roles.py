"""Who may open which staff page: the access matrix, role by role, for every page and form.

counter: the branch counter only. analyst: the console's history, verification pages, outcome reporting,
performance, the funnel and its CSV, webhook and notification logs, review queue and history export. admin:
everything, plus the audit log, erasure, staff management, the go-live checklist, the test webhook and the test
notification.
Anonymous visitors go to sign-in; a disabled account's sessions are over, so it is anonymous again.

The matrix is checked against the app's own URL map: a new page under /branch or /console without an
entry here fails `test_every_staff_page_and_form_is_in_the_matrix`, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.routing import IntegerConverter, Rule

from app.staff.roles import Role
from tests.console.conftest import PASSWORD, add_staff, signed_in
from tests.support.html_fields import hidden

# (endpoint, method) → the least role that may use it (admins may use everything).
MATRIX: dict[tuple[str, str], Role] = {
    ("branch.counter", "GET"): Role.COUNTER,
    ("branch.next_customer", "GET"): Role.COUNTER,
    ("branch.verify", "POST"): Role.COUNTER,
    ("branch.qr", "GET"): Role.COUNTER,
    ("branch.result", "GET"): Role.COUNTER,
    ("console.history", "GET"): Role.ANALYST,
    ("console.history_csv", "POST"): Role.ANALYST,
    ("console.verification", "GET"): Role.ANALYST,
    ("console.outcome", "GET"): Role.ANALYST,
    ("console.outcome", "POST"): Role.ANALYST,
    ("console.performance", "GET"): Role.ANALYST,
    ("console.funnel_page", "GET"): Role.ANALYST,
    ("console.funnel_csv", "GET"): Role.ANALYST,
    ("console.webhook_log", "GET"): Role.ANALYST,
    ("console.notification_log", "GET"): Role.ANALYST,
    ("console.review_queue", "GET"): Role.ANALYST,
    ("console.review_decide", "POST"): Role.ANALYST,
    ("console.checklist", "GET"): Role.ADMIN,
    ("console.send_test_webhook", "POST"): Role.ADMIN,
    ("console.send_test_notification", "POST"): Role.ADMIN,
    ("console.redaction", "GET"): Role.ADMIN,
    ("console.redaction", "POST"): Role.ADMIN,
    ("console.audit_log", "GET"): Role.ADMIN,
    ("console.audit_csv", "POST"): Role.ADMIN,
    ("console.staff_accounts", "GET"): Role.ADMIN,
    ("console.create_staff_account", "POST"): Role.ADMIN,
    ("console.reset_staff_password", "POST"): Role.ADMIN,
    ("console.change_staff_role", "POST"): Role.ADMIN,
    ("console.disable_staff_account", "POST"): Role.ADMIN,
    ("console.enable_staff_account", "POST"): Role.ADMIN,
    ("console.reset_staff_second_factor", "POST"): Role.ADMIN,
}

STAFF_PREFIXES = ("/branch", "/console")


def staff_rules(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) a browser can use under the staff prefixes (HEAD and OPTIONS are Flask's own)."""
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(STAFF_PREFIXES)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    ]


def sample_url(rule: Rule) -> str:
    """The rule's path for a record that does not exist: a page's guard answers before any lookup."""
    values = {
        name: 999_999 if isinstance(rule._converters[name], IntegerConverter) else "res_nobody"
        for name in rule.arguments
    }
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule
    return built[1]


def test_every_staff_page_and_form_is_in_the_matrix(app: Flask) -> None:
    found = {(rule.endpoint, method) for rule, method in staff_rules(app)}
    missing = sorted(found - set(MATRIX))
    gone = sorted(set(MATRIX) - found)
    assert not missing, f"staff pages with no entry in the access matrix (add them to MATRIX): {missing}"
    assert not gone, f"matrix entries for pages that no longer exist: {gone}"


@pytest.fixture
def browsers(app: Flask, runner: FlaskCliRunner) -> dict[str, FlaskClient]:
    """One browser per kind of visitor; "disabled" signed in, then had its account disabled."""
    found = {"anonymous": app.test_client()}
    for role in Role:
        found[role.value] = signed_in(app.test_client(), add_staff(runner, role=role.value))
    disabled_name = add_staff(runner, role=Role.ADMIN.value)
    found["disabled"] = signed_in(app.test_client(), disabled_name)
    with app.app_context():
        assert runner.invoke(args=["staff", "disable", disabled_name]).exit_code == 0
    return found


def _answer(browser: FlaskClient, method: str, url: str) -> tuple[int, str]:
    """(status, where it redirects): a POST carries the browser's CSRF token, so only the role decides."""
    if method == "POST":
        token = hidden(browser.get("/staff/sign-in").text, "csrf_token")
        answer = browser.post(url, data={"csrf_token": token})
    else:
        answer = browser.get(url)
    return answer.status_code, answer.headers.get("Location", "")


def _expected(visitor: str, least: Role) -> str:
    if visitor in ("anonymous", "disabled"):
        return "sign-in"
    return "open" if visitor == Role.ADMIN or visitor == least else "forbidden"


def _verdict(status: int, location: str) -> str:
    if status == 302 and "/staff/sign-in" in location:
        return "sign-in"
    if status == 403:
        return "forbidden"
    return "open" if status < 500 else f"error {status}"


@pytest.mark.parametrize("visitor", ["anonymous", "counter", "analyst", "admin", "disabled"])
def test_the_access_matrix(app: Flask, browsers: dict[str, FlaskClient], visitor: str) -> None:
    browser = browsers[visitor]
    wrong = []
    for rule, method in staff_rules(app):
        least = MATRIX.get((rule.endpoint, method))
        if least is None:
            continue  # test_every_staff_page_and_form_is_in_the_matrix names it
        url = sample_url(rule)
        status, location = _answer(browser, method, url)
        expected, got = _expected(visitor, least), _verdict(status, location)
        if got != expected:
            wrong.append(f"{method} {url} ({rule.endpoint}): expected {expected}, got {got} ({status} {location})")
    assert not wrong, f"{visitor}:\n" + "\n".join(wrong)


def test_a_forbidden_page_says_whose_it_is(app: Flask, runner: FlaskCliRunner) -> None:
    counter = signed_in(app.test_client(), add_staff(runner, role="counter"))
    answer = counter.get("/console/")
    assert answer.status_code == 403
    assert answer.mimetype == "text/html"  # a page, not its markup shown as text
    assert "This page is not open to your role" in answer.text and "(Counter staff)" in answer.text
    missing = signed_in(app.test_client(), add_staff(runner)).get("/console/verifications/res_nothing")
    assert missing.status_code == 404 and missing.mimetype == "text/html"  # the console's own refusals too


NAV = {"Branch": "/branch/", "History": "/console/", "Review queue": "/console/review",
       "Performance": "/console/performance", "Funnel": "/console/funnel",
       "Webhooks": "/console/webhooks", "Notifications": "/console/notifications", "Go-live": "/console/go-live",
       "Audit log": "/console/audit",
       "Staff": "/console/staff"}


@pytest.mark.parametrize(("role", "page", "shown"), [
    ("counter", "/branch/", {"Branch"}),
    ("analyst", "/console/", {"History", "Review queue", "Performance", "Funnel", "Webhooks", "Notifications"}),
    ("admin", "/console/", set(NAV)),
])
def test_the_nav_shows_only_the_pages_the_role_may_open(
    app: Flask, runner: FlaskCliRunner, role: str, page: str, shown: set[str]
) -> None:
    html = signed_in(app.test_client(), add_staff(runner, role=role)).get(page).text
    nav = html.split('<nav aria-label="Staff">', 1)[1].split("</nav>", 1)[0]
    linked = {label for label, href in NAV.items() if f'href="{href}"' in nav}
    assert linked == shown


def _sign_in(app: Flask, name: str, next_page: str | None = None, password: str = PASSWORD) -> tuple[int, str]:
    browser = app.test_client()
    form = browser.get("/staff/sign-in").text
    answer = browser.post("/staff/sign-in", query_string={"next": next_page} if next_page else None,
                          data={"csrf_token": hidden(form, "csrf_token"), "username": name, "password": password})
    return answer.status_code, answer.headers.get("Location", "")


@pytest.mark.parametrize(("role", "next_page", "lands"), [
    ("counter", None, "/branch/"),
    ("analyst", None, "/console/"),
    ("admin", None, "/console/"),
    ("counter", "/branch/qr", "/branch/qr"),
    ("counter", "/console/webhooks", "/branch/"),  # not the counter's: home instead of a 403
    ("analyst", "/console/webhooks?type=x", "/console/webhooks?type=x"),
    ("analyst", "/console/audit", "/console/"),
    ("admin", "/branch/", "/branch/"),
    ("analyst", "//evil.example/", "/console/"),
    ("counter", "/no-such-page", "/branch/"),
])
def test_sign_in_lands_on_the_role_s_home_or_a_next_page_it_may_open(
    app: Flask, runner: FlaskCliRunner, role: str, next_page: str | None, lands: str
) -> None:
    status, location = _sign_in(app, add_staff(runner, role=role), next_page)
    assert status == 302 and location == lands


def same_page(first: str, second: str, name: str) -> bool:
    """Whether two sign-in answers say the same, apart from the name typed and the fresh CSRF token.

    Flask-WTF signs its token with the time to the second, so two answers a second apart differ there.
    """
    def said(page: str) -> str:
        without_token, replaced = re.subn(r'name="csrf_token" type="hidden" value="[^"]*"', "", page.replace(name, ""))
        assert replaced == 1, "the sign-in page's CSRF field changed its markup"
        return without_token
    return said(first) == said(second)


def test_a_disabled_account_cannot_sign_in_and_is_told_no_more_than_a_wrong_password(
    app: Flask, runner: FlaskCliRunner
) -> None:
    name = add_staff(runner, role="analyst")
    with app.app_context():
        assert runner.invoke(args=["staff", "disable", name]).exit_code == 0
    browser = app.test_client()
    form = browser.get("/staff/sign-in").text
    disabled = browser.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": name,
                                                    "password": PASSWORD})
    wrong = browser.post("/staff/sign-in", data={"csrf_token": hidden(form, "csrf_token"), "username": name,
                                                 "password": "not the password"})
    assert disabled.status_code == wrong.status_code == 401
    assert same_page(disabled.text, wrong.text, name)
    with app.app_context():
        assert runner.invoke(args=["staff", "enable", name]).exit_code == 0
    assert _sign_in(app, name) == (302, "/console/")


def test_a_disabled_account_costs_the_same_password_work(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its password is checked before it is refused: the time an answer takes cannot tell disabled accounts."""
    import app.staff.models as staff_models

    name = add_staff(runner, role="counter")
    with app.app_context():
        runner.invoke(args=["staff", "disable", name])
    checks: list[str] = []
    real: Callable[[str, str], bool] = staff_models.check_password_hash

    def counting(pwhash: str, password: str) -> bool:
        checks.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(staff_models, "check_password_hash", counting)
    assert _sign_in(app, name)[0] == 401
    assert len(checks) == 1


def test_disabling_ends_the_open_sessions(app: Flask, runner: FlaskCliRunner) -> None:
    name = add_staff(runner, role="counter")
    tablet = signed_in(app.test_client(), name)
    assert tablet.get("/branch/").status_code == 200
    with app.app_context():
        runner.invoke(args=["staff", "disable", name])
    answer = tablet.get("/branch/")
    assert answer.status_code == 302 and "/staff/sign-in" in answer.headers["Location"]
