"""`flask passid …` for operators: readable lines, honest exit statuses, never a traceback."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.passid import normalise_token
from tests.console.conftest import random_token, share_token_for
from tests.support.in_process import migrated_sqlite_url
from tests.support.servers import BIN, ROOT, base_env, free_port
from tests.support.widget_actions import WidgetActions


def passid_cli(app: Flask, *args: str) -> Result:
    """`flask passid …` in this process: the real `flask` command pushes an app context for every command,
    as this does; `Result` keeps stdout, stderr and the exit status apart as the shell would."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=["passid", *args])


def test_verify_prints_the_result_and_records_it(app: Flask, staff_client: FlaskClient) -> None:
    done = passid_cli(app, "verify", "passid-ke8v 3txy z72l")
    assert done.exit_code == 0, done.output
    assert "verified  KE8V-3TXY-Z72L" in done.stdout
    assert "812 · tier A · identity verified · fraud risk low" in done.stdout
    assert "  verdict: approve (no_warning_signs)" in done.stdout
    assert "Idempotency-Key: cli-" in done.stdout
    result_id = done.stdout.split("recorded as ", 1)[1].split()[0]
    history = staff_client.get("/console/", query_string={"q": "KE8V3TXYZ72L"}).text
    assert f'data-result-id="{result_id}"' in history and "CLI" in history


def test_verify_shows_staff_the_real_deny_reason(app: Flask) -> None:
    done = passid_cli(app, "verify", "TEST-SANC-0005")
    assert done.exit_code == 0, done.output
    assert "denied  TEST-SANC-0005: HARD_DENY_SANCTIONS_MATCH" in done.stdout
    assert "  verdict: decline (sanctions_match)" in done.stdout


def test_verify_of_a_malformed_token_is_one_readable_line_from_the_real_command(tmp_path: Path) -> None:
    """The one run of the real `flask` executable here: its exit status and stderr as an operator's shell
    sees them (the other tests run the same commands in this process)."""
    env = base_env(migrated_sqlite_url(tmp_path))
    done = subprocess.run([str(BIN / "flask"), "--app", "app", "passid", "verify", "not-a-token"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stderr
    assert "not a PASSID token" in done.stderr and "Traceback" not in done.stderr


def test_verify_when_passid_is_down_says_how_to_retry(build_app: Callable[..., Flask]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = build_app(PASSID_BASE_URL=nowhere, PASSID_API_KEY="sk_sandbox_" + "0" * 32)
    done = passid_cli(down, "verify", "KE8V-3TXY-Z72L")
    assert done.exit_code == 1
    assert "no answer from PASSID" in done.stderr and "--idempotency-key cli-" in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_outcome_reports_once_then_says_already_reported(
    app: Flask, widget: WidgetActions, app_demo: tuple[str, str]
) -> None:
    token = normalise_token(share_token_for(app.config["PASSID_BASE_URL"], app_demo[1], profile="NG4M-XQRS-T88W"))
    assert token and 'data-view="success"' in widget.submit_token(token).text
    first = passid_cli(app, "outcome", token, "repaid", "--product", "overdraft", "--amount", "750",
                       "--currency", "kes")
    assert first.exit_code == 0, first.output
    assert f"reported  {token}: Repaid · overdraft · 750.00 KES (score 743, tier B at decision)" in first.stdout
    second = passid_cli(app, "outcome", token, "defaulted", "--product", "overdraft", "--amount", "750")
    assert second.exit_code == 0, second.output
    assert f"already reported  {token}: Repaid · overdraft · 750.00 KES" in second.stdout


def test_outcome_refuses_bad_input_and_unverified_tokens(app: Flask) -> None:
    token = random_token("CLIO")
    no_notes = passid_cli(app, "outcome", token, "other", "--product", "loan", "--amount", "5")
    bad_amount = passid_cli(app, "outcome", token, "repaid", "--product", "loan", "--amount", "-5")
    unverified = passid_cli(app, "outcome", token, "repaid", "--product", "loan", "--amount", "5")
    assert no_notes.exit_code == 2 and "needs a few words" in no_notes.stderr
    assert bad_amount.exit_code == 2 and "digits only" in bad_amount.stderr
    assert unverified.exit_code == 1 and "no approved verification" in unverified.stderr
    for done in (no_notes, bad_amount, unverified):
        assert done.exception is None or isinstance(done.exception, SystemExit), done.exception


def test_webhook_test_waits_for_the_signed_event(app: Flask) -> None:
    done = passid_cli(app, "webhook-test")
    assert done.exit_code == 0, done.output
    assert "sent  test webhook evt_" in done.stdout and "received  signature valid" in done.stdout


def test_checklist_fails_on_the_sandbox_setup(app: Flask) -> None:
    done = passid_cli(app, "checklist")
    assert done.exit_code == 1
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
