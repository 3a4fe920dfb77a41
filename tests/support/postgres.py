"""Whether the tests may run without PostgreSQL, decided in one place.

A quarter of the suite runs again on PostgreSQL. When it cannot be reached, a green run
that skipped all of those proves nothing about the database production uses, so:

- under CI (`CI=true`, which CI services set) an unreachable PostgreSQL fails the run;
- on a developer's machine only "connection refused" (nothing listens: PostgreSQL is
  simply not installed or not started) skips; anything else (a wrong password, a missing
  role, a timeout, something else on the port) is a broken setup and fails, with libpq's
  own sentence.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CONNECT_TIMEOUT_SECONDS = 2


class PostgresUnreachable(Exception):
    """PostgreSQL cannot be reached and the tests may not go on without it."""


@dataclass(frozen=True)
class Probe:
    """What one connection attempt found: `refused` only when nothing listens on the port."""

    reachable: bool
    refused: bool
    reason: str


def probe(admin_url: str = POSTGRES_ADMIN_URL, timeout: float = CONNECT_TIMEOUT_SECONDS) -> Probe:
    """Try the port first (a refusal is an OSError of its own kind, not a libpq sentence), then log in."""
    import psycopg

    parts = urlsplit(admin_url)
    address = (parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        socket.create_connection(address, timeout=timeout).close()
    except ConnectionRefusedError:
        return Probe(False, True, f"nothing listens on {address[0]}:{address[1]} (connection refused)")
    except OSError as error:
        return Probe(False, False, f"cannot reach {address[0]}:{address[1]}: {error}")
    try:
        with psycopg.connect(admin_url, connect_timeout=max(1, round(timeout))):
            return Probe(True, False, "")
    except psycopg.Error as error:
        return Probe(False, False, f"PostgreSQL at {address[0]}:{address[1]} refused the tests: {error}".strip())


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def may_run_without(found: Probe, environ: Mapping[str, str] = os.environ) -> bool:
    """True when the PostgreSQL runs may be skipped; raises PostgresUnreachable when they may not."""
    if found.reachable:
        return False
    if under_ci(environ):
        raise PostgresUnreachable(f"CI=true and PostgreSQL is unreachable: {found.reason}")
    if not found.refused:
        raise PostgresUnreachable(found.reason)
    return True


@cache
def postgres_probe() -> Probe:
    """The one probe of POSTGRES_ADMIN_URL this process makes."""
    return probe()


def postgres_available() -> bool:
    """True when PostgreSQL answers; False when the tests may skip it; raises PostgresUnreachable otherwise.

    Probed once per process: every database-backed fixture asks, and a timeout each time would add up.
    """
    found = postgres_probe()
    return found.reachable or not may_run_without(found)


# For a test whose input is refused before anything is stored (request shape, validation, routing):
# the database cannot change its answer, so it runs on SQLite only (see `databases` in tests/conftest.py).
refused_before_storage = pytest.mark.databases("sqlite")
