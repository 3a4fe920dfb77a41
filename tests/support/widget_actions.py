"""What a customer does in the widget, through Flask's test client (like flaskr's AuthActions).

Each action is one request as the widget's page sends it and returns the response, so a
test reads as the customer's steps and asserts on what came back. Pages are read with the
same readers the over-HTTP helpers use (tests/support/html_fields.py, widget_http.py).
"""

from __future__ import annotations

import time

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.html_fields import widget_fields_in
from tests.support.widget_http import HTMX, QrSession, awaiting_session


class WidgetActions:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def open(self, **query: str) -> TestResponse:
        """The widget page (`query`: what an embed passes, such as institutionName or origin)."""
        return self.client.get("/verify", query_string=query)

    def fields(self, **query: str) -> dict[str, str]:
        """The page's signed fields `o` and `n`, as its forms send them back."""
        return widget_fields_in(self.open(**query).text)

    def generate_qr(self, options: str | None = None, **query: str) -> QrSession:
        """Press "Verify with the PASSID app" (htmx): the awaiting state's poll path, request id and code."""
        answer = self.client.post(
            "/verify/qr/session", data={"o": options or self.fields(**query)["o"]}, headers=HTMX
        )
        return awaiting_session(answer.text, "", answer.status_code)

    def submit_token(self, token: str, *, htmx: bool = False, **query: str) -> TestResponse:
        """Type a token and press Verify; without htmx the answer is the whole page, as without JavaScript."""
        return self.client.post(
            "/verify/token/check", data={**self.fields(**query), "token": token}, headers=HTMX if htmx else {}
        )

    def poll(self, session: QrSession) -> TestResponse:
        """One of the awaiting state's polls (204 while PASSID has nothing new)."""
        return self.client.get(session.poll_url, headers=HTMX)

    def poll_until_final(self, session: QrSession, timeout: float = 20.0) -> TestResponse:
        """Poll as the widget does until the answer is not "still pending"; the deadline only bounds a failure."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.poll(session)
            if answer.status_code != 204 or time.monotonic() > deadline:
                return answer
            time.sleep(0.1)
