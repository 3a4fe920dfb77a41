"""Security headers on what the browser loads: CSP without inline script, frame-ancestors,
Referrer-Policy, nosniff, and HSTS only when served over HTTPS (behind a trusted proxy)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import AppServer, base_env, migrate


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory: Path = tmp_path_factory.mktemp("proxied")
    env = base_env(f"sqlite:///{directory / 'passid.db'}", PASSID_TRUSTED_PROXIES="1",
                   PASSID_ALLOWED_EMBED_ORIGINS="https://bank.example,https://partner.example:8443")
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


def _csp(headers: requests.structures.CaseInsensitiveDict) -> dict[str, list[str]]:
    policy = {}
    for part in headers["Content-Security-Policy"].split(";"):
        name, *values = part.split()
        policy[name] = values
    return policy


@pytest.mark.parametrize("path", ["/verify", "/staff/sign-in", "/sandbox/phone"])
def test_pages_forbid_inline_script_and_carry_the_basic_headers(widget_server: AppServer, path: str) -> None:
    answer = requests.get(widget_server.url + path, timeout=10)
    policy = _csp(answer.headers)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["style-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in answer.headers  # plain http: no HSTS
    assert "<script>" not in answer.text and " on" + "click=" not in answer.text


def test_static_files_are_nosniff_too(widget_server: AppServer) -> None:
    answer = requests.get(f"{widget_server.url}/static/widget/widget.js", timeout=10)
    assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"


def test_behind_https_the_app_sends_hsts_and_secure_cookies(behind_proxy: AppServer) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    answer = requests.get(f"{behind_proxy.url}/verify", headers=headers, timeout=10)
    assert "max-age=31536000" in answer.headers["Strict-Transport-Security"]
    sign_in = requests.get(f"{behind_proxy.url}/staff/sign-in", headers=headers, timeout=10)
    assert "Secure" in sign_in.headers.get("Set-Cookie", "")
    assert "HttpOnly" in sign_in.headers.get("Set-Cookie", "")


def test_frame_ancestors_is_the_allow_list(behind_proxy: AppServer) -> None:
    policy = _csp(requests.get(f"{behind_proxy.url}/verify", timeout=10).headers)
    assert policy["frame-ancestors"] == ["'self'", "https://bank.example", "https://partner.example:8443"]


@pytest.mark.parametrize("path", ["/verify", "/verify/reset"])
def test_partner_origins_may_frame_the_widget_pages(behind_proxy: AppServer, path: str) -> None:
    answer = requests.get(f"{behind_proxy.url}{path}", timeout=10)
    assert _csp(answer.headers)["frame-ancestors"] == [
        "'self'", "https://bank.example", "https://partner.example:8443",
    ]
    assert "X-Frame-Options" not in answer.headers  # it cannot list partners; frame-ancestors does


@pytest.mark.parametrize("path", ["/staff/sign-in", "/console/", "/branch/", "/sandbox/phone", "/healthz"])
def test_no_partner_may_frame_any_other_page(behind_proxy: AppServer, path: str) -> None:
    """Sign-in, console, branch and the sandbox phone page are never framed, not even by us."""
    answer = requests.get(f"{behind_proxy.url}{path}", timeout=10, allow_redirects=False)
    policy = _csp(answer.headers)
    assert policy["frame-ancestors"] == ["'none'"], path
    assert answer.headers["X-Frame-Options"] == "DENY", path
    assert "bank.example" not in answer.headers["Content-Security-Policy"], path


def test_our_own_pages_may_frame_the_widget_and_nothing_frames_sign_in(widget_server: AppServer) -> None:
    """Branch mode's QR flow frames /verify from our own origin; no page frames sign-in."""
    widget = requests.get(f"{widget_server.url}/verify", timeout=10).headers
    assert "'self'" in _csp(widget)["frame-ancestors"]
    sign_in = requests.get(f"{widget_server.url}/staff/sign-in", timeout=10).headers
    assert _csp(sign_in)["frame-ancestors"] == ["'none'"] and sign_in["X-Frame-Options"] == "DENY"
