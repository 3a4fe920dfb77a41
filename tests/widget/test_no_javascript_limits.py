"""A customer without JavaScript gets exactly the configured number of attempts.

The plain form posts to the same URL the htmx spinner step uses; that one view
must count the action once, not once for itself and once more for the view that
does the work (counted twice, a customer without JavaScript would get half the limit).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.servers import AppServer, base_env, migrate
from tests.support.widget_http import widget_fields

LIMIT = 3


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    directory: Path = tmp_path_factory.mktemp("no-javascript-limits")
    env = base_env(
        f"sqlite:///{directory / 'passid.db'}",
        PASSID_RATE_LIMIT_SESSIONS=f"{LIMIT} per minute",
        PASSID_RATE_LIMIT_TOKENS=f"{LIMIT} per minute",
    )
    migrate(env)
    server = AppServer(env, directory / "app.log").start()
    yield server
    server.stop()


def test_a_customer_without_javascript_gets_every_configured_qr_session(limited: AppServer) -> None:
    options = widget_fields(limited.url)["o"]
    answers = [
        requests.post(f"{limited.url}/verify/qr", data={"o": options}, timeout=10) for _ in range(LIMIT + 1)
    ]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429]
    for answer in answers[:LIMIT]:
        assert 'data-view="awaiting"' in answer.text  # a real PASSID request, with its QR code
    assert 'data-view="idle"' in answers[-1].text and "Too many attempts" in answers[-1].text


def test_a_customer_without_javascript_gets_every_configured_token_check(limited: AppServer) -> None:
    answers = []
    for attempt in range(LIMIT + 1):
        fields = widget_fields(limited.url)
        token = f"NONE-SUCH-TOK{attempt}"  # well formed, unknown to PASSID: a real deny from it
        answers.append(requests.post(f"{limited.url}/verify/token", data={**fields, "token": token}, timeout=10))
    assert [a.status_code for a in answers] == [200] * LIMIT + [429]
    for answer in answers[:LIMIT]:
        assert 'data-view="declined"' in answer.text and "couldn&#39;t find that token" in answer.text
    assert 'data-view="idle"' in answers[-1].text and "Too many attempts" in answers[-1].text
