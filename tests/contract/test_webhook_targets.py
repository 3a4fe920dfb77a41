"""Webhook URLs may not point into private networks: checked at registration and again at delivery.

A stranger who can register a webhook URL and press "test webhook" must not be able to make the
sandbox POST to 169.254.169.254, 10.0.0.1 or any other private, link-local, multicast, reserved or
unspecified address (in any spelling), nor read back the answer as a port scan. Loopback stays
allowed: the demo's own receiver and these tests' receivers live on 127.0.0.1.

No test here sends a byte to a non-loopback address: a guard on `socket.connect` refuses (and
records) any such connect, so a regression fails the test instead of reaching out.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask

from app.passid import ValidationError
from app.sandbox.webhook_targets import RefusedTarget, resolve_webhook_target
from tests.support.in_process import app_environ, migrated_sqlite_url
from tests.support.postgres import refused_before_storage, under_ci
from tests.support.servers import WebhookReceiver

REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://10.0.0.1/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0:6379/",  # unspecified
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://0x7f000001/",  # 127.0.0.1 in hex: an address written to slip past a filter
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0177.0.0.1/",  # octal
    "http://127.1/",  # short form
    "http://0xa000001/",  # 10.0.0.1 in hex
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00::1]/",  # unique local
    "http://[fe80::1]/",  # link-local
    "http://[ff02::1]/",  # multicast
    "http://[::]/",  # unspecified
    "http://[2002:a00:1::]/",  # 6to4 wrapping 10.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
]
NOT_HTTP = ["ftp://127.0.0.1/", "file:///etc/passwd", "gopher://127.0.0.1:6379/", "127.0.0.1:8080/hook"]
ALLOWED_URLS = [
    "http://127.0.0.1:8080/hook",
    "https://127.0.0.1/hook?x=1",
    "http://localhost:9/hook",
    "http://[::1]:9/hook",
    "https://93.184.215.14/hook",  # a public address: classified only, never contacted
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_private_and_oddly_written_addresses_are_refused(url: str) -> None:
    with pytest.raises(RefusedTarget) as refused:
        resolve_webhook_target(url)
    assert "not allowed" in str(refused.value) or "four decimal numbers" in str(refused.value)


@pytest.mark.parametrize("url", NOT_HTTP)
def test_only_http_and_https_are_accepted(url: str) -> None:
    with pytest.raises(RefusedTarget, match="http:// or https://"):
        resolve_webhook_target(url)


def test_credentials_in_the_url_and_unresolvable_hosts_are_refused() -> None:
    with pytest.raises(RefusedTarget, match="user name or password"):
        resolve_webhook_target("http://user:secret@127.0.0.1/hook")
    with pytest.raises(RefusedTarget, match="could not be resolved"):
        resolve_webhook_target("https://nobody-home.invalid/hook")
    with pytest.raises(RefusedTarget, match="port"):
        resolve_webhook_target("http://127.0.0.1:99999/hook")


@pytest.mark.parametrize("url", ALLOWED_URLS)
def test_loopback_and_public_addresses_are_allowed(url: str) -> None:
    target = resolve_webhook_target(url)
    assert target.addresses
    for address in target.addresses:
        parsed = ipaddress.ip_address(address)
        assert parsed.is_loopback or parsed.is_global


# --- at registration, over HTTP ----------------------------------------------------------------------

@refused_before_storage
@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://0x7f000001/", "http://[::ffff:10.0.0.1]:6379/",
            "http://[fd00::1]/", "http://0.0.0.0/", "https://nobody-home.invalid/hook"],
)
def test_registering_a_forbidden_url_is_a_400_naming_the_url(institution, url: str) -> None:  # type: ignore[no-untyped-def]
    onboarding, client = institution
    with WebhookReceiver() as receiver:
        client.set_webhook(receiver.url, "s" * 16)
        answer = requests.put(
            f"{client.base_url}/api/institution/webhook", json={"url": url, "secret": "s" * 16},
            headers={"X-Institution-Key": onboarding.sandbox_key}, timeout=10,
        )
        assert answer.status_code == 400
        assert answer.headers["X-PASSID-API-Version"] == "1"
        error = answer.json()["error"]
        assert error["code"] == "VALIDATION_ERROR" and error["field"] == "url"
        assert error["message"].startswith("url ") and len(error["message"]) < 300
        with pytest.raises(ValidationError):
            client.set_webhook(url, "s" * 16)
        assert client.get_webhook().url == receiver.url  # the refused URL replaced nothing


def test_a_loopback_receiver_is_still_accepted_and_delivered_to(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with WebhookReceiver() as receiver:
        local = receiver.url.replace("127.0.0.1", "localhost")
        assert client.set_webhook(local, "s" * 16).url == local
        client.send_test_webhook()
        assert receiver.wait_for(1)[0].json()["test"] is True


# --- at delivery, in-process: rows written straight into the table --------------------------------------

class ConnectGuard:
    """Lets loopback connects through; refuses and records every other one before a packet leaves."""

    def __init__(self) -> None:
        self.refused: list[object] = []
        self._real_connect = socket.socket.connect

    def connect(self, sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        try:
            loopback = ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            self.refused.append(address)
            raise ConnectionRefusedError(f"test guard: no connects to {address!r}")
        self._real_connect(sock, address)


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> ConnectGuard:
    guard = ConnectGuard()
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: guard.connect(sock, address))
    return guard


@pytest.fixture
def sandbox_app(tmp_path: Path) -> Iterator[Flask]:
    """The whole app in this process on a migrated SQLite file, background jobs off: we call the pass."""
    from app import create_app
    from app.plumbing.database import db
    from app.sandbox.models import SandboxInstitution

    url = migrated_sqlite_url(tmp_path)
    app = create_app(app_environ(url, tmp_path, 5000, PASSID_BACKGROUND_JOBS="false",
                                 PASSID_WEBHOOK_TIMEOUT_SECONDS="3"))
    with app.app_context():
        db.session.add(SandboxInstitution(id="inst_guarded", name="Guarded", sandbox_key="sk_sandbox_" + "g" * 32,
                                          live_key="sk_live_" + "g" * 32))
        db.session.commit()
        yield app
        db.session.remove()
        db.engine.dispose()


def _due_delivery(event_id: str, url: str) -> None:
    from app.plumbing.database import db, utcnow
    from app.sandbox.models import SandboxWebhookDelivery

    db.session.add(SandboxWebhookDelivery(
        event_id=event_id, institution_id="inst_guarded", event_type="verification.completed", url=url,
        body=b'{"id":"' + event_id.encode() + b'"}', signature="sha256=00", status="pending", attempts=0,
        next_attempt_at=utcnow() - timedelta(seconds=1),
    ))
    db.session.commit()


def _row(event_id: str):  # type: ignore[no-untyped-def]
    from app.plumbing.database import db
    from app.sandbox.models import SandboxWebhookDelivery

    db.session.expire_all()
    return db.session.get(SandboxWebhookDelivery, event_id)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "https://[fd00::1]:8443/",
            "http://[::ffff:192.168.0.1]/", "http://0x7f000001/", "http://0.0.0.0:9/"],
)
def test_a_stored_url_into_a_private_network_is_refused_at_delivery_without_a_connect(
    sandbox_app: Flask, guard: ConnectGuard, url: str
) -> None:
    from app.sandbox.webhooks import deliver_due

    _due_delivery("evt_private", url)
    assert deliver_due() == 1
    row = _row("evt_private")
    assert guard.refused == []  # refused before any connect, not by the network
    assert row.attempts == 1 and row.last_status_code is None
    assert row.last_error.startswith("refused: ")
    assert "not allowed" in row.last_error or "decimal numbers" in row.last_error
    assert row.status == "pending" and row.next_attempt_at is not None  # retried on schedule, refused again


def test_delivery_connects_to_the_address_it_checked_not_a_second_lookup(
    sandbox_app: Flask, guard: ConnectGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to loopback once, then to a private address. One lookup, pinned."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_dns(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "rebind.hooks.internal":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    from app.sandbox.webhooks import deliver_due

    with WebhookReceiver() as receiver:
        _due_delivery("evt_rebind", receiver.url.replace("127.0.0.1", "rebind.hooks.internal"))
        assert deliver_due() == 1
        row = _row("evt_rebind")
        assert guard.refused == []
        assert lookups == ["rebind.hooks.internal"]
        assert row.status == "delivered" and row.last_status_code == 200
        [received] = receiver.received
        assert received.headers["Host"] == f"rebind.hooks.internal:{receiver.server.server_address[1]}"
        assert received.headers["X-PASSID-Event-Id"] == "evt_rebind"


def test_a_name_that_now_resolves_into_a_private_network_is_refused_at_delivery(
    sandbox_app: Flask, guard: ConnectGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered while it resolved to loopback; by delivery time it points at 10.0.0.1."""
    real_getaddrinfo = socket.getaddrinfo

    def moved_dns(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        return real_getaddrinfo("10.0.0.1" if host == "moved.hooks.internal" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", moved_dns)
    from app.sandbox.webhooks import deliver_due

    _due_delivery("evt_moved", "http://moved.hooks.internal:8080/hook")
    assert deliver_due() == 1
    row = _row("evt_moved")
    assert guard.refused == []
    assert row.last_status_code is None and row.last_error == "refused: address not allowed (10.0.0.1)"



# --- HTTPS to the checked address: the name still drives SNI and the certificate check ---------------------

@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS receiver on 127.0.0.1 with a certificate for `localhost` only, trusted as the CA bundle."""
    import shutil
    import ssl
    import subprocess
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    if shutil.which("openssl") is None:
        if under_ci():  # a skipped check passes unseen: CI's machine must have what the suite needs
            pytest.fail("CI=true and openssl is missing: it makes this test's certificate (apt-get install openssl)")
        pytest.skip("openssl is needed to make a test certificate (under CI=true this fails)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    yield server.server_address[1], hosts
    server.shutdown()
    server.server_close()


def test_https_goes_to_the_checked_address_with_the_url_name_for_the_certificate(
    tls_receiver: tuple[int, list[str]], guard: ConnectGuard
) -> None:
    import urllib3

    from app.plumbing.outbound_delivery import post_to_checked_address

    port, hosts = tls_receiver
    target = resolve_webhook_target(f"https://localhost:{port}/hook")
    assert post_to_checked_address(target, b"{}", {"Content-Type": "application/json"}, 5.0) == 204
    assert hosts == [f"localhost:{port}"]
    # The certificate names localhost, not 127.0.0.1: the check is on, and made against the URL's name.
    with pytest.raises(urllib3.exceptions.SSLError):
        post_to_checked_address(resolve_webhook_target(f"https://127.0.0.1:{port}/hook"), b"{}", {}, 5.0)
    assert guard.refused == []
