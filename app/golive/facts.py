"""Gathering the checklist's facts from the running app (needs an app context).

Configuration and the PASSID connection, PASSID's own webhook settings (asked over the wire), our webhook
log, who still signs in with a password (offered by staff sign-in), git (what is committed next to the app),
and the probes of the app's own code (`app.golive.probes`).
The console page and `flask passid checklist` both call `gather_facts`, then `verdicts.evaluate_checklist`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from flask import current_app

from app.config import PROJECT_ROOT, current_settings
from app.golive.probes import code_facts
from app.golive.verdicts import Facts
from app.passid import PassidError
from app.plumbing.passid_connection import passid_client, passid_connection
from app.plumbing.password_accounts import password_accounts_of
from app.rules import notifications
from app.rules.webhook_receipts import latest_verified_test_webhook


def gather_facts(*, https: bool | None, https_claimed_by_untrusted_proxy: bool = False) -> Facts:
    """Collect the facts from the running app (needs an app context)."""
    connection = passid_connection()
    url, passid_secret, error = None, None, None
    try:
        webhook = passid_client().get_webhook()
        url, passid_secret = webhook.url, webhook.secret_set
    except PassidError as problem:
        error = str(problem)
    receipt = latest_verified_test_webhook()
    settings = current_settings()
    return Facts(
        api_key=connection.api_key,
        webhook_secret_set=bool(connection.webhook_secrets),
        registered_webhook_url=url,
        passid_secret_set=passid_secret,
        webhook_lookup_error=error,
        test_webhook_verified_at=receipt.received_at if receipt else None,
        test_webhook_answered_ms=receipt.answered_ms if receipt else None,
        https=https,
        https_claimed_by_untrusted_proxy=https_claimed_by_untrusted_proxy,
        committed_secret_files=committed_secret_files(PROJECT_ROOT, connection.api_key),
        notify_url_answers=notifications.notify_url_answers(),
        single_sign_on=settings.single_sign_on,
        local_passwords=settings.local_passwords,
        password_accounts=password_accounts_of(current_app._get_current_object()),  # type: ignore[attr-defined]
        staff_second_factor=settings.staff_mfa,
        **code_facts(),
    )


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
