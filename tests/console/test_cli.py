"""`flask passid …` for operators: readable lines, honest exit statuses, never a traceback."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import requests
from flask.testing import FlaskClient, FlaskCliRunner

from app.passid import normalise_token
from tests.console.conftest import fresh_share_token, random_token, run_flask, verify_in_widget
from tests.support.servers import AppServer, free_port


def test_verify_prints_the_result_and_records_it(console_server: AppServer, staff: requests.Session) -> None:
    done = run_flask(console_server, "passid", "verify", "passid-ke8v 3txy z72l")
    assert done.returncode == 0, done.stderr
    assert "verified  KE8V-3TXY-Z72L" in done.stdout
    assert "812 · tier A · identity verified · fraud risk low" in done.stdout
    assert "  verdict: approve (no_warning_signs)" in done.stdout
    assert "Idempotency-Key: cli-" in done.stdout
    result_id = done.stdout.split("recorded as ", 1)[1].split()[0]
    history = staff.get(f"{console_server.url}/console/", params={"q": "KE8V3TXYZ72L"}, timeout=10).text
    assert f'data-result-id="{result_id}"' in history and "CLI" in history


def test_verify_shows_staff_the_real_deny_reason(console_server: AppServer) -> None:
    done = run_flask(console_server, "passid", "verify", "TEST-SANC-0005")
    assert done.returncode == 0, done.stderr
    assert "denied  TEST-SANC-0005: HARD_DENY_SANCTIONS_MATCH" in done.stdout
    assert "  verdict: decline (sanctions_match)" in done.stdout


def test_verify_of_a_malformed_token_is_one_readable_line(console_server: AppServer) -> None:
    done = run_flask(console_server, "passid", "verify", "not-a-token")
    assert done.returncode != 0
    assert "not a PASSID token" in done.stderr and "Traceback" not in done.stderr


def test_verify_when_passid_is_down_says_how_to_retry(console_server: AppServer, demo: tuple[str, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = AppServer(dict(console_server.env, PASSID_BASE_URL=nowhere, PASSID_API_KEY=demo[0]),
                     console_server.log_path, port=console_server.port)
    done = run_flask(down, "passid", "verify", "KE8V-3TXY-Z72L")
    assert done.returncode == 1
    assert "no answer from PASSID" in done.stderr and "--idempotency-key cli-" in done.stderr
    assert "Traceback" not in done.stderr


def test_outcome_reports_once_then_says_already_reported(console_server: AppServer, demo: tuple[str, str]) -> None:
    token = normalise_token(fresh_share_token(console_server, demo[1], profile="NG4M-XQRS-T88W"))
    assert token and verify_in_widget(console_server, token) == "success"
    first = run_flask(console_server, "passid", "outcome", token, "repaid", "--product", "overdraft",
                      "--amount", "750", "--currency", "kes")
    assert first.returncode == 0, first.stderr
    assert f"reported  {token}: Repaid · overdraft · 750.00 KES (score 743, tier B at decision)" in first.stdout
    second = run_flask(console_server, "passid", "outcome", token, "defaulted", "--product", "overdraft",
                       "--amount", "750")
    assert second.returncode == 0, second.stderr
    assert f"already reported  {token}: Repaid · overdraft · 750.00 KES" in second.stdout


def test_outcome_refuses_bad_input_and_unverified_tokens(console_server: AppServer) -> None:
    token = random_token("CLIO")
    with ThreadPoolExecutor() as pool:  # independent commands: run them side by side
        no_notes, bad_amount, unverified = pool.map(lambda args: run_flask(console_server, "passid", *args), [
            ("outcome", token, "other", "--product", "loan", "--amount", "5"),
            ("outcome", token, "repaid", "--product", "loan", "--amount", "-5"),
            ("outcome", token, "repaid", "--product", "loan", "--amount", "5"),
        ])
    assert no_notes.returncode == 2 and "needs a few words" in no_notes.stderr
    assert bad_amount.returncode == 2 and "digits only" in bad_amount.stderr
    assert unverified.returncode == 1 and "no approved verification" in unverified.stderr
    for done in (no_notes, bad_amount, unverified):
        assert "Traceback" not in done.stderr


def test_webhook_test_waits_for_the_signed_event(console_server: AppServer) -> None:
    done = run_flask(console_server, "passid", "webhook-test")
    assert done.returncode == 0, done.stderr
    assert "sent  test webhook evt_" in done.stdout and "received  signature valid" in done.stdout


def test_checklist_fails_on_the_sandbox_setup(console_server: AppServer) -> None:
    done = run_flask(console_server, "passid", "checklist")
    assert done.returncode == 1
    assert "[FAIL] Live API key configured" in done.stdout
    assert "fix: Set PASSID_API_KEY to your sk_live_… key" in done.stdout
    assert "[PASS] Webhook URL registered with PASSID" in done.stdout
    assert "[CANNOT CHECK] Served over HTTPS" in done.stdout


def test_demo_prints_the_sandbox_key_the_results_api_accepts(runner: FlaskCliRunner, client: FlaskClient) -> None:
    """`make run` shows a newcomer the demo institution's key on their terminal, so they need not dig it
    out of the database; it is the very key the backend API checks, and only a sandbox key."""
    with runner.app.app_context():
        done = runner.invoke(args=["passid", "demo"])
    assert done.exit_code == 0, done.output
    shown = re.search(r"^  Institution key:   (\S+)   \(sandbox", done.output, re.MULTILINE)
    assert shown is not None, done.output
    key = shown.group(1)
    assert key.startswith("sk_sandbox_")
    unknown = "/api/results/res_not_one_of_ours"
    assert client.get(unknown, headers={"X-Institution-Key": key}).status_code == 404
    assert client.get(unknown, headers={"X-Institution-Key": key[:-1]}).status_code == 401
