"""Nobody can poll a request, or read claims, that their own widget did not create."""

from __future__ import annotations

import html
import json
import re

import requests
from itsdangerous import URLSafeTimedSerializer

from app.passid import PassidClient
from tests.browser.conftest import demo_key
from tests.support.servers import AppServer
from tests.support.widget_http import open_qr_session, poll_until_final, widget_fields


def _awaiting(server: AppServer) -> tuple[str, str]:
    """Start a QR session the way the widget does; returns (poll path, request id)."""
    session = open_qr_session(server.url)
    return session.poll_url.removeprefix(server.url), session.request_id


def test_the_widget_that_created_a_request_can_poll_it(widget_server: AppServer) -> None:
    poll, _ = _awaiting(widget_server)
    answer = requests.get(widget_server.url + poll, headers={"HX-Request": "true"}, timeout=10)
    assert answer.status_code == 204


def test_a_handle_signed_with_another_secret_is_refused(widget_server: AppServer) -> None:
    _, request_id = _awaiting(widget_server)
    forged = URLSafeTimedSerializer("not-our-secret", salt="passid-widget-request").dumps(
        {"r": request_id, "c": "AAAA-AAAA", "d": "passid://x", "x": "2099-01-01T00:00:00+00:00"}
    )
    answer = requests.get(f"{widget_server.url}/verify/qr/status", params={"h": forged}, timeout=10)
    assert answer.status_code == 404
    assert request_id not in answer.text


def test_an_altered_handle_is_refused(widget_server: AppServer) -> None:
    poll, _ = _awaiting(widget_server)
    handle = re.search(r"h=([^&]+)", poll).group(1)
    altered = handle[:-3] + ("AAA" if not handle.endswith("AAA") else "BBB")
    answer = requests.get(f"{widget_server.url}/verify/qr/status", params={"h": altered}, timeout=10)
    assert answer.status_code == 404


def test_a_request_id_alone_reads_nothing_through_us(widget_server: AppServer) -> None:
    _, request_id = _awaiting(widget_server)
    for params in ({"h": request_id}, {"r": request_id}, {}):
        answer = requests.get(f"{widget_server.url}/verify/qr/status", params=params, timeout=10)
        assert answer.status_code == 404


def test_a_completed_requests_claims_are_only_served_to_its_own_widget(widget_server: AppServer) -> None:
    session = open_qr_session(widget_server.url)
    request_id = session.request_id
    sandbox = PassidClient(widget_server.sandbox_url)
    sandbox.fulfill_request(request_id, sandbox.sandbox_login("KE8V-3TXY-Z72L"))
    own = poll_until_final(session)
    assert own.status_code == 200 and 'data-view="success"' in own.text and "812" in own.text
    forged = URLSafeTimedSerializer("guess", salt="passid-widget-request").dumps({"r": request_id})
    for handle in (request_id, forged):
        stranger = requests.get(f"{widget_server.url}/verify/qr/status", params={"h": handle}, timeout=10)
        assert stranger.status_code == 404 and "812" not in stranger.text


def test_results_are_served_to_the_institution_key_only(widget_server: AppServer, allowed_site_port: int) -> None:
    """A real result id, from a real verification, is the institution's: no key, a wrong key or another
    institution's own valid key is refused, and the error says nothing of the result."""
    # Embedded on an allowed site, the success event carries the result id for the site's backend.
    origin = f"http://localhost:{allowed_site_port}"
    fields = widget_fields(widget_server.url, origin=origin)
    done = requests.post(f"{widget_server.url}/verify/token/check", data={**fields, "token": "NG4M-XQRS-T88W"},
                         timeout=10)
    assert 'data-view="success"' in done.text
    event = re.search(r"data-event='([^']+)'", done.text)
    assert event, "the embedded success state carries no event"
    result_id = json.loads(html.unescape(event.group(1)))["resultId"]
    key = demo_key(widget_server)
    other_institution = PassidClient(widget_server.sandbox_url).onboard("Another Bank").sandbox_key
    assert other_institution.startswith("sk_sandbox_") and other_institution != key
    url = f"{widget_server.url}/api/results/{result_id}"

    for headers in ({}, {"X-Institution-Key": ""}, {"X-Institution-Key": "sk_sandbox_" + "x" * 32},
                    {"X-Institution-Key": key[:-1]}, {"X-Institution-Key": other_institution}):
        refused = requests.get(url, headers=headers, timeout=10)
        assert refused.status_code == 401, headers
        assert refused.json() == {"error": {"code": "UNAUTHORIZED",
                                            "message": "Send your institution key in X-Institution-Key."}}
        assert result_id not in refused.text

    served = requests.get(url, headers={"X-Institution-Key": key}, timeout=10)
    assert served.status_code == 200 and served.headers["Cache-Control"] == "no-store"
    assert served.json()["resultId"] == result_id and served.json()["verified"] is True
    assert requests.get(f"{widget_server.url}/api/results/res_unknown", headers={"X-Institution-Key": key},
                        timeout=10).status_code == 404
