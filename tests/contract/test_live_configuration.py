"""A live configuration has no sandbox: started the way the README says, against a PASSID that is nowhere.

`PASSID_BASE_URL` points at a port nothing listens on (loopback's discard port) and the key is
an `sk_live_` one, so the app believes it is live without a byte leaving this machine. Then:
`flask --app app db upgrade`, `flask --app app passid demo`, the server. Nothing under
`/sandbox` may answer, no sandbox job may be scheduled, and the demo command must not onboard.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tests.support.servers import BIN, ROOT, AppServer, WebhookReceiver, base_env

LIVE_BASE_URL = "http://127.0.0.1:9"  # the discard port: nothing answers, nothing leaves the machine
LIVE_KEY = "sk_live_" + "L1ve" * 8
SANDBOX_PATHS = [
    ("GET", "/sandbox/openapi.json"),
    ("POST", "/sandbox/api/onboard"),
    ("PUT", "/sandbox/api/institution/webhook"),
    ("GET", "/sandbox/api/institution/webhook"),
    ("POST", "/sandbox/api/institution/webhook/test"),
    ("GET", "/sandbox/api/institution/webhook/deliveries"),
    ("GET", "/sandbox/phone"),
    ("POST", "/sandbox/phone/open"),
    ("GET", "/sandbox/phone/share"),
    ("POST", "/sandbox/phone/share"),
    ("GET", "/sandbox"),
]


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _pending_delivery_to(database: Path, url: str) -> str:
    """A sandbox delivery that is due now, written straight into the tables (an embedded app would send it)."""
    from app import create_app
    from app.plumbing.database import db, utcnow
    from app.sandbox.models import SandboxInstitution, SandboxWebhookDelivery

    writer = create_app(base_env(f"sqlite:///{database}", PASSID_BACKGROUND_JOBS="false"))
    with writer.app_context():
        db.session.add(SandboxInstitution(id="inst_left_over", name="Left Over", sandbox_key="sk_sandbox_" + "k" * 32,
                                          live_key="sk_live_" + "k" * 32))
        db.session.flush()
        db.session.add(SandboxWebhookDelivery(
            event_id="evt_left_over", institution_id="inst_left_over", event_type="verification.completed",
            url=url, body=b"{}", signature="sha256=00", status="pending", attempts=0,
            next_attempt_at=utcnow() - timedelta(seconds=5),
        ))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return "evt_left_over"


@dataclass(frozen=True)
class LiveSetup:
    env: dict[str, str]
    database: Path
    demo: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def live_setup(tmp_path_factory: pytest.TempPathFactory) -> LiveSetup:
    """The README's first two steps (`make run`), once for the module: migrations, then `passid demo`.

    Each test reads what they did or starts the server on that database itself.
    """
    database = tmp_path_factory.mktemp("live") / "live.db"
    env = base_env(
        f"sqlite:///{database}",
        PASSID_BASE_URL=LIVE_BASE_URL,
        PASSID_API_KEY=LIVE_KEY,
        PASSID_WEBHOOK_SECRET="whsec_live_config_test_0123456789",
    )
    upgrade = _flask(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    demo = _flask(env, "passid", "demo")
    assert demo.returncode == 0, demo.stderr
    return LiveSetup(env, database, demo)


@pytest.fixture
def started_live(live_setup: LiveSetup) -> Iterator[AppServer]:
    """The README's last step, the server, on that database (each test starts it)."""
    server = AppServer(live_setup.env, live_setup.database.with_name("live.log"))
    yield server
    server.stop()


@pytest.mark.parametrize("key", [LIVE_KEY, "sk_sandbox_" + "H0st" * 8], ids=["live key", "hosted-sandbox key"])
def test_passid_demo_in_a_live_configuration_onboards_nothing_and_prints_no_sandbox(
    live_setup: LiveSetup, key: str
) -> None:
    """With any PASSID_BASE_URL (live, or PASSID's own hosted sandbox) there is no sandbox here to point at."""
    # The module's own steps ran with the live key; the other runs `passid demo` on the same migrated database.
    demo = live_setup.demo if key == LIVE_KEY else _flask(dict(live_setup.env, PASSID_API_KEY=key), "passid", "demo")
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    assert f"PASSID API:        {LIVE_BASE_URL}" in demo.stdout
    assert "/verify" in demo.stdout and "/healthz" in demo.stdout
    assert "sandbox" not in demo.stdout.lower()
    with sqlite3.connect(live_setup.database) as database:
        assert database.execute("SELECT count(*) FROM sandbox_institution").fetchone() == (0,)


def test_nothing_under_sandbox_answers_in_a_live_configuration(started_live: AppServer) -> None:
    server = started_live.start()
    assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok"}
    ordinary = requests.get(f"{server.url}/no-such-page", timeout=5)
    assert ordinary.status_code == 404
    for method, path in SANDBOX_PATHS:
        answer = requests.request(
            method, f"{server.url}{path}", json={"institutionName": "Stranger", "url": "http://10.0.0.1/"},
            headers={"X-Institution-Key": LIVE_KEY}, timeout=5,
        )
        assert answer.status_code == 404, (method, path, answer.status_code)
        # The app's ordinary 404, nothing of the sandbox's contract about it.
        assert "X-PASSID-API-Version" not in answer.headers, (method, path)
        assert answer.headers.get("Content-Type") == ordinary.headers.get("Content-Type"), (method, path)
        assert answer.text == ordinary.text, (method, path)


def test_no_sandbox_job_is_scheduled_or_runs_in_a_live_configuration(
    started_live: AppServer, live_setup: LiveSetup
) -> None:
    server, live_env = started_live, live_setup.env
    with WebhookReceiver() as receiver:
        event_id = _pending_delivery_to(live_setup.database, receiver.url)
        # What the server imports (`wsgi:app`), asked which jobs its scheduler is running.
        probe = subprocess.run(
            [str(BIN / "python"), "-c",
             "import json, wsgi\n"
             "scheduler = wsgi.app.extensions['passid_scheduler']\n"
             "print(json.dumps(sorted(job.id for job in scheduler.get_jobs())))\n"
             "scheduler.shutdown(wait=True)\n"],
            cwd=ROOT, env=live_env, capture_output=True, text=True, timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        jobs = json.loads(probe.stdout.strip().splitlines()[-1])
        assert "webhook-handling" in jobs  # the scheduler runs the app's own jobs…
        assert "sandbox-webhook-delivery" not in jobs  # …and nothing of the sandbox

        server.start()
        for _ in range(3):  # the server serves while its scheduler ticks every 0.2 s
            assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        server.stop()
        assert receiver.received == []
    with sqlite3.connect(live_setup.database) as database:
        row = database.execute(
            "SELECT status, attempts, last_error FROM sandbox_webhook_delivery WHERE event_id = ?", (event_id,)
        ).fetchone()
    assert row == ("pending", 0, None)
