"""Passkeys in Chromium, with its virtual authenticator (WebAuthn over the DevTools protocol) standing in for a
laptop's fingerprint reader: an admin who must have a second factor registers one at their first sign-in, then
signs in with it; without it, the sign-in step says so and nobody is signed in.

The app runs in this process (`app`), served on loopback, and the browser opens it as http://localhost:PORT:
browsers make passkeys for a host name, never for an IP address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from playwright.sync_api import Browser, CDPSession, Page, expect

from app.plumbing.database import db
from app.rules import audit
from tests.console.conftest import PASSWORD, add_staff

pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_STAFF_MFA": "admin"}


@pytest.fixture
def laptop(browser: Browser) -> Iterator[tuple[Page, CDPSession, str]]:
    """A browser page with a platform authenticator that verifies its user without asking: (page, CDP, its id)."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    added = devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    yield page, devtools, added["authenticatorId"]
    context.close()


def sign_in_with_password(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/console/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_registers_a_passkey_at_first_sign_in_then_signs_in_with_it(
    app: Flask, runner: FlaskCliRunner, laptop: tuple[Page, CDPSession, str]
) -> None:
    page, devtools, authenticator = laptop
    base = app.config["PUBLIC_BASE_URL"].replace("127.0.0.1", "localhost")
    name = add_staff(runner)

    # First sign-in: the password leads to enrolment and nowhere else; a passkey is made there.
    sign_in_with_password(page, base, name)
    expect(page).to_have_url(re.compile(r"/staff/sign-in/enrol$"))
    page.get_by_label("Name of the passkey (where it lives)").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page).to_have_url(re.compile(r"/staff/account/recovery-codes$"))
    [credential] = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credential["rpId"] == "localhost" and credential["signCount"] >= 0
    page.goto(f"{base}/staff/account")
    expect(page.locator("[data-passkey='Work laptop']")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Sign out")).click()

    # Next sign-in: the password, then the passkey.
    sign_in_with_password(page, base, name)
    expect(page).to_have_url(re.compile(r"/staff/sign-in/second-factor$"))
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", name="Verification history")).to_be_visible()
    assert page.url == f"{base}/console/"
    page.get_by_role("button", name=re.compile(r"^Sign out")).click()

    # The passkey gone from the laptop: the browser makes no answer, the page says so, nobody is signed in.
    devtools.send("WebAuthn.clearCredentials", {"authenticatorId": authenticator})
    sign_in_with_password(page, base, name)
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("The passkey was not used"))
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/staff/sign-in/second-factor$"))

    with app.app_context():
        entries = db.session.execute(db.select(audit.AuditEntry.action, audit.AuditEntry.detail)
                                     .where(audit.AuditEntry.subject == name,
                                            audit.AuditEntry.action != audit.Action.STAFF_CREATED)
                                     .order_by(audit.AuditEntry.id)).all()
    assert [tuple(entry) for entry in entries] == [
        ("second_factor_enrolled", 'passkey "Work laptop"'),
        ("sign_in", "password; second factor: passkey"),
        ("sign_out", None),
        ("sign_in", 'password; second factor: passkey "Work laptop"'),
        ("sign_out", None),
    ]
