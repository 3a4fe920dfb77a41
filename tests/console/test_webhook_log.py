"""The webhook log: every call received, filterable by event type and signature result."""

from __future__ import annotations

import re
import secrets
import time

import requests

from tests.console.conftest import verify_in_widget
from tests.support.servers import AppServer


def log_rows(staff: requests.Session, server: AppServer, **filters: str) -> list[str]:
    page = staff.get(f"{server.url}/console/webhooks", params=filters, timeout=10).text
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def test_a_forged_call_is_listed_under_invalid_only(console_server: AppServer, staff: requests.Session) -> None:
    claimed = f"evt_forged_{secrets.token_hex(4)}"
    answer = requests.post(
        f"{console_server.url}/webhooks/passid",
        data=b'{"id": "x", "type": "verification.completed", "data": {}}',
        headers={"X-PASSID-Signature": "sha256=" + "0" * 64, "X-PASSID-Event-Id": claimed,
                 "X-PASSID-Event-Type": "verification.completed", "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 401
    invalid = log_rows(staff, console_server, signature="invalid")
    assert invalid and all(">invalid<" in row for row in invalid)
    mine = [row for row in invalid if claimed in row]
    assert len(mine) == 1 and "claimed, unverified" in mine[0] and "rejected" in mine[0]
    assert not any(claimed in row for row in log_rows(staff, console_server, signature="valid"))


def test_the_log_filters_by_event_type(console_server: AppServer, staff: requests.Session) -> None:
    assert verify_in_widget(console_server, "TEST-RVKD-0002") == "declined"
    deadline = time.monotonic() + 10
    while not (denied := log_rows(staff, console_server, type="verification.denied")):
        assert time.monotonic() < deadline, "no verification.denied webhook arrived"
        time.sleep(0.2)
    assert all("verification.denied" in row and "verification.completed" not in row for row in denied)
    assert any("handled" in row and ">valid<" in row for row in denied)
    both = log_rows(staff, console_server, type="verification.denied", signature="invalid")
    assert both == []


def test_an_unknown_filter_value_means_all(console_server: AppServer, staff: requests.Session) -> None:
    everything = log_rows(staff, console_server)
    assert log_rows(staff, console_server, signature="bogus") == everything
