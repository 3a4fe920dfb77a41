"""A QR verification is found by its code even when its webhook was recorded first.

The webhook (`verification.completed` with `requestId`) does not carry the
8-character code, which only the widget knows; the widget's next poll adds
it to the row (app/rules/verifications.py `attach_code`), so staff can search by
the code the customer read out.
"""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from app.passid import PassidClient
from tests.support.widget_actions import WidgetActions


def test_a_qr_verification_recorded_by_its_webhook_first_is_still_found_by_code(
    app_sandbox: PassidClient, widget: WidgetActions, staff_client: FlaskClient
) -> None:
    session = widget.generate_qr()
    code = session.code
    app_sandbox.fulfill_request(session.request_id, app_sandbox.sandbox_login("KE8V-3TXY-Z72L"))
    assert 'data-view="success"' in widget.poll_until_final(session).text
    page = staff_client.get("/console/", query_string={"q": code}).text
    assert re.search(r'<tr data-result-id="', page), f"no row for code {code}"
