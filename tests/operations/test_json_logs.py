"""`PASSID_LOG_FORMAT=json`: one object per line, each with the request id the answer carries, passed on to
PASSID; a call to PASSID that times out logged and counted without the id of the request it was about.

In process, in a live configuration whose PASSID is a scripted stand-in on loopback (tests/client's), so
the test sees the headers each call carried and can make PASSID fail on cue.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from app.config import ALL_PERMISSIONS
from tests.client.conftest import FakePassid, Reply, serving_fake_passid
from tests.support.captured_logs import CapturedLogs, json_logs_captured
from tests.support.scraping import BEARER, METRICS_TOKEN, value
from tests.support.widget_actions import WidgetActions
from tests.support.widget_http import HTMX

pytestmark = pytest.mark.databases("sqlite")

REQUEST_ID = "req_LOGSECRET0123456789"
CODE = "ZX9Q-4PLM"


@pytest.fixture
def passid() -> Iterator[FakePassid]:
    with serving_fake_passid() as server:
        yield server


@pytest.fixture
def app_settings(passid: FakePassid) -> dict[str, str]:
    return {"PASSID_BASE_URL": passid.url, "PASSID_API_KEY": "sk_live_" + "j" * 32,
            "PASSID_WEBHOOK_SECRET": "whsec_for_the_json_log_test", "PASSID_POLL_CHECK_SECONDS": "0",
            "PASSID_TIMEOUT_SECONDS": "0.5",
            "PASSID_LOG_FORMAT": "json", "PASSID_METRICS_TOKEN": METRICS_TOKEN}


@pytest.fixture
def logs(app: Flask) -> Iterator[CapturedLogs]:
    with json_logs_captured() as captured:
        yield captured


def test_each_line_carries_the_request_id_the_answer_and_passid_carry(
    app: Flask, passid: FakePassid, logs: CapturedLogs
) -> None:
    client = app.test_client()
    passid.reply = Reply(status=201, body={
        "requestId": REQUEST_ID, "code": CODE, "deepLink": f"passid://verify-request?r={REQUEST_ID}&i=inst_1",
        "expiresAt": (datetime.now(UTC) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "permissions": list(ALL_PERMISSIONS), "status": "pending"})
    created = client.post("/verify/qr/session", data={"o": WidgetActions(client).fields()["o"]}, headers=HTMX)
    assert 'data-view="awaiting"' in created.text
    created_id = created.headers["X-Request-Id"]
    assert passid.last.headers["X-Request-Id"] == created_id

    passid.reply = Reply(delay=3)  # no answer within the app's timeout
    poll_url = created.text.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    failed = client.get(poll_url, headers=HTMX)
    assert 'data-view="error"' in failed.text
    poll_id = failed.headers["X-Request-Id"]
    assert passid.last.headers["X-Request-Id"] == poll_id and passid.last.path.endswith(REQUEST_ID)

    records = logs.records()
    assert all({"time", "level", "logger", "message", "request_id", "process"} <= set(record) for record in records)
    [warning] = [record for record in records if record["message"].startswith("PASSID status check failed")]
    assert warning["request_id"] == poll_id and warning["level"] == "WARNING"
    assert "/api/bridge/request/{id}" in warning["message"]
    [poll_line] = [record for record in records if record["logger"] == "passid.access" and
                   record["request_id"] == poll_id]
    assert (poll_line["method"], poll_line["path"], poll_line["route"], poll_line["status"]) == (
        "GET", "/verify/qr/status", "/verify/qr/status", 502)  # the error state says PASSID failed
    assert isinstance(poll_line["duration_ms"], float) and poll_line["bytes"] > 0
    for secret in (REQUEST_ID, CODE, CODE.replace("-", ""), poll_url.split("h=", 1)[1][:20]):
        assert secret not in logs.text, secret

    metrics = client.get("/metrics", headers=BEARER).text
    assert value(metrics, "passid_upstream_calls_total", {"endpoint": "create_request", "outcome": "ok"}) == 1
    assert value(metrics, "passid_upstream_calls_total", {"endpoint": "get_request", "outcome": "timeout"}) == 1
    assert value(metrics, "passid_widget_polls_total", {"answered_by": "passid", "state": "error"}) == 1
    assert REQUEST_ID not in metrics
