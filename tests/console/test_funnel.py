"""The funnel (console, analysts): real journeys through the in-process app and its sandbox, then the page's and
the CSV's numbers checked exactly; an erasure leaves them as they are, and nothing personal is kept for them.

The scripted journeys, all started in one hour:

| # | channel, language, layout | what happens | ends as, after |
|---|---|---|---|
| 1 | embed, en, phone | QR, approved on the phone, the poll sees it | approved (approve), 20 s |
| 2 | embed, fr, desktop | QR, declined on the phone | declined, 50 s |
| 3 | embed, en, desktop | QR, approved; the page is gone, PASSID's webhook records it | approved (approve), 30 s |
| 4 | embed, en, no JavaScript | a token typed (posted twice: the same form again counts nothing) | approved, 0 s |
| 5 | embed, en, desktop | a token nobody issued | denied, 0 s |
| 6 | hosted session, de, phone | QR left to run out, the page still open | expired |
| 7 | hosted session, en, phone | QR, then the bank erases the session while it runs | abandoned |
| 8 | branch counter, en | a token read out (a tier C profile) | approved (review), 0 s |
| 8b | branch counter's QR page, en, phone | QR, declined on the phone | declined, 40 s |
| 9 | embed, es | shown, never started | |

Time from start to result is measured on the app's own clock; the test moves the funnel's clock (the one
thing it stands in for: minutes cannot pass in a test) so that each journey takes the seconds above. The code's
expiry at PASSID is real: the app runs with 2-second codes, and journey 6 waits for it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import MetaData, create_engine, inspect, select, text
from werkzeug.test import TestResponse

from app.passid import PassidClient
from app.plumbing.database import db, utcnow
from app.rules import funnel, verifications
from app.rules.decision import VERDICTS
from app.rules.funnel import Counts, FunnelEvent, FunnelJourney, Tally, Timed, percentile, summarise
from tests.console.conftest import share_token_for
from tests.support.html_fields import hidden
from tests.support.migrations import empty_database, flask_db
from tests.support.servers import base_env
from tests.support.waiting import wait_until
from tests.support.widget_http import HTMX, QrSession, awaiting_session

pytestmark = pytest.mark.databases("sqlite")

BANK = "https://bank.example"


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_ALLOWED_EMBED_ORIGINS": BANK, "PASSID_REQUEST_TTL_SECONDS": "2",
            "PASSID_SANDBOX_MIN_TTL_SECONDS": "1", "PASSID_POLL_CHECK_SECONDS": "0"}


class Clock:
    """The funnel's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    # The current hour: a journey's start is never after its real code's expiry, so nothing ends early.
    moved = Clock(utcnow().replace(minute=0, second=0, microsecond=0))
    monkeypatch.setattr(funnel, "utcnow", moved)
    yield moved


def layout(device: str) -> dict[str, str]:
    """What widget.js sends on an htmx request: the layout widget.css chose."""
    return {**HTMX, funnel.LAYOUT_HEADER: device}


def start_qr(client: FlaskClient, page: TestResponse, device: str) -> QrSession:
    """Press the QR button (htmx: the spinner's follow-up starts it) on the page drawn as `page`."""
    answer = client.post("/verify/qr/session", data={"o": hidden(page.text, "o")}, headers=layout(device))
    return awaiting_session(answer.text, "", answer.status_code)


def poll_until_final(client: FlaskClient, qr: QrSession, timeout: float = 20.0) -> str:
    """Poll as the widget does until the answer is a final state; its name."""
    answer: list[TestResponse] = []

    def final() -> bool:
        answer[:] = [client.get(qr.poll_url, headers=HTMX)]
        return answer[0].status_code != 204

    wait_until(final, f"a final state for {qr.request_id}", timeout=timeout, every=0.1)
    view = re.search(r'data-view="(\w+)"', answer[0].text)
    assert view, answer[0].text[:300]
    return view.group(1)


def recorded(app: Flask, request_id: str) -> verifications.Finished | None:
    with app.app_context():
        return verifications.find_by_request(request_id)


def funnel_table(html: str, name: str) -> dict[str, dict[str, str]]:
    """One of the page's tables, as {row value: {step: cell text}}."""
    table = re.search(rf'<table class="console-table" data-funnel="{name}">(.*?)</table>', html, re.S)
    assert table, f"no {name} table"
    rows: dict[str, dict[str, str]] = {}
    for value, cells in re.findall(r'<tr data-value="([^"]+)">(.*?)</tr>', table.group(1), re.S):
        found = re.findall(r'<td data-step="(\w+)">(.*?)</td>', cells, re.S)
        rows[value] = {step: text.strip() for step, text in found}
    return rows


def steps_of(html: str) -> dict[str, str]:
    table = re.search(r'data-funnel="all">(.*?)</table>', html, re.S)
    assert table
    return {step: count.strip() for step, count in re.findall(
        r'<tr data-step="(\w+)"><th scope="row">[^<]*</th><td>([^<]*)</td>', table.group(1))}


def csv_of(staff: FlaskClient, **period: str) -> dict[tuple[str, str], dict[str, str]]:
    answer = staff.get("/console/funnel.csv", query_string=period)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    return {(row["breakdown"], row["value"]): row for row in csv.DictReader(io.StringIO(answer.text))}


def test_the_funnel_counts_scripted_journeys_exactly_and_an_erasure_leaves_the_counts(
    app: Flask, client: FlaskClient, staff_client: FlaskClient, runner: FlaskCliRunner, app_sandbox: PassidClient,
    app_demo: tuple[str, str], clock: Clock,
) -> None:
    key, institution_id = app_demo
    start = clock.now
    phone = app_sandbox.sandbox_login("KE8V-3TXY-Z72L")

    # 1: embed, en, phone: approved on the phone after 20 s, seen by the widget's poll.
    qr1 = start_qr(client, client.get("/verify"), "phone")
    clock.now = start + timedelta(seconds=20)
    app_sandbox.fulfill_request(qr1.request_id, phone)
    assert poll_until_final(client, qr1) == "success"

    # 2: embed, fr, desktop: declined after 50 s.
    clock.now = start
    qr2 = start_qr(client, client.get("/verify", query_string={"locale": "fr"}), "desktop")
    clock.now = start + timedelta(seconds=50)
    app_sandbox.decline_request(qr2.request_id, phone)
    assert poll_until_final(client, qr2) == "declined"

    # 3: embed, en, desktop: approved after 30 s while no page polls: PASSID's webhook records it.
    clock.now = start
    qr3 = start_qr(client, client.get("/verify"), "desktop")
    clock.now = start + timedelta(seconds=30)
    app_sandbox.fulfill_request(qr3.request_id, app_sandbox.sandbox_login("NG4M-XQRS-T88W"))
    wait_until(lambda: recorded(app, qr3.request_id) is not None, "the webhook's record of journey 3")

    # 4: embed, en, no JavaScript: a token typed and posted as a plain form, then the same form again.
    clock.now = start
    page4 = client.get("/verify")
    form4 = {"o": hidden(page4.text, "o"), "n": hidden(page4.text, "n"),
             "token": share_token_for(app.config["PASSID_BASE_URL"], institution_id)}
    for _ in range(2):
        assert 'data-view="success"' in client.post("/verify/token", data=form4).text

    # 5: embed, en, desktop: a token nobody issued.
    page5 = client.get("/verify")
    denied = client.post("/verify/token/check", headers=layout("desktop"), data={
        "o": hidden(page5.text, "o"), "n": hidden(page5.text, "n"), "token": "ZZZZ-ZZZZ-ZZZZ"})
    assert 'data-view="declined"' in denied.text

    # 6: a hosted session in German, on a phone: the code runs out while the page is open.
    made = client.post("/api/sessions", json={"reference": "loan-funnel-6", "locale": "de"},
                       headers={"X-Institution-Key": key}).get_json()
    qr6 = start_qr(client, client.get("/verify/session", query_string={"id": made["id"]}), "phone")
    assert poll_until_final(client, qr6) == "declined"
    assert recorded(app, qr6.request_id).status == "expired"  # type: ignore[union-attr]

    # 7: a hosted session on a phone, started, then erased by the bank's reference while its code runs.
    made = client.post("/api/sessions", json={"reference": "loan-funnel-7"}, headers={"X-Institution-Key": key})
    qr7 = start_qr(client, client.get("/verify/session", query_string={"id": made.get_json()["id"]}), "phone")

    # 8: the branch counter: a token the customer reads out.
    counter = staff_client.get("/branch/")
    at_counter = staff_client.post("/branch/verify", headers=HTMX, data={
        "csrf_token": hidden(counter.text, "csrf_token"), "n": hidden(counter.text, "n"),
        "token": share_token_for(app.config["PASSID_BASE_URL"], institution_id, "GH2P-ABCD-56KL")})
    assert at_counter.status_code == 200

    # 8b: the counter's QR page frames the widget (not shown again: the counter's form was): declined after 40 s.
    framed = re.search(r'data-branch-widget\s+src="([^"]+)"', staff_client.get("/branch/qr").text)
    assert framed
    qr8 = start_qr(client, client.get(unescape(framed.group(1))), "phone")
    clock.now = start + timedelta(seconds=40)
    app_sandbox.decline_request(qr8.request_id, phone)
    assert poll_until_final(client, qr8) == "declined"

    # 9: shown in Spanish, never started.
    clock.now = start
    client.get("/verify", query_string={"locale": "es"})

    before = staff_client.get("/console/funnel")
    assert before.status_code == 200
    assert steps_of(before.text) == {"shown": "9", "started": "9", "approved": "4", "denied": "1", "declined": "2",
                                     "expired": "1", "abandoned": "0", "in_progress": "1"}

    # The erasures: journey 1's person, and journey 7's session while its code still runs.
    result1 = recorded(app, qr1.request_id)
    assert result1 is not None
    for args in (["passid", "redact", result1.result_id, "--reason", "asked"],
                 ["passid", "redact", "--reference", "loan-funnel-7", "--reason", "asked"]):
        with app.app_context():
            done = runner.invoke(args=args)
        assert done.exit_code == 0, done.output
    with app.app_context():
        [open_journey] = db.session.execute(select(FunnelJourney)).scalars().all()
        assert open_journey.request_id is None  # its counts stay; the request id that linked it is gone

    # Journey 7's time is up (ten minutes past its code's expiry): it ends as abandoned.
    clock.now = utcnow() + funnel.ABANDON_AFTER + timedelta(minutes=1)
    page = staff_client.get("/console/funnel").text
    assert steps_of(page) == {"shown": "9", "started": "9", "approved": "4", "denied": "1", "declined": "2",
                              "expired": "1", "abandoned": "1", "in_progress": "0"}
    assert re.search(r'data-verdict="approve"><th scope="row">[^<]*</th><td>3</td>', page)
    assert re.search(r'data-verdict="review"><th scope="row">[^<]*</th><td>1</td>', page)
    assert re.search(r'data-verdict="decline"><th scope="row">[^<]*</th><td>4</td>', page)
    # Answered in 20, 50, 30, 0, 0, 0 and 40 s: the median is 20 s, the p90 (nearest rank) 50 s.
    assert "Median 20 s, p90 50 s, over 7 results" in page
    assert 'data-step="approved" data-count="4"' in page and 'data-step="shown" data-count="9"' in page  # the SVG

    channels = funnel_table(page, "channel")
    assert {value: (row["shown"], row["started"], row["approved"], row["denied"], row["declined"], row["expired"],
                    row["abandoned"]) for value, row in channels.items()} == {
        "embed": ("6", "5", "3", "1", "1", "0", "0"),
        "hosted": ("2", "2", "0", "0", "0", "1", "1"),
        "branch": ("1", "2", "1", "0", "1", "0", "0"),
        "nojs": ("—", "1", "1", "0", "0", "0", "0"),
    }
    locales = funnel_table(page, "locale")
    assert {value: (row["shown"], row["started"]) for value, row in locales.items()} == {
        "de": ("1", "1"), "en": ("6", "7"), "es": ("1", "0"), "fr": ("1", "1")}
    devices = funnel_table(page, "device")
    assert {value: (row["shown"], row["started"], row["approved"], row["median"], row["p90"])
            for value, row in devices.items()} == {
        "phone": ("—", "4", "1", "30 s", "40 s"),
        "desktop": ("—", "3", "1", "30 s", "50 s"),
        "unknown": ("—", "2", "2", "0 s", "0 s"),
    }

    rows = csv_of(staff_client)
    everything = rows[("all", "all")]
    assert {name: everything[name] for name in ("shown", "started", "approved", "denied", "declined", "expired",
                                                "abandoned", "in_progress", "verdict_approve", "verdict_review",
                                                "verdict_decline", "answered", "median_seconds", "p90_seconds")} == {
        "shown": "9", "started": "9", "approved": "4", "denied": "1", "declined": "2", "expired": "1",
        "abandoned": "1", "in_progress": "0", "verdict_approve": "3", "verdict_review": "1", "verdict_decline": "4",
        "answered": "7", "median_seconds": "20", "p90_seconds": "50"}
    assert everything["start_rate"] == "1.0000" and everything["approved_rate"] == "0.4444"
    assert everything["first_day"] == (utcnow().date() - timedelta(days=29)).isoformat()
    assert rows[("channel", "nojs")]["shown"] == "" and rows[("channel", "hosted")]["abandoned_rate"] == "0.5000"
    assert rows[("device", "desktop")]["median_seconds"] == "30" and rows[("locale", "es")]["start_rate"] == "0.0000"
    assert set(rows) == {("all", "all"), *(("channel", value) for value in channels),
                         *(("locale", value) for value in locales), *(("device", value) for value in devices)}

    # Nothing personal kept for the counts: every value is a code from a closed list, a language, an hour or a
    # number, and none of the journeys' ids, tokens, codes or references is anywhere in the funnel's tables.
    with app.app_context():
        events = db.session.execute(select(FunnelEvent)).scalars().all()
        journeys = db.session.execute(select(FunnelJourney)).scalars().all()
        erased = verifications.find(result1.result_id)
    assert journeys == [] and erased is not None and erased.redacted_at is not None
    assert len(events) == 9 + 9 + 9
    for event in events:
        assert event.kind in set(funnel.Kind) and event.channel in set(funnel.Channel)
        assert event.device in set(funnel.Device) and event.locale in {"en", "fr", "de", "es"}
        assert event.outcome in {None, *funnel.OUTCOMES} and event.verdict in {None, *VERDICTS}
        assert event.hour == start and (event.seconds is None or event.seconds in {0, 20, 30, 40, 50})
    dumped = repr([vars(row) for row in (*events, *journeys)])
    qrs = (qr1, qr2, qr3, qr6, qr7, qr8)
    personal = [qr.request_id for qr in qrs] + [qr.code for qr in qrs] + [
        result1.result_id, form4["token"], "loan-funnel-6", "loan-funnel-7", made.get_json()["id"], "127.0.0.1"]
    assert [value for value in personal if value in dumped] == []


def test_a_malformed_token_starts_nothing_and_the_retention_purge_drops_only_old_counts(
    app: Flask, client: FlaskClient, clock: Clock,
) -> None:
    """A token refused as malformed starts nothing (the same form sent again is the main test's journey 4); the
    retention purge drops counts older than the retention period with everything else, and keeps the rest."""
    page = client.get("/verify")
    refused = client.post("/verify/token/check", headers=layout("phone"),
                          data={"o": hidden(page.text, "o"), "n": hidden(page.text, "n"), "token": "nope"})
    assert refused.status_code == 422
    old = clock.now - timedelta(days=91)
    with app.app_context():
        db.session.add(FunnelEvent(kind="shown", channel="embed", scripted=None, locale="en", device="unknown",
                                   hour=old))
        db.session.commit()
        from app.rules.retention import purge

        purge()
        kinds = sorted((event.kind, event.hour) for event in db.session.execute(select(FunnelEvent)).scalars())
    assert kinds == [("shown", clock.now)]


def test_a_database_that_cannot_take_the_count_costs_the_count_not_the_page(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture,
) -> None:
    """The widget's first screen and a QR start needed no funnel before: a count the database refuses is logged
    (without the statement's parameters: a request id is one) and dropped, and the page is drawn as ever."""
    with app.app_context():
        db.session.execute(text("DROP TABLE funnel_event"))
        db.session.commit()
    page = client.get("/verify")
    assert page.status_code == 200 and 'data-view="idle"' in page.text
    qr = start_qr(client, page, "phone")
    said = [record.getMessage() for record in caplog.records if record.name == funnel.__name__]
    assert said == ["funnel: a widget shown not counted: the database did not take it (OperationalError)",
                    "funnel: a QR start not counted: the database did not take it (OperationalError)"]
    assert not any(qr.request_id in (record.getMessage() + (record.exc_text or "")) for record in caplog.records)


# --- the period --------------------------------------------------------------------------------------


def test_a_period_before_what_is_kept_starts_at_the_oldest_day_and_bad_dates_are_refused(
    staff_client: FlaskClient,
) -> None:
    today = utcnow().date()
    page = staff_client.get("/console/funnel", query_string={"from": "2001-01-01", "to": today.isoformat()})
    assert page.status_code == 200
    oldest = (utcnow() - timedelta(days=90)).date().isoformat()
    assert f'name="from" type="date" value="{oldest}"' in page.text and "the oldest day still kept" in page.text
    assert staff_client.get("/console/funnel.csv", query_string={"to": "0001-01-05"}).status_code == 200
    for query, words in (({"from": "yesterday"}, "must be a day written YYYY-MM-DD"),
                         ({"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()},
                          "is after the")):
        for path in ("/console/funnel", "/console/funnel.csv"):
            refused = staff_client.get(path, query_string=query)
            assert refused.status_code == 400 and words in refused.text, (path, query)


# --- the arithmetic -----------------------------------------------------------------------------------


def test_rates_and_times_follow_their_definitions() -> None:
    """Rates of starts, the median (the mean of the middle two for an even count) and the nearest-rank p90."""
    day = utcnow().date()
    tallies = [
        Tally("shown", "embed", None, "en", "unknown", None, None, 4),
        Tally("started", "embed", True, "en", "phone", None, None, 3),
        Tally("ended", "embed", True, "en", "phone", "approved", "approve", 2),
        Tally("ended", "embed", True, "en", "phone", "abandoned", None, 1),
        Tally("started", "hosted", False, "fr", "unknown", None, None, 1),
    ]
    times = [Timed("embed", True, "en", "phone", seconds) for seconds in (4, 10)]
    found = summarise(day, day, tallies, times)
    total = found.total
    assert (total.shown, total.started, total.ended, total.in_progress) == (4, 4, 3, 1)
    assert total.start_rate == 1.0 and total.rate("approved") == 0.5 and total.median_seconds == 7
    assert found.by_channel["nojs"].started == 1 and found.by_channel["nojs"].shown is None
    assert found.by_device["phone"].shown is None and found.by_locale["fr"].shown == 0
    assert percentile(list(range(1, 11)), 0.9) == 9 and percentile([5], 0.9) == 5 and percentile([], 0.9) is None
    assert Counts().start_rate is None and Counts().rate("approved") is None
    assert funnel.device_of("PHONE") == "phone" and funnel.device_of("tablet<script>") == "unknown"



# --- the migration ------------------------------------------------------------------------------------


def test_the_funnel_migration_matches_the_model_and_downgrades(tmp_path: Path) -> None:
    """On SQLite: every PostgreSQL run migrates its template database through this migration already."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with empty_database("sqlite", tmp_path) as url:
        env = base_env(url)
        flask_db(env, "upgrade", "0020_funnel")
        engine = create_engine(url)
        ours = MetaData()
        for model in (FunnelEvent, FunnelJourney):
            model.__table__.to_metadata(ours)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), ours)
        # Only these tables are compared: every other table of the database is "not in the model" here.
        assert [d for d in differences if "funnel_" in repr(d)] == []
        flask_db(env, "downgrade", "0020_funnel-1")
        engine.dispose()
        assert not {"funnel_event", "funnel_journey"} & set(inspect(engine).get_table_names())
        flask_db(env, "upgrade", "0020_funnel")
        engine.dispose()
        assert {"funnel_event", "funnel_journey"} <= set(inspect(engine).get_table_names())
