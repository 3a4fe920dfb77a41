"""The tests' Redis, for `PASSID_RATE_LIMIT_STORAGE=redis://…`: where it is, and whether the tests may go on without it.

Redis is looked for at REDIS_TEST_URL (default redis://127.0.0.1:6379/15; a test that uses it empties
that database before and after). As with PostgreSQL (tests/support/postgres.py): under CI=true an
unreachable Redis fails the run; on a developer's machine only "connection refused" (no Redis
running) skips.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.postgres import under_ci

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


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
