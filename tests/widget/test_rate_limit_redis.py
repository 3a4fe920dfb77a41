"""`PASSID_RATE_LIMIT_STORAGE=redis://…`, which the README recommends for scale-out: two app processes, one limit.

Each process has a database of its own here, so the only thing they share is Redis: if the
counter lived anywhere else, each would let the full limit through.

Redis is looked for at REDIS_TEST_URL (default redis://127.0.0.1:6379/15; the test empties that
database before and after). As with PostgreSQL (tests/support/postgres.py): under CI=true an
unreachable Redis fails the run; on a developer's machine only "connection refused" (no Redis
running) skips.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.postgres import under_ci
from tests.support.servers import AppServer, base_env, migrate
from tests.support.widget_http import widget_fields

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")
LIMIT = 3


def redis_or_skip(url: str = REDIS_URL) -> Any:
    """A client of the test's Redis database; skips or fails as the module docstring says."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 6379)
    try:
        socket.create_connection(address, timeout=2).close()
    except ConnectionRefusedError:
        if under_ci():
            pytest.fail(f"CI=true and nothing listens on {address[0]}:{address[1]} for Redis (connection refused)")
        pytest.skip(f"Redis is not running on {address[0]}:{address[1]} (connection refused; under CI=true this fails)")
    except OSError as error:
        pytest.fail(f"cannot reach Redis at {address[0]}:{address[1]}: {error}")
    try:
        import redis
    except ImportError:
        pytest.fail("the redis client library is not installed, so PASSID_RATE_LIMIT_STORAGE=redis://… cannot work: "
                    "add `redis` to requirements.txt")
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.ping()
    return client


@pytest.fixture
def shared_redis() -> Iterator[Any]:
    client = redis_or_skip()
    client.flushdb()  # a window left by an earlier run would count against this one
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def two_apps(shared_redis: Any, tmp_path: Path) -> Iterator[tuple[AppServer, AppServer]]:
    """Two app processes, each on its own SQLite database, counting in the same Redis database."""
    started: list[AppServer] = []
    try:
        for name in ("first", "second"):
            env = base_env(f"sqlite:///{tmp_path / f'{name}.db'}", PASSID_RATE_LIMIT_STORAGE=REDIS_URL,
                           PASSID_RATE_LIMIT_TOKENS=f"{LIMIT} per minute",
                           PASSID_INSTANCE_DIR=str(tmp_path / f"{name}-instance"))
            migrate(env)
            started.append(AppServer(env, tmp_path / f"{name}.log").start())
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def test_two_processes_counting_in_redis_share_one_limit(two_apps: tuple[AppServer, AppServer],
                                                         shared_redis: Any) -> None:
    first, second = two_apps
    statuses = []
    for attempt in range(2 * LIMIT):
        server = (first, second)[attempt % 2]
        fields = widget_fields(server.url)
        answer = requests.post(f"{server.url}/verify/token/check", data={**fields, "token": "KE8V-3TXY-Z72L"},
                               timeout=15)
        statuses.append(answer.status_code)
    # Alternating between the processes: counting apart, each would have let all three of its own through.
    assert statuses == [200] * LIMIT + [429] * LIMIT, statuses
    assert shared_redis.dbsize() > 0  # the windows are in Redis, not in either database
