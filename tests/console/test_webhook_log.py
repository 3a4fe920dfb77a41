"""The webhook log: stored events one by one, rejected calls as counts per hour; filterable by type and result."""

from __future__ import annotations

import re
import secrets

import requests

from tests.console.conftest import verify_in_widget
from tests.support.servers import AppServer
from tests.support.waiting import wait_until


def log_page(staff: requests.Session, server: AppServer, **filters: str) -> str:
    return staff.get(f"{server.url}/console/webhooks", params=filters, timeout=10).text


def table_rows(page: str, table_id: str) -> list[str]:
    """The body rows of one of the page's two tables: `webhook-receipts` or `webhook-rejections`."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, flags=re.S)
    return re.findall(r"<tr[^>]*>.*?</tr>", table.group(1), flags=re.S) if table else []


def bad_signature_calls(page: str) -> int:
    return sum(int(count) for count in re.findall(r"(\d+) calls? with a bad signature", page))


def forge(server: AppServer, claimed: str) -> requests.Response:
    return requests.post(
        f"{server.url}/webhooks/passid",
        data=b'{"id": "x", "type": "verification.completed", "data": {}}',
        headers={"X-PASSID-Signature": "sha256=" + "0" * 64, "X-PASSID-Event-Id": claimed,
                 "X-PASSID-Event-Type": "verification.completed", "Content-Type": "application/json"},
        timeout=10,
    )


def test_a_forged_call_is_counted_under_invalid_only(console_server: AppServer, staff: requests.Session) -> None:
    before = bad_signature_calls(log_page(staff, console_server, signature="invalid"))
    claimed = f"evt_forged_{secrets.token_hex(4)}"
    assert forge(console_server, claimed).status_code == 401
    page = log_page(staff, console_server, signature="invalid")
    rejected = table_rows(page, "webhook-rejections")
    assert rejected and all('data-result="invalid"' in row for row in rejected)
    assert bad_signature_calls(page) == before + 1
    # An hour's count, shown as its range, with the latest claimed id (never trusted, so labelled).
    mine = [row for row in rejected if claimed in row]
    assert len(mine) == 1 and "claimed, unverified" in mine[0]
    assert re.search(r"\d{2}:00–\d{2}:00", mine[0]) and "verification.completed" in mine[0]
    assert table_rows(page, "webhook-receipts") == []
    valid = log_page(staff, console_server, signature="valid")
    assert table_rows(valid, "webhook-rejections") == [] and claimed not in valid


def denied_rows(staff: requests.Session, server: AppServer) -> list[str]:
    return table_rows(log_page(staff, server, type="verification.denied"), "webhook-receipts")


def test_the_log_filters_by_event_type(console_server: AppServer, staff: requests.Session) -> None:
    assert verify_in_widget(console_server, "TEST-RVKD-0002") == "declined"
    # Stored first, handled a moment later: wait for the handled row, not only for the row.
    wait_until(lambda: any("handled" in row for row in denied_rows(staff, console_server)),
               "a verification.denied webhook handled", every=0.2)
    denied = denied_rows(staff, console_server)
    assert all("verification.denied" in row and "verification.completed" not in row for row in denied)
    assert any("handled" in row and ">valid<" in row for row in denied)
    both = log_page(staff, console_server, type="verification.denied", signature="invalid")
    assert table_rows(both, "webhook-receipts") == [] and table_rows(both, "webhook-rejections") == []


def test_an_unknown_filter_value_means_all(console_server: AppServer, staff: requests.Session) -> None:
    """Both tables hold rows first, so "the same as unfiltered" cannot pass as two empty lists."""
    assert forge(console_server, f"evt_forged_{secrets.token_hex(4)}").status_code == 401
    denied_before = len(denied_rows(staff, console_server))
    assert verify_in_widget(console_server, "TEST-RVKD-0002") == "declined"
    # Wait for this test's own webhook (an earlier test's may be on record already) and for its handling: a
    # row stored or turning from pending to handled between the two pages would differ for a reason that has
    # nothing to do with the filter.
    wait_until(lambda: len(denied_rows(staff, console_server)) > denied_before
               and "<td>pending</td>" not in log_page(staff, console_server),
               "this test's verification.denied webhook stored and every stored event handled", every=0.2)
    everything = log_page(staff, console_server)
    bogus = log_page(staff, console_server, signature="bogus")
    for table in ("webhook-receipts", "webhook-rejections"):
        assert table_rows(everything, table), f"no rows in {table}"
        assert table_rows(bogus, table) == table_rows(everything, table)
