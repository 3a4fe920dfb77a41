"""`/metrics`: closed to the public, counting each request under its URL rule, one app's figures its own.

In process (flaskr-style): the figures are this app's, in this process. That they add up across Granian's
workers is tests/serving/test_metrics_across_workers.py; that no label and no log line carries a person's
data after a whole journey is tests/operations/test_no_personal_data.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.config import ConfigError, load_settings
from app.plumbing.access_log import AccessLog
from app.plumbing.request_guards import BodiesInFlight, RequestEnvironOnly
from tests.support.scraping import BEARER, METRICS_TOKEN, samples, value
from tests.support.servers import TEST_SETTINGS
from tests.support.widget_actions import WidgetActions

pytestmark = pytest.mark.databases("sqlite")


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {"PASSID_METRICS_TOKEN": METRICS_TOKEN}


def scrape(client: FlaskClient) -> str:
    answer = client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_metrics_is_not_there_while_no_token_is_set(build_app: Callable[..., Flask]) -> None:
    client = build_app().test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404  # no token matches an unset one


def test_metrics_answers_only_the_bearer_of_the_token(client: FlaskClient) -> None:
    for refused in ({}, {"Authorization": "Bearer not-the-metrics-token-at-all"},
                    {"Authorization": f"Basic {METRICS_TOKEN}"}, {"Authorization": METRICS_TOKEN},
                    {"Authorization": f"Bearer {METRICS_TOKEN}x"}):
        answer = client.get("/metrics", headers=refused)
        assert answer.status_code == 401, refused
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "passid_" not in answer.text
    answer = client.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE passid_http_requests_total counter" in answer.text


def test_a_short_or_odd_metrics_token_stops_start_up(tmp_path: Path) -> None:
    for bad in ("too-short", "has spaces in it somewhere", "quote\"inside-a-long-token"):
        with pytest.raises(ConfigError, match="PASSID_METRICS_TOKEN") as refused:
            load_settings({**TEST_SETTINGS, "PASSID_INSTANCE_DIR": str(tmp_path), "PASSID_METRICS_TOKEN": bad})
        assert bad not in str(refused.value)  # a secret's sentence never copies it into the service log


def test_each_request_is_counted_under_its_url_rule_and_answers_with_its_request_id(client: FlaskClient) -> None:
    first = client.get("/api/sessions/vs_someone-s-session-id", headers={"X-Institution-Key": "wrong"})
    second = client.get("/api/sessions/vs_someone-else-s", headers={"X-Institution-Key": "wrong"})
    assert first.status_code == second.status_code == 401
    ids = {first.headers["X-Request-Id"], second.headers["X-Request-Id"]}
    assert len(ids) == 2 and all(len(request_id) == 32 for request_id in ids)
    client.get("/no/such/page/for/anyone")
    client.get("/static/favicon.svg")  # answered by WhiteNoise, before Flask sees it

    text = scrape(client)
    route = {"route": "/api/sessions/<session_id>", "method": "GET", "status": "401"}
    assert value(text, "passid_http_requests_total", route) == 2
    assert value(text, "passid_http_request_duration_seconds_count", {"route": "/api/sessions/<session_id>"}) == 2
    assert value(text, "passid_http_requests_total", {"route": "<unmatched>", "status": "404"}) == 1
    assert value(text, "passid_http_requests_total", {"route": "/static/<path:filename>", "status": "200"}) == 1
    assert "vs_some" not in text and "/no/such" not in text


def test_a_clients_own_request_id_is_not_believed_without_a_trusted_proxy(build_app: Callable[..., Flask]) -> None:
    offered = {"X-Request-Id": "lb-0123456789abcdef"}
    assert build_app().test_client().get("/healthz", headers=offered).headers["X-Request-Id"] != offered[
        "X-Request-Id"]
    behind_a_proxy = build_app(PASSID_TRUSTED_PROXIES="1").test_client()
    assert behind_a_proxy.get("/healthz", headers=offered).headers["X-Request-Id"] == offered["X-Request-Id"]
    odd = behind_a_proxy.get("/healthz", headers={"X-Request-Id": "has spaces and \"quotes\" in it"})
    assert len(odd.headers["X-Request-Id"]) == 32  # not well-formed: a new one


def test_two_apps_in_one_process_keep_their_own_figures(build_app: Callable[..., Flask]) -> None:
    one = build_app(PASSID_METRICS_TOKEN=METRICS_TOKEN).test_client()
    other = build_app(PASSID_METRICS_TOKEN=METRICS_TOKEN).test_client()
    for _ in range(3):
        one.get("/healthz")
    other.get("/healthz")
    healthz = {"route": "/healthz", "status": "200"}
    assert value(scrape(one), "passid_http_requests_total", healthz) == 3
    assert value(scrape(other), "passid_http_requests_total", healthz) == 1


def test_rate_limit_and_body_slot_refusals_are_counted_by_route_and_class(build_app: Callable[..., Flask]) -> None:
    app = build_app(PASSID_METRICS_TOKEN=METRICS_TOKEN, PASSID_RATE_LIMIT_TOKENS="1 per minute",
                    PASSID_BODY_SLOT_WAIT_SECONDS="0")
    client = app.test_client()
    widget = WidgetActions(client)
    assert widget.submit_token("TEST-EXPD-0001").status_code == 200
    assert widget.submit_token("TEST-EXPD-0001").status_code == 429

    customers = body_slots(app)["customer"]
    taken = 0
    while customers.take():  # every customer slot taken, as by slow uploads
        taken += 1
    try:
        assert widget.submit_token("TEST-EXPD-0001").status_code == 503
    finally:
        for _ in range(taken):
            customers.give_back()

    text = scrape(client)
    assert value(text, "passid_rate_limit_refusals_total", {"route": "/verify/token/check"}) == 1
    assert value(text, "passid_body_slot_refusals_total", {"pool": "customer"}) == 1
    assert value(text, "passid_body_slot_refusals_total", {"pool": "webhooks"}) == 0
    assert value(text, "passid_http_requests_total", {"route": "/verify/token/check", "status": "503"}) == 1


def body_slots(app: Flask) -> dict:  # type: ignore[type-arg]
    """The app's pools of body slots, found through its WSGI layers (access log, environ guard, body slots)."""
    layer = app.wsgi_app
    assert isinstance(layer, AccessLog)
    guard = layer.app
    assert isinstance(guard, RequestEnvironOnly) and isinstance(guard.app, BodiesInFlight)
    return dict(guard.app.pools)


def test_every_metric_is_described_before_anything_happens(client: FlaskClient) -> None:
    """A dashboard's query finds its series' type and help from the first scrape, counted or not."""
    text = client.get("/metrics", headers=BEARER).text
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert {"passid_http_requests_total", "passid_widget_polls_total", "passid_upstream_calls_total",
            "passid_webhook_receipts_total", "passid_webhook_handling_lag_seconds",
            "passid_notification_attempts_total", "passid_verifications_recorded_total",
            "passid_rate_limit_refusals_total", "passid_body_slot_refusals_total",
            "passid_background_job_runs_total", "passid_db_pool_connections"} <= families
    assert all(sample.name.startswith("passid_") for sample in samples(text))
