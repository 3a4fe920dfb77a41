"""The console is for signed-in staff only, and no other site can make them post a form."""

from __future__ import annotations

import time

import pytest
import requests

from tests.console.conftest import create_staff, fresh_share_token, hidden, sign_in, verify_in_widget
from tests.support.servers import AppServer

PAGES = ["/console/", "/console/performance", "/console/webhooks", "/console/go-live",
         "/console/verifications/res_anything/outcome"]


@pytest.mark.parametrize("path", PAGES)
def test_console_pages_send_anonymous_visitors_to_sign_in(console_server: AppServer, path: str) -> None:
    answer = requests.get(console_server.url + path, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert "/staff/sign-in" in answer.headers["Location"]


def test_signed_in_staff_see_every_console_page(console_server: AppServer, staff: requests.Session) -> None:
    for path in PAGES[:4]:
        answer = staff.get(console_server.url + path, timeout=15)
        assert answer.status_code == 200, path


def _result_id_for(staff: requests.Session, server: AppServer, token: str) -> str:
    page = staff.get(f"{server.url}/console/", params={"q": token}, timeout=10).text
    return page.split('data-result-id="', 1)[1].split('"', 1)[0]


def test_a_cross_site_outcome_post_without_csrf_token_is_refused_and_changes_nothing(
    console_server: AppServer, staff: requests.Session, demo: tuple[str, str]
) -> None:
    token = fresh_share_token(console_server, demo[1])
    assert verify_in_widget(console_server, token) == "success"
    result_id = _result_id_for(staff, console_server, token)
    url = f"{console_server.url}/console/verifications/{result_id}/outcome"
    forged = staff.post(url, data={"outcome": "defaulted", "product_type": "loan", "amount": "100"}, timeout=10)
    assert forged.status_code == 400
    assert "did not come from this site" in forged.text
    page = staff.get(url, timeout=10).text
    assert 'name="outcome"' in page and "Outcome on record" not in page  # the form again: nothing reported


def test_a_cross_site_test_webhook_post_is_refused(console_server: AppServer, staff: requests.Session) -> None:
    before = staff.get(f"{console_server.url}/console/webhooks", params={"signature": "valid"}, timeout=10).text
    forged = staff.post(f"{console_server.url}/console/go-live/test-webhook", timeout=10)
    assert forged.status_code == 400
    time.sleep(1.0)  # a test webhook, had one been sent, arrives well within this
    after = staff.get(f"{console_server.url}/console/webhooks", params={"signature": "valid"}, timeout=10).text
    assert after.count("console-badge") == before.count("console-badge")


def test_sign_out_needs_the_token_too(console_server: AppServer) -> None:
    # An account of its own: signing out ends every session of the account (test_staff_sessions.py).
    staff = sign_in(console_server, create_staff(console_server))
    page = staff.get(f"{console_server.url}/console/", timeout=10).text
    assert staff.post(f"{console_server.url}/staff/sign-out", timeout=10).status_code == 400
    out = staff.post(f"{console_server.url}/staff/sign-out", data={"csrf_token": hidden(page, "csrf_token")},
                     allow_redirects=False, timeout=10)
    assert out.status_code == 302
    assert staff.get(f"{console_server.url}/console/", allow_redirects=False, timeout=10).status_code == 302
