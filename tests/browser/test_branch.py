"""Branch mode on a tablet: staff only, manual entry first, a verdict at a glance, then a clean screen."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM_ARGS  # noqa: F401  (same browser settings)
from tests.support.html_fields import hidden
from tests.support.servers import BIN, ROOT, AppServer, base_env, migrate

STAFF, PASSWORD = "counter1", "correct horse battery staple"


@pytest.fixture(scope="module")
def branch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory = tmp_path_factory.mktemp("branch")
    env = base_env(f"sqlite:///{directory / 'passid.db'}")  # the screen clears after the default minute
    migrate(env)
    subprocess.run([str(BIN / "flask"), "--app", "app", "staff", "create", STAFF, "--role", "counter",
                    "--password", PASSWORD],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


@pytest.fixture
def tablet(browser: Browser, branch_server: AppServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{branch_server.url}/branch/")
    expect(page).to_have_url(re.compile(r"/staff/sign-in"))
    page.get_by_label("Username").fill(STAFF)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{branch_server.url}/branch/")
    expect(page.get_by_role("heading", name="Verify a customer")).to_be_visible()
    yield page
    context.close()


def verify(page: Page, typed: str) -> None:
    page.get_by_label("Token the customer reads out").fill("")
    page.get_by_label("Token the customer reads out").press_sequentially(typed)
    page.get_by_role("button", name="Verify").click()


def test_branch_mode_refuses_anonymous_users(branch_server: AppServer) -> None:
    for path in ("/branch/", "/branch/qr", "/branch/next"):
        answer = requests.get(branch_server.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and "/staff/sign-in" in answer.headers["Location"]
    answer = requests.post(f"{branch_server.url}/branch/verify", data={"token": "KE8V-3TXY-Z72L"},
                           allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 400)


def test_a_cross_site_form_post_is_refused_even_when_signed_in(branch_server: AppServer) -> None:
    session = requests.Session()
    form = session.get(f"{branch_server.url}/staff/sign-in", timeout=10).text
    csrf = hidden(form, "csrf_token")
    signed_in = session.post(f"{branch_server.url}/staff/sign-in",
                             data={"csrf_token": csrf, "username": STAFF, "password": PASSWORD}, timeout=10)
    assert signed_in.status_code == 200
    assert session.get(f"{branch_server.url}/branch/", allow_redirects=False, timeout=10).status_code == 200
    forged = session.post(f"{branch_server.url}/branch/verify",
                          data={"token": "KE8V-3TXY-Z72L", "n": "x" * 20}, timeout=10)
    assert forged.status_code == 400
    assert "812" not in forged.text and "expired" in forged.text.lower()


def test_the_token_is_formatted_as_it_is_typed(tablet: Page) -> None:
    field = tablet.get_by_label("Token the customer reads out")
    field.press_sequentially("passid ke8v3txyz72l")
    expect(field).to_have_value("KE8V-3TXY-Z72L")


def test_an_approved_customer_shows_approve_then_next_customer_clears_everything(
    tablet: Page, branch_server: AppServer
) -> None:
    tablet.get_by_label("Customer reference (optional)").fill("loan-42")
    verify(tablet, "ke8v3txyz72l")
    result = tablet.locator("[data-branch-view=result]")
    expect(result).to_have_attribute("data-verdict", "approve")
    expect(result.get_by_role("heading")).to_have_text("Approve")
    expect(result).to_contain_text("812")
    expect(result).to_contain_text("Identity verified")
    expect(result).to_contain_text("Customer reference loan-42")
    tablet.get_by_role("link", name="Next customer").click()
    expect(tablet.get_by_label("Token the customer reads out")).to_have_value("")
    expect(tablet.get_by_label("Customer reference (optional)")).to_have_value("")
    assert "812" not in tablet.content() and "loan-42" not in tablet.content()
    assert tablet.evaluate("history.state") is None

    # A console page is not the counter's: its 403 is a page in the browser, not its markup shown as text.
    refused = tablet.goto(f"{branch_server.url}/console/")
    assert refused is not None and refused.status == 403
    assert refused.headers["content-type"].startswith("text/html")
    expect(tablet.get_by_role("heading", name="This page is not open to your role")).to_be_visible()
    expect(tablet.locator("body")).not_to_contain_text("<h1>")


@pytest.mark.parametrize(
    ("token", "verdict", "heading", "reason"),
    [("GH2P-ABCD-56KL", "review", "Review", "Identity is not verified"),
     ("TEST-SANC-0005", "decline", "Do not proceed", "Sanctions watch-list match"),
     ("TEST-USED-0003", "decline", "Do not proceed", "already used")],
)
def test_review_and_do_not_proceed_cases_say_why_to_staff(tablet: Page, token: str, verdict: str, heading: str,
                                                          reason: str) -> None:
    verify(tablet, token)
    result = tablet.locator("[data-branch-view=result]")
    expect(result).to_have_attribute("data-verdict", verdict)
    expect(result.get_by_role("heading")).to_have_text(heading)
    expect(result).to_contain_text(reason)


def test_the_screen_resets_by_itself_and_leaves_no_claims_behind(tablet: Page, branch_server: AppServer) -> None:
    """The minute passes on the page's clock (Playwright's), not the test's."""
    tablet.clock.install()
    tablet.goto(f"{branch_server.url}/branch/")  # branch.js counts on the installed clock
    verify(tablet, "NG4M-XQRS-T88W")
    result = tablet.locator("[data-branch-view=result]")
    expect(result).to_contain_text("743")
    reset_after = int(result.get_attribute("data-reset-after") or "")
    tablet.clock.run_for((reset_after - 5) * 1000)
    expect(result.locator("[data-reset-countdown]")).not_to_have_text(str(reset_after))  # counting down
    expect(result).to_contain_text("743")  # and not cleared before its time
    tablet.clock.run_for(5_000)
    expect(tablet.locator("[data-branch-view=entry]")).to_be_visible()
    assert "743" not in tablet.content()
    assert "Income verified" not in tablet.content()
    # Nothing in the browser's history either: going back does not bring the result back.
    tablet.go_back()
    tablet.wait_for_load_state()
    assert "743" not in tablet.content()


def test_the_qr_flow_is_one_tap_away(tablet: Page, sandbox_phone: Page) -> None:
    tablet.get_by_role("link", name="Customer can scan: show a QR code").click()
    widget = tablet.frame_locator("[data-branch-widget]")
    widget.get_by_role("button", name="Verify with the PASSID app").click()
    sandbox_phone.goto(widget.locator("[data-phone-link]").get_attribute("href"))
    sandbox_phone.get_by_label("Kofi (Ghana → European Union), tier C").check()
    sandbox_phone.get_by_role("button", name="Share & Verify").click()
    result = tablet.locator("[data-branch-view=result]")
    expect(result).to_have_attribute("data-verdict", "review", timeout=10_000)
    expect(result).to_contain_text("Identity is not verified")
