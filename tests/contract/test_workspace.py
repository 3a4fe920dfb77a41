"""Onboarding and webhook settings, through the client, against the running sandbox."""

from __future__ import annotations

import pytest

from app.passid import PassidClient, Unauthorized, ValidationError
from tests.support.postgres import refused_before_storage


def test_onboarding_gives_both_keys_at_once(sandbox: PassidClient) -> None:
    onboarding = sandbox.onboard("Acme Lending")
    assert onboarding.institution_id.startswith("inst_")
    assert onboarding.institution_name == "Acme Lending"
    assert onboarding.sandbox_key.startswith("sk_sandbox_") and len(onboarding.sandbox_key) >= 11 + 32
    assert onboarding.live_key.startswith("sk_live_")


@refused_before_storage
@pytest.mark.parametrize("name", ["", "x" * 81])
def test_onboarding_rejects_a_name_outside_1_to_80_characters(sandbox: PassidClient, name: str) -> None:
    with pytest.raises(ValidationError) as error:
        sandbox.onboard(name)
    assert error.value.field == "institutionName"


@refused_before_storage
def test_a_live_key_is_refused_by_the_sandbox(sandbox: PassidClient) -> None:
    onboarding = sandbox.onboard("Acme")
    live = PassidClient(sandbox.base_url, onboarding.live_key)
    with pytest.raises(Unauthorized):
        live.create_request()


def test_an_unknown_or_missing_key_is_unauthorized(sandbox: PassidClient) -> None:
    with pytest.raises(Unauthorized):
        PassidClient(sandbox.base_url, "sk_sandbox_" + "x" * 32).get_webhook()
    with pytest.raises(Unauthorized):
        sandbox.get_webhook()


def test_webhook_settings_are_stored_and_the_secret_never_returned(institution) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    assert client.get_webhook().url is None
    assert client.get_webhook().secret_set is False
    saved = client.set_webhook("http://localhost:9/webhooks/passid", "s" * 16)
    assert saved.url == "http://localhost:9/webhooks/passid" and saved.secret_set
    fetched = client.get_webhook()
    assert fetched.url == "http://localhost:9/webhooks/passid" and fetched.secret_set


@refused_before_storage
@pytest.mark.parametrize(
    ("url", "secret", "field"),
    [("ftp://x.example", "s" * 16, "url"), ("https://x.example", "short", "secret")],
)
def test_webhook_settings_are_validated(institution, url: str, secret: str, field: str) -> None:  # type: ignore[no-untyped-def]
    _, client = institution
    with pytest.raises(ValidationError) as error:
        client.set_webhook(url, secret)
    assert error.value.field == field
