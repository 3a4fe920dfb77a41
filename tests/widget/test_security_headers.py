"""Security headers on what the browser loads: CSP without inline script, frame-ancestors,
Referrer-Policy, nosniff, and HSTS only when served over HTTPS (behind a trusted proxy).

In-process: the headers are the app's own (no server adds or drops one), so the test client
sees exactly what a browser would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

PARTNERS = "https://bank.example,https://partner.example:8443"


@pytest.fixture
def app_settings() -> dict[str, str]:
    """As the browser tests' widget server: one embedding origin allowed."""
    return {"PASSID_ALLOWED_EMBED_ORIGINS": "http://localhost:5999"}


@pytest.fixture
def behind_proxy(build_app: Callable[..., Flask]) -> FlaskClient:
    return build_app(PASSID_TRUSTED_PROXIES="1", PASSID_ALLOWED_EMBED_ORIGINS=PARTNERS).test_client()


def _csp(headers: Headers) -> dict[str, list[str]]:
    policy = {}
    for part in headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        policy[name] = values
    return policy


@pytest.mark.parametrize("path", ["/verify", "/staff/sign-in", "/sandbox/phone"])
def test_pages_forbid_inline_script_and_carry_the_basic_headers(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    policy = _csp(answer.headers)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["style-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in answer.headers  # plain http: no HSTS
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text


def test_static_files_are_nosniff_too(client: FlaskClient) -> None:
    answer = client.get("/static/widget/widget.js")
    assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"


def test_behind_https_the_app_sends_hsts_and_secure_cookies(behind_proxy: FlaskClient) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    answer = behind_proxy.get("/verify", headers=headers)
    assert "max-age=31536000" in answer.headers["Strict-Transport-Security"]
    sign_in = behind_proxy.get("/staff/sign-in", headers=headers)
    session = [cookie for cookie in sign_in.headers.getlist("Set-Cookie") if cookie.startswith("session=")]
    assert session, sign_in.headers.getlist("Set-Cookie")
    assert "; Secure" in session[0] and "; HttpOnly" in session[0]


def test_frame_ancestors_is_the_allow_list(behind_proxy: FlaskClient) -> None:
    policy = _csp(behind_proxy.get("/verify").headers)
    assert policy["frame-ancestors"] == ["'self'", "https://bank.example", "https://partner.example:8443"]


@pytest.mark.parametrize("path", ["/verify", "/verify/reset", "/verify/nothing", "/verify/qr"])
def test_partner_origins_may_frame_the_widget_pages(behind_proxy: FlaskClient, path: str) -> None:
    """The widget's error pages too (a 404, a GET on a post-only URL's 405): shown in the iframe, not refused."""
    answer = behind_proxy.get(path)
    assert _csp(answer.headers)["frame-ancestors"] == [
        "'self'", "https://bank.example", "https://partner.example:8443",
    ]
    assert "X-Frame-Options" not in answer.headers  # it cannot list partners; frame-ancestors does


@pytest.mark.parametrize("path", ["/staff/sign-in", "/console/", "/branch/", "/sandbox/phone", "/healthz", "/verifyx",
                                  "/no-such-page"])
def test_no_partner_may_frame_any_other_page(behind_proxy: FlaskClient, path: str) -> None:
    """Sign-in, console, branch and the sandbox phone page are never framed, not even by us."""
    answer = behind_proxy.get(path)
    policy = _csp(answer.headers)
    assert policy["frame-ancestors"] == ["'none'"], path
    assert answer.headers["X-Frame-Options"] == "DENY", path
    assert "bank.example" not in answer.headers["Content-Security-Policy"], path


def test_our_own_pages_may_frame_the_widget_and_nothing_frames_sign_in(client: FlaskClient) -> None:
    """Branch mode's QR flow frames /verify from our own origin; no page frames sign-in."""
    widget = client.get("/verify").headers
    assert "'self'" in _csp(widget)["frame-ancestors"]
    sign_in = client.get("/staff/sign-in").headers
    assert _csp(sign_in)["frame-ancestors"] == ["'none'"] and sign_in["X-Frame-Options"] == "DENY"
