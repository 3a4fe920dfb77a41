"""A QR verification is found by its code even when its webhook was recorded first.

The webhook (`verification.completed` with `requestId`) does not carry the
8-character code, which only the widget knows; the widget's next poll adds
it to the row (app/verifications.py `attach_code`), so staff can search by
the code the customer read out.
"""

from __future__ import annotations

import re

import requests

from app.passid import PassidClient
from tests.support.servers import AppServer
from tests.support.widget_http import open_qr_session, poll_until_final


def test_a_qr_verification_recorded_by_its_webhook_first_is_still_found_by_code(
    console_server: AppServer, staff: requests.Session
) -> None:
    session = open_qr_session(console_server.url)
    code = session.code
    phone = PassidClient(console_server.sandbox_url)
    phone.fulfill_request(session.request_id, phone.sandbox_login("KE8V-3TXY-Z72L"))
    assert 'data-view="success"' in poll_until_final(session).text
    page = staff.get(f"{console_server.url}/console/", params={"q": code}, timeout=10).text
    assert re.search(r'<tr data-result-id="', page), f"no row for code {code}"
