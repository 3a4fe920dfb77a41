"""The history's filters and its CSV export: every row the filters select, no claim beyond the tier unless
the analyst asks, each export audited.

In-process, on SQLite and PostgreSQL (`database_kind`) where a filter's SQL is involved; what the CSV holds
and who may ask for it, on SQLite. Verifications come
through the widget's manual token path against the app's own sandbox, or through `verifications.record`
(the one function every path records with) where a test needs many rows or a particular time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.console import history_export
from app.console.history_export import CLAIM_COLUMNS, RECORD_COLUMNS
from app.console.history_filters import BadFilter, HistoryFilters, parse_filters
from app.plumbing.database import db, utcnow
from app.rules import audit, retention
from app.rules.verifications import FinalStatus, Source, Verification, record
from tests.console.conftest import add_staff, signed_in
from tests.support.html_fields import hidden
from tests.support.in_process import serving_in_process
from tests.support.widget_actions import WidgetActions

# Amani's fixed profile (tier A, approve) and its claim values a claim-free export must not contain.
APPROVE_TOKEN = "KE8V-3TXY-Z72L"
AMANI_CLAIMS = ("812", "GBP 40k-60k", "0.93", "0.97")
WITHOUT_IDENTITY = "full_score,income_verified,sanctions_clear,payment_reliability,savings_consistency,fraud_risk"


@pytest.fixture
def app(fresh_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The whole app in this process on a database of `database_kind` (Kofi's token then reads "Review")."""
    with serving_in_process(fresh_database_url, tmp_path, PASSID_PERMISSIONS=WITHOUT_IDENTITY) as built:
        yield built


def staff_of(app: Flask, role: str) -> FlaskClient:
    """A new account of `role` (`flask staff create --role`), signed in on its own browser."""
    return signed_in(app.test_client(), add_staff(app.test_cli_runner(), role=role))


@pytest.fixture
def analyst(app: Flask) -> FlaskClient:
    return staff_of(app, "analyst")


def export(client: FlaskClient, **fields: str) -> Any:
    """Press "Export as CSV" under the history, with these filters (and `claims="1"` for the checkbox)."""
    page = client.get("/console/").text
    return client.post("/console/history.csv", data={"csrf_token": hidden(page, "csrf_token"), **fields})


def table(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.headers["Cache-Control"] == "no-store"
    return list(csv.DictReader(io.StringIO(answer.text)))


def recorded(app: Flask, count: int = 1, **fields: Any) -> list[str]:
    """`count` verifications recorded as any path records them; their result ids."""
    made = []
    with app.app_context():
        for _ in range(count):
            facts: dict[str, Any] = {"source": Source.MANUAL, "status": FinalStatus.COMPLETED, **fields}
            made.append(record(idempotency_key=f"k-{utcnow().timestamp()}-{len(made)}", **facts).result_id)
    return made


def exports_audited(app: Flask) -> list[audit.AuditEntry]:
    with app.app_context():
        found = list(db.session.execute(db.select(audit.AuditEntry).where(
            audit.AuditEntry.action == audit.Action.HISTORY_EXPORTED.value).order_by(audit.AuditEntry.id)).scalars())
        for entry in found:
            db.session.expunge(entry)
        return found


# --- the filters, without a request -----------------------------------------------------------------


def test_filters_are_parsed_and_said_back() -> None:
    filters = parse_filters({"status": "denied", "source": "branch", "from": "2026-11-01", "to": "2026-11-26",
                             "review": "pending"})
    assert filters == HistoryFilters("denied", "branch", date(2026, 11, 1), date(2026, 11, 26), "pending")
    assert filters.as_args() == {"status": "denied", "source": "branch", "from": "2026-11-01", "to": "2026-11-26",
                                 "review": "pending"}
    assert filters.describe() == "status=denied source=branch from=2026-11-01 to=2026-11-26 review=pending"
    assert parse_filters({}).describe() == "none" and parse_filters({"status": " "}).as_args() == {}


@pytest.mark.parametrize("args, sentence", [
    ({"status": "approved"}, "is not a verification status"),
    ({"source": "fax"}, "is not a source"),
    ({"review": "maybe"}, "is not a review status"),
    ({"from": "26/11/2026"}, "must be a day written YYYY-MM-DD"),
    ({"to": "2026-02-30"}, "must be a day written YYYY-MM-DD"),
    ({"from": "2026-11-26", "to": "2026-11-01"}, "is after the “to” date"),
])
def test_a_filter_that_could_only_mislead_is_refused(args: dict[str, str], sentence: str) -> None:
    with pytest.raises(BadFilter, match=sentence):
        parse_filters(args)


def test_the_audit_detail_says_filters_claims_and_count_but_never_the_search_term() -> None:
    detail = history_export.export_detail(HistoryFilters(status="completed"), True, False, 1)
    assert detail == "filters: status=completed; search: yes; claims not included; 1 row"
    assert history_export.export_detail(HistoryFilters(), False, True, 2).endswith("claims included; 2 rows")


# --- the page's filters ------------------------------------------------------------------------------


def test_the_history_filters_by_status_source_review_and_date(app: Flask, analyst: FlaskClient) -> None:
    widget = WidgetActions(app.test_client())
    assert 'data-view="success"' in widget.submit_token(APPROVE_TOKEN).text
    assert 'data-view="success"' in widget.submit_token("GH2P-ABCD-56KL").text  # "Review": pending
    assert 'data-view="declined"' in widget.submit_token("TEST-SANC-0005").text
    [old] = recorded(app, source=Source.CLI)
    with app.app_context():
        db.session.execute(db.update(Verification).where(Verification.id == old)
                           .values(created_at=utcnow() - timedelta(days=40)))
        db.session.commit()

    def shown(**args: str) -> list[str]:
        page = analyst.get("/console/", query_string=args)
        assert page.status_code == 200
        return re.findall(r'<tr data-result-id="([^"]+)">', page.text)

    assert len(shown()) == 4
    assert len(shown(status="denied")) == 1
    assert len(shown(review="pending")) == 1
    assert shown(source="cli") == [old]
    today = utcnow().date()
    assert old not in shown(**{"from": (today - timedelta(days=1)).isoformat()})
    assert shown(to=(today - timedelta(days=30)).isoformat()) == [old]
    assert shown(**{"from": today.isoformat(), "to": today.isoformat(), "source": "manual"}) == shown(source="manual")

    refused = analyst.get("/console/", query_string={"status": "nonsense"})
    assert refused.status_code == 400 and "is not a verification status" in refused.text


@pytest.mark.databases("sqlite")
def test_the_pager_and_the_export_form_keep_the_filters(app: Flask, analyst: FlaskClient) -> None:
    recorded(app, 30, source=Source.CLI)
    page = analyst.get("/console/", query_string={"source": "cli", "status": "completed"}).text
    older = re.search(r'href="([^"]+)" rel="next"', page)
    assert older and "source=cli" in older.group(1) and "status=completed" in older.group(1)
    export_form = re.search(r"<form[^>]*data-export.*?</form>", page, flags=re.S)
    assert export_form
    form = export_form.group(0)
    assert 'name="source" value="cli"' in form and 'name="status" value="completed"' in form
    assert 'method="post"' in form and 'name="csrf_token"' in form
    assert "At most 10,000 rows per file" in form


# --- the export ----------------------------------------------------------------------------------------


@pytest.mark.databases("sqlite")
def test_the_export_holds_the_record_and_the_tier_but_no_other_claim(app: Flask, analyst: FlaskClient) -> None:
    assert 'data-view="success"' in WidgetActions(app.test_client()).submit_token(APPROVE_TOKEN).text
    answer = export(analyst)
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="passid-history-')
    [row] = table(answer)
    assert list(row) == RECORD_COLUMNS
    assert (row["source"], row["status"], row["tier"]) == ("manual", "completed", "A")
    for value in AMANI_CLAIMS:
        assert value not in answer.text
    assert not re.search(r"income|fraud|identity|sanction|fsi", answer.text, flags=re.I)
    assert APPROVE_TOKEN not in answer.text  # tokens are not in the file either

    [entry] = exports_audited(app)
    assert entry.detail == "filters: none; search: none; claims not included; 1 row"
    assert entry.actor_role == "analyst"


@pytest.mark.databases("sqlite")
def test_the_claims_are_exported_only_when_the_analyst_asks(app: Flask, analyst: FlaskClient) -> None:
    assert 'data-view="success"' in WidgetActions(app.test_client()).submit_token(APPROVE_TOKEN).text
    answer = export(analyst, claims="1")
    [row] = table(answer)
    assert list(row) == RECORD_COLUMNS + CLAIM_COLUMNS
    assert (row["fsi_score"], row["income_band"], row["fraud_risk"], row["tier"]) == ("812", "GBP 40k-60k", "low", "A")
    assert exports_audited(app)[-1].detail == "filters: none; search: none; claims included; 1 row"


@pytest.mark.databases("sqlite")
def test_the_export_has_every_matching_row_not_one_page(app: Flask, analyst: FlaskClient) -> None:
    recorded(app, 30, source=Source.CLI)
    recorded(app, 3, source=Source.BRANCH)
    rows = table(export(analyst, source="cli"))
    assert len(rows) == 30 and {row["source"] for row in rows} == {"cli"}
    assert exports_audited(app)[-1].detail == "filters: source=cli; search: none; claims not included; 30 rows"


def test_the_export_applies_the_search_and_every_filter_like_the_page(app: Flask, analyst: FlaskClient) -> None:
    widget = WidgetActions(app.test_client())
    widget.submit_token("GH2P-ABCD-56KL")
    widget.submit_token(APPROVE_TOKEN)
    [pending] = table(export(analyst, review="pending"))
    assert pending["review_status"] == "pending" and pending["tier"] == "C"
    assert [row["status"] for row in table(export(analyst, status="denied"))] == []
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    assert table(export(analyst, **{"from": tomorrow})) == []
    [found] = table(export(analyst, q="passid-ke8v3txyz72l"))
    assert found["tier"] == "A"
    assert "KE8V" not in (exports_audited(app)[-1].detail or "")  # the search term may be a token


def test_a_redacted_row_exports_no_claims_even_when_asked(app: Flask, analyst: FlaskClient) -> None:
    kept, erased = recorded(app, 2, claims={"tier": "B", "fsi_score": 743, "income_band": "USD 50k-75k"})
    with app.app_context():
        db.session.execute(db.update(Verification).where(Verification.id == erased).values(redacted_at=utcnow()))
        db.session.commit()
    rows = {row["id"]: row for row in table(export(analyst, claims="1"))}
    assert rows[kept]["fsi_score"] == "743" and rows[kept]["income_band"] == "USD 50k-75k"
    assert all(rows[erased][name] == "" for name in CLAIM_COLUMNS)


@pytest.mark.databases("sqlite")
def test_a_verification_redacted_on_request_exports_its_record_only(app: Flask, analyst: FlaskClient) -> None:
    assert 'data-view="success"' in WidgetActions(app.test_client()).submit_token(APPROVE_TOKEN).text
    [row] = table(export(analyst))
    with app.app_context():
        retention.redact(row["id"], "erasure request 42", actor=audit.CLI_ACTOR)
    answer = export(analyst, claims="1")
    [after] = table(answer)
    assert (after["id"], after["tier"], after["status"]) == (row["id"], "A", "completed")
    for value in AMANI_CLAIMS:
        assert value not in answer.text


@pytest.mark.databases("sqlite")
def test_a_reference_typed_as_a_formula_is_exported_as_text(app: Flask, analyst: FlaskClient) -> None:
    recorded(app, reference="=HYPERLINK(\"http://x\")", session_id="vs_1")
    [row] = table(export(analyst))
    assert row["reference"] == "'=HYPERLINK(\"http://x\")"


@pytest.mark.databases("sqlite")
def test_an_export_beyond_the_cap_is_refused_with_what_to_do(
    app: Flask, analyst: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_export, "EXPORT_MAX_ROWS", 5)
    recorded(app, 6)
    refused = export(analyst)
    assert refused.status_code == 400 and "at most 5" in refused.text and "Narrow the dates" in refused.text
    assert exports_audited(app) == []
    assert len(table(export(analyst, status="completed", source="manual", to="2000-01-01"))) == 0


@pytest.mark.databases("sqlite")
def test_only_analysts_and_admins_may_export_and_only_by_a_form_post(app: Flask) -> None:
    recorded(app)
    counter = staff_of(app, "counter")
    csrf = hidden(counter.get("/branch/").text, "csrf_token")
    assert counter.post("/console/history.csv", data={"csrf_token": csrf}).status_code == 403
    assert app.test_client().post("/console/history.csv").status_code in (302, 400)  # signed out: no export
    analyst = staff_of(app, "analyst")
    assert analyst.get("/console/history.csv").status_code == 405  # a link cannot set one off
    assert analyst.post("/console/history.csv", data={}).status_code == 400  # nor a form without the CSRF token
    assert exports_audited(app) == []
    admin = staff_of(app, "admin")
    assert len(table(export(admin))) == 1
