"""Onboarding needs no credentials, so the sandbox limits it per client address (429, contract shape)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.passid import PassidClient, RateLimited
from tests.support.servers import AppServer, base_env


@pytest.fixture
def strict_server(fresh_database_url: str, tmp_path: Path) -> Iterator[AppServer]:
    server = AppServer(
        base_env(fresh_database_url, PASSID_SANDBOX_RATE_LIMIT_ONBOARD="3 per hour"), tmp_path / "app.log"
    ).start()
    yield server
    server.stop()


def test_onboarding_over_the_limit_is_429_in_the_contract_error_shape(strict_server: AppServer) -> None:
    url = f"{strict_server.sandbox_url}/api/onboard"
    for n in range(3):
        assert requests.post(url, json={"institutionName": f"Bank {n}"}, timeout=10).status_code == 201
    refused = requests.post(url, json={"institutionName": "One Too Many"}, timeout=10)
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/json"
    assert refused.headers["X-PASSID-API-Version"] == "1"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    error = refused.json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert "3 per 1 hour" in error["message"] and "Retry-After" in error["message"]

    with pytest.raises(RateLimited):  # the client reads it as the contract's 429
        PassidClient(strict_server.sandbox_url).onboard("Through the client")
    # Only onboarding is limited: the rest of the sandbox still answers this address.
    assert requests.get(f"{strict_server.sandbox_url}/openapi.json", timeout=10).status_code == 200
    assert PassidClient(strict_server.sandbox_url).sandbox_login("KE8V-3TXY-Z72L")
