"""Several servers on one database through a key rotation: a row no key of a server can read spoils no list,
and a rotation in stages (a decrypt-only key first, then promoted, then the old one retired) never leaves
a server unable to read a row another one wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import StatementError

from app.config import ConfigError, load_settings
from app.plumbing.database import db
from app.plumbing.encryption import DataKeyError, unreadable, unreadable_values_tolerated
from app.rules import sessions, verifications
from app.rules.webhook_receipts import Handling, SignatureResult, WebhookReceipt
from tests.console.conftest import add_staff, signed_in
from tests.support.erasure import api
from tests.support.in_process import serving_in_process

# Fixed (xdist collects the same test ids in every worker), and for these tests only.
K1, K2 = "Zmlyc3Qta2V5LW9mLXRoZS1lbmNyeXB0aW9uLXRlc3Q=", "c2Vjb25kLWtleS1vZi10aGUtZW5jcnlwdGlvbi10c3Q="
CLAIMS = {"fsi_score": 812, "tier": "A", "income_band": "GBP 40k-60k", "identity_verified": True}
REVIEW_CLAIMS = {**CLAIMS, "fraud_risk": "medium"}  # the counter says "Review": the row joins the queue
UNREADABLE_MARK = "data-unreadable"
CUSTOMER_SORRY_FR = "Une erreur est survenue de notre côté. Veuillez réessayer dans un instant."


@contextmanager
def server(url: str, directory: Path, keys: str, decrypt_only: str = "") -> Iterator[Flask]:
    """One of the bank's servers: its own instance folder, the shared database, its own key settings."""
    extra = {"PASSID_DATA_KEYS_DECRYPT_ONLY": decrypt_only} if decrypt_only else {}
    with serving_in_process(url, directory, PASSID_DATA_KEY=keys, PASSID_BACKGROUND_JOBS="false", **extra) as app:
        yield app


def analyst(app: Flask) -> FlaskClient:
    return signed_in(app.test_client(), add_staff(app.test_cli_runner(), role="analyst"))


@dataclass(frozen=True)
class Written:
    """What one server wrote: a verification waiting for review, one made in a session, a webhook, the session."""

    result_id: str
    session_result_id: str
    session_id: str
    event_id: str
    token: str


def write_a_person(app: Flask, tag: str) -> Written:
    token = {"a": "KE8V-3TXY-Z72L", "b": "QW7P-4MRT-9XHC", "c": "ZN3D-8KLF-2VBR", "d": "HT6J-5PWQ-7YGM"}[tag]
    with app.app_context():
        session = sessions.create(reference=f"loan-{tag}", institution_name="Demo Bank",
                                  permissions=("identity_verified",), return_url=None, ttl_seconds=600)
        waiting = verifications.record(source=verifications.Source.MANUAL, status=verifications.FinalStatus.COMPLETED,
                                       token=token, idempotency_key=f"pvw-staged-{tag}", claims=REVIEW_CLAIMS,
                                       recommendation="review")
        in_session = verifications.record(
            source=verifications.Source.MANUAL, status=verifications.FinalStatus.DENIED,
            idempotency_key=f"pvw-staged-session-{tag}", deny_reason="token_expired", **sessions.recorded_for(session))
        event_id = f"evt_staged_{tag}"
        db.session.add(WebhookReceipt(
            event_id=event_id, event_type="verification.completed", signature_result=SignatureResult.VALID,
            body=json.dumps({"id": event_id, "type": "verification.completed",
                             "data": {"token": token, "claims": CLAIMS}}).encode(),
            test=False, handling_status=Handling.HANDLED))
        db.session.commit()
        return Written(waiting.result_id, in_session.result_id, session.id, event_id, token)


def row_of(page: str, marker: str) -> str:
    """The table row of a list page that carries `marker` (a result id or an event id)."""
    found = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(marker)}(?:(?!</tr>).)*</tr>", page, re.DOTALL)
    assert found is not None, f"{marker} is not listed"
    return found.group(0)


# --- a server that cannot read a row ---------------------------------------------------------------


def test_a_server_on_the_old_key_lists_every_row_and_refuses_only_the_unreadable_ones_own_pages(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """The README's old rotation on two servers: one restarted with NEW first, the other still on OLD alone.
    The second lists everything (the row it cannot read marked as such), answers a 500 with the operator's
    sentence on that row's own console page and API answers, and shows the customer the translated error page."""
    with server(fresh_database_url, tmp_path / "old", K1) as old, \
            server(fresh_database_url, tmp_path / "new", f"{K2},{K1}") as new:
        readable = write_a_person(old, "a")
        unreadable = write_a_person(new, "b")
        staff = analyst(old)

        history = staff.get("/console/")
        assert history.status_code == 200, history.text
        assert UNREADABLE_MARK not in row_of(history.text, readable.result_id)
        assert UNREADABLE_MARK in row_of(history.text, unreadable.result_id)
        assert "Unreadable with this server’s keys" in row_of(history.text, unreadable.result_id)
        assert UNREADABLE_MARK in row_of(history.text, unreadable.session_result_id)

        log = staff.get("/console/webhooks")
        assert log.status_code == 200, log.text
        assert UNREADABLE_MARK not in row_of(log.text, readable.event_id)
        assert UNREADABLE_MARK in row_of(log.text, unreadable.event_id)

        queue = staff.get("/console/review")
        assert queue.status_code == 200, queue.text
        assert "fraud risk" in row_of(queue.text, readable.result_id).lower()
        waiting = row_of(queue.text, unreadable.result_id)
        assert UNREADABLE_MARK in waiting and "erased" not in waiting and 'name="note"' not in waiting

        detail = staff.get(f"/console/verifications/{unreadable.result_id}")
        assert detail.status_code == 500
        assert "cannot be decrypted" in detail.text and "PASSID_DATA_KEYS_DECRYPT_ONLY" in detail.text
        assert staff.get(f"/console/verifications/{readable.result_id}").status_code == 200

        for path in (f"/api/results/{unreadable.result_id}", f"/api/sessions/{unreadable.session_id}"):
            answer = api(old, path)
            assert answer.status_code == 500, path
            assert answer.json["error"]["code"] == "DATA_KEY"
            assert "cannot be decrypted" in answer.json["error"]["message"]
        assert api(old, f"/api/results/{readable.result_id}").status_code == 200
        assert api(old, f"/api/sessions/{readable.session_id}").status_code == 200

        customer = old.test_client()
        hosted = customer.get("/verify/session", query_string={"id": unreadable.session_id},
                              headers={"Accept-Language": "fr"})
        assert hosted.status_code == 500 and hosted.mimetype == "text/html"
        assert CUSTOMER_SORRY_FR in hosted.text and 'lang="fr"' in hosted.text
        assert "PASSID_DATA_KEY" not in hosted.text and "decrypt" not in hosted.text
        # The widget inside that session (embed.js's iframe), its options signed by the server that wrote it.
        drawn = new.test_client().get("/verify/session", query_string={"id": unreadable.session_id})
        handle = re.search(r'name="o" value="([^"]+)"', drawn.text)
        assert drawn.status_code == 200 and handle is not None
        widget = customer.get("/verify/reset", query_string={"o": handle.group(1)}, headers={"Accept-Language": "fr"})
        assert widget.status_code == 500 and CUSTOMER_SORRY_FR in widget.text
        assert "PASSID_DATA_KEY" not in widget.text


# --- rotation in stages ------------------------------------------------------------------------------


def every_server_reads_every_row(apps: list[Flask], written: list[Written]) -> None:
    for app in apps:
        staff = analyst(app)
        for path in ("/console/", "/console/webhooks", "/console/review"):
            page = staff.get(path)
            assert page.status_code == 200 and UNREADABLE_MARK not in page.text, path
        for person in written:
            assert staff.get(f"/console/verifications/{person.result_id}").status_code == 200
            found = staff.get("/console/", query_string={"q": person.token.lower()})
            assert f'data-result-id="{person.result_id}"' in found.text, person.token
            assert api(app, f"/api/results/{person.result_id}").json["claims"] == REVIEW_CLAIMS
            assert api(app, f"/api/sessions/{person.session_id}").status_code == 200
            assert app.test_client().get("/verify/session", query_string={"id": person.session_id}).status_code == 200


@pytest.mark.databases("sqlite")
def test_a_rotation_in_stages_keeps_every_server_reading_every_row(fresh_database_url: str, tmp_path: Path) -> None:
    """Two servers restarted one after the other at each stage, so at every moment the two differ by a stage:
    NEW added as decrypt-only, then promoted to encrypt (OLD decrypt-only), `rotate-data-key`, OLD retired."""
    url, a, b = fresh_database_url, tmp_path / "a", tmp_path / "b"
    written: list[Written] = []
    stages = [
        ((K1, ""), (K1, "")),  # before: OLD alone
        ((K1, K2), (K1, "")),  # a has NEW to decrypt; b not yet restarted
        ((K1, K2), (K1, K2)),
        ((K2, K1), (K1, K2)),  # a encrypts under NEW; b, still encrypting under OLD, reads what a writes
    ]
    for tag, ((a_keys, a_only), (b_keys, b_only)) in zip("abcd", stages, strict=True):
        with ExitStack() as running:
            first = running.enter_context(server(url, a, a_keys, a_only))
            second = running.enter_context(server(url, b, b_keys, b_only))
            written.append(write_a_person(first, tag))
            every_server_reads_every_row([first, second], written)
    with ExitStack() as running:  # both promoted: rotate, then retire OLD on one server, then on the other
        first = running.enter_context(server(url, a, K2, K1))
        second = running.enter_context(server(url, b, K2, K1))
        with first.app_context():
            rotated = first.test_cli_runner().invoke(args=["passid", "rotate-data-key"])
        assert rotated.exit_code == 0, rotated.output
        assert "PASSID_DATA_KEYS_DECRYPT_ONLY" in rotated.output
        every_server_reads_every_row([first, second], written)
    with server(url, a, K2) as first, server(url, b, K2, K1) as second:
        every_server_reads_every_row([first, second], written)
    with server(url, a, K2) as first, server(url, b, K2) as second:
        every_server_reads_every_row([first, second], written)


# --- the setting ---------------------------------------------------------------------------------------


def settings_for(tmp_path: Path, **environ: str):  # type: ignore[no-untyped-def]
    return load_settings({"SECRET_KEY": "test-secret", "DATABASE_URL": "sqlite:///:memory:",
                          "PASSID_INSTANCE_DIR": str(tmp_path / "instance"), **environ})


@pytest.mark.databases("sqlite")
def test_a_decrypt_only_key_is_read_and_checked(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, PASSID_DATA_KEY=K1, PASSID_DATA_KEYS_DECRYPT_ONLY=K2)
    assert settings.data_keys == (K1,) and settings.data_keys_decrypt_only == (K2,)
    with pytest.raises(ConfigError) as both:
        settings_for(tmp_path, PASSID_DATA_KEY=K1, PASSID_DATA_KEYS_DECRYPT_ONLY=f"{K2},{K1}")
    [problem] = both.value.problems
    assert "PASSID_DATA_KEYS_DECRYPT_ONLY key 2 of 2 is also in PASSID_DATA_KEY" in problem and K1 not in problem
    with pytest.raises(ConfigError) as malformed:
        settings_for(tmp_path, PASSID_DATA_KEY=K1, PASSID_DATA_KEYS_DECRYPT_ONLY="not-a-key")
    [problem] = malformed.value.problems
    assert "PASSID_DATA_KEYS_DECRYPT_ONLY key 1 of 1 is not a Fernet key" in problem and "not-a-key" not in problem


def test_an_unreadable_value_a_list_read_is_never_written_back(fresh_database_url: str, tmp_path: Path) -> None:
    """What a list reads in place of a value it cannot decrypt is empty: stored back, it would erase the ciphertext
    the other server's key still reads. Writing it is refused, and the row keeps its ciphertext."""
    with server(fresh_database_url, tmp_path / "old", K1) as old, \
            server(fresh_database_url, tmp_path / "new", f"{K2},{K1}") as new:
        person = write_a_person(new, "b")
        with old.app_context():
            stored_before = db.session.execute(db.text("SELECT claims_json FROM verification WHERE id = :id"),
                                               {"id": person.result_id}).scalar_one()
            with unreadable_values_tolerated("test"):
                row = db.session.get(verifications.Verification, person.result_id)
                assert row is not None and unreadable(row) and not row.claims_json
                row.corridor = row.claims_json  # a careless copy of what the list showed
                with pytest.raises(StatementError) as refused:
                    db.session.commit()
                assert isinstance(refused.value.orig, DataKeyError)
            db.session.rollback()
        with new.app_context():
            assert db.session.execute(db.text("SELECT claims_json FROM verification WHERE id = :id"),
                                      {"id": person.result_id}).scalar_one() == stored_before
            kept = verifications.find(person.result_id)
            assert kept is not None and kept.claims == REVIEW_CLAIMS and kept.corridor is None
