"""The go-live checklist checks itself: plain verdicts from plain facts, and the page on a sandbox setup."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import requests

from app.console.checklist import Facts, committed_secret_files, evaluate_checklist, failed
from tests.console.conftest import hidden
from tests.support.servers import AppServer

LIVE_KEY = "sk_" + "live_" + "Zx9" * 12
LIVE = Facts(
    api_key=LIVE_KEY,
    webhook_secret_set=True,
    registered_webhook_url="https://bank.example/webhooks/passid",
    passid_secret_set=True,
    webhook_lookup_error=None,
    test_webhook_verified_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    https=True,
    committed_secret_files=(),
)


def verdicts(facts: Facts) -> dict[str, str]:
    return {item.title: item.verdict for item in evaluate_checklist(facts)}


def test_a_live_looking_setup_passes_every_item() -> None:
    items = evaluate_checklist(LIVE)
    assert [item.verdict for item in items] == ["pass"] * len(items)
    assert len(items) == 10
    assert all(LIVE_KEY not in item.detail + item.how_to_fix for item in items)


def test_a_sandbox_setup_fails_the_live_key_https_and_test_webhook_items() -> None:
    sandbox = replace(LIVE, api_key="sk_sandbox_" + "q" * 32, registered_webhook_url="http://127.0.0.1:5000/webhooks/passid",
                      test_webhook_verified_at=None, https=False)
    result = verdicts(sandbox)
    assert result["Live API key configured"] == "fail"
    assert result["Served over HTTPS"] == "fail"
    assert result["Test webhook received and its signature verified"] == "fail"
    assert result["Webhook URL registered with PASSID"] == "pass"
    assert result["HARD_DENY_SANCTIONS_MATCH never approved"] == "pass"
    assert all(item.how_to_fix for item in failed(evaluate_checklist(sandbox)))


def test_an_untrusted_proxy_claiming_https_fails_with_the_setting_to_change() -> None:
    [item] = [i for i in evaluate_checklist(replace(LIVE, https=False, https_claimed_by_untrusted_proxy=True))
              if i.title == "Served over HTTPS"]
    assert item.verdict == "fail" and "PASSID_TRUSTED_PROXIES" in item.how_to_fix


def test_what_cannot_be_known_is_said_so() -> None:
    unknown = replace(LIVE, webhook_lookup_error="no answer within 10s", registered_webhook_url=None,
                      passid_secret_set=None, https=None, committed_secret_files=None)
    result = verdicts(unknown)
    for title in ("Webhook URL registered with PASSID", "Webhook secret set on both sides", "Served over HTTPS",
                  "API key not committed; .env not in version control"):
        assert result[title] == "cannot_check", title


def test_misconfigurations_fail_with_a_fix() -> None:
    cases = [
        (replace(LIVE, registered_webhook_url=None), "Webhook URL registered with PASSID"),
        (replace(LIVE, registered_webhook_url="https://bank.example/hooks"), "Webhook URL registered with PASSID"),
        (replace(LIVE, registered_webhook_url="http://bank.example/webhooks/passid"),
         "Webhook URL registered with PASSID"),
        (replace(LIVE, webhook_secret_set=False), "Webhook secret set on both sides"),
        (replace(LIVE, passid_secret_set=False), "Webhook secret set on both sides"),
        (replace(LIVE, committed_secret_files=(".env",)), "API key not committed; .env not in version control"),
        (replace(LIVE, sanctions_deny_is_neutral=False), "HARD_DENY_SANCTIONS_MATCH never approved"),
        (replace(LIVE, expiry_offers_new_code=False), 'Expired request shows "Generate new code"'),
    ]
    for facts, title in cases:
        assert [item.title for item in failed(evaluate_checklist(facts))] == [title]


def test_committed_secrets_are_found_by_git(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "settings.py").write_text(f"KEY = '{LIVE_KEY}'\n")
    (tmp_path / ".env.example").write_text("PASSID_API_KEY=\n")
    (tmp_path / "clean.py").write_text("x = 1\n")
    git("add", "settings.py", ".env.example", "clean.py")
    assert committed_secret_files(tmp_path, LIVE_KEY) == ("settings.py",)
    (tmp_path / ".env").write_text("PASSID_API_KEY=x\n")
    git("add", ".env")
    assert committed_secret_files(tmp_path, LIVE_KEY) == (".env", "settings.py")
    assert committed_secret_files(tmp_path / "missing", LIVE_KEY) is None


def page_verdicts(page: str) -> dict[str, str]:
    items = re.findall(r'data-verdict="(\w+)">.*?<strong>(.*?)</strong>', page, flags=re.S)
    return {title.replace("&#34;", '"'): verdict for verdict, title in items}


def test_the_page_checks_the_sandbox_setup_and_sends_a_test_webhook(
    console_server: AppServer, staff: requests.Session, demo: tuple[str, str]
) -> None:
    url = f"{console_server.url}/console/go-live"
    page = staff.get(url, timeout=15).text
    result = page_verdicts(page)
    assert len(result) == 10
    assert result["Live API key configured"] == "fail"
    assert result["Served over HTTPS"] == "fail"
    assert result["Webhook URL registered with PASSID"] == "pass"
    assert result["Webhook secret set on both sides"] == "pass"
    assert result["Idempotency-Key sent on every verify"] == "pass"
    assert result["HARD_DENY_SANCTIONS_MATCH never approved"] == "pass"
    assert result['Expired request shows "Generate new code"'] == "pass"
    assert demo[0] not in page  # only "sk_sandbox_…", never the key
    # A proxy's X-Forwarded-Proto counts only with PASSID_TRUSTED_PROXIES set (this server has none):
    # Granian, unlike gunicorn, believes no forwarded header itself, not even from loopback.
    behind_proxy = staff.get(url, headers={"X-Forwarded-Proto": "https"}, timeout=15).text
    assert page_verdicts(behind_proxy)["Served over HTTPS"] == "fail"
    assert "not told to trust it" in behind_proxy

    sent = staff.post(f"{url}/test-webhook", data={"csrf_token": hidden(page, "csrf_token")}, timeout=15)
    assert sent.status_code == 200
    event_id = re.search(r"Test webhook (evt_[A-Za-z0-9_-]+) sent", sent.text).group(1)
    deadline = time.monotonic() + 10
    while event_id not in (log := staff.get(f"{console_server.url}/console/webhooks",
                                            params={"signature": "valid"}, timeout=10).text):
        assert time.monotonic() < deadline, "the test webhook never arrived verified"
        time.sleep(0.2)
    assert re.search(rf'console-badge">test<.*?{event_id}', log, flags=re.S)
    result = page_verdicts(staff.get(url, timeout=15).text)
    assert result["Test webhook received and its signature verified"] == "pass"
