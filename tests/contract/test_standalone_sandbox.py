"""The sandbox on its own (`flask --app app.sandbox run`), serving the contract at the root path."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import requests

from app.passid import PassidClient, RequestStatus
from tests.support.servers import BIN, ROOT, SandboxServer, WebhookReceiver, base_env


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    directory = tmp_path_factory.mktemp("standalone")
    env = base_env(f"sqlite:///{directory / 'sandbox.db'}", PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5")
    # Its own command, not a copy of the app's migrated file: the documented `flask --app app.sandbox db upgrade`.
    upgrade = subprocess.run([str(BIN / "flask"), "--app", "app.sandbox", "db", "upgrade"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    sandbox = SandboxServer(env, directory / "sandbox.log")
    try:
        yield sandbox.start()
    finally:
        sandbox.stop()


def test_the_standalone_sandbox_serves_the_contract_at_the_root_path(standalone: SandboxServer) -> None:
    public = PassidClient(standalone.url, timeout=(3.05, 15.0))
    onboarding = public.onboard("Standalone Lender")
    assert onboarding.sandbox_key.startswith("sk_sandbox_")
    client = PassidClient(standalone.url, onboarding.sandbox_key, timeout=(3.05, 15.0))

    created = client.create_request(permissions=["full_score"])
    assert created.status is RequestStatus.PENDING
    assert public.get_request_by_code(created.code).request_id == created.request_id

    result = client.verify("KE8V-3TXY-Z72L")
    assert result.verified is True and result.claims["fsi_score"] == 812

    phone = requests.get(f"{standalone.url}/phone", timeout=10)
    assert phone.status_code == 200 and phone.headers["Content-Type"].startswith("text/html")
    assert phone.headers["X-PASSID-API-Version"] == "1"
    consent = requests.get(f"{standalone.url}/phone", params={"r": created.request_id}, timeout=10)
    assert consent.status_code == 200 and "Standalone Lender asks to verify you" in consent.text


def test_the_standalone_sandbox_answers_errors_in_the_contracts_shape(standalone: SandboxServer) -> None:
    for response in (
        requests.get(f"{standalone.url}/api/nope", timeout=10),
        requests.post(f"{standalone.url}/api/bridge/verify", data=b"{", timeout=10),
    ):
        assert 400 <= response.status_code < 500
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-PASSID-API-Version"] == "1"
        assert set(response.json()) == {"error"} and response.json()["error"]["code"]


def test_the_standalone_sandbox_delivers_webhooks(standalone: SandboxServer) -> None:
    public = PassidClient(standalone.url, timeout=(3.05, 15.0))
    client = PassidClient(standalone.url, public.onboard("Hooked Lender").sandbox_key, timeout=(3.05, 15.0))
    with WebhookReceiver() as receiver:
        client.set_webhook(receiver.url, "s" * 16)
        client.verify("NG4M-XQRS-T88W")
        delivered = receiver.wait_for(1, timeout=15)
    assert delivered[0].json()["type"] == "verification.completed"
    assert delivered[0].json()["data"]["token"] == "NG4M-XQRS-T88W"
