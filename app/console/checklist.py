"""The guide's go-live checklist, checked by the app itself where it can be.

`evaluate_checklist` is the decision: plain facts in, one verdict per item
out, no request and no network, so every verdict can be tested with made-up
facts. `gather_facts` is the one place that looks at the running app
(configuration, PASSID's webhook settings, our webhook log, git) to collect
those facts; the console page and `flask passid checklist` both use it.

Items the app guarantees by construction (Idempotency-Key, the background
webhook handling) pass with the reason, so the list still reads as the
guide's list and says where the guarantee lives.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from app.config import PROJECT_ROOT

Verdict = Literal["pass", "fail", "cannot_check"]
WEBHOOK_PATH = "/webhooks/passid"
EXPIRED_TEMPLATE = PROJECT_ROOT / "templates" / "widget" / "_declined.html"


@dataclass(frozen=True)
class Item:
    title: str
    verdict: Verdict
    detail: str
    how_to_fix: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything the checklist looks at, as plain values."""

    api_key: str | None
    webhook_secret_set: bool  # ours: PASSID_WEBHOOK_SECRET (or the demo institution's)
    registered_webhook_url: str | None  # PASSID's GET /api/institution/webhook
    passid_secret_set: bool | None  # the same answer's secretSet; None when not asked
    webhook_lookup_error: str | None  # why we could not ask PASSID, if we could not
    test_webhook_verified_at: datetime | None  # newest test event whose signature held
    https: bool | None  # the request was secure, as the app sees it; None: not asked over HTTP (the CLI)
    committed_secret_files: tuple[str, ...] | None  # None: no git to ask
    # X-Forwarded-Proto said https, but PASSID_TRUSTED_PROXIES does not let the app believe it.
    https_claimed_by_untrusted_proxy: bool = False
    sanctions_deny_is_neutral: bool = True
    expiry_offers_new_code: bool = True


def _key_kind(key: str | None) -> str:
    """Only the prefix is ever shown: the key itself must not reach a page or a log."""
    if not key:
        return "no key"
    if key.startswith("sk_live_"):
        return "a live key (sk_live_…)"
    if key.startswith("sk_sandbox_"):
        return "a sandbox key (sk_sandbox_…)"
    return "a key of an unknown kind"


def evaluate_checklist(facts: Facts) -> list[Item]:
    return [
        _live_key(facts),
        _secrets_not_committed(facts),
        _webhook_url(facts),
        _webhook_secret(facts),
        _test_webhook(facts),
        Item(
            "Webhook endpoint answers 200 within 10 seconds",
            "pass",
            "POST /webhooks/passid checks the signature, stores the event and answers at once; "
            "handling runs afterwards in a background job (app/webhooks/routes.py, handling.py).",
        ),
        _https(facts),
        Item(
            "Idempotency-Key sent on every verify",
            "pass",
            "Every verify goes through PassidClient.verify (app/passid/client.py), which always sends one "
            "(generating it when the caller gives none); the widget derives its key from the form, so a "
            "double tap or retry replays instead of verifying twice.",
        ),
        _sanctions(facts),
        _expiry(facts),
    ]


def _live_key(facts: Facts) -> Item:
    title = "Live API key configured"
    kind = _key_kind(facts.api_key)
    if facts.api_key and facts.api_key.startswith("sk_live_"):
        return Item(title, "pass", f"The app uses {kind}.")
    return Item(
        title,
        "fail",
        f"The app uses {kind}" + (" from the embedded sandbox." if "sandbox" in kind else "."),
        "Set PASSID_API_KEY to your sk_live_… key and PASSID_BASE_URL to https://api.passid.io "
        "in the server's environment, and set PASSID_SANDBOX_ENABLED=false.",
    )


def _secrets_not_committed(facts: Facts) -> Item:
    title = "API key not committed; .env not in version control"
    if facts.committed_secret_files is None:
        return Item(
            title,
            "cannot_check",
            "This copy of the app is not a git checkout (or git is missing), so it cannot see what is committed.",
            "Check your repository yourself: .env must be ignored and no file may contain the key.",
        )
    if facts.committed_secret_files:
        return Item(
            title,
            "fail",
            "Tracked by git: " + ", ".join(facts.committed_secret_files),
            "Remove these from the repository (git rm --cached), add .env to .gitignore, and rotate the "
            "key in the PASSID dashboard: a committed key must be treated as leaked.",
        )
    return Item(title, "pass", "No .env file is tracked and no tracked file contains the key in use.")


def _webhook_url(facts: Facts) -> Item:
    title = "Webhook URL registered with PASSID"
    fix = f"Register https://<your public host>{WEBHOOK_PATH} in the PASSID dashboard → API & Webhooks."
    if facts.webhook_lookup_error:
        return Item(title, "cannot_check", f"Could not ask PASSID: {facts.webhook_lookup_error}",
                    "Check PASSID_BASE_URL and PASSID_API_KEY, then reload.")
    url = facts.registered_webhook_url
    if not url:
        return Item(title, "fail", "PASSID has no webhook URL for this institution.", fix)
    parts = urlsplit(url)
    if parts.path.rstrip("/") != WEBHOOK_PATH:
        return Item(title, "fail", f"PASSID sends webhooks to {url}, which is not this app's receiver.", fix)
    if facts.api_key and facts.api_key.startswith("sk_live_") and parts.scheme != "https":
        return Item(title, "fail", f"{url} is plain http: live claims would travel unencrypted.", fix)
    return Item(title, "pass", f"PASSID sends webhooks to {url}.")


def _webhook_secret(facts: Facts) -> Item:
    title = "Webhook secret set on both sides"
    fix = ("Choose a secret of at least 16 characters, save it in the PASSID dashboard and set the same "
           "value in PASSID_WEBHOOK_SECRET (comma-separate old and new while rotating).")
    if not facts.webhook_secret_set:
        return Item(title, "fail", "PASSID_WEBHOOK_SECRET is not set, so every webhook fails its signature check.",
                    fix)
    if facts.passid_secret_set is False:
        return Item(title, "fail", "PASSID has no webhook secret for this institution, so it cannot sign events.",
                    fix)
    if facts.passid_secret_set is None:
        return Item(title, "cannot_check", "Our secret is set; PASSID could not be asked whether it has one.", fix)
    return Item(title, "pass", "Our secret is set and PASSID reports one too.")


def _test_webhook(facts: Facts) -> Item:
    title = "Test webhook received and its signature verified"
    if facts.test_webhook_verified_at is None:
        return Item(
            title,
            "fail",
            "No test webhook with a valid signature has arrived yet.",
            'Press "Send test webhook" (or run `flask passid webhook-test`); if it does not arrive, '
            "check the registered URL, and if it arrives as invalid, check the secret.",
        )
    when = facts.test_webhook_verified_at.strftime("%Y-%m-%d %H:%M UTC")
    return Item(title, "pass", f"The latest test event arrived {when} and its HMAC-SHA256 signature held.")


def _https(facts: Facts) -> Item:
    title = "Served over HTTPS"
    fix = ("Put the app behind a TLS-terminating proxy that sets X-Forwarded-Proto: https, set "
           "PASSID_TRUSTED_PROXIES=1, and open the console through your public https address.")
    if facts.https is None:
        return Item(title, "cannot_check", "Only a page request can tell; open this checklist in the console.", fix)
    if facts.https:
        return Item(title, "pass", "This page came over HTTPS.")
    if facts.https_claimed_by_untrusted_proxy:
        return Item(
            title,
            "fail",
            "A proxy says this page came over HTTPS (X-Forwarded-Proto), but the app is not told to trust it, "
            "so it sends no HSTS header and no secure-only cookies.",
            "Set PASSID_TRUSTED_PROXIES to the number of proxies in front of the app (usually 1).",
        )
    return Item(title, "fail", "This page came over plain HTTP.", fix)


def _sanctions(facts: Facts) -> Item:
    title = "HARD_DENY_SANCTIONS_MATCH never approved"
    if not facts.sanctions_deny_is_neutral:
        return Item(
            title,
            "fail",
            "The widget's neutral wording is no longer keyed on HARD_DENY_SANCTIONS_MATCH.",
            "Make app/widget/messages.py NEUTRAL_DECLINE equal DenyReason.HARD_DENY_SANCTIONS_MATCH again.",
        )
    return Item(
        title,
        "pass",
        "PASSID answers it as verified=false; the client returns it as a deny, the widget records it as "
        "'denied' and draws success only for 'completed', so it can never approve. The customer reads a "
        "neutral decline (no tipping-off); staff see the real reason in History.",
    )


def _expiry(facts: Facts) -> Item:
    title = 'Expired request shows "Generate new code"'
    if not facts.expiry_offers_new_code:
        return Item(title, "fail", "templates/widget/_declined.html no longer offers the button after expiry.",
                    'Restore the "Generate new code" button in the expired branch of _declined.html.')
    return Item(title, "pass", 'After expiry the widget offers "Generate new code" (templates/widget/_declined.html),'
                               " not an error.")


def failed(items: list[Item]) -> list[Item]:
    return [item for item in items if item.verdict == "fail"]


# --- gathering the facts -----------------------------------------------------------------------


def committed_secret_files(root: Path, api_key: str | None) -> tuple[str, ...] | None:
    """Tracked files that are .env files or contain the key in use; None when git cannot tell.

    The key goes to git on stdin, never on the command line where `ps` would show it.
    """
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, timeout=5, check=True)
        found = [name for name in listed.stdout.decode().split("\0") if _is_env_file(name)]
        if api_key:
            grep = subprocess.run(
                ["git", "grep", "-l", "-F", "-f", "-"], cwd=root, input=api_key.encode(),
                capture_output=True, timeout=10,
            )
            if grep.returncode not in (0, 1):  # 1 means "no match"
                return None
            found += [name for name in grep.stdout.decode().splitlines() if name]
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(sorted(set(found)))


def _is_env_file(name: str) -> bool:
    base = PurePosixPath(name).name
    if base == ".env":
        return True
    return base.startswith(".env.") and not base.endswith((".example", ".sample", ".template"))


def code_facts() -> dict[str, bool]:
    """The two guarantees the widget's code gives, checked against that code."""
    from app.passid import DenyReason
    from app.widget.messages import NEUTRAL_DECLINE

    try:
        template = EXPIRED_TEMPLATE.read_text()
    except OSError:
        template = ""
    return {
        "sanctions_deny_is_neutral": DenyReason.HARD_DENY_SANCTIONS_MATCH.value == NEUTRAL_DECLINE,
        "expiry_offers_new_code": "Generate new code" in template,
    }


def gather_facts(*, https: bool | None, https_claimed_by_untrusted_proxy: bool = False) -> Facts:
    """Collect the facts from the running app (needs an app context)."""
    from app.console.records import latest_verified_test_webhook
    from app.passid import PassidError
    from app.passid_connection import passid_client, passid_connection

    connection = passid_connection()
    url, passid_secret, error = None, None, None
    try:
        webhook = passid_client().get_webhook()
        url, passid_secret = webhook.url, webhook.secret_set
    except PassidError as problem:
        error = str(problem)
    receipt = latest_verified_test_webhook()
    return Facts(
        api_key=connection.api_key,
        webhook_secret_set=bool(connection.webhook_secrets),
        registered_webhook_url=url,
        passid_secret_set=passid_secret,
        webhook_lookup_error=error,
        test_webhook_verified_at=receipt.received_at if receipt else None,
        https=https,
        https_claimed_by_untrusted_proxy=https_claimed_by_untrusted_proxy,
        committed_secret_files=committed_secret_files(PROJECT_ROOT, connection.api_key),
        **code_facts(),
    )
