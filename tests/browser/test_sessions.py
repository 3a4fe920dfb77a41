"""Sessions created by the institution's server, in Chromium.

The bank's backend (here: `requests` with the demo key) creates the session; the customer
verifies on the hosted page (redirect use) or in the snippet's iframe (`data-session`,
embedded use); the backend reads the outcome with `GET /api/sessions/<id>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import FrameLocator, Page, expect

from tests.browser.conftest import EmbeddingSite, demo_key, read_event_json
from tests.support.servers import AppServer


class SessionSite(EmbeddingSite):
    """The bank's site: its application page embeds one session; every other path is its return page."""

    session_id = ""

    def html(self) -> str:
        return super().html().replace(
            'data-target="#passid"', f'data-target="#passid" data-session="{self.session_id}"', 1
        )


@pytest.fixture
def bank_site(widget_server: AppServer, allowed_site_port: int) -> Iterator[SessionSite]:
    site = SessionSite(widget_server.url, allowed_site_port)
    yield site
    site.close()


class Backend:
    """The bank's server: its key, and the two calls it makes."""

    def __init__(self, server: AppServer) -> None:
        self.url = server.url
        self.headers = {"X-Institution-Key": demo_key(server)}

    def create(self, **body: Any) -> requests.Response:
        return requests.post(f"{self.url}/api/sessions", json=body, headers=self.headers, timeout=10)

    def read(self, session_id: str) -> requests.Response:
        return requests.get(f"{self.url}/api/sessions/{session_id}", headers=self.headers, timeout=10)


@pytest.fixture(scope="module")
def backend(widget_server: AppServer) -> Backend:
    return Backend(widget_server)


def approve_on_phone(widget: Page | FrameLocator, phone: Page) -> None:
    widget.get_by_role("button", name="Verify with the PASSID app").click()
    phone.goto(widget.locator("[data-phone-link]").get_attribute("href") or "")
    phone.get_by_role("button", name="Share & Verify").click()


def test_a_hosted_session_from_creation_to_the_return_url_to_its_result(
    page: Page, sandbox_phone: Page, backend: Backend, bank_site: SessionSite
) -> None:
    return_url = f"{bank_site.origin}/loans/return?step=2"
    made = backend.create(reference="loan-42", permissions=["identity_verified"], returnUrl=return_url)
    assert made.status_code == 201, made.text
    session = made.json()

    page.goto(session["url"])
    expect(page.locator(".passid__institution")).to_have_text("Demo Bank")
    approve_on_phone(page, sandbox_phone)
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "success", timeout=20_000)
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(f"{return_url}&session={session['id']}")  # the session id, and nothing else

    read = backend.read(session["id"]).json()
    assert read["status"] == "completed" and read["reference"] == "loan-42"
    assert read["result"]["verified"] is True and set(read["result"]["claims"]) == {"identity_verified"}
    assert read["result"]["reference"] == "loan-42" and read["result"]["sessionId"] == session["id"]

    # Reopened after its success: the final state, no new form, no claims.
    page.goto(session["url"])
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "success")
    expect(page.get_by_role("button", name="Verify with the PASSID app")).to_have_count(0)
    expect(page.locator(".passid-claim")).to_have_count(0)
    expect(page.get_by_role("link", name="Continue")).to_have_attribute(
        "href", f"{return_url}&session={session['id']}")


def test_an_embedded_session_shows_that_session_and_its_events_carry_its_id(
    page: Page, sandbox_phone: Page, backend: Backend, bank_site: SessionSite
) -> None:
    session = backend.create(reference="loan-77", permissions=["identity_verified", "fraud_risk"]).json()
    bank_site.session_id = session["id"]
    page.goto(bank_site.origin)
    widget = page.frame_locator("#passid iframe")
    # The snippet's data-institution-name and data-permissions do not apply to a session.
    expect(widget.locator(".passid__institution")).to_have_text("Demo Bank")
    approve_on_phone(widget, sandbox_phone)
    page.wait_for_function("(window.passidEvents || []).length >= 1", timeout=20_000)
    [event] = read_event_json(page)
    assert event["type"] == "passid:success"
    assert event["detail"]["sessionId"] == session["id"]
    assert set(event["detail"]["claims"]) <= {"identity_verified", "fraud_risk"}
    read = backend.read(session["id"]).json()
    assert read["status"] == "completed" and read["resultId"] == event["detail"]["resultId"]
    assert page.context.cookies() == []  # nothing here needed a cookie


def test_the_customer_cancels_and_returns_to_the_bank_hosted_or_embedded(
    page: Page, backend: Backend, bank_site: SessionSite
) -> None:
    """Hosted: "Cancel and return" ends the session and the tab lands on the returnUrl with exactly
    session=<id>&status=cancelled (a redirect the page's CSP form-action must let through). Embedded: the bank's
    page gets passid:cancel with the session id, and stays where it is."""
    return_url = f"{bank_site.origin}/loans/return"
    hosted = backend.create(reference="loan-43", returnUrl=return_url).json()
    page.goto(hosted["url"])
    expect(page.locator("#passid-widget")).to_have_attribute("data-state", "idle")
    page.get_by_role("button", name="Cancel and return to Demo Bank").click()
    page.wait_for_url(f"{return_url}?session={hosted['id']}&status=cancelled")
    assert backend.read(hosted["id"]).json()["status"] == "cancelled"

    embedded = backend.create(reference="loan-44").json()
    bank_site.session_id = embedded["id"]
    page.goto(bank_site.origin)
    page.frame_locator("#passid iframe").get_by_role("button", name="Cancel and return to Demo Bank").click()
    page.wait_for_function("(window.passidEvents || []).length >= 1", timeout=10_000)
    [event] = read_event_json(page)
    assert event == {"type": "passid:cancel", "detail": {"sessionId": embedded["id"]}}
    assert page.url.rstrip("/") == bank_site.origin and backend.read(embedded["id"]).json()["status"] == "cancelled"


def test_the_backend_api_refuses_without_the_key_and_names_bad_fields(
    widget_server: AppServer, backend: Backend, bank_site: SessionSite
) -> None:
    no_key = requests.post(f"{widget_server.url}/api/sessions", json={"reference": "a"}, timeout=10)
    assert no_key.status_code == 401
    wrong_key = requests.get(f"{widget_server.url}/api/sessions/vs_x", headers={"X-Institution-Key": "nope"},
                             timeout=10)
    assert wrong_key.status_code == 401
    assert backend.read("vs_unknown").status_code == 404
    foreign = backend.create(reference="a", returnUrl="https://evil.example/steal")
    assert foreign.status_code == 400 and foreign.json()["error"]["field"] == "returnUrl"
    script = backend.create(reference="a", returnUrl="javascript:alert(document.domain)")
    assert script.status_code == 400 and script.json()["error"]["code"] == "VALIDATION_ERROR"
