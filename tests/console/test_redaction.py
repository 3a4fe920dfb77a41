"""Redaction from the console (admins only): a reason, a confirmation, the CSRF token, and afterwards
nothing of the person on any page, in the API or in the database files. On SQLite and PostgreSQL.

Who may open the page at all is in the access matrix (test_roles.py); here, what an analyst and a
counter get when they try anyway, and that the page offers it to admins only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.plumbing.database import db
from app.rules import audit
from app.rules.verifications import Verification
from tests.conftest import provisioned_database
from tests.console.conftest import add_staff, signed_in
from tests.support.erasure import (
    api,
    erasing_app,
    is_sqlite,
    remnants,
    session_person,
    skip_unless_superuser_files,
    table_remnants,
    token_person,
)
from tests.support.html_fields import hidden

REASON = "erasure request ER-2026-207"
TOKEN, BAND, NOTES = "QZ7K-W4PM-R8TX", "band-WOMBAT-4471", "note-QUOKKA-9913"


@pytest.fixture
def database(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    with provisioned_database(database_kind, tmp_path, request) as url:
        yield url


@pytest.fixture
def app(database: str, tmp_path: Path) -> Iterator[Flask]:
    with erasing_app(database, tmp_path) as app:
        yield app


def browser(app: Flask, role: str) -> tuple[FlaskClient, str]:
    name = add_staff(app.test_cli_runner(), role=role)
    return signed_in(app.test_client(), name), name


def redaction_form(admin: FlaskClient, result_id: str) -> str:
    page = admin.get(f"/console/verifications/{result_id}/redact")
    assert page.status_code == 200
    return hidden(page.text, "csrf_token")


def test_an_admin_redacts_with_a_reason_and_a_confirmation(app: Flask, database: str) -> None:
    skip_unless_superuser_files(database)
    person = token_person(app, TOKEN, BAND, NOTES)
    result_id = person.result_ids[0]
    admin, admin_name = browser(app, "admin")
    detail = admin.get(f"/console/verifications/{result_id}").text
    assert TOKEN in detail and "733" in detail  # the person, before
    assert f"/console/verifications/{result_id}/redact" in detail  # offered to an admin

    url = f"/console/verifications/{result_id}/redact"
    csrf = redaction_form(admin, result_id)
    refused = {
        "no CSRF token": admin.post(url, data={"reason": REASON, "confirm": "y"}),
        "no confirmation": admin.post(url, data={"csrf_token": csrf, "reason": REASON}),
        "no reason": admin.post(url, data={"csrf_token": csrf, "reason": "   ", "confirm": "y"}),
        "a reason too long": admin.post(url, data={"csrf_token": csrf, "reason": "x" * 501, "confirm": "y"}),
    }
    assert refused["no CSRF token"].status_code == 400
    for name in ("no confirmation", "no reason", "a reason too long"):
        assert refused[name].status_code == 422, name
    assert "Tick the box to confirm the erasure." in refused["no confirmation"].text
    assert "Say why this person&#39;s data is erased." in refused["no reason"].text
    with app.app_context():
        row = db.session.get(Verification, result_id)
        assert row is not None and row.redacted_at is None and row.token == TOKEN

    done = admin.post(url, data={"csrf_token": csrf, "reason": REASON, "confirm": "y"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/console/verifications/{result_id}")
    detail = admin.get(f"/console/verifications/{result_id}").text
    assert "Redacted:" in detail and "2 verifications, 2 webhook bodies, 1 outcome report" in detail
    assert f"Redacted {_date(app, result_id)}" in detail and f"— {REASON}" in detail
    history = admin.get("/console/").text
    for shown in (detail, history):
        assert TOKEN not in shown and BAND not in shown and NOTES not in shown
        assert "Redact this person" not in shown
    assert history.count("Redacted ") >= 2 and "Repaid" in history

    [first, second] = [entry for entry in _entries(app) if entry.action == audit.Action.REDACTED]
    assert (first.actor, first.actor_role, first.subject, first.detail) == (admin_name, "admin", result_id, REASON)
    assert second.subject == person.result_ids[1]
    assert api(app, f"/api/results/{result_id}").json["redacted"] is True
    assert table_remnants(database, app, person.secrets) == set()
    assert remnants(app, database, person.secrets, decrypting=is_sqlite(database)) == set()

    again = admin.get(url)
    assert again.status_code == 200 and f"— {REASON}" in again.text and "data-redaction-form" not in again.text


@pytest.mark.databases("sqlite")
def test_analysts_and_counter_staff_cannot_redact(app: Flask) -> None:
    person = token_person(app, TOKEN, BAND, NOTES)
    result_id = person.result_ids[0]
    for role in ("analyst", "counter"):
        staff, _ = browser(app, role)
        csrf = hidden(staff.get("/staff/sign-in").text, "csrf_token")
        url = f"/console/verifications/{result_id}/redact"
        assert staff.get(url).status_code == 403, role
        assert staff.post(url, data={"csrf_token": csrf, "reason": REASON, "confirm": "y"}).status_code == 403, role
    analyst, _ = browser(app, "analyst")
    assert "/redact" not in analyst.get(f"/console/verifications/{result_id}").text
    with app.app_context():
        row = db.session.get(Verification, result_id)
        assert row is not None and row.redacted_at is None
    assert not [entry for entry in _entries(app) if entry.action == audit.Action.REDACTED]


def test_an_admin_erases_every_record_of_the_reference_from_one_verification(app: Flask, database: str) -> None:
    reference = "loan-ER-2026-301"
    first = session_person(app, "req_console_ref_01", "HV3N-T6QB-J2LZ", "KX4T-9WQZ", "band-NUMBAT-5582",
                           "DQ8R-M3XW-P5KC", reference=reference)
    second = session_person(app, "req_console_ref_02", "WX5C-Q8NB-T3RM", "PL2M-7HQV", "band-DINGO-7001",
                            "CJ6T-N9WR-B4XE", reference=reference)
    admin, admin_name = browser(app, "admin")
    url = f"/console/verifications/{first.result_ids[0]}/redact"
    page = admin.get(url).text
    assert "data-erase-reference" in page and reference in page
    csrf = hidden(page, "csrf_token")
    by_reference = {"reason": REASON, "scope": "reference", "confirm": "y"}
    assert admin.post(url, data=by_reference).status_code == 400  # no CSRF token
    assert admin.post(url, data={**by_reference, "csrf_token": csrf, "confirm": ""}).status_code == 422
    with app.app_context():
        assert db.session.get(Verification, second.result_ids[0]).redacted_at is None  # type: ignore[union-attr]

    done = admin.post(url, data={**by_reference, "csrf_token": csrf})
    assert done.status_code == 303
    detail = admin.get(f"/console/verifications/{first.result_ids[0]}").text
    assert ("Erased every record of this reference: 4 verifications, 2 webhook bodies, 0 outcome reports, "
            "2 session links, 0 review notes, 2 sessions.") in detail
    for person in (first, second):
        assert table_remnants(database, app, person.secrets) == set()
        for result_id in person.result_ids:
            assert api(app, f"/api/results/{result_id}").json["redacted"] is True
        assert api(app, f"/api/sessions/{person.session_id}").json["redacted"] is True
    erased = [entry for entry in _entries(app) if entry.action == audit.Action.REDACTED]
    assert {entry.subject for entry in erased} == {*first.result_ids, *second.result_ids, first.session_id,
                                                   second.session_id}
    assert {(entry.actor, entry.actor_role) for entry in erased} == {(admin_name, "admin")}


def test_a_verification_without_a_reference_offers_no_reference_erase(app: Flask) -> None:
    person = token_person(app, TOKEN, BAND, NOTES)
    admin, _ = browser(app, "admin")
    url = f"/console/verifications/{person.result_ids[0]}/redact"
    page = admin.get(url).text
    assert "data-erase-reference" not in page
    refused = admin.post(url, data={"csrf_token": hidden(page, "csrf_token"), "reason": REASON, "confirm": "y",
                                    "scope": "reference"})
    assert refused.status_code == 422 and "This verification has no reference." in refused.text
    with app.app_context():
        assert db.session.get(Verification, person.result_ids[0]).redacted_at is None  # type: ignore[union-attr]


def _entries(app: Flask) -> list[audit.AuditEntry]:
    with app.app_context():
        entries = list(db.session.execute(db.select(audit.AuditEntry).order_by(audit.AuditEntry.id)).scalars())
        db.session.expunge_all()
        return entries


def _date(app: Flask, result_id: str) -> str:
    with app.app_context():
        row = db.session.get(Verification, result_id)
        assert row is not None and row.redacted_at is not None
        return f"{row.redacted_at:%Y-%m-%d %H:%M} UTC"
