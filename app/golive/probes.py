"""The checklist's facts about the app's own code, seen by running it: never read off a setting or a copy.

Each probe runs the real thing the way a customer or PASSID meets it: the PASSID client's verify, watched on
the wire against a canned PASSID (nothing leaves the process, so it runs on every page load, on a live key
too), and the widget's final states, drawn by the widget itself through `app.plumbing.final_state_drawing`
(the widget offers its drawing when registered, so nothing here imports it). Break the behaviour and the
probe says so: a state that cannot even be drawn counts as a failure, as it would for the customer.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

from app.config import current_settings
from app.passid import DenyReason, PassidClient, PassidError
from app.passid.client import API_VERSION
from app.plumbing.final_state_drawing import drawer_of

NEW_CODE_BUTTON = "Generate new code"
# The parent page the checklist imagines around an embedded widget (never contacted).
EMBEDDING_ORIGIN = "https://checklist.invalid"
# Words a customer must never read after a sanctions deny (lower case).
_TIPPING_OFF_WORDS = ("sanction", "watch-list", "watchlist", "hard_deny")


def code_facts() -> dict[str, bool]:
    """What the app's own code does, seen by running it (needs an app context)."""
    return {
        "sanctions_deny_is_neutral": sanctions_deny_is_neutral(),
        "idempotency_key_sent": verify_sends_idempotency_key(),
        "expiry_offers_new_code": expired_state_offers_new_code(),
    }


class _CannedVerify(HTTPAdapter):
    """Stands in for PASSID on a client's session: keeps each request sent and answers a contract-shaped deny.

    Nothing leaves the process, so the check can run on every page load, on a live key too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        raw = request.body  # the client sends JSON as bytes
        body = json.loads(raw if isinstance(raw, (bytes, str)) else b"{}")
        response = requests.Response()
        response.status_code = 200
        response.headers.update({"Content-Type": "application/json", "X-PASSID-API-Version": API_VERSION})
        response._content = json.dumps(
            {"verified": False, "token": body.get("token", ""), "denyReason": "TOKEN_NOT_FOUND"}
        ).encode()
        response.request, response.url = request, request.url or ""
        return response


def verify_sends_idempotency_key() -> bool:
    """Run the real PassidClient.verify three times against a canned PASSID and read the headers it sent.

    Twice with one key (a retry must send it unchanged) and once with none (the client must make one).
    """
    adapter = _CannedVerify()
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = PassidClient("https://passid.invalid", session=session)
    token = "AB3X7YQMK9PQ3MNX"
    try:
        client.verify(token, idempotency_key="checklist-retry")
        client.verify(token, idempotency_key="checklist-retry")
        client.verify(token)
    except PassidError:
        return False
    finally:
        session.close()
    sent = [request.headers.get("Idempotency-Key") for request in adapter.sent]
    return len(sent) == 3 and sent[0] == sent[1] == "checklist-retry" and bool(sent[2])


class _SubmitButtons(HTMLParser):
    """Labels of the submit controls inside forms: what a customer can press, with or without JavaScript."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self._forms = 0
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        kind = attributes.get("type", "submit").lower()
        if tag == "form":
            self._forms += 1
        elif tag == "button" and self._forms and kind == "submit":
            self._button = []
        elif tag == "input" and self._forms and kind == "submit":
            self.labels.append(attributes.get("value", "").strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._forms = max(0, self._forms - 1)
        elif tag == "button" and self._button is not None:
            self.labels.append(" ".join("".join(self._button).split()))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)


def offers_new_code(html: str) -> bool:
    """A submit button labelled "Generate new code" inside a form: the words alone are not a way out."""
    parser = _SubmitButtons()
    parser.feed(html)
    parser.close()
    return NEW_CODE_BUTTON in parser.labels


def render_final_state(status: str, deny_reason: str | None = None, *, embedded: bool = False) -> str:
    """A final state's partial, decided by `states.final_view` and drawn by the widget's own `final_state`
    for an htmx poll, the way a customer's widget meets it (needs an app context). Made-up ids, no claims.
    `embedded` draws it inside an embed, with the event the embedding page receives.

    The widget draws it (the drawer it offered the app when registered); the request is built here, on the
    public address, the one host every configuration trusts.
    """
    draw = drawer_of(current_app)
    # A fresh app context too: a request context alone shares this page's `g`, where the customer's request would
    # leave its locale and Flask-Babel its cached translations, and the page around the states would speak English.
    with current_app.app_context(), current_app.test_request_context(
            "/verify/qr/status", base_url=current_settings().public_base_url, headers={"HX-Request": "true"}):
        return draw(status, deny_reason, parent_origin=EMBEDDING_ORIGIN if embedded else None)


def expired_state_offers_new_code() -> bool:
    """False, not a failed console page, when the state cannot even be drawn: a customer would not see it either."""
    try:
        return offers_new_code(render_final_state("expired"))
    except Exception:  # whatever stops the drawing stops the customer too; the page must still answer
        current_app.logger.warning("the expired state could not be rendered", exc_info=True)
        return False


def sanctions_deny_is_neutral() -> bool:
    """A sanctions deny, drawn as the customer's widget draws it inside an embed: the declined state, whose
    words and event for the embedding page do not name the reason (telling a customer they matched a
    watch-list is tipping-off)."""
    try:
        html = render_final_state("denied", DenyReason.HARD_DENY_SANCTIONS_MATCH, embedded=True)
    except Exception:  # as above: a state that cannot be drawn is a failure, not a console error
        current_app.logger.warning("the sanctions deny could not be rendered", exc_info=True)
        return False
    lowered = html.lower()
    return ('data-view="declined"' in html and "passid:decline" in html
            and not any(word in lowered for word in _TIPPING_OFF_WORDS))
