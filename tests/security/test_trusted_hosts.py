"""The Host header is not believed.

The widget addresses its result messages (claims included) to a parent origin
only when that origin is on the embed allow-list or is the app's own origin. The
own origin comes from PASSID_PUBLIC_URL where it is set; otherwise from the
request's host, which is then checked against PASSID_TRUSTED_HOSTS (Flask's
TRUSTED_HOSTS), so a forged Host gets a 400 before any page is drawn.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from flask import Flask

from app import create_app
from app.config import load_settings
from tests.support.servers import AppServer

PUBLIC = "https://verify.bank.example"


def _app(tmp_path: Path, **environ: str) -> Flask:
    """The app in this process, for request-level checks (no server, no background jobs)."""
    return create_app({
        "SECRET_KEY": "test-secret", "DATABASE_URL": f"sqlite:///{tmp_path / 'passid.db'}",
        "PASSID_BACKGROUND_JOBS": "false", **environ,
    })


def test_a_forged_host_gets_a_clear_400_from_the_running_app(widget_server: AppServer) -> None:
    for headers in ({"Host": "evil.example"}, {"Host": f"evil.example:{widget_server.port}"}):
        answer = requests.get(f"{widget_server.url}/verify", params={"origin": "http://evil.example"},
                              headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<h1>Something went wrong</h1>" in answer.text
        assert "data-parent-origin" not in answer.text and "evil.example" not in answer.text
    french = requests.get(f"{widget_server.url}/verify", headers={"Host": "evil.example", "Accept-Language": "fr"},
                          timeout=10)
    assert french.status_code == 400 and '<html lang="fr"' in french.text and "Something" not in french.text


def test_loopback_names_are_trusted_when_the_app_listens_on_loopback(widget_server: AppServer) -> None:
    for host in (f"127.0.0.1:{widget_server.port}", f"localhost:{widget_server.port}"):
        answer = requests.get(f"{widget_server.url}/healthz", headers={"Host": host}, timeout=10)
        assert answer.status_code == 200, host


def test_a_forwarded_host_from_a_trusted_proxy_is_checked_too(tmp_path: Path) -> None:
    client = _app(tmp_path, PASSID_TRUSTED_PROXIES="1", PASSID_PUBLIC_URL=PUBLIC).test_client()
    assert client.get("/verify", headers={"X-Forwarded-Host": "evil.example"}).status_code == 400
    assert client.get("/verify", headers={"X-Forwarded-Host": "verify.bank.example"}).status_code == 200


def test_with_a_public_url_the_own_origin_check_ignores_the_host_header(tmp_path: Path) -> None:
    client = _app(tmp_path, PASSID_PUBLIC_URL=PUBLIC).test_client()
    # "localhost" is a trusted host (the app listens on loopback), but it is not our public origin.
    local = client.get("/verify", query_string={"origin": "http://localhost"}, base_url="http://localhost")
    assert local.status_code == 200 and b"data-parent-origin" not in local.data
    public = client.get("/verify", query_string={"origin": PUBLIC}, base_url=PUBLIC)
    assert f'data-parent-origin="{PUBLIC}"'.encode() in public.data


def test_an_explicit_list_replaces_the_default(tmp_path: Path) -> None:
    client = _app(tmp_path, PASSID_TRUSTED_HOSTS="verify.bank.example, .branches.bank.example").test_client()
    # Exactly 200: "not 400" would let a server error on a listed host pass.
    assert client.get("/healthz", base_url="http://counter1.branches.bank.example").status_code == 200
    assert client.get("/verify", base_url="http://counter1.branches.bank.example").status_code == 200
    assert client.get("/verify", base_url="http://verify.bank.example").status_code == 200
    assert client.get("/verify", base_url="http://localhost").status_code == 400


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, ("127.0.0.1", "localhost")),
    ({"PASSID_PUBLIC_URL": PUBLIC}, ("verify.bank.example", "127.0.0.1", "localhost")),
    ({"HOST": "0.0.0.0", "PASSID_PUBLIC_URL": PUBLIC}, ("verify.bank.example", "127.0.0.1", "localhost")),
    ({"HOST": "10.1.2.3"}, ("10.1.2.3",)),
    ({"HOST": "10.1.2.3", "PASSID_PUBLIC_URL": PUBLIC}, ("verify.bank.example",)),
    ({"PASSID_TRUSTED_HOSTS": "a.example,.b.example"}, ("a.example", ".b.example")),
])
def test_the_default_trusted_hosts(environ: dict[str, str], expected: tuple[str, ...]) -> None:
    settings = load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:", **environ})
    assert settings.trusted_hosts == expected
    assert settings.to_flask()["TRUSTED_HOSTS"] == list(expected)


def test_a_malformed_trusted_host_stops_start_up() -> None:
    from app.config import ConfigError

    with pytest.raises(ConfigError) as error:
        load_settings({"SECRET_KEY": "s", "DATABASE_URL": "sqlite:///:memory:",
                       "PASSID_TRUSTED_HOSTS": "bank.example/verify"})
    assert "PASSID_TRUSTED_HOSTS" in str(error.value)
