"""An operator's proxy settings reach the client, read once when it is built (app/passid/client.py).

The client reads HTTP_PROXY / HTTPS_PROXY / NO_PROXY for its base URL when it is made, not at every call
(re-reading the environment and ~/.netrc on each call cost a seventh of a poll's CPU), so what the process
started with applies to every call, GETs sent past `requests` included. The proxy here is a real one on
loopback that answers as PASSID itself; PASSID's own address does not resolve, so a call that skipped the
proxy could not succeed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.passid import PassidClient, PassidUnavailable

from .conftest import API_KEY

PASSID = "http://passid.invalid"  # .invalid never resolves
PENDING = {"requestId": "req_proxied", "status": "pending", "code": "ABCD-EFGH",
           "expiresAt": "2099-01-01T00:00:00Z", "permissions": ["identity_verified"], "institutionName": "Bank"}


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on loopback that answers every call itself, keeping the request line's target."""
    targets: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            targets.append(self.path)  # a proxy is sent the absolute URL
            body = json.dumps(PENDING).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-PASSID-API-Version", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", targets
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_a_proxy_set_at_start_up_carries_every_call_even_once_the_environment_changes(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_url, targets = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    with PassidClient(PASSID, API_KEY, timeout=5) as client:
        monkeypatch.delenv("HTTP_PROXY")  # read when the client was made, not at each call
        assert client.get_request("req_proxied").status.value == "pending"
        assert client.get_request("req_proxied").status.value == "pending"
    assert targets == [f"{PASSID}/api/bridge/request/req_proxied"] * 2


def test_no_proxy_at_start_up_means_none_later(proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy_url, targets = proxy
    with PassidClient(PASSID, API_KEY, timeout=5) as client:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        with pytest.raises(PassidUnavailable):  # straight to passid.invalid, which does not resolve
            client.get_request("req_proxied")
    assert targets == []


def test_https_proxy_and_no_proxy_are_resolved_for_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.bank.example:3128")
    with PassidClient("https://api.passid.io", API_KEY) as client:
        assert client._session.proxies.get("https") == "http://proxy.bank.example:3128"
        assert client._session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "passid.io")
    with PassidClient("https://api.passid.io", API_KEY) as client:
        assert "https" not in client._session.proxies
