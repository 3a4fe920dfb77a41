"""The sandbox on its own (`flask --app app.sandbox run`), serving the contract at the root path."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.passid import PassidClient, RequestStatus
from tests.support.servers import BIN, ROOT, WebhookReceiver, base_env, free_port


class StandaloneSandbox:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.url = url
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def _wait_until_it_answers(sandbox: StandaloneSandbox, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sandbox.process.poll() is not None:
            raise RuntimeError(f"sandbox exited early:\n{sandbox.log()}")
        try:
            if requests.get(f"{sandbox.url}/phone", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"sandbox did not answer in {timeout}s:\n{sandbox.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneSandbox]:
    directory = tmp_path_factory.mktemp("standalone")
    port = free_port()
    env = base_env(
        f"sqlite:///{directory / 'sandbox.db'}",
        PORT=str(port),
        PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5",
    )
    flask = [str(BIN / "flask"), "--app", "app.sandbox"]
    upgrade = subprocess.run(
        [*flask, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    log_path = directory / "sandbox.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [*flask, "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    sandbox = StandaloneSandbox(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_it_answers(sandbox)
        yield sandbox
    finally:
        _stop(process)


def test_the_standalone_sandbox_serves_the_contract_at_the_root_path(standalone: StandaloneSandbox) -> None:
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


def test_the_standalone_sandbox_answers_errors_in_the_contracts_shape(standalone: StandaloneSandbox) -> None:
    for response in (
        requests.get(f"{standalone.url}/api/nope", timeout=10),
        requests.post(f"{standalone.url}/api/bridge/verify", data=b"{", timeout=10),
    ):
        assert 400 <= response.status_code < 500
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-PASSID-API-Version"] == "1"
        assert set(response.json()) == {"error"} and response.json()["error"]["code"]


def test_the_standalone_sandbox_delivers_webhooks(standalone: StandaloneSandbox) -> None:
    public = PassidClient(standalone.url, timeout=(3.05, 15.0))
    client = PassidClient(standalone.url, public.onboard("Hooked Lender").sandbox_key, timeout=(3.05, 15.0))
    with WebhookReceiver() as receiver:
        client.set_webhook(receiver.url, "s" * 16)
        client.verify("NG4M-XQRS-T88W")
        delivered = receiver.wait_for(1, timeout=15)
    assert delivered[0].json()["type"] == "verification.completed"
    assert delivered[0].json()["data"]["token"] == "NG4M-XQRS-T88W"
