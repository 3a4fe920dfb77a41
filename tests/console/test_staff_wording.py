"""Codes stay out of staff sentences: a role, PASSID's recommendation and the fraud risk are named in the staff
member's language, a count has its noun, and two meanings of one English word are two catalogue entries.

Expected words are read from the staff catalogue through Flask-Babel, as a page reads them, so these tests hold
in every staff language whatever the translators write; the codes themselves stay where an auditor matches
them with an export (the audit log), marked `translate="no"`.
"""

from __future__ import annotations

import re

import pytest
from babel.lists import format_list
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_babel import gettext

from app.rules.claims_summary import claims_summary
from app.rules.verifications import FinalStatus, Source, record
from tests.console.conftest import add_staff, signed_in

STAFF_LANGUAGES = ("en", "es")


def in_staff_language(app: Flask, locale: str, english: str) -> str:
    """`english` as a console page in `locale` shows it."""
    with app.test_request_context("/console/", query_string={"locale": locale}):
        return gettext(english)


def browser(app: Flask, runner: FlaskCliRunner, role: str) -> FlaskClient:
    return signed_in(app.test_client(), add_staff(runner, role=role))


@pytest.mark.parametrize("locale", STAFF_LANGUAGES)
def test_a_forbidden_page_names_the_roles_in_the_staff_language(app: Flask, runner: FlaskCliRunner,
                                                                locale: str) -> None:
    answer = browser(app, runner, "counter").get("/console/", query_string={"locale": locale})
    assert answer.status_code == 403
    mine = in_staff_language(app, locale, "Counter staff")
    open_to = format_list([in_staff_language(app, locale, "Analyst"), in_staff_language(app, locale, "Administrator")],
                          locale=locale)
    assert f"({mine})" in answer.text and open_to in answer.text
    assert "(counter)" not in answer.text and "analyst, admin" not in answer.text


def test_the_forbidden_page_reads_as_english_in_english(app: Flask, runner: FlaskCliRunner) -> None:
    page = browser(app, runner, "analyst").get("/console/go-live", query_string={"locale": "en"}).text
    assert "(Analyst). This page is for these roles: Administrator. Ask an administrator" in page


def recorded(app: Flask, **fields: object) -> str:
    with app.app_context():
        return record(source=Source.MANUAL, status=FinalStatus.COMPLETED, **fields).result_id  # type: ignore[arg-type]


@pytest.mark.parametrize("locale", STAFF_LANGUAGES)
def test_the_verification_page_names_passid_s_recommendation(app: Flask, runner: FlaskCliRunner, locale: str) -> None:
    result_id = recorded(app, token="GH2P-ABCD-56KL", idempotency_key=f"advised-{locale}",
                         claims={"tier": "C", "fraud_risk": "medium"}, recommendation="review")
    page = browser(app, runner, "analyst").get(f"/console/verifications/{result_id}",
                                               query_string={"locale": locale}).text
    sentence = in_staff_language(app, locale, "PASSID recommends: %(recommendation)s")
    assert sentence % {"recommendation": in_staff_language(app, locale, "Review")} in page
    assert in_staff_language(app, locale, "fraud risk medium") in page
    assert "recommends review" not in page


def test_a_recommendation_with_no_name_is_shown_as_the_code_it_is(app: Flask, runner: FlaskCliRunner) -> None:
    result_id = recorded(app, token="GH2P-ABCD-56KL", idempotency_key="advised-unknown", recommendation="<decline>")
    page = browser(app, runner, "analyst").get(f"/console/verifications/{result_id}").text
    assert 'PASSID recommends: <code translate="no">&lt;decline&gt;</code>' in page


def test_the_fraud_risk_is_a_whole_phrase_per_level(app: Flask) -> None:
    with app.test_request_context("/console/", query_string={"locale": "es"}):
        assert claims_summary({"fraud_risk": "high"}) == gettext("fraud risk high")
        assert claims_summary({"fraud_risk": "low"}) == gettext("fraud risk low")
    assert claims_summary({"fraud_risk": "high"}) == "fraud risk high"
    assert claims_summary({"fraud_risk": "extreme"}) == "fraud risk extreme"  # a value PASSID may add one day


@pytest.mark.parametrize("locale", STAFF_LANGUAGES)
def test_the_audit_log_names_the_role_and_keeps_its_code(app: Flask, runner: FlaskCliRunner, locale: str) -> None:
    page = browser(app, runner, "admin").get("/console/audit", query_string={"locale": locale}).text
    name = in_staff_language(app, locale, "Administrator")
    assert f'({name} <code translate="no">admin</code>)' in page


def test_the_audit_log_s_address_column_and_date_filter_are_two_entries(app: Flask, runner: FlaskCliRunner) -> None:
    page = browser(app, runner, "admin").get("/console/audit").text
    assert '<label for="from">From</label>' in page
    assert '<th scope="col">IP address</th>' in page


def test_the_history_export_counts_verifications(app: Flask, runner: FlaskCliRunner) -> None:
    analyst = browser(app, runner, "analyst")
    recorded(app, token="KE8V-3TXY-Z72L", idempotency_key="export-one")
    assert re.search(r">\s*Export this verification as CSV\s*<", analyst.get("/console/").text)
    recorded(app, token="NG4M-XQRS-T88W", idempotency_key="export-two")
    assert re.search(r">\s*Export these 2 verifications as CSV\s*<", analyst.get("/console/").text)
