"""The issue's proof: after real verifications and their webhooks, the database files hold no claim in clear.

Production's shape: PASSID (the sandbox on its own, `flask --app app.sandbox run`, on a database of its own)
and our app (as `make run` serves it, pointed at that PASSID with PASSID_BASE_URL) on another. The
embedded sandbox would share our database and keep PASSID's side of the wire in clear there, so it is
not used here. A QR verification (approved on the phone), a manual token verify and a sanctions deny,
each with its webhook stored and handled; then the raw bytes of our database are read as a thief with
a copy of the disk would: SQLite's file and its write-ahead log before any checkpoint, PostgreSQL's
files of this database after a CHECKPOINT.

The claim field names are looked for as JSON writes them (`"income_band"`): the sandbox's own tables
exist (empty) in every database the migrations build, and their schema names columns after claims.
That no column of ours is named after a claim is checked in test_migration.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, make_url, text

from app.passid import PassidClient
from app.passid.claims import CLAIM_FIELDS
from app.sandbox.profiles import DENY_TOKENS, PROFILES
from tests.support.postgres import POSTGRES_ADMIN_URL
from tests.support.servers import BIN, ROOT, AppServer, base_env, free_port, migrate
from tests.support.widget_http import open_qr_session, poll_until_final, widget_fields

SECRET = "whsec_raw_database_files_0123"
PROFILE = PROFILES["KE8V-3TXY-Z72L"]  # tier A, income band "GBP 40k-60k", identity verified, corridor KE→GB
DENIED = "TEST-SANC-0005"


@dataclass
class Passid:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def standalone_passid(tmp_path: Path) -> Iterator[Passid]:
    """The sandbox on its own, as PASSID runs apart from us, on a database of its own."""
    port = free_port()
    env = base_env(f"sqlite:///{tmp_path / 'passid-side.db'}", PORT=str(port),
                   PASSID_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,0.5,0.5")
    flask = [str(BIN / "flask"), "--app", "app.sandbox"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    with open(tmp_path / "passid.log", "ab") as log:
        process = subprocess.Popen([*flask, "run", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    passid = Passid(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "passid.log").read_text()
            try:
                if requests.get(f"{passid.url}/phone", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield passid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


@pytest.fixture
def app_on_passid(standalone_passid: Passid, fresh_database_url: str, tmp_path: Path) -> Iterator[AppServer]:
    """Our app, served as `make run` serves it, talking to that PASSID and receiving its webhooks."""
    onboarding = PassidClient(standalone_passid.url).onboard("Raw Files Bank")
    env = base_env(fresh_database_url, PASSID_BASE_URL=standalone_passid.url, PASSID_API_KEY=onboarding.sandbox_key,
                   PASSID_WEBHOOK_SECRET=SECRET, PASSID_SANDBOX_ENABLED="false", PASSID_WEBHOOK_GRACE_SECONDS="0")
    migrate(env)
    server = AppServer(env, tmp_path / "app.log")
    PassidClient(standalone_passid.url, onboarding.sandbox_key).set_webhook(f"{server.url}/webhooks/passid", SECRET)
    server.start()
    yield server
    server.stop()


def verify_everything(server: AppServer, passid: Passid) -> list[str]:
    """A QR verification approved on the phone, a manual verify and a sanctions deny; returns the code."""
    session = open_qr_session(server.url)
    phone = PassidClient(passid.url)
    phone.fulfill_request(session.request_id, phone.sandbox_login(PROFILE.token))
    assert 'data-view="success"' in poll_until_final(session).text
    for token, view in ((PROFILE.token, "success"), (DENIED, "declined")):
        fields = widget_fields(server.url)
        done = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": token}, timeout=10)
        assert f'data-view="{view}"' in done.text
    return [session.code]


def wait_handled(database_url: str, events: int, timeout: float = 30) -> None:
    """Until `events` webhooks are stored and handled (each verify's own, delivered by PASSID)."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                handled = conn.execute(text("SELECT count(*) FROM webhook_receipt "
                                            "WHERE handling_status = 'handled'")).scalar()
                rows = conn.execute(text("SELECT count(*) FROM verification")).scalar()
            if handled >= events and rows >= 3:
                return
            assert time.monotonic() < deadline, f"{handled} of {events} webhooks handled"
            time.sleep(0.2)
    finally:
        engine.dispose()


def raw_files(database_url: str) -> dict[str, bytes]:
    """Every byte of the database as it lies on disk, file by file."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        files = [path, path.with_name(path.name + "-wal")]
        return {str(f): f.read_bytes() for f in files if f.exists()}
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute("CHECKPOINT")  # what is committed reaches the data files
        directory = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = %s", (url.database,)).fetchone()[0]  # type: ignore[index]
    base = Path(directory, "base", str(oid))
    return {str(f): f.read_bytes() for f in sorted(base.iterdir()) if f.is_file()}


def needles(codes: list[str]) -> list[bytes]:
    """What must not be found: claim values, claim names as JSON keys, tokens and codes in their usual forms."""
    values = [PROFILE.claims["income_band"], PROFILE.corridor, DENY_TOKENS[DENIED], DENIED,
              PROFILE.token, PROFILE.token.replace("-", "")]
    for code in codes:
        values += [code, code.replace("-", "")]
    names = [f'"{name}"' for names in CLAIM_FIELDS.values() for name in names]
    return [value.encode() for value in values + names]


def test_the_database_files_hold_no_claim_token_or_code_in_clear(
    app_on_passid: AppServer, standalone_passid: Passid, fresh_database_url: str
) -> None:
    codes = verify_everything(app_on_passid, standalone_passid)
    wait_handled(fresh_database_url, events=3)
    files = raw_files(fresh_database_url)
    assert files and sum(len(data) for data in files.values()) > 0
    found = {(name, needle.decode()) for name, data in files.items() for needle in needles(codes) if needle in data}
    assert found == set()
