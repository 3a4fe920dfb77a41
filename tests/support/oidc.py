"""A real OpenID provider for the single sign-on tests, and a person's browser at it.

`oidc-provider` (npm, pinned in package-lock.json; `make test` installs it with `npm ci`), run by node from
tests/support/oidc_provider.mjs on a free loopback port: started once per test worker, waited for by its
discovery document, stopped when the run ends. The app meets it exactly as it meets a bank's provider:
discovery, the authorisation endpoint in the browser, the token endpoint, its keys and UserInfo over HTTP.

The person's side is `requests` (the provider's pages are plain forms); the app's side is Flask's test client,
which is handed the provider's redirect back as a browser would follow it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from tests.support.servers import ROOT, free_port
from tests.support.waiting import wait_until

SCRIPT = ROOT / "tests" / "support" / "oidc_provider.mjs"
CLIENT_ID = "passid-verify"
CLIENT_SECRET = "test-only-client-secret-not-for-production"  # the script's
# Flask's test client serves http://localhost: the redirect URL the app sends, registered at the provider.
REDIRECT_URI = "http://localhost/staff/sso/callback"
ROLE_MAP = "passid-admins=admin;passid-analysts=analyst;branch-staff=counter"
MFA_ACR = "urn:test:loa:2fa"


@dataclass
class OidcTestProvider:
    issuer: str
    process: subprocess.Popen[bytes]

    def app_settings(self, **overrides: str) -> dict[str, str]:
        """The settings that connect an app to this provider, as a bank connects its own."""
        return {
            "PASSID_OIDC_ISSUER": self.issuer,
            "PASSID_OIDC_CLIENT_ID": CLIENT_ID,
            "PASSID_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "PASSID_OIDC_SCOPES": "openid profile email groups",
            "PASSID_OIDC_ROLE_MAP": ROLE_MAP,
            "PASSID_OIDC_MFA_ACR_VALUES": MFA_ACR,
            **overrides,
        }

    def add_user(self, *groups: str, fault: str | None = None) -> str:
        """A new person at the provider, in `groups`; `fault` makes the provider sign their ID tokens wrong."""
        name = f"staff-{secrets.token_hex(4)}"
        self.set_user(name, *groups, fault=fault)
        return name

    def set_user(self, name: str, *groups: str, fault: str | None = None) -> None:
        answer = requests.put(f"{self.issuer}/test/accounts/{name}", json={"groups": list(groups), "fault": fault},
                              timeout=10)
        assert answer.status_code == 204, answer.text

    def remove_user(self, name: str) -> None:
        """A leaver: the provider signs them in no more."""
        assert requests.delete(f"{self.issuer}/test/accounts/{name}", timeout=10).status_code == 204

    def sign_in(self, authorize_url: str, login: str, *, amr: str = "pwd", acr: str = "") -> str:
        """A person at the provider: open the app's authorisation request, sign in as `login`; returns where the
        provider sends the browser back (the app's callback URL, with the code and state)."""
        browser = requests.Session()
        answer = browser.get(authorize_url, allow_redirects=False, timeout=10)
        assert answer.status_code in (302, 303), answer.text[:500]
        interaction = urljoin(self.issuer, answer.headers["Location"])
        assert urlsplit(interaction).path.startswith("/interaction/"), interaction
        answer = browser.post(interaction, data={"login": login, "amr": amr, "acr": acr}, allow_redirects=False,
                              timeout=10)
        while answer.status_code in (302, 303):
            location = urljoin(self.issuer, answer.headers["Location"])
            if location.startswith(REDIRECT_URI):
                return location
            answer = browser.get(location, allow_redirects=False, timeout=10)
        raise AssertionError(f"the provider did not send the browser back: {answer.status_code} {answer.text[:500]}")


def node() -> str:
    found = shutil.which("node")
    assert found, "node is needed for the OpenID provider the single sign-on tests start (Debian's nodejs)"
    return found


@contextmanager
def running_provider(log: Path) -> Iterator[OidcTestProvider]:
    """The provider on a free loopback port until the block ends; ready when its discovery document answers."""
    assert (ROOT / "node_modules" / "oidc-provider").is_dir(), "run `npm ci` (make test does) for oidc-provider"
    port = free_port()
    with open(log, "ab") as output:
        process = subprocess.Popen([node(), str(SCRIPT), str(port), REDIRECT_URI], cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT)
    provider = OidcTestProvider(f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: _discovery_answers(provider), "the test OpenID provider answering discovery")
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _discovery_answers(provider: OidcTestProvider) -> bool:
    if provider.process.poll() is not None:
        raise AssertionError(f"the test OpenID provider exited with {provider.process.returncode}")
    try:
        return requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200
    except requests.RequestException:
        return False
