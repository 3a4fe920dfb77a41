"""The institution key never reaches a browser: not in HTML, JS, headers, cookies or error pages."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from playwright.sync_api import Page, Response, expect

from tests.browser.conftest import EmbeddingSite, demo_key
from tests.support.servers import AppServer


def test_no_response_the_browser_sees_contains_the_api_key(
    page: Page, sandbox_phone: Page, widget_server: AppServer, allowed_site_port: int
) -> None:
    key = demo_key(widget_server)
    seen: list[tuple[str, str]] = []

    def record(response: Response) -> None:
        try:
            body = response.body().decode("utf-8", "replace")
        except Exception:  # a redirect or an aborted request has no body
            body = ""
        headers = "\n".join(f"{k}: {v}" for k, v in response.all_headers().items())
        seen.append((response.url, headers + "\n" + body))

    page.on("response", record)
    sandbox_phone.on("response", record)

    # The QR flow to success, through the embed snippet on another origin.
    site = EmbeddingSite(widget_server.url, allowed_site_port)
    try:
        page.goto(site.origin)
        widget = page.frame_locator("#passid iframe")
        widget.get_by_role("button", name="Verify with the PASSID app").click()
        sandbox_phone.goto(widget.locator("[data-phone-link]").get_attribute("href"))
        sandbox_phone.get_by_role("button", name="Share & Verify").click()
        expect(widget.locator("#passid-widget")).to_have_attribute("data-state", "success", timeout=10_000)
    finally:
        site.close()

    # Manual entry: approved, denied (both answered by the check), malformed (refused at once). Each
    # answer is on screen, and read here, before the page moves on.
    answers = {"KE8V-3TXY-Z72L": ("/verify/token/check", "#passid-widget[data-state=success]"),
               "TEST-USED-0003": ("/verify/token/check", "#passid-widget[data-state=declined]"),
               "nonsense": ("/verify/token", "#passid-token-error")}
    for token, (path, outcome) in answers.items():
        page.goto(f"{widget_server.url}/verify")
        page.get_by_label("Enter a PASSID token").fill(token)
        with page.expect_response(lambda response, path=path: urlsplit(response.url).path == path) as answer:
            page.get_by_role("button", name="Verify token").click()
        expect(page.locator(outcome)).to_be_visible()
        assert key not in answer.value.text() + str(answer.value.all_headers()), token

    # Error pages and odd requests.
    for path in ("/nope", "/verify/qr/status?h=forged", "/api/results/res_x", "/embed.js", "/verify?theme=zzz"):
        page.goto(widget_server.url + path)

    assert len(seen) > 20
    leaks = [url for url, text in seen if key in text]
    assert leaks == []
    assert all(key not in cookie["value"] for cookie in page.context.cookies())


def test_error_answers_outside_the_browser_do_not_echo_the_key(widget_server: AppServer) -> None:
    key = demo_key(widget_server)
    for method, path in (("GET", "/api/results/res_x"), ("POST", "/verify"), ("DELETE", "/verify/qr"),
                         ("GET", "/verify/qr/status"), ("POST", "/verify/token/check")):
        answer = requests.request(method, widget_server.url + path, headers={"X-Institution-Key": key + "x"},
                                  timeout=10)
        assert 400 <= answer.status_code < 500
        assert key not in answer.text and key not in str(answer.headers)
