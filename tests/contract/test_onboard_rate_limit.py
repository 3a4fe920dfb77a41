"""Onboarding needs no credentials, so the sandbox limits it per client address (429, contract shape).

The app is built in this process and its sandbox called over loopback HTTP; the limit's counters on
PostgreSQL are tested with the storage itself (tests/widget/test_rate_limit_storage.py).
"""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from app.passid import PassidClient, RateLimited


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_SANDBOX_RATE_LIMIT_ONBOARD": "3 per hour"}


def test_onboarding_over_the_limit_is_429_in_the_contract_error_shape(app: Flask) -> None:
    sandbox_url = app.config["PASSID_BASE_URL"]
    url = f"{sandbox_url}/api/onboard"
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
        PassidClient(sandbox_url).onboard("Through the client")
    # Only onboarding is limited: the rest of the sandbox still answers this address.
    assert requests.get(f"{sandbox_url}/openapi.json", timeout=10).status_code == 200
    assert PassidClient(sandbox_url).sandbox_login("KE8V-3TXY-Z72L")
