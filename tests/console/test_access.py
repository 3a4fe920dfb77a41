"""The console is for signed-in staff only, and no other site can make them post a form."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.rules.webhook_receipts import WebhookReceipt
from app.sandbox.models import SandboxWebhookDelivery
from tests.console.conftest import add_staff, share_token_for, signed_in
from tests.support.html_fields import hidden
from tests.support.widget_actions import WidgetActions

PAGES = ["/console/", "/console/performance", "/console/webhooks", "/console/go-live",
         "/console/verifications/res_anything/outcome"]


@pytest.mark.parametrize("path", PAGES)
def test_console_pages_send_anonymous_visitors_to_sign_in(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 302
    assert "/staff/sign-in" in answer.headers["Location"]


def test_signed_in_staff_see_every_console_page(staff_client: FlaskClient) -> None:
    for path in PAGES[:4]:
        answer = staff_client.get(path)
        assert answer.status_code == 200, path


def _result_id_for(staff: FlaskClient, token: str) -> str:
    page = staff.get("/console/", query_string={"q": token}).text
    return page.split('data-result-id="', 1)[1].split('"', 1)[0]


def test_a_cross_site_outcome_post_without_csrf_token_is_refused_and_changes_nothing(
    app: Flask, staff_client: FlaskClient, widget: WidgetActions, app_demo: tuple[str, str]
) -> None:
    token = share_token_for(app.config["PASSID_BASE_URL"], app_demo[1])
    assert 'data-view="success"' in widget.submit_token(token).text
    result_id = _result_id_for(staff_client, token)
    url = f"/console/verifications/{result_id}/outcome"
    forged = staff_client.post(url, data={"outcome": "defaulted", "product_type": "loan", "amount": "100"})
    assert forged.status_code == 400
    assert "did not come from this site" in forged.text
    page = staff_client.get(url).text
    assert 'name="outcome"' in page and "Outcome on record" not in page  # the form again: nothing reported


def test_a_cross_site_test_webhook_post_is_refused(app: Flask, staff_client: FlaskClient) -> None:
    """Refused before anything is sent: no test event is queued at PASSID, none reaches the receiver."""
    before = staff_client.get("/console/webhooks", query_string={"signature": "valid"}).text
    forged = staff_client.post("/console/go-live/test-webhook")
    assert forged.status_code == 400
    with app.app_context():
        assert SandboxWebhookDelivery.query.count() == 0  # the sandbox was never asked to send one
        assert WebhookReceipt.query.count() == 0
    after = staff_client.get("/console/webhooks", query_string={"signature": "valid"}).text
    assert after.count("console-badge") == before.count("console-badge")


def test_sign_out_needs_the_token_too(app: Flask, runner: FlaskCliRunner) -> None:
    # An account of its own: signing out ends every session of the account (test_staff_sessions.py).
    staff = signed_in(app.test_client(), add_staff(runner))
    page = staff.get("/console/").text
    assert staff.post("/staff/sign-out").status_code == 400
    out = staff.post("/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")})
    assert out.status_code == 302
    assert staff.get("/console/").status_code == 302
