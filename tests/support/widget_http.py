"""Driving the widget over plain HTTP as its page does: the signed fields, a QR session, its poll."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import requests
from sqlalchemy import create_engine, text

from tests.support.html_fields import widget_fields_in

HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class QrSession:
    poll_url: str  # what the widget's 2.5 s poll requests (htmx answers 204 while pending)
    request_id: str
    code: str


def widget_fields(app_url: str, http: requests.Session | None = None, **query: str) -> dict[str, str]:
    """The idle page's hidden fields: `o` (signed options) and `n` (the form's nonce); `query`: the page's options."""
    return widget_fields_in((http or requests.Session()).get(f"{app_url}/verify", params=query, timeout=10).text)


def awaiting_session(html: str, app_url: str, status: int) -> QrSession:
    """Read the awaiting partial "Verify with the PASSID app" answers with (what its poll, code and phone link are)."""
    poll = re.search(r'hx-get="(/verify/qr/status\?[^"]+)"', html)
    request_id = re.search(r"phone\?r=(req_[A-Za-z0-9]+)", html)
    code = re.search(r'data-code="([A-Z0-9-]+)"', html)
    assert poll and request_id and code, f"no awaiting state: {status} {html[:300]}"
    return QrSession(app_url + poll.group(1).replace("&amp;", "&"), request_id.group(1), code.group(1))


def open_qr_session(app_url: str, http: requests.Session | None = None, options: str | None = None) -> QrSession:
    """"Verify with the PASSID app": the awaiting partial carries the poll URL, the code and the phone link."""
    http = http or requests.Session()
    options = options or widget_fields(app_url, http)["o"]
    answer = http.post(f"{app_url}/verify/qr/session", data={"o": options}, headers=HTMX, timeout=10)
    return awaiting_session(answer.text, app_url, answer.status_code)


def poll(session: QrSession) -> requests.Response:
    return requests.get(session.poll_url, headers=HTMX, timeout=10)


def poll_until_final(session: QrSession, timeout: float = 20.0) -> requests.Response:
    """Poll as the widget does until the answer is not "still pending" (204).

    With webhooks on, completion reaches the widget through the webhook, a few
    milliseconds after PASSID records it; a decline through the next check.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = poll(session)
        if answer.status_code != 204 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def wait_recorded(database_url: str, request_id: str, timeout: float = 20.0) -> str:
    """Wait until our app holds a final record of the request (the webhook's handling wrote it)."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT status FROM verification WHERE request_id = :r"),
                                     {"r": request_id}).scalar()
            if found:
                return found
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise RuntimeError(f"{request_id} was not recorded within {timeout}s")
